"""Index price: worked examples (table-driven, each row citing its source) and refusals.

Sources:
  SPEC   = SPEC §2 "Index price"
  BIN-PI = Binance "Price Index" FAQ, binance.com/en/support/faq/547ba48141474ab3bddc5d7898f97928
           (one source > 5 % from the median → weight 0; more than one → median of all; no update 10 s → 0)
  MEXC   = MEXC "Index Price, Fair Price and Last Price", mexc.com/learn/article/17827791508654 (± 3 %)
  CAP    = Binance P2P index FAQ / Pionex index page: a deviating price is capped at median·(1 ± band)
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.market.index import (
    DEVIATION,
    MEDIAN,
    STALE,
    WEIGHTED_AVERAGE,
    IndexCalculator,
    NoFreshSourceError,
    SourceQuote,
)
from perprisk.money import Rounding

NOW = 1_760_140_800_000  # 2025-10-11T00:00:00Z


def q(source: str, price: str, weight: str = "1", age_ms: int = 0) -> SourceQuote:
    return SourceQuote(source, price, weight, NOW - age_ms)


# Worked example A (SPEC, BIN-PI), band 5 %:
#   prices  coinbase 99,900 (w 20) · binance 100,000 (w 50) · okx 100,100 (w 30) · kraken 106,053 (w 10)
#   median of the four = (100,000 + 100,100) / 2 = 100,050
#   kraken: (106,053 − 100,050) / 100,050 = 6,003 / 100,050 = 6 %  > 5 %  → weight 0
#   others: at most 150 / 100,050 = 0.15 %                                → kept
#   index = (50·100,000 + 30·100,100 + 20·99,900) / (50 + 30 + 20)
#         = (5,000,000 + 3,003,000 + 1,998,000) / 100 = 10,001,000 / 100 = 100,010
QUOTES_A = [
    q("coinbase", "99900", "20"), q("binance", "100000", "50"), q("okx", "100100", "30"), q("kraken", "106053", "10")
]

# Worked example B (SPEC, BIN-PI): example A plus bitstamp 94,047 (w 10)
#   the five sorted: 94,047 · 99,900 · 100,000 · 100,100 · 106,053 → median 100,000
#   kraken 6.053 % above, bitstamp 5.953 % below → two deviate → index = median = 100,000
QUOTES_B = QUOTES_A + [q("bitstamp", "94047", "10")]

# Worked example C (BIN-PI staleness): kraken last updated 15 s ago with stale_after 10 s → dropped;
#   the three fresh: median 100,000, none deviates → index = (20·99,900 + 50·100,000 + 30·100,100)/100 = 100,010
QUOTES_C = [q("coinbase", "99900", "20"), q("binance", "100000", "50"), q("okx", "100100", "30"),
            q("kraken", "100500", "10", age_ms=15_000)]

# Worked example D (SPEC "more than the band" is strict): a source exactly 5 % above the median is kept:
#   100,000 (w 1) · 100,000 (w 1) · 105,000 (w 2); median 100,000; 5,000/100,000 = 5 % → kept
#   index = (100,000 + 100,000 + 2·105,000) / 4 = 410,000 / 4 = 102,500
QUOTES_D = [q("a", "100000", "1"), q("b", "100000", "1"), q("c", "105000", "2")]

# Worked example E (MEXC, band 3 %): binance 100,000 · okx 100,200 · gate 103,500 (equal weights)
#   median 100,200; gate (103,500 − 100,200)/100,200 = 3.29 % > 3 % → excluded (it would pass Binance's 5 %)
#   index = (100,000 + 100,200) / 2 = 100,100
QUOTES_E = [q("binance", "100000"), q("okx", "100200"), q("gate", "103500")]

# Worked example F (CAP, band 5 %): 100,000 (w 1) · 100,000 (w 1) · 106,000 (w 2); median 100,000;
#   106,000 is capped at 100,000·1.05 = 105,000 → index = (100,000 + 100,000 + 2·105,000)/4 = 102,500
QUOTES_F = [q("a", "100000", "1"), q("b", "100000", "1"), q("c", "106000", "2")]


@pytest.mark.parametrize(
    "source, calculator, quotes, value, mode, used, excluded",
    [
        ("SPEC/BIN-PI A: one source 6 % away, band 5 %", IndexCalculator.binance(), QUOTES_A,
         "100010", WEIGHTED_AVERAGE, {"coinbase", "binance", "okx"}, {"kraken": DEVIATION}),
        ("SPEC/BIN-PI B: two deviate → median", IndexCalculator.binance(), QUOTES_B,
         "100000", MEDIAN, {"coinbase", "binance", "okx", "kraken", "bitstamp"}, {}),
        ("BIN-PI C: stale source dropped", IndexCalculator.binance(stale_after_ms=10_000), QUOTES_C,
         "100010", WEIGHTED_AVERAGE, {"coinbase", "binance", "okx"}, {"kraken": STALE}),
        ("SPEC D: exactly on the band is kept", IndexCalculator.binance(), QUOTES_D,
         "102500", WEIGHTED_AVERAGE, {"a", "b", "c"}, {}),
        ("MEXC E: 3.29 % is out under MEXC's 3 %", IndexCalculator.mexc(), QUOTES_E,
         "100100", WEIGHTED_AVERAGE, {"binance", "okx"}, {"gate": DEVIATION}),
        ("BIN-PI E': the same quotes pass Binance's 5 %", IndexCalculator.binance(), QUOTES_E,
         "101233.3333333333333333333333333333333333", WEIGHTED_AVERAGE, {"binance", "okx", "gate"}, {}),
        ("CAP F: capped at median·1.05", IndexCalculator("0.05", 10_000, "cap"), QUOTES_F,
         "102500", "capped_weighted_average", {"a", "b", "c"}, {}),
    ],
)
def test_index_worked_examples(source, calculator, quotes, value, mode, used, excluded):
    result = calculator.compute(quotes, NOW)
    assert result.value == Decimal(value), source
    assert result.mode == mode, source
    assert set(result.used_sources) == used, source
    assert {s: r.split(":")[0] for s, r in result.excluded.items()} == excluded, source


def test_example_a_arithmetic_in_detail():
    result = IndexCalculator.binance().compute(QUOTES_A, NOW)
    assert result.median == Fraction(100_050)
    assert result.exact == Fraction(10_001_000, 100)
    assert result.deviating == ("kraken",)
    assert "6%" in result.excluded["kraken"]


def test_example_b_reports_the_deviating_sources():
    result = IndexCalculator.binance().compute(QUOTES_B, NOW)
    assert set(result.deviating) == {"kraken", "bitstamp"}
    assert result.median == 100_000


def test_cap_policy_reports_the_adjusted_price():
    result = IndexCalculator("0.05", 10_000, "cap").compute(QUOTES_F, NOW)
    assert dict(result.adjusted) == {"c": Fraction(105_000)}


def test_stale_boundary_is_inclusive_of_stale_after():
    # age exactly stale_after_ms is still fresh ("older than" is strict)
    quotes = [q("a", "100", age_ms=10_000), q("b", "102", age_ms=10_001)]
    result = IndexCalculator.binance().compute(quotes, NOW)
    assert result.used_sources == ("a",)
    assert result.excluded["b"].startswith(STALE)


def test_published_value_rounded_to_tick_with_named_mode():
    # example E' = 303,700/3 = 101,233.33…; tick 0.1
    cases = [(Rounding.HALF_EVEN, "101233.3"), (Rounding.CEILING, "101233.4"), (Rounding.FLOOR, "101233.3")]
    for rounding, expected in cases:
        calc = IndexCalculator.binance(tick="0.1", rounding=rounding)
        assert calc.compute(QUOTES_E, NOW).value == Decimal(expected)


def test_single_fresh_source_is_the_index():
    assert IndexCalculator.binance().compute([q("a", "123.45")], NOW).value == Decimal("123.45")


# -------------------------------------------------------------------------------------------- refusals


def test_no_fresh_source_is_a_clear_error():
    with pytest.raises(NoFreshSourceError) as err:
        IndexCalculator.binance().compute([q("a", "100", age_ms=60_000), q("b", "100", age_ms=11_000)], NOW)
    assert err.value.field == "quotes"
    assert "no fresh source" in err.value.message
    with pytest.raises(NoFreshSourceError):
        IndexCalculator.binance().compute([], NOW)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"price": "NaN"}, "price"),
        ({"price": Decimal("NaN")}, "price"),
        ({"price": "-1"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": 100.5}, "price"),  # binary float refused
        ({"price": "Infinity"}, "price"),
        ({"weight": "-1"}, "weight"),
        ({"weight": "NaN"}, "weight"),
        ({"timestamp_ms": 1.5}, "timestamp_ms"),
        ({"timestamp_ms": -1}, "timestamp_ms"),
        ({"source": ""}, "source"),
    ],
)
def test_bad_quote_refused_with_field(kwargs, field):
    values = {"source": "a", "price": "100", "weight": "1", "timestamp_ms": NOW} | kwargs
    with pytest.raises(ValidationError) as err:
        SourceQuote(**values)
    assert err.value.field == field


def test_zero_weight_sum_refused():
    quotes = [q("a", "100", "0"), q("b", "100.1", "0")]
    with pytest.raises(ValidationError) as err:
        IndexCalculator.binance().compute(quotes, NOW)
    assert err.value.field == "weight"


def test_zero_weight_sum_of_kept_sources_refused_after_exclusion():
    # the only weighted source is the outlier: what is left has no weight
    quotes = [q("a", "100", "0"), q("b", "100", "0"), q("c", "110", "5")]
    with pytest.raises(ValidationError) as err:
        IndexCalculator.binance().compute(quotes, NOW)
    assert err.value.field == "weight"


@pytest.mark.parametrize("band", ["0", "-0.05", "1", "1.5", "NaN", 0.05])
def test_bad_band_refused(band):
    with pytest.raises(ValidationError) as err:
        IndexCalculator(band, 10_000)
    assert err.value.field == "band"


@pytest.mark.parametrize("stale", [0, -1, 1.5, True, "10000"])
def test_bad_stale_after_refused(stale):
    with pytest.raises(ValidationError) as err:
        IndexCalculator("0.05", stale)
    assert err.value.field == "stale_after_ms"


def test_unknown_method_refused():
    with pytest.raises(ValidationError) as err:
        IndexCalculator("0.05", 10_000, "average_of_everything")
    assert err.value.field == "method"


def test_duplicate_source_refused():
    with pytest.raises(ValidationError) as err:
        IndexCalculator.binance().compute([q("a", "100"), q("a", "101")], NOW)
    assert err.value.field == "quotes[1].source"


def test_quote_from_the_future_refused():
    with pytest.raises(ValidationError) as err:
        IndexCalculator.binance().compute([q("a", "100", age_ms=-1)], NOW)
    assert err.value.field == "quotes[0].timestamp_ms"


def test_not_a_quote_refused():
    with pytest.raises(ValidationError) as err:
        IndexCalculator.binance().compute([("a", "100", "1", NOW)], NOW)  # type: ignore[list-item]
    assert err.value.field == "quotes[0]"
