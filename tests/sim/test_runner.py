"""The stress runner on the real 2025-10-10 crash, small population: liquidations land in the crash minutes,
money is conserved and open interest balanced at every tick, the same seed gives the same summary, and the
four policies differ only where they should."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from perprisk.errors import ValidationError
from perprisk.sim.data import DEFAULT_CANDLES_FILE, load_price_candles, parse_time
from perprisk.sim.runner import (
    SETTLE,
    POLICY_NAMES,
    SUMMARY_KEYS,
    Scenario,
    StressRunner,
    compare_policies,
    run_stress,
)

CRASH_START, CRASH_END = parse_time("2025-10-10T21:00Z"), parse_time("2025-10-10T21:30Z")
SCENARIO = Scenario(accounts=160, seed=3, start="2025-10-10T20:30Z", end="2025-10-10T22:00Z", check_every=1)


@pytest.fixture(scope="module")
def candles():
    return load_price_candles(DEFAULT_CANDLES_FILE)


@pytest.fixture(scope="module")
def crash(candles):
    return run_stress(SCENARIO, candles)


@pytest.fixture(scope="module")
def policies(candles):
    return compare_policies(
        replace(SCENARIO, accounts=100, start="2025-10-10T21:00Z", end="2025-10-10T21:40Z"), candles=candles
    )


def test_summary_has_the_contract_keys(crash):
    s = crash.summary
    for key in SUMMARY_KEYS:
        assert key in s, key
    assert s["accounts"] == 160 and s["ticks"] == len(crash.series["mark"])
    assert s["conservation_error"] == "0" and s["open_interest_imbalance"] == "0"
    assert s["first_violation"] is None
    for key in (
        "liquidated_notional",
        "insurance_fund_start",
        "insurance_fund_end",
        "insurance_fund_min",
        "bad_debt",
    ):
        Decimal(s[key])  # exact decimal text


def test_checked_at_every_tick(crash):
    s = crash.summary
    assert s["check_every"] == 1 and s["checks"] == s["ticks"]


def test_liquidations_concentrate_in_the_crash_minutes(crash):
    s = crash.series
    assert crash.summary["liquidations"] >= 10
    window = (s["time_ms"] >= CRASH_START) & (s["time_ms"] < CRASH_END)
    share_notional = s["liquidated_notional"][window].sum() / s["liquidated_notional"].sum()
    share_count = s["liquidations"][window].sum() / s["liquidations"].sum()
    assert share_notional > 0.5 and share_count > 0.5
    # 30 of 90 minutes hold most of it: per minute, the crash is far denser than the rest
    minutes_in = window.sum() / len(window)
    assert share_count / minutes_in > 1.5
    peak = crash.summary["peak_liquidation_minute"]["minute"]
    assert "2025-10-10T21:00" <= peak < "2025-10-10T21:30"


def test_fund_and_series_are_consistent(crash):
    s = crash.summary
    fund = crash.series["insurance_fund"]
    assert float(s["insurance_fund_min"]) == pytest.approx(fund.min())
    assert float(s["insurance_fund_end"]) == pytest.approx(fund[-1])
    assert Decimal(s["insurance_fund_min"]) <= Decimal(s["insurance_fund_start"])
    assert int(crash.series["adl_events"].sum()) == s["adl_events"]
    assert int(crash.series["liquidations"].sum()) == s["liquidations"]
    assert s["liquidations_by_step"]["takeover"] + s["liquidations_by_step"]["tier_down"] == s["liquidations"]
    assert s["adl_by_reason"]["fund_insufficient"] + s["adl_by_reason"]["book_depth"] == s["adl_events"]
    assert s["entries"] + sum(s["entries_refused"].values()) >= 150


def test_distances_at_the_start_come_from_the_engine(crash):
    d = crash.distances
    assert len(d["long"]) + len(d["short"]) >= 50
    assert np.all(d["long"] > 0) and np.all(d["short"] > 0)
    # isolated positions carry only their initial margin: closer to liquidation than cross accounts
    assert np.median(d["long_isolated"]) < np.median(d["long"]) + 1e-9


def test_same_seed_same_summary(candles, crash):
    again = run_stress(SCENARIO, candles)
    a = {k: v for k, v in crash.summary.items() if k != "elapsed_s"}
    b = {k: v for k, v in again.summary.items() if k != "elapsed_s"}
    assert a == b
    assert a["state_hash"] == b["state_hash"]


def test_another_seed_another_population(candles, crash):
    other = run_stress(replace(SCENARIO, seed=4, end="2025-10-10T21:00Z"), candles)
    assert other.summary["state_hash"] != crash.summary["state_hash"]


def test_policies_on_the_same_seed(policies):
    assert tuple(policies) == POLICY_NAMES
    s = {p: r.summary for p, r in policies.items()}
    for p in POLICY_NAMES:
        assert s[p]["conservation_error"] == "0" and s[p]["open_interest_imbalance"] == "0"
    fund, nbp, soc, debt = (
        s[p] for p in ("insurance_fund", "negative_balance_protection", "socialized_loss", "debt")
    )
    # the same liquidations up to the first deficit: the policies differ in who pays, not in who is liquidated
    assert nbp["liquidations"] == fund["liquidations"] == soc["liquidations"]
    assert Decimal(nbp["bad_debt"]) > 0
    assert nbp["bad_debt_by_payer"]["platform"] == nbp["bad_debt"]  # the platform books every deficit
    assert Decimal(nbp["platform_balance"]) == -Decimal(nbp["bad_debt"])
    assert Decimal(nbp["insurance_fund_min"]) >= Decimal(
        fund["insurance_fund_min"]
    )  # the fund is never drawn
    assert soc["bad_debt_by_payer"]["socialized"] == soc["bad_debt"] == soc["socialized_loss"]
    assert fund["bad_debt_by_payer"]["insurance_fund"] == fund["bad_debt"]
    assert debt["bad_debt_by_payer"]["trader_debt"] != "0" or debt["accounts_in_debt"] == 0
    # only under the fund policy does ADL answer an empty fund
    assert nbp["adl_by_reason"]["fund_insufficient"] == soc["adl_by_reason"]["fund_insufficient"] == 0


def test_capacity_and_latency_platform_risk(candles):
    """Seed 000 §2.5: an overloaded engine (capacity per tick) and a late one (latency) change the outcome."""
    base = replace(SCENARIO, accounts=120, end="2025-10-10T21:40Z", check_every=5)
    ref = run_stress(base, candles)
    capped = run_stress(replace(base, liquidation_capacity=1), candles)
    late = run_stress(replace(base, latency_ticks=4), candles)
    for r in (ref, capped, late):
        assert r.summary["conservation_error"] == "0" and r.summary["open_interest_imbalance"] == "0"
    assert ref.series["liquidations"].max() > 1 and capped.series["liquidations"].max() == 1
    # the engine acts on the price of 4 ticks ago while the book already quotes around the current one
    assert np.array_equal(late.series["mark"][4:], late.series["price"][:-4])
    assert late.summary["adl_by_reason"]["book_depth"] > ref.summary["adl_by_reason"]["book_depth"]
    # a minute bar's jump leaves accounts past bankruptcy before any risk pass can see them
    assert ref.summary["liquidations_past_bankruptcy"] > 0


def test_bad_scenarios_are_refused(tmp_path):
    with pytest.raises(ValidationError) as err:
        Scenario(policy="bailout")
    assert err.value.field == "policy"
    with pytest.raises(ValidationError) as err:
        Scenario.from_mapping({"acounts": 3})
    assert err.value.field == "scenario.acounts"
    with pytest.raises(ValidationError) as err:
        Scenario.from_mapping({"tiers_scale": "abc"})
    assert err.value.field == "scenario.tiers_scale"
    with pytest.raises(ValidationError) as err:
        StressRunner(Scenario(accounts=5, data=str(tmp_path / "none.csv")))
    assert "none.csv" in err.value.field


def test_synthetic_scenario_runs():
    r = run_stress(Scenario(synthetic="garch", synthetic_bars=120, accounts=60, seed=2))
    assert r.summary["conservation_error"] == "0" and r.summary["data"].startswith("synthetic:garch")


def test_real_funding_is_settled(candles):
    r = run_stress(Scenario(accounts=60, seed=1, start="2025-10-10T15:50Z", end="2025-10-10T16:10Z"), candles)
    s = r.summary
    assert s["funding_settlements"] == 1  # 16:00 UTC, Binance's rate from the shipped file
    assert (
        s["funding_payments"] > 0 and s["conservation_error"] == "0" and s["open_interest_imbalance"] == "0"
    )
    none = run_stress(
        Scenario(accounts=60, seed=1, start="2025-10-10T15:50Z", end="2025-10-10T16:10Z", funding=None),
        candles,
    ).summary
    assert none["funding_settlements"] == 0 and none["state_hash"] != s["state_hash"]


def test_a_run_leaves_nothing_frozen_out_of_the_garbage_collector(candles):
    """The runner freezes its long-lived objects during the run (gc.freeze, after every tick) and hands them back
    when it ends — also when it fails — so the engine's reference cycles can be collected after the run."""
    import gc

    assert gc.get_freeze_count() == 0
    frozen_during: list[int] = []
    scenario = replace(SCENARIO, accounts=40, start="2025-10-10T21:00Z", end="2025-10-10T21:10Z")
    run_stress(scenario, candles, progress=lambda done, total: frozen_during.append(gc.get_freeze_count()))
    assert max(frozen_during) > 0
    assert gc.get_freeze_count() == 0

    def fail(done: int, total: int) -> None:
        if gc.get_freeze_count() and done > 20:
            raise RuntimeError("stopped mid-run")

    with pytest.raises(RuntimeError):
        run_stress(scenario, candles, progress=fail)
    assert gc.get_freeze_count() == 0


