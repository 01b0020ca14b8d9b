"""Properties of the margin and liquidation formulas (hypothesis; every number is a Decimal built from integers).

Real tier tables: data/binance_um/leverage_tiers_ccxt.json (Binance USDⓈ-M brackets, 10 symbols).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from perprisk.formulas import (
    FAMILIES,
    MarginMode,
    PositionLeg,
    Side,
    distance_pct,
    get_family,
    liquidation_price,
    maintenance_margin,
    margin_balance,
)
from perprisk.formulas.margin import maintenance_margin_in_tier
from perprisk.instrument import TierTable, load_tier_tables
from perprisk.paths import BINANCE_TIERS_FILE

REAL = load_tier_tables(BINANCE_TIERS_FILE)
REAL_SYMBOLS = sorted(REAL)
ISO, CROSS = MarginMode.ISOLATED, MarginMode.CROSS
FAST = settings(max_examples=150, deadline=None)
MEDIUM = settings(max_examples=250, deadline=None)


def dec(lo: int, hi: int, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals n·10^-places for integers n in [lo, hi] — exact, never through a float."""
    return st.integers(lo, hi).map(lambda n: Decimal(f"{n}E-{places}"))


sides = st.sampled_from([Side.LONG, Side.SHORT])
families = st.sampled_from(sorted(FAMILIES))
taker_fees = st.sampled_from([Decimal("0"), Decimal("0.0002"), Decimal("0.0004"), Decimal("0.0005"), Decimal("0.001")])
real_symbols = st.sampled_from(REAL_SYMBOLS)


@st.composite
def tier_tables(draw, symbol: str | None = None) -> TierTable:
    """A real Binance table, or a one-tier table with a random mmr (and maintenance amount 0)."""
    if draw(st.booleans()):
        return REAL[draw(real_symbols)]  # any real table; the leg's symbol is only a label
    return TierTable.single(symbol or "XYZUSDT", draw(dec(1, 1000, 4)))  # mmr 0.0001 … 0.1


@st.composite
def legs(draw, symbol: str = "BTCUSDT", tables=None, side=None, mark_equals_entry=False) -> PositionLeg:
    tiers = draw(tables if tables is not None else tier_tables(symbol))
    size = draw(dec(1, 2_000_000, 3))  # 0.001 … 2,000
    entry = draw(dec(1, 2_000_000, 1))  # 0.1 … 200,000
    if mark_equals_entry:
        mark = entry
    else:
        mark = entry * draw(dec(500, 1500, 3))  # ±50 % around the entry
    cap = tiers.max_notional
    assume(cap is None or size * max(entry, mark) * 2 < cap)
    return PositionLeg(symbol, draw(sides) if side is None else side, size, entry, mark, tiers)


@st.composite
def near_floor_legs(draw, symbol: str, side=None, mark_equals_entry=False) -> PositionLeg:
    """A leg on a real table whose notional is within ×0.5 … ×2 of one of the table's floors (tier changes likely)."""
    tiers = REAL[symbol]
    floor = draw(st.sampled_from([t.floor for t in tiers.tiers[1:]]))
    entry = draw(dec(10, 2_000_000, 1))
    size = (floor * draw(dec(500, 2000, 3)) / entry).quantize(Decimal("0.001"))
    assume(size > 0)
    mark = entry if mark_equals_entry else (entry * draw(dec(800, 1200, 3)))
    assume(size * max(entry, mark) * 2 < tiers.max_notional)
    return PositionLeg(symbol, draw(sides) if side is None else side, size, entry, mark, tiers)


@st.composite
def isolated_cases(draw):
    """(family, leg at mark = entry, position margin, taker fee) with the position margin of a leverage 1…125."""
    family = get_family(draw(families))
    leg = draw(legs(mark_equals_entry=True))
    leverage = draw(st.integers(1, 125))
    margin = leg.size * leg.entry_price / leverage
    margin = margin.quantize(Decimal("0.01")) + draw(dec(0, 100_000, 2))  # plus an optional extra
    assume(margin > 0)
    return family, leg, margin, draw(taker_fees)


def _lp(family, mode, wallet, positions, fee, **kw):
    return liquidation_price(family, mode, wallet, positions, taker_fee=fee, **kw)


# ------------------------------------------------------------------- (a) BP < LP < E (long), E < LP < BP (short)


@FAST
@given(isolated_cases())
def test_lp_lies_between_entry_and_bankruptcy(case):
    family, leg, margin, fee = case
    result = _lp(family, ISO, margin, [leg], fee)
    assume(not result.already_liquidatable)
    entry, lp, bp = Fraction(leg.entry_price), result.liquidation_price, result.bankruptcy_price
    if bp is not None:
        assert lp is not None, "a reachable bankruptcy price implies a liquidation price before it"
    if lp is None:
        assert leg.side is Side.LONG and bp is None  # a long margined beyond its value: neither price exists
        return
    if leg.side is Side.LONG:
        assert lp < entry
        if bp is not None:
            assert bp < lp
    else:
        assert entry < lp < bp


