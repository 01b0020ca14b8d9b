"""Funding: premium, averaging, rate with clamp and cap/floor, payments and their signs, schedule, impact.

Sources:
  SPEC     = SPEC §2 "Funding"
  BIN-FR   = Binance "Introduction to Binance Futures Funding Rates", binance.com/en/support/faq/360033525031,
             formulas as quoted by gate.io/futures/introduction/funding-rate-history:
             Premium = [max(0, Impact Bid − Index) − max(0, Index − Impact Ask)] / Index;
             F = P + clamp(I − P, 0.05 %, −0.05 %), I = 0.01 % per 8 h; "if (I − P) is within ±0.05 % then F = I"
  BIN-WMA  = Binance average premium (1·P₁ + 2·P₂ + … + n·Pₙ)/(1 + 2 + … + n), as quoted by
             tradingview.com/script/BKa9AHJx (source binance.com/en/support/faq/detail/360033525031) and docs.tradoor.io
  BIN-2025 = Binance announcement effective 2025-09-18: F = [P + clamp(I − P, 0.05 %, −0.05 %)] / (8/N)
  BIN-CAP  = Binance GET /fapi/v1/fundingInfo adjustedFundingRateCap/Floor ("0.03000000" = ±3 %) and
             "Capped Funding Rate = clamp(Funding Rate, −1·MMR, 1·MMR)" announcements
  BIN-IMN  = BIN-FR: IMN = 200 USDT / initial margin rate at max leverage (20×, 5 % → 4,000 USDT)
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.instrument import Instrument, TierTable
from perprisk.market.funding import (
    FundingRateRule,
    PremiumAccumulator,
    funding_payment,
    funding_rate,
    funding_rate_from_samples,
    premium_index,
)
from perprisk.market.impact import (
    impact_margin_notional,
    impact_margin_notional_for,
    impact_price,
    impact_prices,
)
from perprisk.market.schedule import HOUR_MS, FundingSchedule
from perprisk.money import Rounding

D = Decimal


# ------------------------------------------------------------------------------------------- premium


@pytest.mark.parametrize(
    "source, bid, ask, index, expected",
    [
        # impact bid above the index: (100,050 − 100,000)/100,000 = 0.0005
        ("BIN-FR", "100050", "100070", "100000", "0.0005"),
        # impact ask below the index: −(100,000 − 99,950)/100,000 = −0.0005
        ("BIN-FR", "99900", "99950", "100000", "-0.0005"),
        # index inside the impact spread: no premium
        ("BIN-FR", "99990", "100010", "100000", "0"),
        # 0.3 above: 0.3/12,000 = 0.000025
        ("BIN-FR", "12000.3", "12000.4", "12000", "0.000025"),
    ],
)
def test_premium_index(source, bid, ask, index, expected):
    assert premium_index(bid, ask, index) == Fraction(D(expected)), source


# ------------------------------------------------------------------------------------------------ rate


@pytest.mark.parametrize(
    "source, avg_premium, rule, expected, limited_by",
    [
        # I − P = 0.0001 − 0.0003 = −0.0002, inside ±0.0005 → F = P + (I − P) = I = 0.0001 exactly
        ("BIN-FR clamp band → I", "0.0003", FundingRateRule(), "0.0001", None),
        ("BIN-FR clamp band → I", "-0.0002", FundingRateRule(), "0.0001", None),
        # on the edge: I − P = 0.0001 + 0.0004 = 0.0005 → still I
        ("BIN-FR edge", "-0.0004", FundingRateRule(), "0.0001", None),
        ("BIN-FR edge", "0.0006", FundingRateRule(), "0.0001", None),
        # outside: P = 0.0010, I − P = −0.0009 → clamp −0.0005 → F = 0.0010 − 0.0005 = 0.0005
        ("BIN-FR", "0.0010", FundingRateRule(), "0.0005", None),
        # P = −0.000914 → I − P = 0.001014 → clamp 0.0005 → F = −0.000914 + 0.0005 = −0.000414
        ("BIN-FR", "-0.000914", FundingRateRule(), "-0.000414", None),
        # 8 decimals, half-even: P = 0.001234567891 → F = 0.000734567891 → 0.00073457
        ("BIN-FR 8 dp", "0.001234567891", FundingRateRule(), "0.00073457", None),
        ("BIN-FR 8 dp, floor", "0.001234567891", FundingRateRule(rounding=Rounding.FLOOR), "0.00073456", None),
        # 4-hour contract: the 8-hour rate 0.0001 scaled by 4/8 → 0.00005
        ("BIN-2025 4h", "0.0003", FundingRateRule(interval_hours=4), "0.00005", None),
        # 1-hour: P = 0.0010 → F₈ = 0.0005 → · 1/8 = 0.0000625
        ("BIN-2025 1h", "0.0010", FundingRateRule(interval_hours=1), "0.0000625", None),
        # cap: P = 0.05 → F₈ = 0.0495 > 0.03 → 0.03
        ("BIN-CAP ±3 %", "0.05", FundingRateRule(), "0.03", "cap"),
        ("BIN-CAP ±3 %", "-0.05", FundingRateRule(), "-0.03", "floor"),
        # a tighter cap (0.75 × MMR 0.4 % = 0.3 %): P = 0.004 → F₈ = 0.0035 → 0.003
        ("BIN-CAP 0.75·MMR", "0.004", FundingRateRule(cap="0.003", floor="-0.003"), "0.003", "cap"),
        # zero interest (Binance: some contracts have I = 0 %): P = 0.0003 → F = 0
        ("BIN-FR I=0", "0.0003", FundingRateRule(interest_rate_8h="0"), "0", None),
    ],
)
def test_funding_rate(source, avg_premium, rule, expected, limited_by):
    rate = funding_rate(avg_premium, rule)
    assert rate.value == D(expected), source
    assert rate.limited_by == limited_by, source
    assert rule.floor <= rate.value <= rule.cap


def test_rate_inside_band_is_exactly_interest():
    rate = funding_rate("0.00037")
    assert rate.exact == Fraction(1, 10_000)
    assert str(rate.value) == "0.00010000"  # Binance prints 8 decimal places


def test_rule_from_instrument():
    inst = Instrument.create(
        symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001", min_size="0.001",
        tiers=TierTable.single("BTCUSDT", "0.004", max_leverage=125), funding_interval_hours=4,
        funding_rate_cap="0.02", funding_rate_floor="-0.02",
    )
    rule = FundingRateRule.for_instrument(inst)
    assert (rule.interval_hours, rule.cap, rule.floor) == (4, D("0.02"), D("-0.02"))
    assert funding_rate("0.05", rule).value == D("0.02")  # F₈ 0.0495 · 4/8 = 0.02475 → cap 0.02
    assert FundingSchedule.for_instrument(inst).interval_ms == 4 * HOUR_MS
    assert impact_margin_notional_for(inst) == D(25_000)  # 200 / (1/125)


# ------------------------------------------------------------------------------------------ averaging


def test_simple_and_linear_weighted_averages():
    # samples 0.0002, 0.0008, 0.0014
    #   simple:            (0.0002 + 0.0008 + 0.0014)/3 = 0.0024/3 = 0.0008 → F = 0.0008 − 0.0005 = 0.0003
    #   linear (BIN-WMA):  (1·0.0002 + 2·0.0008 + 3·0.0014)/6 = (0.0002 + 0.0016 + 0.0042)/6 = 0.001 → F = 0.0005
    samples = ["0.0002", "0.0008", "0.0014"]
    assert funding_rate_from_samples(samples).value == D("0.0003")
    assert funding_rate_from_samples(samples, averaging="linear_weighted").value == D("0.0005")
    acc = PremiumAccumulator("linear_weighted")
    for s in samples:
        acc.add(s)
    assert acc.average() == Fraction(1, 1000)
    rate = acc.close_interval(FundingRateRule())
    assert rate.value == D("0.0005") and len(acc) == 0


def test_accumulator_from_prices_defaults_to_simple():
    acc = PremiumAccumulator()
    assert acc.averaging.name == "simple"
    acc.add_prices("100050", "100070", "100000")  # +0.0005
    acc.add_prices("99990", "100010", "100000")  # 0
    assert acc.average() == Fraction(25, 100_000)
    assert acc.close_interval(FundingRateRule()).value == D("0.0001")


def test_empty_interval_refused():
    with pytest.raises(ValidationError) as err:
        PremiumAccumulator().average()
    assert err.value.field == "samples"


# --------------------------------------------------------------------------------------------- payment


@pytest.mark.parametrize(
    "source, sign, size, mark, rate, expected",
    [
        # SPEC: 1 BTC long, mark 100,000, F = 0.0001 → long pays 10 (credited −10), short receives 10
        ("SPEC", +1, "1", "100000", "0.0001", "-10"),
        ("SPEC", -1, "1", "100000", "0.0001", "10"),
        # negative rate: shorts pay longs
        ("SPEC", +1, "1", "100000", "-0.0001", "10"),
        ("SPEC", -1, "1", "100000", "-0.0001", "-10"),
        # 0.123 BTC short, mark 64,321.5, F = 0.00012345:
        #   notional 0.123 · 64,321.5 = 7,911.5445; · 0.00012345 = 0.976680168525 (exact, 12 places, no rounding)
        ("SPEC exact", -1, "0.123", "64321.5", "0.00012345", "0.976680168525"),
        ("SPEC zero rate", +1, "5", "100000", "0", "0"),
    ],
)
def test_funding_payment_signs(source, sign, size, mark, rate, expected):
    assert funding_payment(sign, size, mark, rate) == D(expected), source


@pytest.mark.parametrize(
    "args, field",
    [
        ((0, "1", "100", "0.0001"), "sign"),
        ((True, "1", "100", "0.0001"), "sign"),
        ((1, "0", "100", "0.0001"), "size"),
        ((1, "-1", "100", "0.0001"), "size"),
        ((1, "1", "-100", "0.0001"), "mark"),
        ((1, "1", "NaN", "0.0001"), "mark"),
        ((1, "1", "100", "NaN"), "rate"),
        ((1, "1", "100", 0.0001), "rate"),
        ((1, "1", "100", Fraction(1, 3)), "rate"),
    ],
)
def test_funding_payment_bad_input(args, field):
    with pytest.raises(ValidationError) as err:
        funding_payment(*args)
    assert err.value.field == field


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"interval_hours": 0}, "interval_hours"),
        ({"interval_hours": 8.0}, "interval_hours"),
        ({"cap": "0.01", "floor": "0.02"}, "floor"),
        ({"cap": "0.0300000001"}, "cap"),  # off the 8-decimal grid
        ({"cap": "NaN"}, "cap"),
        ({"clamp_band_8h": "-0.0005"}, "clamp_band_8h"),
        ({"decimals": -1}, "decimals"),
        ({"rounding": "half_up"}, "rounding"),
    ],
)
def test_rule_bad_input(kwargs, field):
    with pytest.raises(ValidationError) as err:
        FundingRateRule(**kwargs)
    assert err.value.field == field


def test_bad_premium_inputs():
    with pytest.raises(ValidationError) as err:
        premium_index("NaN", "1", "1")
    assert err.value.field == "impact_bid"
    with pytest.raises(ValidationError) as err:
        premium_index("1", "1", "0")
    assert err.value.field == "index"
    with pytest.raises(ValidationError) as err:
        funding_rate("NaN")
    assert err.value.field == "average_premium"
    with pytest.raises(ValidationError) as err:
        PremiumAccumulator("vwap")
    assert err.value.field == "averaging"


# -------------------------------------------------------------------------------------------- schedule


def test_schedule_next_funding_and_time_to_funding():
    s = FundingSchedule(8)
    midnight = 1_760_140_800_000  # 2025-10-11T00:00:00Z
    assert s.is_funding_time(midnight)
    assert s.next_funding_ms(midnight) == midnight + 8 * HOUR_MS
    assert s.time_to_funding_ms(midnight) == 8 * HOUR_MS
    assert s.time_to_funding_ms(midnight + 6 * HOUR_MS) == 2 * HOUR_MS  # 06:00 → 08:00
    assert s.previous_funding_ms(midnight + 6 * HOUR_MS) == midnight
    assert s.time_to_funding_ms(midnight - 1) == 1
    assert list(s.funding_times(midnight - 1, midnight + 16 * HOUR_MS)) == [
        midnight, midnight + 8 * HOUR_MS, midnight + 16 * HOUR_MS
    ]
    assert list(s.funding_times(midnight, midnight + HOUR_MS)) == []  # (start, end]
    # a 4-hour contract anchored at 02:00Z
    s4 = FundingSchedule(4, anchor_ms=2 * HOUR_MS)
    assert s4.next_funding_ms(midnight) == midnight + 2 * HOUR_MS


def test_schedule_bad_input():
    for bad in (0, -8, 1.5, True):
        with pytest.raises(ValidationError) as err:
            FundingSchedule(bad)  # type: ignore[arg-type]
        assert err.value.field == "interval_hours"
    with pytest.raises(ValidationError) as err:
        FundingSchedule(8).next_funding_ms(1.5)  # type: ignore[arg-type]
    assert err.value.field == "now_ms"


# ---------------------------------------------------------------------------------------------- impact


def test_impact_margin_notional():
    assert impact_margin_notional("0.05") == D(4000)  # BIN-IMN: 200 / 5 %
    assert impact_margin_notional("0.008") == D(25_000)  # 125×: 200 / 0.8 %
    assert impact_margin_notional("0.01", margin="100") == D(10_000)


def test_impact_price_walks_the_levels():
    # asks 100 × 1, 120 × 1; notional 220 = 100 + 120 → 2 units → average 110
    assert impact_price([("100", "1"), ("120", "1")], "220", "ask") == 110
    # notional 160: 100 + 60 (half of the second level) → 1.5 units → 106.66…
    assert impact_price([("100", "1"), ("120", "1")], "160", "ask") == Fraction(160, Fraction(3, 2))
    # inside the first level: the best price itself
    assert impact_price([("99", "10"), ("98", "10")], "500", "bid") == 99
    # bids 99 × 1, 98 × 2; notional 295 = 99 + 196 → 3 units → 98.333…
    assert impact_price([("99", "1"), ("98", "2")], "295", "bid") == Fraction(295, 3)


def test_impact_price_none_when_book_too_thin():
    assert impact_price([("100", "1"), ("120", "1")], "220.01", "ask") is None
    assert impact_price([], "1", "bid") is None
    both = impact_prices([("99", "10")], [("101", "1")], "500")
    assert both.bid == 99 and both.ask is None and not both.complete


@pytest.mark.parametrize(
    "levels, notional, side, field",
    [
        ([("100", "1"), ("101", "1")], "150", "bid", "levels[1].price"),  # bids must fall
        ([("100", "1"), ("99", "1")], "150", "ask", "levels[1].price"),  # asks must rise
        ([("100", "0")], "50", "ask", "levels[0].quantity"),
        ([("NaN", "1")], "50", "ask", "levels[0].price"),
        ([("100",)], "50", "ask", "levels[0]"),
        ([("100", "1")], "0", "ask", "notional"),
        ([("100", "1")], "50", "buy", "side"),
    ],
)
def test_impact_price_bad_input(levels, notional, side, field):
    with pytest.raises(ValidationError) as err:
        impact_price(levels, notional, side)
    assert err.value.field == field


def test_funding_payment_is_exact_beyond_28_digits():
    """Regression: the decimal fast path negated in the default 28-digit context and rounded by 1E-29,
    leaving the funding pool not flat.  Every digit must survive."""
    from decimal import Decimal
    from fractions import Fraction

    size, mark, rate = Decimal("0.123456789"), Decimal("12345.67"), Decimal("0.000123456789012345678901234567")
    for sign in (1, -1):
        paid = funding_payment(sign, size, mark, rate)
        assert Fraction(paid) == -sign * Fraction(size) * Fraction(mark) * Fraction(rate)
    assert str(funding_payment(1, Decimal(1), Decimal(100), Decimal(0))) == "0"  # no negative zero


# ------------------------------------------------------------------------ many payments at one funding time

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from perprisk.market.funding import funding_credits  # noqa: E402

signed_sizes = st.integers(-3_000_000, 3_000_000).filter(bool).map(lambda n: Decimal(n).scaleb(-3))


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.one_of(signed_sizes, st.sampled_from([Decimal("0.0010"), Decimal("-5E+1"), Decimal("1E-40")])),
                   max_size=20),
    mark=st.one_of(st.integers(1, 2_000_000).map(lambda n: Decimal(n).scaleb(-1)), st.just(Decimal("1E+30"))),
    rate=st.one_of(st.integers(-30_000, 30_000).map(lambda n: Decimal(n).scaleb(-8)),
                   st.sampled_from([Decimal(0), Decimal("-0"), Decimal("0.00010000"), Decimal("1E-20")])),
)
def test_funding_credits_are_funding_payment_one_by_one(sizes, mark, rate):
    """The same Decimals — digits and exponent (``str``), zero as ``0`` — as funding_payment per position."""
    expected = [funding_payment(1 if q > 0 else -1, abs(q), mark, rate) for q in sizes]
    got = funding_credits(sizes, mark, rate)
    assert [str(x) for x in got] == [str(x) for x in expected]


def test_funding_credits_take_the_reference_path_for_other_inputs():
    """A Fraction mark or a non-decimal size goes through funding_payment, which computes or refuses it."""
    assert funding_credits([Decimal("2"), Decimal("-1")], Fraction(100), Decimal("0.001")) == [Decimal("-0.2"),
                                                                                               Decimal("0.1")]
    with pytest.raises(ValidationError):
        funding_credits([Decimal("1")], Decimal("-5"), Decimal("0.001"))  # the mark must be positive
