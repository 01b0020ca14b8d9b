"""Risk-scan speed: one full scan of N positions at a new mark, against the memory bandwidth of the machine.

The population (deterministic for a seed) spreads N positions over BTCUSDT, ETHUSDT and SOLUSDT (50/30/20 %,
real Binance tier tables, taker fee 0.05 %): 85 % are isolated positions, 15 % belong to cross accounts of
one, two or three markets.  Every unit is safe at the starting marks, with a liquidation distance between
1 % and 60 % (log-uniform); a handful of isolated positions (``NEAR``) sit within twice the move of their
liquidation price, so the tick — every market down ``move`` (0.05 % by default: a fast second for BTC) —
turns up a few real liquidations among the candidates.  Accounts whose legs cross a tier floor on the way are
re-tiered during the scan (about one in ten thousand per market for a 0.05 % move).

Measured in one run:

- ``scan_ms``: :meth:`FastScanner.scan_marks` ticking all three markets (screen + exact confirmation of every
  candidate), best of ``repeats``;
- ``reference_ms``: ``np.add(x, y, out=z)`` over arrays holding as many bytes as that scan reads
  (:meth:`FastScanner.scan_bytes`), best of ``repeats`` — what one pass over the same memory costs;
- ``ratio = scan_ms / reference_ms`` (target ≤ 2), the two timed interleaved; ``ratio_median`` the median of
  the per-pair ratios;
- ``exact_per_position_us``: the :class:`ReferenceScanner` (exact formulas in a plain loop) on a sample of the
  same units, per position — what scanning without the fast screen would cost.

The collector is frozen while timing (a million records would otherwise be walked between runs, flushing the
caches the scan and the reference both run from).

Run: ``python -m perprisk.benchmarks.scan [positions]``.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from decimal import Decimal
from typing import Any, Callable

import numpy as np

from perprisk.instrument import TierTable, load_tier_tables
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.risk.scanner import FastScanner, ReferenceScanner, ScanMarket

#: (symbol, key in the Binance file, starting mark, tick, share of the positions)
MARKETS = (
    ("BTCUSDT", "BTC/USDT:USDT", Decimal("100000.0"), Decimal("0.1"), 0.5),
    ("ETHUSDT", "ETH/USDT:USDT", Decimal("4000.00"), Decimal("0.01"), 0.3),
    ("SOLUSDT", "SOL/USDT:USDT", Decimal("200.000"), Decimal("0.001"), 0.2),
)
TAKER_FEE = Decimal("0.0005")
CROSS_SHARE = 0.15  # of the positions
NEAR = 12  # isolated positions within 2·move of their liquidation price (about 3 of them liquidated by the tick)
MOVE = Decimal("0.0005")  # the tick: every market down 0.05 %
LOT_DIGITS = 3  # sizes on a 0.001 grid


def _float_requirement(tiers: TierTable, fee: float, notional: np.ndarray) -> np.ndarray:
    """``N·(mmr + fee) − cum`` at the tier of ``N`` (float: for building the population only)."""
    floors = np.array([float(t.floor) for t in tiers.tiers])
    mmr = np.array([float(t.mmr) for t in tiers.tiers])
    cum = np.array([float(t.maintenance_amount) for t in tiers.tiers])
    tier = np.searchsorted(floors, notional, side="right") - 1
    return notional * (mmr[tier] + fee) - cum[tier]


def _money(x: float) -> Decimal:
    return Decimal(math.ceil(x * 100)).scaleb(-2)  # up: a higher balance is the safe side for both sides


def _size(lots: int) -> Decimal:
    return Decimal(lots).scaleb(-LOT_DIGITS)


def build_population(
    positions: int, seed: int, move: Decimal = MOVE
) -> tuple[list[ScanMarket], dict[str, Decimal], list[tuple]]:
    """Markets, starting marks and the unit records ``("isolated", key, symbol, size, quote)`` /
    ``("cross", key, collateral, [(symbol, size), ...])`` of a population of ``positions`` positions."""
    tables = load_tier_tables(BINANCE_TIERS_FILE)
    markets = [ScanMarket(sym, tables[key], TAKER_FEE) for sym, key, *_ in MARKETS]
    marks = {sym: mark for sym, _, mark, _, _ in MARKETS}
    fee = float(TAKER_FEE)
    rng = np.random.default_rng(seed)
    symbols = [sym for sym, *_ in MARKETS]
    shares = np.array([share for *_, share in MARKETS])
    mark_f = np.array([float(marks[sym]) for sym in symbols])

    n_cross = int(positions * CROSS_SHARE)
    n_iso = positions - n_cross
    units: list[tuple] = []

    # isolated positions: notional log-uniform 100 … 2,000,000 (a few deep into the tiers), distance 1 … 60 %;
    # the balance puts the liquidation price at mark·(1 − s·distance)
    market_of = rng.choice(len(symbols), size=n_iso, p=shares)
    notional = np.exp(rng.uniform(math.log(100), math.log(2_000_000), n_iso))
    distance = np.exp(rng.uniform(math.log(0.01), math.log(0.60), n_iso))
    distance[:NEAR] = rng.uniform(0.0, 2 * float(move), min(NEAR, n_iso))
    sign = rng.choice((-1, 1), size=n_iso)
    mark = mark_f[market_of]
    lots = np.maximum(1, (notional / mark * 10**LOT_DIGITS).astype(np.int64))
    size = sign * lots / 10**LOT_DIGITS
    lp = mark * (1 - sign * distance)
    quote = np.empty(n_iso)
    for j, sym in enumerate(symbols):
        at = market_of == j
        quote[at] = _float_requirement(markets[j].tiers, fee, np.abs(size[at]) * lp[at]) - size[at] * lp[at]
    for i, (j, n, s, q) in enumerate(zip(market_of.tolist(), lots.tolist(), sign.tolist(), quote.tolist())):
        units.append(("isolated", i, symbols[j], _size(s * n), _money(q)))

    # cross accounts of 1, 2 or 3 markets until n_cross positions; equity above the requirement by 1 … 60 %
    # of the gross notional
    key = n_iso
    left = n_cross
    while left > 0:
        legs_n = min(left, int(rng.choice((1, 2, 3), p=(0.5, 0.3, 0.2))))
        chosen = rng.choice(len(symbols), size=legs_n, replace=False, p=shares)
        legs = []
        collateral = 0.0
        gross = 0.0
        for j in chosen.tolist():
            s = int(rng.choice((-1, 1)))
            n = max(1, int(math.exp(rng.uniform(math.log(100), math.log(500_000))) / mark_f[j] * 10**LOT_DIGITS))
            q = s * n / 10**LOT_DIGITS
            legs.append((symbols[j], _size(s * n)))
            value = abs(q) * mark_f[j]
            collateral += float(_float_requirement(markets[j].tiers, fee, np.array([value]))[0]) - q * mark_f[j]
            gross += value
        collateral += gross * math.exp(rng.uniform(math.log(0.01), math.log(0.60)))
        units.append(("cross", key, _money(collateral), legs))
        key += 1
        left -= legs_n
    return markets, marks, units


def _load(scanner: Any, units: list[tuple]) -> None:
    upsert_isolated, upsert_cross = scanner.upsert_isolated, scanner.upsert_cross
    for unit in units:
        if unit[0] == "isolated":
            upsert_isolated(*unit[1:])
        else:
            upsert_cross(*unit[1:])


def _best(run: Callable[[], float], repeats: int) -> float:
    return min(run() for _ in range(repeats))


def run_scan_benchmark(
    positions: int = 1_000_000, seed: int = 1, *, repeats: int = 31, sample: int = 2_000, move: Decimal = MOVE
) -> dict[str, Any]:
    """Time one full fast scan of ``positions`` positions at a new mark against a memory-bandwidth reference.

    Returns ``positions``, ``scan_ms``, ``reference_ms``, ``ratio`` (scan/reference) and
    ``exact_per_position_us`` (the exact reference scanner on ``sample`` units, per position), plus
    ``ratio_median`` (the median of the ratios of interleaved runs: less flattering, steadier on a busy machine),
    ``screen_ms`` (the float screen alone), ``scan_bytes``, ``candidates`` and ``liquidatable`` (of the timed
    scan), ``layout`` (units on each path), ``exact_sample_positions``, ``agree`` (on the sample, the fast and
    the exact reference scanner flag the same units) and ``build_s`` (loading the population).
    """
    markets, marks, units = build_population(positions, seed, move)
    new_marks = {sym: (mark * (1 - move)).quantize(tick) for sym, _, mark, tick, _ in MARKETS}

    start = time.perf_counter()
    fast = FastScanner(markets, marks)
    _load(fast, units)
    build_s = time.perf_counter() - start
    gc.collect()
    gc.freeze()  # a million records: keep the collector from walking them (and the caches) between runs
    try:
        result = _measure(fast, markets, marks, new_marks, units, seed, repeats, sample)
    finally:
        gc.unfreeze()
    return {"positions": positions, **result, "build_s": build_s}


def _measure(
    fast: FastScanner, markets: list[ScanMarket], marks: dict[str, Decimal], new_marks: dict[str, Decimal],
    units: list[tuple], seed: int, repeats: int, sample: int,
) -> dict[str, Any]:
    result: list[Any] = []

    def timed_scan() -> float:
        fast.scan_marks(marks)  # back to the starting marks, untimed
        gc.disable()
        t0 = time.perf_counter()
        found = fast.scan_marks(new_marks)
        elapsed = time.perf_counter() - t0
        gc.enable()
        result[:] = [found, fast.last_candidate_count]
        return elapsed

    scan_bytes = fast.scan_bytes()
    half = max(1, scan_bytes // 16)  # two input arrays of float64 holding scan_bytes together
    x = np.random.default_rng(seed).random(half)
    y = np.random.default_rng(seed + 1).random(half)
    z = np.empty_like(x)

    def timed_reference() -> float:
        np.add(x, y, out=z)  # untimed, like the scan's reset: both are timed on memory they just touched
        return _time(lambda: np.add(x, y, out=z))

    timed_scan()  # warm-up: first touch of the scratch buffers
    timed_reference()
    # interleaved, so that both see the same machine (other processes come and go)
    pairs = [(timed_scan(), timed_reference()) for _ in range(repeats)]
    scan_s = min(p[0] for p in pairs)
    reference_s = min(p[1] for p in pairs)
    found, candidates = result
    screen_s = _best(lambda: _time(lambda: fast.screen(new_marks)), repeats)

    # exact reference on a sample of the same units (independent: the results must match the fast scan's)
    rng = np.random.default_rng(seed + 2)
    picked = [units[i] for i in sorted(rng.choice(len(units), size=min(sample, len(units)), replace=False))]
    picked += [u for u in units[:NEAR] if u not in picked]  # include the near ones: something to agree on
    reference = ReferenceScanner(markets, marks)
    _load(reference, picked)
    exact_s = _best(lambda: _time(lambda: reference.scan_marks(new_marks)), 3)
    exact_found = reference.scan_marks(new_marks)
    sample_positions = sum(1 if u[0] == "isolated" else len(u[3]) for u in picked)  # every one is exposed
    sample_keys = {u[1] for u in picked}
    agree = sorted(k for k in found if k in sample_keys) == sorted(exact_found)

    return {
        "scan_ms": scan_s * 1e3,
        "reference_ms": reference_s * 1e3,
        "ratio": scan_s / reference_s,
        "exact_per_position_us": exact_s / sample_positions * 1e6,
        "ratio_median": statistics.median(p[0] / p[1] for p in pairs),
        "screen_ms": screen_s * 1e3,
        "scan_bytes": scan_bytes,
        "candidates": candidates,
        "liquidatable": len(found),
        "layout": fast.layout(),
        "exact_sample_positions": sample_positions,
        "agree": agree,
    }


def _time(call: Callable[[], Any]) -> float:
    gc.disable()
    t0 = time.perf_counter()
    call()
    elapsed = time.perf_counter() - t0
    gc.enable()
    return elapsed


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    move = Decimal(sys.argv[2]) if len(sys.argv) > 2 else MOVE
    print(json.dumps(run_scan_benchmark(n, move=move), indent=2))