# --------------------------------------------------------------------- (b) adding margin moves LP away from mark


@FAST
@given(isolated_cases(), dec(1, 10_000_000, 2), st.booleans())
def test_adding_margin_moves_lp_away_from_mark(case, added, cross):
    family, leg, margin, fee = case
    mode = CROSS if cross else ISO
    before = _lp(family, mode, margin, [leg], fee)
    assume(not before.already_liquidatable)
    after = _lp(family, mode, margin + added, [leg], fee)
    mark = Fraction(leg.mark_price)
    if before.liquidation_price is None:
        assert after.liquidation_price is None
        return
    if after.liquidation_price is None:
        assert leg.side is Side.LONG  # pushed below zero: no liquidation any more
        return
    if leg.side is Side.LONG:
        assert after.liquidation_price < before.liquidation_price
    else:
        assert after.liquidation_price > before.liquidation_price
    assert abs(mark - after.liquidation_price) > abs(mark - before.liquidation_price)
    assert after.distance_pct > before.distance_pct


@FAST
@given(families, st.deferred(lambda: accounts(hedge_allowed=False)), dec(1, 10_000_000, 2), taker_fees)
def test_adding_wallet_moves_cross_lp_away_from_mark_with_other_positions(name, account, added, fee):
    family = get_family(name)
    positions, wallet = account
    target = positions[0]
    before = _lp(family, CROSS, wallet, positions, fee, target=target.symbol)
    assume(not before.already_liquidatable and before.liquidation_price is not None)
    after = _lp(family, CROSS, wallet + added, positions, fee, target=target.symbol)
    if after.liquidation_price is None:
        assert target.side is Side.LONG
        return
    mark = Fraction(target.mark_price)
    if target.side is Side.LONG:
        assert after.liquidation_price < before.liquidation_price < mark
    else:
        assert mark < before.liquidation_price < after.liquidation_price


@FAST
@given(isolated_cases())
def test_cross_alone_equals_isolated_with_the_wallet_as_margin(case):
    family, leg, margin, fee = case
    iso = _lp(family, ISO, margin, [leg], fee)
    cross = _lp(family, CROSS, margin, [leg], fee)
    assert iso.liquidation_price == cross.liquidation_price
    assert iso.bankruptcy_price == cross.bankruptcy_price
    assert iso.tier == cross.tier


# ------------------------------------------------------------ (c) binance / generic: equity == MM exactly at LP


OTHER_SYMBOLS = ["ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT"]


@st.composite
def accounts(draw, hedge_allowed=True):
    """A cross account on real tables: BTC target (one-way or hedged) plus 0–3 other symbols, and a wallet."""
    btc = REAL["BTC/USDT:USDT"]
    if draw(st.booleans()):
        target = draw(near_floor_legs("BTC/USDT:USDT"))
    else:
        target = draw(legs("BTC/USDT:USDT", st.just(btc)))
    positions = [target]
    if hedge_allowed and draw(st.booleans()):
        other_side = Side.SHORT if target.side is Side.LONG else Side.LONG
        hedge = draw(legs("BTC/USDT:USDT", st.just(btc), side=other_side))
        positions.append(PositionLeg(hedge.symbol, hedge.side, hedge.size, hedge.entry_price, target.mark_price, btc))
    for symbol in draw(st.lists(st.sampled_from(OTHER_SYMBOLS), max_size=3, unique=True)):
        positions.append(draw(legs(symbol, st.just(REAL[symbol]))))
    wallet = draw(st.integers(0, 10).flatmap(lambda k: dec(1, 100 * 10**k, 2)))  # 0.01 … 10^10, log-spread
    return positions, wallet


def _assert_trigger_exact(family, mode, wallet, positions, result, **kw):
    lp = result.liquidation_price
    equity, maintenance = margin_balance(family, mode, wallet, positions, lp, **kw)
    assert equity == maintenance  # exact Fraction equality
    event(f"LP found; {'several' if len({p.side for p in positions if p.symbol == result.symbol}) > 1 else 'one'} target leg(s)")
    targets = [p for p in positions if p.symbol == result.symbol]
    primary = targets[0] if kw.get("target_side") is None else next(t for t in targets if t.side is kw["target_side"])
    at_lp = primary.tiers.tier_for_notional_clamped(Fraction(primary.size) * lp)
    assert result.tier == at_lp
    mark_tier = primary.tiers.tier_for_notional_clamped(Fraction(primary.size) * Fraction(primary.mark_price))
    event("tier at LP differs from tier at mark" if mark_tier != at_lp else "same tier at LP and mark")
    assert result.mmr == at_lp.mmr and result.maintenance_amount == at_lp.maintenance_amount


