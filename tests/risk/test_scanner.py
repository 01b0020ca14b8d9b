"""The risk scan: one suite run against the exact reference scanner and the fast scanner.

Worked numbers use the real Binance USDⓈ-M BTCUSDT/ETHUSDT/SOLUSDT leverage brackets
(data/binance_um/leverage_tiers_ccxt.json: tier 1 below 300,000 USDT at mmr 0.4 %, tier 2 to 800,000 at 0.5 %
with cum 300, …) and a taker fee of 0.05 %: the engine's rule, requirement = |q|·M·mmr − cum + |q|·M·0.0005.
Each boundary case is also checked against the exact liquidation-price solver of perprisk.formulas.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perprisk.errors import ValidationError
from perprisk.formulas import FAMILIES, MarginMode, PositionLeg, Side, liquidation_price
from perprisk.instrument import Instrument, TierTable, load_tier_tables
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.risk.scanner import (
    FastScanner,
    ReferenceScanner,
    ScanMarket,
    ScanPosition,
    Scanner,
    exact_margin,
    position_requirement,
)

D = Decimal
GENERIC = FAMILIES["generic"]
REAL = load_tier_tables(BINANCE_TIERS_FILE)
FEE = D("0.0005")
BTC = ScanMarket("BTCUSDT", REAL["BTC/USDT:USDT"], FEE)
ETH = ScanMarket("ETHUSDT", REAL["ETH/USDT:USDT"], FEE)
SOL = ScanMarket("SOLUSDT", REAL["SOL/USDT:USDT"], FEE)
MARKETS = (BTC, ETH, SOL)


@pytest.fixture(params=[ReferenceScanner, FastScanner], ids=["reference", "fast"])
def kind(request) -> type[Scanner]:
    return request.param


def make(kind: type[Scanner], marks: dict[str, object] | None = None, markets=MARKETS) -> Scanner:
    return kind(markets, marks)


def isolated_lp(market: ScanMarket, size: Decimal, quote: Decimal, mark: Decimal) -> Fraction | None:
    """The calculator's liquidation price for an isolated unit (position margin PM = Q + q·E, any entry E)."""
    side = Side.LONG if size > 0 else Side.SHORT
    leg = PositionLeg(market.symbol, side, abs(size), mark, mark, market.tiers)
    margin = Fraction(quote) + Fraction(size) * Fraction(mark)
    return liquidation_price(GENERIC, MarginMode.ISOLATED, margin, [leg], taker_fee=market.taker_fee).liquidation_price


# ------------------------------------------------------------------------------------ exact formulas


def test_position_requirement_is_the_engine_rule_on_real_tiers() -> None:
    # tier 1: 1 BTC at 100,000 → 100,000·0.004 + 100,000·0.0005 = 450
    assert position_requirement(BTC, D("1"), Fraction(100_000)) == 450
    # tier 2: 5 BTC at 100,000 = 500,000 notional → 500,000·0.005 − 300 + 250 = 2,450 (short: same)
    assert position_requirement(BTC, D("-5"), Fraction(100_000)) == 2450
    # exactly at a floor the upper tier applies, and MM is continuous there: 300,000·0.005 − 300 = 300,000·0.004
    assert position_requirement(BTC, D("3"), Fraction(100_000)) == 300_000 * Fraction("0.0045")


def test_exact_margin_is_quote_balance_form() -> None:
    from perprisk.risk.scanner import ScanUnit

    unit = ScanUnit("x", "cross", D("1000"), (ScanPosition("BTCUSDT", D("1")), ScanPosition("ETHUSDT", D("-10"))))
    equity, requirement = exact_margin(unit, {"BTCUSDT": BTC, "ETHUSDT": ETH}, {"BTCUSDT": Fraction(100_000), "ETHUSDT": Fraction(4_000)})
    assert equity == 1000 + 100_000 - 40_000
    assert requirement == 450 + 180


# ------------------------------------------------------------------------------------------ isolated


