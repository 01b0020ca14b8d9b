"""Run every benchmark once and print its ratio against the baseline measured in the same run.

    make bench            # or: .venv/bin/python benchmarks/run.py [--quick]

Targets: order book ≥ 500,000 ops/s for the fast book (ratio vs the naive book printed);
risk scan ratio ≤ 2.0 against a memory-bandwidth reference (a numpy add over the same bytes);
exact liquidation price ≥ 10× its plain reference solver for one leg on the real BTCUSDT tiers;
stress replay (scaled down here; `perprisk bench stress` for 1,000,000 accounts) with its scaling ratio
against a 1 % baseline run.
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
    from perprisk.sim.bench import run_stress_benchmark

    # the full-size stress benchmark (1,000,000 accounts) is `perprisk bench stress` (about ten minutes here);
    # scaled down here: 20,000 accounts over the two days (quick: 2,000 over four hours)
    stress = run_stress_benchmark(accounts=2_000 if quick else 20_000, bars=240 if quick else 2880)
    print(json.dumps({"benchmark": "stress", **stress}))
    try:
        from perprisk.benchmarks.scan import run_scan_benchmark
    except ImportError:  # pragma: no cover - the scanner benchmark ships with the risk scanner
        return
    scan = run_scan_benchmark(positions=50_000 if quick else 1_000_000)
    print(json.dumps({"benchmark": "scan", **scan}))


if __name__ == "__main__":
    main()
