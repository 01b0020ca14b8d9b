"""Run every benchmark once and print its ratio against the baseline measured in the same run.

    make bench            # or: .venv/bin/python benchmarks/run.py [--quick]

Targets (issues): order book ≥ 500,000 ops/s for the fast book (ratio vs the naive book printed);
risk scan ratio ≤ 2.0 against a memory-bandwidth reference (a numpy add over the same bytes);
exact liquidation price ≥ 10× its plain reference solver for one leg on the real BTCUSDT tiers.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    quick = "--quick" in sys.argv
    from perprisk.benchmarks.book import run_book_benchmark

    book = run_book_benchmark(ops=20_000 if quick else 200_000)
    print(json.dumps({"benchmark": "book", **book}))
    from perprisk.benchmarks.liquidation import run_liquidation_benchmark

    liquidation = run_liquidation_benchmark(number=100 if quick else 300)
    print(json.dumps({"benchmark": "liquidation_price", **liquidation}))
    try:
        from perprisk.benchmarks.scan import run_scan_benchmark
    except ImportError:  # pragma: no cover - the scanner benchmark ships with the risk scanner
        return
    scan = run_scan_benchmark(positions=50_000 if quick else 1_000_000)
    print(json.dumps({"benchmark": "scan", **scan}))


if __name__ == "__main__":
    main()