def test_isolated_long_exactly_at_100_percent_is_flagged_one_tick_above_is_not(kind) -> None:
    # 1 BTC long, entry 100,000, position margin 10,405 → quote balance Q = 10,405 − 100,000 = −89,595.
    # f(M) = −89,595 + M − 0.0045·M = 0 at M = 90,000: equity 405 = requirement 360 + 45 (100 %).
    scanner = make(kind)
    scanner.upsert_isolated("long", "BTCUSDT", D("1"), D("-89595"))
    assert isolated_lp(BTC, D("1"), D("-89595"), D("100000")) == 90_000
    assert scanner.scan("BTCUSDT", D("100000.0")) == []
    assert scanner.scan("BTCUSDT", D("90000.1")) == []  # one tick above: 99.99… %
    assert scanner.scan("BTCUSDT", D("90000.0")) == ["long"]  # exactly 100 %
    assert scanner.margin("long") == (405, 405)
    assert scanner.scan("BTCUSDT", D("89999.9")) == ["long"]
    assert scanner.scan("BTCUSDT", D("1")) == ["long"]


def test_isolated_short_exactly_at_100_percent_is_flagged_one_tick_below_is_not(kind) -> None:
    # 1 BTC short: f(M) = Q − M − 0.0045·M, Q = 110,495 → LP 110,000 (equity 495 = 440 + 55)
    scanner = make(kind)
    scanner.upsert_isolated("short", "BTCUSDT", D("-1"), D("110495"))
    assert isolated_lp(BTC, D("-1"), D("110495"), D("100000")) == 110_000
    assert scanner.scan("BTCUSDT", D("109999.9")) == []
    assert scanner.scan("BTCUSDT", D("110000.0")) == ["short"]
    assert scanner.margin("short") == (495, 495)
    assert scanner.scan("BTCUSDT", D("250000")) == ["short"]
    assert scanner.scan("BTCUSDT", D("100000")) == []


def test_unit_past_bankruptcy_at_every_price_and_one_never_liquidatable(kind) -> None:
    scanner = make(kind)
    scanner.upsert_isolated("short-broke", "SOLUSDT", D("-2"), D("-1"))  # Q ≤ 0 short: liquidatable everywhere
    scanner.upsert_isolated("long-rich", "SOLUSDT", D("2"), D("5"))  # Q > 0 long: never
    for mark in ("0.001", "200", "1000000"):
        assert scanner.scan("SOLUSDT", D(mark)) == ["short-broke"]


def test_tier_changes_between_ticks_on_real_binance_tiers(kind) -> None:
    scanner = make(kind)
    # 5 BTC long: f = Q + 5M − 5M·0.0045 in tier 1 (below 60,000), LP 50,000 ⇒ Q = −248,875; at 100,000 the
    # notional 500,000 is in tier 2 (mmr 0.5 %, cum 300).
    scanner.upsert_isolated("long5", "BTCUSDT", D("5"), D("-248875"))
    # 5 BTC short with LP 70,000 in tier 2 (notional 350,000): Q = 5.0275·70,000 − 300 = 351,625
    scanner.upsert_isolated("short5", "BTCUSDT", D("-5"), D("351625"))
    assert isolated_lp(BTC, D("5"), D("-248875"), D("100000")) == 50_000
    assert isolated_lp(BTC, D("-5"), D("351625"), D("50000")) == 70_000
    assert scanner.scan("BTCUSDT", D("100000")) == ["short5"]
    assert scanner.scan("BTCUSDT", D("60000.0")) == []  # exactly on the tier-2 floor (300,000): safe
    assert scanner.scan("BTCUSDT", D("69999.9")) == []
    assert scanner.scan("BTCUSDT", D("70000.0")) == ["short5"]
    assert scanner.margin("short5") == (1625, 1625)  # 350,000·0.005 − 300 + 175
    assert scanner.scan("BTCUSDT", D("50000.1")) == []
    assert scanner.scan("BTCUSDT", D("50000.0")) == ["long5"]
    assert scanner.margin("long5") == (1_125, 1_125)  # 250,000·0.004 + 125 (tier 1 again)


