"""Hypothesis properties of the market prices (SPEC §2, §4 invariants 1–2).

- the index lies between the min and max of the sources it used (both outlier policies);
- an excluded source cannot move the index (a stale one at any price; the single deviating one moved
  further out);
- funding payments over all positions of a market with Σ long = Σ short sum to exactly zero;
- the funding rate lies within [floor, cap], equals I when the premium is within the clamp band, and is
  monotone in the premium;
- the fair price is the index at t = 0 and lies on the side of the index given by the rate's sign;
- the impact price lies between the best and the worst level touched, and worsens with the notional.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from perprisk.market.funding import FundingRateRule, funding_payment, funding_rate
from perprisk.market.impact import impact_price
from perprisk.market.index import IndexCalculator, SourceQuote
from perprisk.market.mark import fair_price

NOW = 1_760_140_800_000
STALE_AFTER = 10_000

prices = st.integers(min_value=90_000_00, max_value=110_000_00).map(lambda n: Decimal(n).scaleb(-2))
weights = st.integers(min_value=1, max_value=100).map(Decimal)
rates = st.integers(min_value=-500_000, max_value=500_000).map(lambda n: Decimal(n).scaleb(-8))
sizes = st.integers(min_value=1, max_value=10_000_000).map(lambda n: Decimal(n).scaleb(-3))
policies = st.sampled_from(["exclude", "cap"])
bands = st.sampled_from([Decimal("0.03"), Decimal("0.05"), Decimal("0.01")])


@st.composite
def quote_sets(draw, min_size=1, max_size=7):
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    quotes = []
    for i in range(n):
        age = draw(st.integers(min_value=0, max_value=2 * STALE_AFTER))
        quotes.append(SourceQuote(f"s{i}", draw(prices), draw(weights), NOW - age))
    return quotes


@given(quote_sets(), policies, bands)
def test_index_between_min_and_max_of_used_sources(quotes, policy, band):
    assume(any(NOW - q.timestamp_ms <= STALE_AFTER for q in quotes))
    result = IndexCalculator(band, STALE_AFTER, policy).compute(quotes, NOW)
    used = [Fraction(q.price) for q in quotes if q.source in result.used_sources]
    assert used
    assert min(used) <= result.exact <= max(used)
    assert set(result.used_sources).isdisjoint(result.excluded)


@given(quote_sets(), prices, policies, bands)
def test_a_stale_source_cannot_move_the_index(quotes, other_price, policy, band):
    assume(any(NOW - q.timestamp_ms <= STALE_AFTER for q in quotes))
    calc = IndexCalculator(band, STALE_AFTER, policy)
    stale = SourceQuote("stale", other_price, Decimal(1000), NOW - STALE_AFTER - 1)
    assert calc.compute(quotes + [stale], NOW).exact == calc.compute(quotes, NOW).exact
    assert calc.compute(quotes + [stale], NOW).excluded["stale"].startswith("stale")


@given(
    st.lists(prices, min_size=3, max_size=7),
    st.lists(weights, min_size=7, max_size=7),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=1, max_value=50_000),
    st.booleans(),
    bands,
)
def test_the_excluded_outlier_cannot_move_the_index(ps, ws, which, shift, upward, band):
    calc = IndexCalculator(band, STALE_AFTER, "exclude")
    quotes = [SourceQuote(f"s{i}", p, ws[i], NOW) for i, p in enumerate(ps)]
    result = calc.compute(quotes, NOW)
    assume(len(result.excluded) == 1)
    (name,) = result.excluded
    out = next(q for q in quotes if q.source == name)
    direction = 1 if out.price > result.median else -1
    moved_price = out.price + direction * Decimal(shift)
    assume(moved_price > 0)
    moved = [SourceQuote(q.source, moved_price, q.weight, NOW) if q.source == name else q for q in quotes]
    again = calc.compute(moved, NOW)
    assert again.exact == result.exact
    assert list(again.excluded) == [name]


@st.composite
def markets(draw):
    """Positions built from trades: each trade adds ``size`` to one long holder and one short holder."""
    n_long = draw(st.integers(min_value=1, max_value=6))
    n_short = draw(st.integers(min_value=1, max_value=6))
    longs = [Decimal(0)] * n_long
    shorts = [Decimal(0)] * n_short
    for _ in range(draw(st.integers(min_value=1, max_value=20))):
        size = draw(sizes)
        longs[draw(st.integers(0, n_long - 1))] += size
        shorts[draw(st.integers(0, n_short - 1))] += size
    return [s for s in longs if s], [s for s in shorts if s]


@given(markets(), prices, rates)
@settings(max_examples=200)
def test_funding_payments_sum_to_zero(market, mark, rate):
    longs, shorts = market
    assert sum(longs) == sum(shorts)
    total = sum((funding_payment(+1, q, mark, rate) for q in longs), Decimal(0)) + sum(
        (funding_payment(-1, q, mark, rate) for q in shorts), Decimal(0)
    )
    assert total == 0
    if rate > 0:
        assert all(funding_payment(+1, q, mark, rate) < 0 for q in longs)  # longs pay


premiums = st.integers(min_value=-10_000_000, max_value=10_000_000).map(lambda n: Decimal(n).scaleb(-9))
rules = st.builds(
    FundingRateRule,
    interval_hours=st.sampled_from([1, 2, 4, 8]),
    cap=st.sampled_from([Decimal("0.03"), Decimal("0.003"), Decimal("0.0075")]),
)


@given(premiums, premiums, rules)
def test_funding_rate_bounded_plateau_and_monotone(p, q, rule):
    rule = FundingRateRule(interval_hours=rule.interval_hours, cap=rule.cap, floor=-rule.cap)
    a, b = funding_rate(p, rule), funding_rate(q, rule)
    assert rule.floor <= a.value <= rule.cap
    if abs(Decimal("0.0001") - p) <= Decimal("0.0005"):
        assert a.rate_8h == Fraction(1, 10_000)
    if p <= q:
        assert a.exact <= b.exact and a.value <= b.value


@given(prices, rates, st.integers(min_value=0, max_value=8 * 3_600_000))
def test_fair_price_sides(index, rate, t):
    fair = fair_price(index, rate, t, 8 * 3_600_000)
    assert fair_price(index, rate, 0, 8 * 3_600_000) == Fraction(index)
    if rate > 0 and t > 0:
        assert fair > Fraction(index)
    elif rate < 0 and t > 0:
        assert fair < Fraction(index)
    else:
        assert fair == Fraction(index)


@st.composite
def ask_books(draw):
    n = draw(st.integers(min_value=1, max_value=10))
    start = draw(st.integers(min_value=1_000, max_value=100_000))
    steps = draw(st.lists(st.integers(min_value=0, max_value=50), min_size=n, max_size=n))
    qtys = draw(st.lists(st.integers(min_value=1, max_value=5_000), min_size=n, max_size=n))
    levels, price = [], start
    for step, qty in zip(steps, qtys):
        price += step
        levels.append((Decimal(price), Decimal(qty).scaleb(-3)))
    return levels


@given(ask_books(), st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_impact_price_between_levels_and_monotone(levels, n1, n2):
    depth = sum(p * q for p, q in levels)
    small, large = sorted((Decimal(n1) / 10**9 * depth, Decimal(n2) / 10**9 * depth))
    a, b = impact_price(levels, small, "ask"), impact_price(levels, large, "ask")
    assert a is not None and b is not None
    assert Fraction(levels[0][0]) <= a <= b <= Fraction(levels[-1][0])
    bids = [(p, q) for p, q in reversed(levels)]
    bid = impact_price(bids, small, "bid")
    assert bid is not None and Fraction(bids[-1][0]) <= bid <= Fraction(bids[0][0])