@MEDIUM
@given(st.sampled_from(["binance", "generic"]), st.data(), st.integers(1, 150), taker_fees)
def test_binance_generic_isolated_lp_is_exact_root_on_real_tiers(name, data, leverage, fee):
    family = get_family(name)
    symbol = data.draw(real_symbols)
    if data.draw(st.booleans()):
        leg = data.draw(near_floor_legs(symbol, mark_equals_entry=True))
        leverage = min(leverage, 20)
    else:
        leg = data.draw(legs(symbol, st.just(REAL[symbol]), mark_equals_entry=True))
    margin = (leg.size * leg.entry_price / leverage).quantize(Decimal("0.01"))
    assume(margin > 0)
    result = _lp(family, ISO, margin, [leg], fee)
    if result.liquidation_price is None:
        assert leg.side is Side.LONG
        # no positive root: the trigger never binds at any positive price
        equity, maintenance = margin_balance(family, ISO, margin, [leg], Fraction(1, 10**9), taker_fee=fee)
        assert equity > maintenance
        return
    _assert_trigger_exact(family, ISO, margin, [leg], result, taker_fee=fee)


@MEDIUM
@given(st.sampled_from(["binance", "generic"]), accounts(), taker_fees)
def test_binance_generic_cross_lp_is_exact_root_on_real_tiers(name, account, fee):
    family = get_family(name)
    positions, wallet = account
    result = _lp(family, CROSS, wallet, positions, fee, target="BTC/USDT:USDT")
    if result.liquidation_price is None:
        return
    assert result.liquidation_price > 0
    _assert_trigger_exact(family, CROSS, wallet, positions, result, target="BTC/USDT:USDT", taker_fee=fee)


def _binance_candidates(family, c, leg, fee):
    """Binance's documented procedure, written out independently: one candidate per tier,
    LP_k = (C + cum_k − s·q·E) / (q·(mmr_k + fee) − s·q); keep those whose notional lies in tier k."""
    s, q, e = leg.sign, Fraction(leg.size), Fraction(leg.entry_price)
    consistent = []
    tiers = leg.tiers.tiers
    for k, tier in enumerate(tiers):
        rate = Fraction(tier.mmr) + (fee if family.uses_taker_fee else 0)
        denominator = q * rate - s * q
        if denominator == 0:
            continue
        candidate = (c + Fraction(tier.maintenance_amount) - s * q * e) / denominator
        n = q * candidate
        last = k == len(tiers) - 1
        if candidate > 0 and n >= Fraction(tier.floor) and (last or n < Fraction(tier.cap)):
            consistent.append(candidate)
    return consistent


@MEDIUM
@given(st.sampled_from(["binance", "generic"]), accounts(hedge_allowed=False), taker_fees)
def test_binance_lp_is_the_unique_tier_consistent_candidate(name, account, fee):
    family = get_family(name)
    positions, wallet = account
    target, others = positions[0], positions[1:]
    fee_f = Fraction(fee)
    # C = WB − Σ other MM (and closing fee for generic) + Σ other UPNL, the others at their marks
    c = Fraction(wallet)
    for o in others:
        mark = Fraction(o.mark_price)
        c += o.sign * Fraction(o.size) * (mark - Fraction(o.entry_price))
        tier = o.tiers.tier_for_notional_clamped(Fraction(o.size) * mark)
        c -= Fraction(o.size) * mark * Fraction(tier.mmr) - Fraction(tier.maintenance_amount)
        if family.uses_taker_fee:
            c -= Fraction(o.size) * mark * fee_f
    result = _lp(family, CROSS, wallet, positions, fee, target="BTC/USDT:USDT")
    candidates = _binance_candidates(family, c, target, fee_f)
    event("LP found" if result.liquidation_price is not None else "no LP")
    if result.liquidation_price is None:
        assert candidates == []
    else:
        assert candidates == [result.liquidation_price]


# --------------------------------------------------------------------------- (d) tier lookup is monotone


@MEDIUM
@given(real_symbols, st.integers(0, 10**18), st.integers(0, 10**18))
def test_tier_lookup_is_monotone_on_real_tables(symbol, a, b):
    table = REAL[symbol]
    cap = int(table.max_notional)
    n1, n2 = sorted((Decimal(a % (cap * 100)) / 100, Decimal(b % (cap * 100)) / 100))
    t1, t2 = table.tier_for_notional(n1), table.tier_for_notional(n2)
    assert t1.tier <= t2.tier
    assert t1.mmr <= t2.mmr
    assert t1.maintenance_amount <= t2.maintenance_amount
    assert t1.max_leverage >= t2.max_leverage
    assert t1.contains(n1) and t2.contains(n2)