@pytest.mark.parametrize(
    "size, margin", [("130", "1300000"), ("-115", "1000000"), ("1000", "10000000"), ("-25", "1000000")]
)
def test_deep_tier_positions_flip_exactly_at_the_solver_liquidation_price(kind, size, margin) -> None:
    # e.g. 130 BTC at 100,000 = 13,000,000 notional (tier 5, mmr 2 %, cum 132,000) with 1,300,000 of margin:
    # the solver's liquidation price 2,337,600,000/25,727 ≈ 90,862 lies in tier 4 (notional 11.8 M); it is rational
    size_d, mark = D(size), D("100000")
    quote = D(margin) - size_d * mark
    lp = isolated_lp(BTC, size_d, quote, mark)
    assert lp is not None
    tier_at_mark = BTC.tiers.tier_for_notional_clamped(abs(size_d) * mark)
    tier_at_lp = BTC.tiers.tier_for_notional_clamped(abs(Fraction(size_d)) * lp)
    assert tier_at_lp.tier != tier_at_mark.tier  # the solver's root is in another tier than the mark's
    scanner = make(kind)
    scanner.upsert_isolated("big", "BTCUSDT", size_d, quote)
    toward_safety = Fraction(1, 10) if size_d > 0 else Fraction(-1, 10)
    assert scanner.scan("BTCUSDT", mark) == []
    assert scanner.scan("BTCUSDT", lp + toward_safety) == []
    assert scanner.scan("BTCUSDT", lp) == ["big"]
    equity, requirement = scanner.margin("big")
    assert equity == requirement
    assert scanner.scan("BTCUSDT", lp - toward_safety) == ["big"]


# --------------------------------------------------------------------------------------------- cross


def test_cross_account_in_two_markets(kind) -> None:
    # 1 BTC long + 10 ETH short.  At BTC 99,000 / ETH 4,000.5: equity = C + 99,000 − 40,005,
    # requirement = 445.5 + 180.0225 = 625.5225; C = −58,369.4775 puts that exactly at 100 %.
    scanner = make(kind, {"BTCUSDT": D("100000"), "ETHUSDT": D("4000")})
    scanner.upsert_cross("acct", D("-58369.4775"), [("BTCUSDT", D("1")), ScanPosition("ETHUSDT", D("-10"))])
    assert scanner.scan("BTCUSDT", D("99000.0")) == []
    assert scanner.scan("ETHUSDT", D("4000.40")) == []
    assert scanner.scan("ETHUSDT", D("4000.50")) == ["acct"]  # exactly 100 %
    assert scanner.margin("acct") == (Fraction("625.5225"), Fraction("625.5225"))
    assert scanner.scan("BTCUSDT", D("99000.1")) == []  # the other market moved it back: f = 0.1·0.9955
    assert scanner.scan("ETHUSDT", D("4000.51")) == ["acct"]  # f = 0.09955 − 0.01·10·1.0045 < 0
    assert scanner.scan("ETHUSDT", D("4000.50")) == []
    assert scanner.is_liquidatable("acct") is False
    assert scanner.scan("BTCUSDT", D("98000")) == ["acct"]
    assert scanner.scan("SOLUSDT", D("200")) == []  # not exposed to SOL: not reported on a SOL tick
    assert scanner.scan_all() == ["acct"]
    assert scanner.scan_marks({"BTCUSDT": D("100000"), "ETHUSDT": D("3990")}) == []


def test_cross_hedged_legs_in_one_market(kind) -> None:
    # hedge mode: 1 BTC long and 1 BTC short; PnL cancels, the requirement doubles: f = C − 2·0.0045·M.
    # C = 900 ⇒ liquidatable from M = 100,000 upward.
    scanner = make(kind, {"BTCUSDT": D("50000")})
    scanner.upsert_cross("hedge", D("900"), [("BTCUSDT", D("1")), ("BTCUSDT", D("-1"))])
    assert scanner.scan("BTCUSDT", D("99999.9")) == []
    assert scanner.scan("BTCUSDT", D("100000.0")) == ["hedge"]
    assert scanner.scan("BTCUSDT", D("40000")) == []


