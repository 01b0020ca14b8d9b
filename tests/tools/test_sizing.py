"""Reverse sizing, margin for a target liquidation price, risk-per-trade sizing (SPEC §2.4; seeds 003, 000).

Expected values are derived by hand from the family formulas of SPEC §2; the arithmetic is in the comments.
Binance BTCUSDT tiers (shipped, real): tier 1 notional < 300,000, mmr 0.4 %, cum 0, max 150×; tier 2
< 800,000, mmr 0.5 %, cum 300, max 100×; tier 4 (3M–12M) max 50×.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.formulas import Side
from perprisk.tools.sizing import (
    LIMITED_BY_LEVERAGE,
    LIMITED_BY_LIQUIDATION,
    largest_true,
    margin_for_liquidation_price,
    reverse_size,
    risk_size,
)
from perprisk.tools.venue import make_venue

BINANCE = make_venue("binance")


def D(x: str) -> Decimal:
    return Decimal(x)


# ------------------------------------------------------------------------------------------ reverse sizing


def test_reverse_size_binance_tier1_long():
    # Binance isolated long, tier 1: LP = (q·E − PM) / (q·(1 − mmr)).  LP < W  ⇔  q·(E − W·(1 − mmr)) < PM
    # ⇔ q < 1000 / (100000 − 90000·0.996) = 1000 / 10360 = 0.09652…  → 96 lots of 0.001.
    r = reverse_size(BINANCE, "long", "100000", "90000", "1000", "0.001")
    assert r.size == D("0.096") and r.lots == 96
    assert r.limited_by == LIMITED_BY_LIQUIDATION
    # LP(0.096) = (9600 − 1000) / (0.096·0.996) = 8600 / 0.095616
    assert r.liquidation.liquidation_price == Fraction(8600) / Fraction("0.095616")
    # LP(0.097) = 8700 / (0.097·0.996) = 8700 / 0.096612 ≈ 90050.9 ≥ 90000: one lot more does not survive
    assert r.next_lot_liquidation_price == Fraction(8700) / Fraction("0.096612")
    assert r.next_lot_liquidation_price >= 90000
    assert r.leverage == Fraction("9.6")  # 9600 / 1000
    assert r.size_by_leverage == D("1.5")  # 150 × 1000 / 100000


def test_reverse_size_seed003_example1_is_just_under_the_rough_rule():
    # Seed 003 具体例1: BTC 10,000,000 JPY, survive 9,000,000, margin 300,000 → "roughly 300,000 ÷ 10 % =
    # 3,000,000 of notional, 0.3 BTC".  Exactly, with mmr 0.4 % (one tier, binance rule):
    # q < 300000 / (10,000,000 − 9,000,000·0.996) = 300000 / 1,036,000 = 0.28957… → 0.289 BTC.
    venue = make_venue("binance", mmr="0.004")
    r = reverse_size(venue, "long", "10000000", "9000000", "300000", "0.001")
    assert r.size == D("0.289")
    assert r.size < D("0.3")  # the maintenance margin costs a little of the seed's rough 0.3 BTC
    assert r.liquidation.liquidation_price < 9_000_000


def test_reverse_size_crosses_into_tier2():
    # PM 40,000: tier-1 algebra would give q < 40000/10360 = 3.861, but the notional at the LP (~347k) is in
    # tier 2 (mmr 0.5 %, cum 300): survive ⇔ PM − q·(E − W) − (q·W·0.005 − 300) > 0
    # ⇔ q·(10000 + 450) < 40300 ⇔ q < 3.85645… → 3.856
    # (3.856·10450 = 40295.2 < 40300; 3.857·10450 = 40305.65).
    r = reverse_size(BINANCE, "long", "100000", "90000", "40000", "0.001")
    assert r.size == D("3.856")
    assert r.liquidation.tier.tier == 2
    assert r.liquidation.liquidation_price < 90000 <= r.next_lot_liquidation_price


def test_reverse_size_short():
    # Short, tier 1: survive at W ⇔ PM − q·(W − E) − q·W·0.004 > 0
    #   ⇔ q·(10000 + 440) < 1000 ⇔ q < 0.09578 → 0.095
    r = reverse_size(BINANCE, "short", "100000", "110000", "1000")
    assert r.side is Side.SHORT and r.size == D("0.095")
    assert r.liquidation.liquidation_price > 110000 >= r.next_lot_liquidation_price


def test_reverse_size_capped_by_tier_max_leverage():
    # W = 99,900 (a 0.1 % move): the LP rule allows
    #   q < 1000 / (100000 − 99900·0.996) = 1000/499.6 = 2.0016 → 2.001,
    # but tier 1 allows at most 150× → q ≤ 150·1000/100000 = 1.5 (notional 150,000 < 300,000: tier 1).
    r = reverse_size(BINANCE, "long", "100000", "99900", "1000")
    assert r.size == D("1.5") and r.limited_by == LIMITED_BY_LEVERAGE
    assert r.size_by_liquidation == D("2.001")
    assert r.leverage == 150
    assert any("maximum leverage" in n for n in r.notes)


def test_reverse_size_mexc_boundary_is_strict():
    # SPEC §2 mexc example: 0.1 BTC long @ 50,000, mmr 0.4 %, PM 200 → LP exactly 48,200.
    # Liquidation triggers AT
    # the LP (equity ≤ MM), so 0.1 does not survive 48,200: the answer is one lot less.
    # mexc survive ⇔ PM − q·(E − W) − q·E·mmr > 0 ⇔ q·(1800 + 200) < 200 ⇔ q < 0.1 → 0.099.
    venue = make_venue("mexc", mmr="0.004")
    r = reverse_size(venue, "long", "50000", "48200", "200")
    assert r.size == D("0.099")
    assert r.next_lot_liquidation_price == 48200


def test_reverse_size_zero_when_one_lot_does_not_fit():
    # 1 lot of 1 BTC @ 100,000 with 100 of margin: 1000× — nothing fits.
    r = reverse_size(BINANCE, "long", "100000", "90000", "100", "1")
    assert r.size == 0 and r.lots == 0 and r.liquidation is None
    assert r.notes and "not even one lot" in r.notes[0]


@pytest.mark.parametrize(
    "args, field",
    [
        (("long", "100000", "110000", "1000"), "worst"),  # a long's worst price lies below its entry
        (("short", "100000", "90000", "1000"), "worst"),
        (("long", "100000", "100000", "1000"), "worst"),
        (("long", "0", "90000", "1000"), "entry"),
        (("long", "100000", "90000", "-5"), "margin"),
        (("long", "100000", "90000", "NaN"), "margin"),
        (("up", "100000", "90000", "1000"), "side"),
    ],
)
def test_reverse_size_refuses_bad_input(args, field):
    with pytest.raises(ValidationError) as err:
        reverse_size(BINANCE, *args)
    assert err.value.field == field


def test_reverse_size_refuses_float_money():
    with pytest.raises(ValidationError) as err:
        reverse_size(BINANCE, "long", 100000.0, "90000", "1000")
    assert err.value.field == "entry"


def test_largest_true_binary_search():
    assert largest_true(lambda n: n <= 37, 1000) == 37
    assert largest_true(lambda n: n <= 37, 10) == 10
    assert largest_true(lambda n: n == 0, 5) == 0


# ------------------------------------------------------------------------------- margin for a target LP


def test_margin_for_target_binance_long():
    # PM = MM(T) − U(T) = 0.1·90000·0.004 − 0.1·(90000 − 100000) = 36 + 1000 = 1036
    r = margin_for_liquidation_price(BINANCE, "long", "0.1", "100000", "90000")
    assert r.margin == 1036
    assert r.liquidation.liquidation_price == 90000
    assert r.margin_rounded == D("1036.00")
    assert r.within_max_leverage


def test_margin_for_target_binance_short():
    # PM = 0.1·110000·0.004 + 0.1·(110000 − 100000) = 44 + 1000 = 1044
    r = margin_for_liquidation_price(BINANCE, "short", "0.1", "100000", "110000")
    assert r.margin == 1044 and r.liquidation.liquidation_price == 110000


def test_margin_for_target_spec_bybit_example_round_trips():
    # SPEC §2 bybit: 1 BTC long @ 20,000, 50×, mmr 0.5 % → IM 400, MM 100, LP 19,700.
    # Backwards: LP 19,700 needs
    # PM = MM − U(T) = 100 + 1·(20000 − 19700) = 400.
    venue = make_venue("bybit", mmr="0.005")
    r = margin_for_liquidation_price(venue, "long", "1", "20000", "19700")
    assert r.margin == 400
    assert r.leverage == 50


def test_margin_for_target_okx_includes_the_taker_fee():
    # okx: long LP = (E − PM/q) / (1 − mmr − taker).  Solving for PM at T = 90,000, mmr 0.4 %, taker 0.05 %:
    # PM = q·(E − T·(1 − mmr − taker)) = 0.1·(100000 − 90000·0.9955) = 0.1·10405 = 1040.5
    venue = make_venue("okx", taker_fee="0.0005")
    r = margin_for_liquidation_price(venue, "long", "0.1", "100000", "90000")
    assert r.margin == Fraction("1040.5")
    assert r.liquidation.liquidation_price == 90000


def test_margin_for_target_rounds_up_and_stays_beyond():
    # 0.3 BTC @ 100,000 to 93,333: PM = 0.3·93333·0.004 + 0.3·6667 = 111.9996 + 2000.1 = 2112.0996 → 2112.10
    r = margin_for_liquidation_price(BINANCE, "long", "0.3", "100000", "93333")
    assert r.margin == Fraction("2112.0996")
    assert r.margin_rounded == D("2112.10")
    assert r.liquidation_rounded.liquidation_price < 93333  # more margin: the LP moves away


def test_margin_for_target_warns_above_tier_max_leverage():
    # Target 99,700 for 1 BTC: PM = 1·99700·0.004 + 300 = 698.8 → 143×, within 150×: ok.
    ok = margin_for_liquidation_price(BINANCE, "long", "1", "100000", "99700")
    assert ok.margin == Fraction("698.8") and ok.within_max_leverage
    # Target 99,800: PM = 399.2 + 200 = 599.2 → 166.9×, above tier 1's 150× (min margin 100000/150 = 666.67).
    too_close = margin_for_liquidation_price(BINANCE, "long", "1", "100000", "99800")
    assert not too_close.within_max_leverage
    assert too_close.min_margin == Fraction(100000, 150)
    assert too_close.notes and "maximum 150×" in too_close.notes[0]


def test_margin_for_target_refuses_target_on_the_wrong_side():
    with pytest.raises(ValidationError) as err:
        margin_for_liquidation_price(BINANCE, "long", "0.1", "100000", "101000")
    assert err.value.field == "target"


# ----------------------------------------------------------------------------------------- risk per trade


def test_risk_size_one_percent_default():
    # Seed 000 §3.3: max loss per trade 1–2 % of the account.
    # 10,000 × 1 % = 100; 100 / |100000 − 98000| = 0.05
    r = risk_size("10000", "100000", "98000")
    assert r.side is Side.LONG
    assert r.risk_amount == 100 and r.size == D("0.05") and r.risk_at_size == 100
    assert r.warnings == ()
    assert r.stop_before_liquidation is None  # no margin given: nothing to solve


def test_risk_size_seed000_example_two_percent():
    # Seed 000 §3.3: "アカウントが10,000 USDTなら、1回の取引の最大損失は200 USDT"
    # — 2 % is the upper end, no warning.
    r = risk_size("10000", "100000", "95000", risk_pct="2")
    assert r.risk_amount == 200 and r.size == D("0.04")  # 200 / 5000
    assert r.warnings == ()


def test_risk_size_rounds_down_to_the_lot_and_warns_above_two_percent():
    # 3 %: 300 / 3000 = 0.1 exactly; 1 %: 100 / 3000 = 0.0333… → 0.033 (risk 99, never more than asked)
    assert any("1–2 %" in w for w in risk_size("10000", "100000", "97000", risk_pct="3").warnings)
    r = risk_size("10000", "100000", "97000")
    assert r.size_exact == Fraction(1, 30) and r.size == D("0.033") and r.risk_at_size == 99


def test_risk_size_short_from_a_stop_above():
    r = risk_size("10000", "100000", "104000")
    assert r.side is Side.SHORT and r.size == D("0.025")  # 100 / 4000


def test_risk_size_stop_before_liquidation_price():
    # 0.05 BTC at 10×: PM = 5000/10 = 500; LP = (5000 − 500)/(0.05·0.996) = 4500/0.0498 ≈ 90361 < stop 98,000.
    r = risk_size("10000", "100000", "98000", venue=BINANCE, leverage="10")
    assert r.margin == 500
    assert r.liquidation.liquidation_price == Fraction(4500) / Fraction("0.0498")
    assert r.stop_before_liquidation is True


def test_risk_size_stop_beyond_liquidation_price_warns():
    # 50×: PM = 100; LP = 4900 / 0.0498 ≈ 98393.6 — above the stop 98,000: liquidated first.
    r = risk_size("10000", "100000", "98000", venue=BINANCE, leverage="50")
    assert r.liquidation.liquidation_price == Fraction(4900) / Fraction("0.0498")
    assert r.stop_before_liquidation is False
    assert any("liquidates the position before the stop" in w for w in r.warnings)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(account="10000", entry="100000", stop="100000"), "stop"),
        (dict(account="10000", entry="100000", stop="98000", side="short"), "stop"),
        (dict(account="0", entry="100000", stop="98000"), "account"),
        (dict(account="10000", entry="100000", stop="98000", risk_pct="0"), "risk_pct"),
        (dict(account="10000", entry="100000", stop="98000", risk_pct="101"), "risk_pct"),
        (dict(account="10000", entry="100000", stop="98000", margin="1", leverage="2"), "leverage"),
        (dict(account="10000", entry="100000", stop="98000", leverage="0.5"), "leverage"),
    ],
)
def test_risk_size_refuses_bad_input(kwargs, field):
    with pytest.raises(ValidationError) as err:
        risk_size(**kwargs)
    assert err.value.field == field
