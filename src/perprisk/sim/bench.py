"""Stress-run throughput: ``run_stress_benchmark`` is what ``perprisk bench stress --json`` reports.

The target: 1,000,000 accounts over 2,880 one-minute ticks (the two crash days, one tick per candle at
its close — ``path_order="close"``) in at most 60 s on the project's machine, with peak memory stated.
A baseline run of the same scenario at 1 % of the accounts is measured in the same invocation:
``scaling_ratio`` (cost per account-tick at full size over the baseline's) shows whether the run scales
linearly, ``target_ratio`` is the wall time over the 60 s target.
Figures: the interpreter that ran them (its build matters: see ``docs/performance.md``), set-up
(population, accounts), the ticks (engine mark updates — the risk pass — versus the rest: entries and
exits, market-maker quotes, checks), ticks/s, µs per account-tick, peak resident memory, and what the phases
did (entries, exits, funding payments, stop-losses triggered, liquidations, ADL events) with the cost per
entry, exit and funding payment.
Nothing here asserts a time; it measures.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from perprisk.errors import ValidationError
from perprisk.sim.runner import Scenario, load_scenario_candles, run_stress

__all__ = ["run_stress_benchmark"]


def _one_run(
    accounts: int,
    bars: int,
    seed: int,
    policy: str,
    path_order: str,
    check_every: int | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[float, Any]:
    base = Scenario(
        accounts=accounts, seed=seed, policy=policy, path_order=path_order, check_every=check_every
    )
    candles = load_scenario_candles(base)
    bars = min(bars, len(candles))
    end = int(candles.timestamps_ms[bars - 1]) + 1
    scenario = replace(base, end=str(end))
    started = time.perf_counter()
    result = run_stress(scenario, candles, progress)
    return time.perf_counter() - started, result


def _per_item(seconds: float, count: int) -> float | None:
    """µs per item of a phase (None when the phase had none)."""
    return round(seconds / count * 1e6, 1) if count else None


def run_stress_benchmark(
    accounts: int = 1_000_000,
    bars: int = 2880,
    seed: int = 1,
    policy: str = "insurance_fund",
    path_order: str = "close",
    check_every: int | None = None,
    baseline_accounts: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """One stress run of the default scenario (first ``bars`` candles of the 2025-10-10/11 crash), and a
    baseline run of the same scenario with ``baseline_accounts`` (default: 1 % of ``accounts``, at least
    1,000, at most ``accounts``): ``scaling_ratio`` is the cost per account-tick at full size over the baseline's (1.0 = linear)."""
    if baseline_accounts is None:
        baseline_accounts = min(accounts, max(1000, accounts // 100))
    elif baseline_accounts > accounts:
        raise ValidationError(
            "baseline_accounts", f"{baseline_accounts} is more than the run's {accounts} accounts: a baseline is "
            "a smaller run of the same scenario"
        )
    base_wall, base_result = _one_run(baseline_accounts, bars, seed, policy, path_order, check_every, None)
    wall, result = _one_run(accounts, bars, seed, policy, path_order, check_every, progress)
    perf = result.performance
    s = result.summary
    ticks = s["ticks"]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    per_account_tick = wall / (accounts * ticks)
    base_per_account_tick = base_wall / (baseline_accounts * base_result.summary["ticks"])
    return {
        "accounts": accounts,
        "bars": min(bars, s["bars"]),
        "ticks": ticks,
        "wall_s": round(wall, 3),
        "setup_s": perf["setup_s"],
        "ticks_per_s": perf["ticks_per_s"],
        "mark_update_ms_per_tick": perf["mark_update_ms_per_tick"],
        "mark_update_us_per_account_tick": perf["mark_update_us_per_account_tick"],
        "other_ms_per_tick": perf["other_ms_per_tick"],
        "phases_s": perf["phases_s"],
        "dominant_phase": max(perf["phases_s"], key=perf["phases_s"].get),
        "init_s": perf["init_s"],
        "summary_s": perf["summary_s"],
        "garbage_collection_s": perf["garbage_collection_s"],
        "us_per_account_tick": round(per_account_tick * 1e6, 4),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        # the figures depend on the interpreter's build as well as the machine (docs/performance.md)
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "liquidations": s["liquidations"],
        "adl_events": s["adl_events"],
        # what the phases did, and their cost per item (µs): where a faster design has to win
        "counts": {
            "entries": s["entries"],
            "exits": s["exits"],
            "funding_payments": s["funding_payments"],
            "stop_losses_triggered": s["stop_losses_triggered"],
            "liquidations": s["liquidations"],
            "adl_events": s["adl_events"],
        },
        "us_per_entry": _per_item(perf["phases_s"]["entries"], s["entries"]),
        "us_per_exit": _per_item(perf["phases_s"]["exits"], s["exits"]),
        "us_per_funding_payment": _per_item(perf["phases_s"]["funding"], s["funding_payments"]),
        "conservation_error": s["conservation_error"],
        "open_interest_imbalance": s["open_interest_imbalance"],
        "baseline_accounts": baseline_accounts,
        "baseline_wall_s": round(base_wall, 3),
        "baseline_us_per_account_tick": round(base_per_account_tick * 1e6, 4),
        "scaling_ratio": round(per_account_tick / base_per_account_tick, 3),
        "target_wall_s": 60,
        "target_ratio": round(wall / 60, 3),
    }