def test_cross_single_position_uses_its_collateral_like_an_isolated_quote(kind) -> None:
    scanner = make(kind)
    scanner.upsert_cross("c", D("-89595"), [("BTCUSDT", D("1"))])
    scanner.upsert_cross("haircut", Fraction(-268785, 3), [("BTCUSDT", D("1"))])  # −89,595 exactly, as a Fraction
    assert scanner.scan("BTCUSDT", D("90000.1")) == []
    assert scanner.scan("BTCUSDT", D("90000")) == ["c", "haircut"]


def test_cross_three_markets_boundary_against_the_solver(kind) -> None:
    marks = {"BTCUSDT": D("100000"), "ETHUSDT": D("4000"), "SOLUSDT": D("200")}
    positions = [("BTCUSDT", D("3.5")), ("ETHUSDT", D("-40")), ("SOLUSDT", D("700"))]
    collateral = D("-300000")
    scanner = make(kind, marks)
    scanner.upsert_cross("three", collateral, positions)
    legs = [
        PositionLeg(sym, Side.LONG if q > 0 else Side.SHORT, abs(q), marks[sym], marks[sym], m.tiers)
        for (sym, q), m in zip(positions, (BTC, ETH, SOL))
    ]
    wallet = Fraction(collateral) + sum(Fraction(q) * Fraction(marks[s]) for s, q in positions)
    lp = liquidation_price(GENERIC, MarginMode.CROSS, wallet, legs, target="ETHUSDT", taker_fee=FEE).liquidation_price
    assert lp is not None and lp > 4000
    assert scanner.scan("ETHUSDT", lp - Fraction(1, 100)) == []
    assert scanner.scan("ETHUSDT", lp) == ["three"]
    assert scanner.scan("ETHUSDT", lp + Fraction(1, 100)) == ["three"]
    assert scanner.scan("BTCUSDT", D("100001")) == []  # BTC up 1 lifts the account back above 100 %


def test_cross_account_crossing_tiers_on_the_way_to_its_liquidation_price(kind) -> None:
    # 130 BTC long (13,000,000 notional: tier 5, mmr 2 %) + 50 ETH short; BTC falls 9 % to the account's
    # liquidation price, below 92,307.7 where the notional re-enters tier 4 (mmr 1 %): the maintenance changes
    # slope on the way, and the scan must follow the tiers, not extrapolate tier 5.
    marks = {"BTCUSDT": D("100000"), "ETHUSDT": D("4000")}
    positions = [("BTCUSDT", D("130")), ("ETHUSDT", D("-50"))]
    collateral = D("-11500000")
    scanner = make(kind, marks)
    scanner.upsert_cross("big", collateral, positions)
    legs = [PositionLeg(sym, Side.LONG if q > 0 else Side.SHORT, abs(q), marks[sym], marks[sym], m.tiers)
            for (sym, q), m in zip(positions, (BTC, ETH))]
    wallet = Fraction(collateral) + sum(Fraction(q) * Fraction(marks[s]) for s, q in positions)
    lp = liquidation_price(GENERIC, MarginMode.CROSS, wallet, legs, target="BTCUSDT", taker_fee=FEE).liquidation_price
    assert lp is not None and 130 * lp < 12_000_000  # tier 4 at the liquidation price
    assert scanner.scan("BTCUSDT", D("100000")) == []
    assert scanner.scan("BTCUSDT", lp + Fraction(1, 10)) == []
    assert scanner.scan("BTCUSDT", lp) == ["big"]
    assert scanner.scan("BTCUSDT", D("100000")) == []  # and back up through the floor
    assert scanner.scan("BTCUSDT", lp) == ["big"]


# ------------------------------------------------------------------------------------------- updates


