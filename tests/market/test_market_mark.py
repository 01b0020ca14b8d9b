"""Mark price: fair (MEXC/BitMEX) and median3 (Binance) worked examples, the basis window, refusals.

Sources:
  SPEC    = SPEC §2 "Fair / mark price"
  MEXC-FP = MEXC "Index Price, Fair Price and Latest Transaction Price", blog.mexc.com:
            Funding Basis = Funding Rate · (Time Until Funding / Funding Interval); Fair = Index · (1 + Basis)
  BIN-MP  = Binance "Mark Price" FAQ, binance.com/en/support/faq/fff6ec1b3f5845d19f1fb924644a0877:
            Mark = Median(Price 1, Price 2, Contract Price); Price 1 = Index·(1 + Last Funding Rate·(t/8));
            Price 2 = Index + MA(basis), MA = Σ[(Bid1ᵢ + Ask1ᵢ)/2 − PIᵢ] / 30
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.market.mark import MarkPriceEngine, fair_price, median3
from perprisk.market.schedule import HOUR_MS, FundingSchedule
from perprisk.money import Rounding

MIDNIGHT = 1_760_140_800_000  # 2025-10-11T00:00:00Z, a Binance funding time
EIGHT_H = FundingSchedule(8)


@pytest.mark.parametrize(
    "source, index, rate, hours_left, expected",
    [
        # 100,000 · (1 + 0.0001 · 2/8) = 100,000 · 1.000025 = 100,002.5
        ("MEXC-FP/SPEC", "100000", "0.0001", 2, "100002.5"),
        # 100,000 · (1 + 0.0001 · 8/8) = 100,010 (right after a funding: the whole interval is left)
        ("MEXC-FP", "100000", "0.0001", 8, "100010"),
        # negative rate: 100,000 · (1 − 0.0003 · 4/8) = 100,000 − 15 = 99,985
        ("MEXC-FP", "100000", "-0.0003", 4, "99985"),
        # 50,000.03 · (1 + 0.0003 · 4/8) = 50,000.03 + 50,000.03·0.00015 = 50,000.03 + 7.5000045 = 50,007.5300045
        ("MEXC-FP", "50000.03", "0.0003", 4, "50007.5300045"),
        # just before funding the fair price meets the index: t → 0
        ("MEXC-FP", "100000", "0.0001", 0, "100000"),
    ],
)
def test_fair_price_formula(source, index, rate, hours_left, expected):
    assert fair_price(index, rate, hours_left * HOUR_MS, 8 * HOUR_MS) == Fraction(Decimal(expected)), source


def test_fair_engine_uses_the_schedule_and_rounds_to_tick():
    engine = MarkPriceEngine("fair", EIGHT_H, tick="0.1", rounding=Rounding.HALF_EVEN)
    # 06:00Z → next funding 08:00Z, 2 h left of 8 h: 50,000.03 · (1 + 0.0003 · 2/8) = 50,000.03 + 3.75000225
    mark = engine.mark(MIDNIGHT + 6 * HOUR_MS, "50000.03", "0.0003")
    assert mark.exact == Fraction(Decimal("50003.78000225"))
    assert mark.value == Decimal("50003.8")
    assert mark.method == "fair"
    # the published value depends on the named mode
    for tick, rounding, expected in [("0.1", Rounding.FLOOR, "50003.7"), ("0.01", Rounding.HALF_UP, "50003.78")]:
        engine = MarkPriceEngine("fair", EIGHT_H, tick, rounding)
        assert engine.mark(MIDNIGHT + 6 * HOUR_MS, "50000.03", "0.0003").value == Decimal(expected)


# median3 worked example (BIN-MP), index 100,000, last funding rate 0.0001, 4 h of 8 h left:
#   P1 = 100,000 · (1 + 0.0001 · 4/8) = 100,005
#   basis samples (bid1, ask1) − index: (100,009.5, 100,010.5) → 10;  (100,019.5, 100,020.5) → 20;
#                                        (99,989.5, 99,990.5) → −10;   (100,019.5, 100,020.5) → 20
#   MA = (10 + 20 − 10 + 20) / 4 = 10  →  P2 = 100,010
BOOKS = [("100009.5", "100010.5"), ("100019.5", "100020.5"), ("99989.5", "99990.5"), ("100019.5", "100020.5")]


@pytest.mark.parametrize(
    "source, last, expected, which",
    [
        ("BIN-MP: P1 < P2 < last → P2", "100050", "100010", "P2"),
        ("BIN-MP: last < P1 < P2 → P1", "99990", "100005", "P1"),
        ("BIN-MP: P1 < last < P2 → last", "100007.3", "100007.3", "last"),
    ],
)
def test_median3_worked_example(source, last, expected, which):
    engine = MarkPriceEngine("median3", EIGHT_H, tick="0.1", rounding=Rounding.HALF_EVEN, basis_window=30)
    for bid, ask in BOOKS:
        engine.observe_book(bid, ask, "100000")
    assert engine.basis_average == 10
    mark = engine.mark(MIDNIGHT + 4 * HOUR_MS, "100000", "0.0001", last)
    assert mark.components.fair == 100_005
    assert mark.components.basis == 100_010
    assert mark.value == Decimal(expected), source


def test_basis_window_rolls():
    # window 3: after 4 samples the first (10) has left: MA = (20 − 10 + 20)/3 = 10
    engine = MarkPriceEngine("median3", EIGHT_H, "0.1", Rounding.HALF_EVEN, basis_window=3)
    for bid, ask in BOOKS:
        engine.observe_book(bid, ask, "100000")
    assert engine.basis_samples == (20, -10, 20)
    assert engine.basis_average == 10
    engine.reset()
    assert engine.basis_average is None


def test_median3_without_basis_samples_uses_the_index():
    # documented choice: no sample yet → MA = 0 → P2 = index
    engine = MarkPriceEngine("median3", EIGHT_H, "0.1", Rounding.HALF_EVEN)
    mark = engine.mark(MIDNIGHT + 4 * HOUR_MS, "100000", "0.0001", "100100")
    assert mark.components.basis == 100_000
    assert mark.value == Decimal("100005")  # median(100,005, 100,000, 100,100)


def test_median3_of_three():
    assert median3(Fraction(3), Fraction(1), Fraction(2)) == 2
    assert median3(Fraction(1), Fraction(1), Fraction(5)) == 1


def test_mark_rounding_to_tick_on_median3():
    # the last price 100,007.37 is the median; on tick 0.5: half-even → 100,007.5, floor → 100,007
    cases = [(Rounding.HALF_EVEN, "100007.5"), (Rounding.FLOOR, "100007"), (Rounding.CEILING, "100007.5")]
    for rounding, expected in cases:
        engine = MarkPriceEngine("median3", EIGHT_H, "0.5", rounding)
        for bid, ask in BOOKS:
            engine.observe_book(bid, ask, "100000")
        assert engine.mark(MIDNIGHT + 4 * HOUR_MS, "100000", "0.0001", "100007.37").value == Decimal(expected)


# ------------------------------------------------------------------------------------------- refusals


def test_median3_without_last_price_refused():
    engine = MarkPriceEngine("median3", EIGHT_H, "0.1", Rounding.HALF_EVEN)
    with pytest.raises(ValidationError) as err:
        engine.mark(MIDNIGHT, "100000", "0.0001")
    assert err.value.field == "last_price"


@pytest.mark.parametrize(
    "args, field",
    [
        (("NaN", "0.0001", 0, 1), "index"),
        (("-1", "0.0001", 0, 1), "index"),
        (("100", "NaN", 0, 1), "funding_rate"),
        (("100", 0.0001, 0, 1), "funding_rate"),
        (("100", "0.0001", -1, 1), "time_to_funding_ms"),
        (("100", "0.0001", 2, 1), "time_to_funding_ms"),
        (("100", "0.0001", 0, 0), "funding_interval_ms"),
    ],
)
def test_fair_price_bad_input(args, field):
    with pytest.raises(ValidationError) as err:
        fair_price(*args)
    assert err.value.field == field


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"method": "last"}, "method"),
        ({"tick": "0"}, "tick"),
        ({"tick": "NaN"}, "tick"),
        ({"rounding": "half_even"}, "rounding"),
        ({"basis_window": 0}, "basis_window"),
        ({"schedule": 8}, "schedule"),
    ],
)
def test_engine_bad_configuration(kwargs, field):
    values = {"method": "median3", "schedule": EIGHT_H, "tick": "0.1", "rounding": Rounding.HALF_EVEN}
    values |= kwargs
    with pytest.raises(ValidationError) as err:
        MarkPriceEngine(**values)
    assert err.value.field == field


def test_crossed_book_and_bad_samples_refused():
    engine = MarkPriceEngine("median3", EIGHT_H, "0.1", Rounding.HALF_EVEN)
    with pytest.raises(ValidationError) as err:
        engine.observe_book("101", "100", "100")
    assert err.value.field == "best_bid"
    with pytest.raises(ValidationError) as err:
        engine.observe_book("100", "NaN", "100")
    assert err.value.field == "best_ask"
    with pytest.raises(ValidationError) as err:
        engine.mark(MIDNIGHT, "100", "0.0001", "-5")
    assert err.value.field == "last_price"
    assert engine.basis_samples == ()  # refused input changed nothing
