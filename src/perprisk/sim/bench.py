"""Stress-run throughput: ``run_stress_benchmark`` is what ``perprisk bench stress --json`` reports.

The issue's target: 1,000,000 accounts over 2,880 one-minute ticks (the two crash days, one tick per candle at
its close — ``path_order="close"``) in at most 60 s on the project's machine, with peak memory stated.
Figures: set-up (population, accounts), the ticks (engine mark updates — the risk pass — versus the rest:
entries and exits, market-maker quotes, checks), ticks/s, µs per account-tick, peak resident memory.
Nothing here asserts a time; it measures.
"""

from __future__ import annotations

import resource
import time
from dataclasses import replace
from typing import Any

from perprisk.sim.runner import Scenario, load_scenario_candles, run_stress

__all__ = ["run_stress_benchmark"]


def run_stress_benchmark(
    accounts: int = 1_000_000,
    bars: int = 2880,
    seed: int = 1,
    policy: str = "insurance_fund",
    path_order: str = "close",
    check_every: int | None = None,
) -> dict[str, Any]:
    """One stress run of the default scenario (first ``bars`` candles of the 2025-10-10/11 crash)."""
    base = Scenario(
        accounts=accounts, seed=seed, policy=policy, path_order=path_order, check_every=check_every
    )
    candles = load_scenario_candles(base)
    bars = min(bars, len(candles))
    end = int(candles.timestamps_ms[bars - 1]) + 1
    scenario = replace(base, end=str(end))
    started = time.perf_counter()
    result = run_stress(scenario, candles)
    wall = time.perf_counter() - started
    perf = result.performance
    s = result.summary
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "accounts": accounts,
        "bars": bars,
        "ticks": s["ticks"],
        "wall_s": round(wall, 3),
        "setup_s": perf["setup_s"],
        "ticks_per_s": perf["ticks_per_s"],
        "mark_update_ms_per_tick": perf["mark_update_ms_per_tick"],
        "mark_update_us_per_account_tick": perf["mark_update_us_per_account_tick"],
        "other_ms_per_tick": perf["other_ms_per_tick"],
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "liquidations": s["liquidations"],
        "adl_events": s["adl_events"],
        "conservation_error": s["conservation_error"],
        "open_interest_imbalance": s["open_interest_imbalance"],
        "target_wall_s": 60,
    }