def test_updates_replace_and_removals_forget(kind) -> None:
    scanner = make(kind, {"BTCUSDT": D("100000"), "ETHUSDT": D("4000")})
    scanner.upsert_isolated("a", "BTCUSDT", D("1"), D("-89595"))
    scanner.upsert_isolated("b", "BTCUSDT", D("1"), D("-89595"))
    scanner.upsert_cross("c", D("-89595"), [("BTCUSDT", D("1")), ("ETHUSDT", D("0.001"))])
    assert scanner.scan("BTCUSDT", D("80000")) == ["a", "b", "c"]
    scanner.upsert_isolated("a", "BTCUSDT", D("1"), D("-70000"))  # margin added: LP moves below 80,000
    assert scanner.scan("BTCUSDT", D("80000")) == ["b", "c"]
    scanner.remove("b")
    assert "b" not in scanner and len(scanner) == 2
    assert scanner.scan("BTCUSDT", D("80000")) == ["c"]
    scanner.upsert_isolated("b", "BTCUSDT", D("-1"), D("1000000"))  # back as a short, now last in order
    scanner.upsert_isolated("a", "ETHUSDT", D("1"), D("-3000"))  # a moves to another market: keeps its place
    assert scanner.scan("ETHUSDT", D("3000")) == ["a", "c"]
    assert scanner.scan("BTCUSDT", D("79000")) == ["c"]
    scanner.upsert_cross("c", D("1000000"), [("ETHUSDT", D("1"))])  # multi-market account becomes single-leg
    assert scanner.scan("BTCUSDT", D("79000")) == []
    assert list(scanner) == ["a", "c", "b"]
    for key in ("a", "b", "c"):
        scanner.remove(key)
    assert len(scanner) == 0 and scanner.scan_all() == []


def test_funding_moves_the_trigger_without_a_tick(kind) -> None:
    scanner = make(kind)
    scanner.upsert_isolated("p", "BTCUSDT", D("1"), D("-89595"))
    assert scanner.scan("BTCUSDT", D("90000.1")) == []
    scanner.upsert_isolated("p", "BTCUSDT", D("1"), D("-89595.10"))  # funding paid from the position margin
    assert scanner.is_liquidatable("p")
    assert scanner.scan_all() == ["p"]


# ---------------------------------------------------------------------------------------- validation


def test_bad_input_is_refused_and_changes_nothing(kind) -> None:
    scanner = make(kind, {"BTCUSDT": D("100000")})
    scanner.upsert_isolated("a", "BTCUSDT", D("1"), D("-89595"))
    bad = [
        (lambda: scanner.upsert_isolated("a", "XYZUSDT", D("1"), D("0")), "symbol"),
        (lambda: scanner.upsert_isolated("a", "BTCUSDT", D("0"), D("0")), "size"),
        (lambda: scanner.upsert_isolated("a", "BTCUSDT", 0.5, D("0")), "size"),
        (lambda: scanner.upsert_isolated("a", "BTCUSDT", D("NaN"), D("0")), "size"),
        (lambda: scanner.upsert_isolated("a", "BTCUSDT", D("1"), 1.5), "quote"),
        (lambda: scanner.upsert_isolated(["unhashable"], "BTCUSDT", D("1"), D("0")), "key"),
        (lambda: scanner.upsert_cross("a", D("0"), []), "positions"),
        (lambda: scanner.upsert_cross("a", D("0"), [("BTCUSDT", D("1")), ("BTCUSDT", D("2"))]), "positions[1]"),
        (lambda: scanner.upsert_cross("a", D("0"), [("BTCUSDT", D("1")), ("ETHUSDT", D("2"))]), "positions"),
        (lambda: scanner.upsert_cross("a", D("0"), ["BTCUSDT"]), "positions[0]"),
        (lambda: scanner.scan("BTCUSDT", 90000.0), "marks.BTCUSDT"),
        (lambda: scanner.scan("BTCUSDT", D("-1")), "marks.BTCUSDT"),
        (lambda: scanner.scan("BTCUSDT", Fraction(0)), "marks.BTCUSDT"),
        (lambda: scanner.scan("NOPE", D("1")), "symbol"),
        (lambda: scanner.scan_marks({"BTCUSDT": D("1"), "ETHUSDT": D("0")}), "marks.ETHUSDT"),
        (lambda: scanner.remove("zzz"), "key"),
        (lambda: scanner.margin("zzz"), "key"),
    ]
    for call, field in bad:
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field == field, (err.value, field)
    assert scanner.mark("BTCUSDT") == 100_000  # the refused multi-market scan did not move BTC
    assert scanner.unit("a").positions == (ScanPosition("BTCUSDT", D("1")),)
    assert scanner.scan("BTCUSDT", D("90000")) == ["a"]