def test_automatic_collection_is_back_to_what_it_was_after_a_run(candles):
    """A run pauses automatic collection (``collection_paused``) and freezes its objects after every tick; it
    leaves the collector enabled when it was, disabled when the caller had disabled it, also when it raises."""
    import gc

    from perprisk.sim.runner import collection_paused

    scenario = replace(SCENARIO, accounts=30, start="2025-10-10T21:00Z", end="2025-10-10T21:05Z")
    assert gc.isenabled()
    runner = StressRunner(scenario, candles)
    first = runner.run().summary
    assert gc.isenabled()
    assert runner.garbage_s > 0  # the freezes it made itself are timed (garbage_collection_s)
    gc.disable()
    try:
        second = run_stress(scenario, candles).summary
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert {k: v for k, v in first.items() if k != "elapsed_s"} == {
        k: v for k, v in second.items() if k != "elapsed_s"
    }
    with pytest.raises(RuntimeError), collection_paused():
        assert not gc.isenabled()
        raise RuntimeError("stopped")
    assert gc.isenabled()


def test_settling_garbage_freezes_the_survivors_and_a_dropped_cycle_waits_for_the_run_to_end():
    """With automatic collection paused, ``settle_garbage`` moves what is alive out of the collector's
    generations and collects nothing; a reference cycle dropped inside the block is freed by the first
    collection after it."""
    import gc
    import weakref

    from perprisk.sim.runner import collection_paused, settle_garbage

    class Node:
        pass

    with collection_paused():
        dropped, kept = Node(), Node()
        dropped.me = dropped  # a cycle: reference counting alone never frees it
        kept.me = kept
        gone = weakref.ref(dropped)
        del dropped
        frozen_before = gc.get_freeze_count()
        settle_garbage()
        assert gone() is not None  # not collected here
        assert gc.get_freeze_count() > frozen_before
        assert kept.me is kept
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None


