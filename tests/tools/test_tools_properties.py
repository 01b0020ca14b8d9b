"""Properties of the trader's toolkit (hypothesis), checked against the exact formulas of
``perprisk.formulas``.

* reverse sizing: the returned size survives the worst price, one lot more does not (unless the tier's
  maximum leverage capped it) — for every family, both sides, the real Binance tiers;
* margin for a target liquidation price round-trips exactly, and at the target margin balance = maintenance;
* funding drift: with a positive rate a long's liquidation price moves monotonically toward the standing mark;
* staged plan: every add moves the liquidation price away.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perprisk.formulas import FAMILIES, Side
from perprisk.tools.drift import funding_drift
from perprisk.tools.plan import staged_margin_plan
from perprisk.tools.sizing import (
    LIMITED_BY_LIQUIDATION,
    leverage_allowed,
    margin_for_liquidation_price,
    reverse_size,
)
from perprisk.tools.venue import make_venue

VENUES = {(name, fee): make_venue(name, taker_fee=fee) for name in FAMILIES for fee in ("0", "0.0005")}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

venues = st.sampled_from(sorted(VENUES)).map(VENUES.__getitem__)
sides = st.sampled_from([Side.LONG, Side.SHORT])
entries = st.integers(1_000_0, 200_000_0).map(lambda n: Decimal(n).scaleb(-1))  # 1,000.0 … 200,000.0
moves = st.integers(5, 600).map(lambda n: Fraction(n, 1000))  # 0.5 % … 60 %
margins = st.integers(10, 2_000_000).map(Decimal)
lots = st.sampled_from([Decimal("0.001"), Decimal("0.01"), Decimal("0.1")])


def beyond(side: Side, price, level) -> bool:
    return price < level if side is Side.LONG else price > level


@SETTINGS
@given(venue=venues, side=sides, entry=entries, move=moves, margin=margins, lot=lots)
def test_reverse_size_is_the_largest_surviving_size(venue, side, entry, move, margin, lot):
    worst = (
        entry * (1 - Decimal(move.numerator) / move.denominator)
        if side is Side.LONG
        else entry * (1 + Decimal(move.numerator) / move.denominator)
    )
    r = reverse_size(venue, side, entry, worst, margin, lot)
    if r.size > 0:
        lp = r.liquidation.liquidation_price
        assert lp is None or beyond(side, lp, worst)
        # the same verdict from the margin balance at the worst price (SPEC §2: liquidate when equity ≤ MM)
        equity, maintenance = venue.balance_at(side, r.size, entry, margin, worst)
        assert equity > maintenance
        assert leverage_allowed(venue, r.size, entry, margin)
    bigger = r.size + lot
    if r.limited_by == LIMITED_BY_LIQUIDATION:
        next_lp = venue.liquidation_price(side, bigger, entry, margin)
        assert next_lp is not None and not beyond(side, next_lp, worst)
        equity, maintenance = venue.balance_at(side, bigger, entry, margin, worst)
        assert equity <= maintenance
    else:
        assert not leverage_allowed(venue, bigger, entry, margin)


@SETTINGS
@given(
    venue=venues,
    side=sides,
    entry=entries,
    move=st.integers(1, 900).map(lambda n: Fraction(n, 1000)),
    size=st.integers(1, 50_000).map(lambda n: Decimal(n).scaleb(-3)),
)
def test_margin_for_target_round_trips_exactly(venue, side, entry, move, size):
    target = Fraction(entry) * (1 - move if side is Side.LONG else 1 + move)
    target_d = Decimal(target.numerator) / Decimal(target.denominator)  # terminating: entry·(1 ± n/1000)
    r = margin_for_liquidation_price(venue, side, size, entry, target_d)
    assert r.liquidation.liquidation_price == target
    equity, maintenance = venue.balance_at(side, size, entry, r.margin, target)
    assert equity == maintenance
    assert r.margin_rounded >= r.margin
    rounded_lp = r.liquidation_rounded.liquidation_price
    assert rounded_lp is None or rounded_lp == target or beyond(side, rounded_lp, target)


@SETTINGS
@given(
    venue=venues,
    rates=st.lists(st.integers(1, 300).map(lambda n: Decimal(n).scaleb(-6)), min_size=1, max_size=12),
    leverage=st.integers(2, 100),
)
def test_positive_funding_moves_a_long_lp_toward_the_mark(venue, rates, leverage):
    margin = Fraction(10000, leverage)  # 0.1 BTC @ 100,000
    d = funding_drift(venue, Side.LONG, "0.1", "100000", margin, rates)
    prices = [s.liquidation_price for s in d.steps if not s.liquidated]
    assert all(p is not None and p < 100000 for p in prices)
    assert all(a < b for a, b in zip(prices, prices[1:]))  # strictly toward the mark, step after step
    assert all(a > b for a, b in zip([s.margin for s in d.steps], [s.margin for s in d.steps][1:]))


@SETTINGS
@given(
    venue=venues,
    side=sides,
    adds=st.integers(1, 5),
    initial=st.integers(700, 3000),
    extra=st.integers(1, 20000),
)
def test_each_add_moves_the_lp_away(venue, side, adds, initial, extra):
    p = staged_margin_plan(venue, side, "0.1", "100000", initial + extra, initial, max_adds=adds, tick="0.1")
    lps = [s.liquidation_price for s in p.stages]
    for a, b in zip(lps, lps[1:]):
        assert b is None or beyond(side, b, a)