def test_markets_are_validated() -> None:
    with pytest.raises(ValidationError):
        ScanMarket("BTCUSDT", BTC.tiers, D("1"))
    with pytest.raises(ValidationError):
        ReferenceScanner([BTC, BTC])
    broken = TierTable(
        "X",
        (
            BTC.tiers.tiers[0],
            type(BTC.tiers.tiers[1])(2, D("300000"), None, D("0.005"), D("100"), D("301")),  # cum should be 300
        ),
    )
    with pytest.raises(ValidationError, match="continuity"):
        ScanMarket("X", broken, FEE)
    inst = Instrument.create(symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001",
                             min_size="0.001", tiers=BTC.tiers)
    assert ScanMarket.from_instrument(inst) == ScanMarket("BTCUSDT", BTC.tiers, D("0.0005"))
    with pytest.raises(ValidationError):
        FastScanner(MARKETS, epsilon=0.5)


# ------------------------------------------------------------------------------------- fast internals


def test_fast_scanner_confirms_candidates_exactly() -> None:
    scanner = FastScanner(MARKETS)
    scanner.upsert_isolated("long", "BTCUSDT", D("1"), D("-89595"))  # L = 90,000
    just_above = Fraction(90_000) * (1 + Fraction(1, 10**12))  # inside the 1e-9 screening margin
    assert scanner.scan("BTCUSDT", just_above) == []
    assert scanner.last_candidate_count == 1  # screened in, turned down by the exact check
    assert scanner.scan("BTCUSDT", D("90001")) == []
    assert scanner.last_candidate_count == 0
    assert scanner.layout()["lower"] == 1


def test_fast_scanner_reuses_slots() -> None:
    scanner = FastScanner(MARKETS, {"BTCUSDT": D("100000"), "ETHUSDT": D("4000")})
    for round_ in range(3):
        for i in range(300):
            scanner.upsert_isolated(("iso", i), "BTCUSDT", D(i % 7 + 1) if i % 2 else -D(i % 7 + 1), D("-50000") if i % 2 else D("1000000"))
            scanner.upsert_cross(("x", i), D("100000"), [("BTCUSDT", D("1")), ("ETHUSDT", D("-3"))])
        for i in range(300):
            scanner.remove(("iso", i))
            scanner.remove(("x", i))
        index = scanner._index["BTCUSDT"]
        capacities = (index.lower.capacity, index.upper.capacity, scanner._accounts.capacity)
        if round_ == 0:
            first = capacities
        assert capacities == first  # the arrays did not grow: freed slots were reused
    assert scanner.layout() == {"units": 0, "lower": 0, "upper": 0, "accounts": 0, "account_markets": 0}


def test_fast_scanner_rebuilds_account_values_and_agrees_with_reference() -> None:
    marks = {"BTCUSDT": D("100000"), "ETHUSDT": D("4000"), "SOLUSDT": D("200")}
    scanners = [FastScanner(MARKETS, marks, resync_every=5), ReferenceScanner(MARKETS, marks)]
    rng = np.random.default_rng(7)
    for i in range(60):
        legs = [("BTCUSDT", D(int(rng.integers(-3000, 3000)) or 1) / 1000),
                ("ETHUSDT", D(int(rng.integers(-50000, 50000)) or 1) / 1000)]
        collateral = D(int(rng.integers(-20000, 60000)))
        for s in scanners:
            s.upsert_cross(i, collateral, legs)
    fast = scanners[0]
    start = fast.resyncs
    for step in range(40):
        symbol = ("BTCUSDT", "ETHUSDT")[step % 2]
        base = marks[symbol]
        mark = (base * D(str(1 + float(rng.normal(0, 0.02))))).quantize(D("0.01"))
        results = [s.scan(symbol, mark) for s in scanners]
        assert results[0] == results[1]
    assert fast.resyncs > start  # every 5 ticks
    resyncs = fast.resyncs
    results = [s.scan("BTCUSDT", D("250000")) for s in scanners]  # a mark 2.5× away forces a rebuild
    assert results[0] == results[1]
    assert fast.resyncs == resyncs + 1