def _cycles_dropped_per_tick(monkeypatch, runner: StressRunner) -> tuple[int, int, object]:
    """Run with ``settle_garbage`` replaced by a collection of the young generations that keeps what it
    finds (``gc.DEBUG_SAVEALL``). Returns the objects found in reference cycles the run dropped, the
    collections made, and the summary."""
    import gc

    import perprisk.sim.runner as runner_module

    gc.collect()  # what was dropped before the run is not the run's
    found, calls = [0], [0]

    def collect_and_count() -> None:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect(1)
            found[0] += len(gc.garbage)
            gc.garbage.clear()
        finally:
            gc.set_debug(0)
        calls[0] += 1
        gc.freeze()

    monkeypatch.setattr(runner_module, "settle_garbage", collect_and_count)
    summary = runner.run().summary
    return found[0], calls[0], summary


@pytest.mark.parametrize(
    "policy, extra",
    [
        ("insurance_fund", {}),
        ("socialized_loss", {}),
        ("negative_balance_protection", {}),
        ("debt", {}),
        ("insurance_fund", {"latency_ticks": 2, "liquidation_capacity": 10}),
    ],
)
def test_a_run_drops_no_reference_cycles(monkeypatch, candles, policy, extra):
    """What ``settle_garbage`` relies on: every object a run drops is freed by reference counting —
    through entries, exits, funding, stop-losses, liquidations and ADL, under every policy — so no collection
    is needed during the run."""
    scenario = replace(SCENARIO, accounts=400, policy=policy, check_every=None, **extra)
    cycles, collections, summary = _cycles_dropped_per_tick(monkeypatch, StressRunner(scenario, candles))
    assert collections >= summary["ticks"]
    assert summary["liquidations"] > 0 and summary["exits"] > 0 and summary["stop_losses_triggered"] > 0
    assert summary["adl_events"] > 0 or extra  # (the late, capped liquidation engine deleverages nobody here)
    assert cycles == 0


