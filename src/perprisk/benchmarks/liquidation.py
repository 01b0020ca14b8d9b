"""Liquidation-price speed: the exact solver against its plain reference, on the real BTCUSDT tier table.

Cases (generic family — the engine's — taker fee 0.05 %, Binance BTCUSDT tiers):

- ``isolated``: 1.5 BTC long @ 100,000 (mark 99,000), position margin 15,000;
- ``cross``: the same leg alone in a cross account with wallet 20,000;
- ``cross_other``: the same plus a 10 ETH short in the account (BTC is the target);
- ``hedge``: BTC long 1.5 and short 0.7 in one cross account, the long leg asked for.

For each, :func:`perprisk.formulas.liquidation_price` and
:func:`perprisk.formulas.liquidation.liquidation_price_reference` (every tier piece rebuilt in Fractions) are
timed interleaved in one run, best of ``repeats``; ``ratio`` is reference time / fast time.  ``agree`` says both
gave identical results.

Run: ``python -m perprisk.benchmarks.liquidation``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from perprisk.formulas import MarginMode, PositionLeg, Side, get_family, liquidation_price
from perprisk.formulas.liquidation import liquidation_price_reference
from perprisk.instrument import load_tier_tables, select_tier_table
from perprisk.money import Fraction
from perprisk.paths import BINANCE_TIERS_FILE


def _cases() -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    tables = load_tier_tables(BINANCE_TIERS_FILE)
    btc, eth = select_tier_table(tables, "BTCUSDT"), select_tier_table(tables, "ETHUSDT")
    generic = get_family("generic")
    fee = Decimal("0.0005")
    long_btc = PositionLeg("BTCUSDT", Side.LONG, Decimal("1.5"), Decimal("100000.0"), Decimal("99000.0"), btc)
    short_btc = PositionLeg("BTCUSDT", Side.SHORT, Decimal("0.7"), Decimal("101000.0"), Decimal("99000.0"), btc)
    short_eth = PositionLeg("ETHUSDT", Side.SHORT, Decimal(10), Decimal(4000), Decimal(3950), eth)
    iso, cross = MarginMode.ISOLATED, MarginMode.CROSS
    return {
        "isolated": ((generic, iso, Fraction(15000), [long_btc]), {"taker_fee": fee}),
        "cross": ((generic, cross, Fraction(20000), [long_btc]), {"taker_fee": fee}),
        "cross_other": ((generic, cross, Fraction(20000), [long_btc, short_eth]), {"target": "BTCUSDT", "taker_fee": fee}),
        "hedge": ((generic, cross, Fraction(30000), [long_btc, short_btc]), {"target_side": Side.LONG, "taker_fee": fee}),
    }


def _best_us(call: Callable[[], object], number: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def run_liquidation_benchmark(number: int = 300, repeats: int = 7) -> dict[str, Any]:
    """Per case: ``fast_us``, ``reference_us`` (per call) and ``ratio``; ``agree`` over all cases."""
    out: dict[str, Any] = {}
    agree = True
    for name, (args, kw) in _cases().items():
        fast = partial(liquidation_price, *args, **kw)
        reference = partial(liquidation_price_reference, *args, **kw)
        agree = agree and fast() == reference()
        fast_us = reference_us = float("inf")
        for _ in range(repeats):  # interleaved, so both see the same machine
            fast_us = min(fast_us, _best_us(fast, number, 1))
            reference_us = min(reference_us, _best_us(reference, max(1, number // 10), 1))
        out[name] = {"fast_us": round(fast_us, 1), "reference_us": round(reference_us, 1),
                     "ratio": round(reference_us / fast_us, 1)}
    out["agree"] = agree
    return out


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run_liquidation_benchmark(), indent=2))