def test_non_monotone_tier_table_goes_through_the_account_path(kind) -> None:
    # a made-up table where mmr + fee exceeds 1 in tier 2: a long's trigger falls again as the price rises
    table = TierTable.from_brackets("ODDUSDT", [(0, "0.5", 2), (1000, "1", 1)])
    odd = ScanMarket("ODDUSDT", table, FEE)
    scanner = kind([odd], {"ODDUSDT": D("10")})
    scanner.upsert_isolated("long", "ODDUSDT", D("10"), D("-40"))
    if isinstance(scanner, FastScanner):
        assert scanner.layout()["accounts"] == 1
    # f = −40 + 10M − 10M·0.5005 below M = 100 (notional 1,000): 0 at M ≈ 8.008; above, the slope is negative
    flagged = [m for m in (D("8"), D("8.01"), D("50"), D("100"), D("1000"), D("100000")) if scanner.scan("ODDUSDT", m)]
    exact = [m for m in (D("8"), D("8.01"), D("50"), D("100"), D("1000"), D("100000"))
             if (scanner.set_mark("ODDUSDT", m) or scanner.is_liquidatable("long"))]
    assert flagged == exact
    assert D("8") in flagged and D("50") not in flagged


# ---------------------------------------------------------------------------------------------- benchmark


def test_scan_benchmark_runs_on_a_small_population() -> None:
    from perprisk.benchmarks.scan import run_scan_benchmark

    result = run_scan_benchmark(3_000, seed=3, repeats=2, sample=300)
    assert {"positions", "scan_ms", "reference_ms", "ratio", "exact_per_position_us"} <= result.keys()
    assert result["positions"] == 3_000
    assert result["agree"] is True
    assert result["layout"]["accounts"] > 0 and result["layout"]["lower"] > 0 and result["layout"]["upper"] > 0
    assert all(result[k] > 0 for k in ("scan_ms", "reference_ms", "ratio", "exact_per_position_us"))


def test_rebalance_is_an_upsert_with_the_new_balance_in_place(kind) -> None:
    """``rebalance`` (funding, fees, margin moves: the balance changes, the positions do not) leaves the scanner
    as upserting the same unit with that balance would — the same flags at every mark — and keeps its place."""
    marks = {"BTCUSDT": D("100000"), "ETHUSDT": D("4000")}
    moved, rebuilt = make(kind, marks), make(kind, marks)
    for scanner in (moved, rebuilt):
        scanner.upsert_isolated("a", "BTCUSDT", D("1"), D("-89595"))
        scanner.upsert_cross("b", D("-89595"), [("BTCUSDT", D("1")), ("ETHUSDT", D("0.001"))])
        scanner.upsert_isolated("c", "BTCUSDT", D("-2"), D("220000"))
    moved.rebalance("a", D("-89595.10"))  # funding paid from the position margin: liquidatable at 90,000.1
    moved.rebalance("b", Fraction(-179191, 2))
    moved.rebalance("c", D("205000"))
    rebuilt.upsert_isolated("a", "BTCUSDT", D("1"), D("-89595.10"))
    rebuilt.upsert_cross("b", Fraction(-179191, 2), [("BTCUSDT", D("1")), ("ETHUSDT", D("0.001"))])
    rebuilt.upsert_isolated("c", "BTCUSDT", D("-2"), D("205000"))
    assert list(moved) == ["a", "b", "c"]
    for mark in ("80000", "90000", "90000.1", "90000.2", "95000", "101000", "102000", "103000"):
        assert moved.scan("BTCUSDT", D(mark)) == rebuilt.scan("BTCUSDT", D(mark)), mark
        for key in ("a", "b", "c"):
            assert moved.margin(key) == rebuilt.margin(key)
    assert "a" in moved.scan("BTCUSDT", D("90000.1"))
    with pytest.raises(ValidationError) as err:
        moved.rebalance("zzz", D(1))
    assert err.value.field == "key"
    with pytest.raises(ValidationError) as err:
        moved.rebalance("a", 1.5)
    assert err.value.field == "balance" and list(moved) == ["a", "b", "c"]