class _DropsCycles(StressRunner):
    """A runner that leaves a reference cycle behind on every tick (the test that such cycles are seen)."""

    def _cleanup(self) -> None:
        node: dict[str, object] = {}
        node["me"] = node
        super()._cleanup()


def test_a_run_that_drops_reference_cycles_is_caught(monkeypatch, candles):
    scenario = replace(
        SCENARIO, accounts=60, start="2025-10-10T21:00Z", end="2025-10-10T21:10Z", check_every=None
    )
    cycles, collections, summary = _cycles_dropped_per_tick(monkeypatch, _DropsCycles(scenario, candles))
    assert cycles >= summary["ticks"]


def test_progress_counts_work_weighted_by_its_cost(candles):
    """Progress is reported every 1,000 openings of the first tick and after every tick, never goes back, ends
    at the total, and weighs an opening twice an exit and a tick by the population's size."""
    import perprisk.sim.runner as runner_module

    seen: list[tuple[int, int]] = []
    scenario = replace(SCENARIO, accounts=2500, start="2025-10-10T21:00Z", end="2025-10-10T21:05Z", check_every=None)
    runner = StressRunner(scenario, candles, progress=lambda done, total: seen.append((done, total)))
    result = runner.run()
    ticks = result.summary["ticks"]
    pop = runner.population
    openings = int((pop.entry_tick < ticks).sum())
    exits = int(((pop.exit_tick >= 0) & (pop.exit_tick < ticks)).sum())
    totals = {total for _, total in seen}
    assert len(totals) == 1
    total = totals.pop()
    assert total == (ticks * (runner_module.PROGRESS_TICK_BASE + 2500 // runner_module.PROGRESS_TICK_PER) + runner_module.PROGRESS_OPENING * openings
                     + runner_module.PROGRESS_EXIT * exits)  # no funding time in this window
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total
    initial = int((pop.entry_tick == 0).sum())
    assert len(seen) == ticks + initial // 1000
    assert done[0] == 1000 * runner_module.PROGRESS_OPENING


class _Planted(StressRunner):
    """A run with money created out of nothing at tick 8 (a full-check tick with ``check_every=4``) and the
    event-derived open interest thrown off at tick 9."""

    def _check(self, tick: int, full: bool) -> None:
        if tick == 8:
            balances = self.engine.ledger._balances[SETTLE]
            balances["fees"] = balances.get("fees", Decimal(0)) + Decimal("0.37")
        if tick == 9:
            self.long_oi += Decimal("0.002")
        super()._check(tick, full)


def test_the_checks_find_a_planted_violation_and_report_the_first(candles):
    s = _Planted(replace(SCENARIO, check_every=4), candles).run().summary
    assert s["conservation_error"] == "0.37"
    assert s["open_interest_imbalance"] == "0.002"
    assert s["first_violation"].startswith("tick 8: conservation error")
    assert s["checks"] == len(range(0, s["ticks"], 4)) + (1 if (s["ticks"] - 1) % 4 else 0)