@pytest.mark.parametrize("symbol", REAL_SYMBOLS)
def test_real_tier_mmr_strictly_increases(symbol):
    mmrs = [t.mmr for t in REAL[symbol].tiers]
    assert mmrs == sorted(mmrs) and len(set(mmrs)) == len(mmrs)


# ------------------------------------------------------------------- (e) distance ≥ 0, and 0 exactly at LP


@FAST
@given(isolated_cases())
def test_distance_is_non_negative_and_matches_definition(case):
    family, leg, margin, fee = case
    result = _lp(family, ISO, margin, [leg], fee)
    if result.liquidation_price is None:
        assert result.distance_pct is None
        return
    mark = Fraction(leg.mark_price)
    assert result.distance_pct >= 0
    assert result.distance_pct == abs(mark - result.liquidation_price) / mark * 100
    assert (result.distance_pct == 0) == (mark == result.liquidation_price)


@FAST
@given(families, legs(mark_equals_entry=True), dec(500, 1500, 3), taker_fees)
def test_margin_solved_for_a_target_lp_gives_that_lp_with_zero_distance(name, leg, ratio, fee):
    """Choose LP* (a decimal), solve the trigger for the margin that puts the LP there, mark the position at LP*:
    the solver returns exactly LP*, the distance is 0 and the position is liquidatable (equity == MM)."""
    family = get_family(name)
    target_lp = (leg.entry_price * ratio).quantize(Decimal("0.1"))
    assume(target_lp > 0)
    at_lp = PositionLeg(leg.symbol, leg.side, leg.size, leg.entry_price, target_lp, leg.tiers)
    p = Fraction(target_lp)
    fee_f = Fraction(fee) if family.uses_taker_fee else Fraction(0)
    mm = family.maintenance(at_lp, p) + family.closing_fee(at_lp, p, fee_f)
    margin = mm - leg.sign * Fraction(leg.size) * (p - Fraction(leg.entry_price))
    assume(margin > 0)
    result = _lp(family, ISO, margin, [at_lp], fee)
    assert result.liquidation_price == p
    assert result.distance_pct == 0
    assert result.already_liquidatable
    assert result.equity == result.maintenance_margin
    assert distance_pct(target_lp, target_lp) == 0


@FAST
@given(dec(1, 10**9, 2), dec(1, 10**9, 2))
def test_distance_pct_function(mark, lp):
    d = distance_pct(mark, lp)
    assert d >= 0
    assert (d == 0) == (mark == lp)
    assert d == abs(Fraction(mark) - Fraction(lp)) / Fraction(mark) * 100


# ---------------------------------------------------------------- (f) MM(N) = N·mmr − cum is continuous


@pytest.mark.parametrize("symbol", REAL_SYMBOLS)
def test_maintenance_margin_continuous_at_every_floor(symbol):
    tiers = REAL[symbol].tiers
    for below, at in zip(tiers, tiers[1:]):
        floor = Fraction(at.floor)
        # the left limit (formula of the lower tier) equals the value at the floor (formula of the upper tier)
        assert maintenance_margin_in_tier(floor, below) == maintenance_margin_in_tier(floor, at)
        assert maintenance_margin(floor, REAL[symbol]) == maintenance_margin_in_tier(floor, below)
        # and just below the floor, the lower tier applies and MM is within mmr·ε of the floor value
        eps = Fraction(1, 10**8)
        assert maintenance_margin(floor - eps, REAL[symbol]) == maintenance_margin_in_tier(floor, at) - eps * Fraction(below.mmr)


@MEDIUM
@given(real_symbols, st.integers(0, 10**18), st.integers(1, 10**12))
def test_maintenance_margin_is_monotone_and_lipschitz(symbol, a, b):
    table = REAL[symbol]
    cap = int(table.max_notional)
    n1 = Fraction(a % (cap * 100), 100)
    n2 = n1 + Fraction(b, 10**4)
    assume(n2 < cap)
    mm1, mm2 = maintenance_margin(n1, table), maintenance_margin(n2, table)
    assert 0 <= mm1 <= mm2
    # slope between the two points lies between the lowest and highest mmr crossed
    assert Fraction(table.tiers[0].mmr) * (n2 - n1) <= mm2 - mm1 <= Fraction(table.tiers[-1].mmr) * (n2 - n1)
    assert mm1 >= n1 * Fraction(table.tiers[0].mmr)