@settings(max_examples=60, deadline=None)
@given(
    units=st.lists(
        st.tuples(
            st.integers(-400, 400).filter(bool),  # signed size in 0.005 BTC
            st.integers(-4_000_000, 4_000_000),  # first balance, cents
            st.lists(st.integers(-4_000_000, 4_000_000), min_size=1, max_size=4),  # later balances
        ),
        min_size=1,
        max_size=12,
    ),
    marks=st.lists(st.integers(5_000, 300_000), min_size=1, max_size=6),
)
def test_rebalance_in_place_flags_as_a_fresh_upsert(units, marks) -> None:
    """Property: balances moved again and again (crossing between "liquidatable below", "above", "never" and
    "always"), then scanned at random marks, flag exactly what a reference scanner built from the final balances
    flags — the fast scanner's in-place threshold updates never leave a stale slot, through ``rebalance`` or the
    engine's ``revalue``."""
    moved = make(FastScanner, {"BTCUSDT": D("100000")})
    fresh = make(ReferenceScanner, {"BTCUSDT": D("100000")})
    for i, (size, first, later) in enumerate(units):
        moved.upsert_isolated(i, "BTCUSDT", D(size) * D("0.005"), D(first) / 100)
        for k, balance in enumerate(later):  # the public rebalance and the engine's unchecked revalue, mixed
            (moved.rebalance if (i + k) % 2 else moved.revalue)(i, D(balance) / 100)
        fresh.upsert_isolated(i, "BTCUSDT", D(size) * D("0.005"), D(later[-1]) / 100)
    for mark in marks:
        price = D(mark)
        assert moved.scan("BTCUSDT", price) == fresh.scan("BTCUSDT", price), mark


def test_put_stores_the_unit_an_upsert_would(kind) -> None:
    """``put`` (the engine's trusted path, no input checks) leaves the scanner as the checked upserts do: the
    same flags at every mark, the same exact margins; a several-leg unit still needs its marks."""
    from perprisk.risk.scanner import CROSS, ISOLATED, ScanPosition

    marks = {"BTCUSDT": D("100000"), "ETHUSDT": D("4000")}
    put, upserted = make(kind, marks), make(kind, marks)
    put.put("a", ISOLATED, D("-89595"), (ScanPosition("BTCUSDT", D("1")),))
    put.put("b", CROSS, Fraction(-179191, 2), (ScanPosition("BTCUSDT", D("1")), ScanPosition("ETHUSDT", D("0.001"))))
    put.put("c", CROSS, D("205000"), (ScanPosition("BTCUSDT", D("-2")),))
    upserted.upsert_isolated("a", "BTCUSDT", D("1"), D("-89595"))
    upserted.upsert_cross("b", Fraction(-179191, 2), [("BTCUSDT", D("1")), ("ETHUSDT", D("0.001"))])
    upserted.upsert_cross("c", D("205000"), [("BTCUSDT", D("-2"))])
    for mark in ("80000", "89999", "90000", "95000", "101000", "102000", "103000"):
        assert put.scan("BTCUSDT", D(mark)) == upserted.scan("BTCUSDT", D(mark)), mark
        for key in ("a", "b", "c"):
            assert put.margin(key) == upserted.margin(key)
    bare = make(kind, {"BTCUSDT": D("100000")})
    with pytest.raises(ValidationError) as err:
        bare.put("d", CROSS, D("1"), (ScanPosition("BTCUSDT", D("1")), ScanPosition("ETHUSDT", D("1"))))
    assert err.value.field == "positions" and list(bare) == []
