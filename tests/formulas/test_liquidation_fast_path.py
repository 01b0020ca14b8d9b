"""The fast liquidation-price solver against the plain reference: same roots, same results, every family.

``liquidation_price`` / ``solve_trigger_roots`` (integer sweep over the tier pieces, cached integer tier tables,
bisected tier lookup) must give exactly what ``liquidation_price_reference`` / ``solve_trigger_roots_reference``
(every piece rebuilt in Fractions) give — for the six families and for every other combination of family flags,
isolated and cross, one leg, hedged pairs and several target legs with other symbols, on real Binance tables,
random validated tables (including mmr up to 1, where the trigger is not monotone), hand-built tables with
arbitrary maintenance amounts (the trigger jumps at floors, several roots) and irregular hand-built tables
(which take the reference path).  The small formula helpers rewritten on integer pairs are checked against
their plain Fraction definitions.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from perprisk.money import Fraction  # the engine's rational type (quicktions)

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from perprisk.errors import ValidationError
from perprisk.formulas import FAMILIES, LiquidationFamily, MarginMode, PositionLeg, Side, get_family
from perprisk.formulas.bankruptcy import bankruptcy_price, isolated_bankruptcy_price
from perprisk.formulas.liquidation import (
    _trigger_at,
    fixed_balance,
    liquidation_price,
    liquidation_price_reference,
    liquidation_price_value,
    select_targets,
    solve_trigger_roots,
    solve_trigger_roots_reference,
)
from perprisk.formulas.margin import (
    distance_pct,
    exact_ratio,
    maintenance_margin_in_tier,
    notional,
    unrealized_pnl,
)
from perprisk.instrument import RiskTier, TierTable, load_tier_tables, tier_index
from perprisk.paths import BINANCE_TIERS_FILE

D = Decimal
ISO, CROSS = MarginMode.ISOLATED, MarginMode.CROSS
REAL = load_tier_tables(BINANCE_TIERS_FILE)
REAL_KEYS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
SETTINGS = settings(max_examples=300, deadline=None)

#: the six named families and every other combination of the four flags
ALL_FAMILIES = list(FAMILIES.values()) + [
    LiquidationFamily("custom", *flags, "test") for flags in itertools.product([False, True], repeat=4)
]


def dec(lo: int, hi: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(lo, hi).map(lambda n: Decimal(f"{n}E-{places}"))


@st.composite
def validated_tables(draw, symbol: str) -> TierTable:
    """``TierTable.from_brackets`` with random floors and mmrs (up to 1): amounts derived, MM continuous."""
    n = draw(st.integers(1, 6))
    floors = sorted(set(draw(st.lists(dec(1, 10**9, 2), min_size=n - 1, max_size=n - 1))))
    mmrs = draw(st.lists(dec(1, 10_000, 4), min_size=len(floors) + 1, max_size=len(floors) + 1))
    last_cap = draw(st.none() | st.just((floors[-1] if floors else D(1)) * 10))
    return TierTable.from_brackets(symbol, [(f, m, 1) for f, m in zip([D(0)] + floors, mmrs)], last_cap=last_cap)


@st.composite
def hand_tables(draw, symbol: str, contiguous: bool) -> TierTable:
    """Built directly (no validation): arbitrary maintenance amounts; gaps/overlaps/odd caps when not contiguous."""
    n = draw(st.integers(1, 5))
    floors = [D(0)] + sorted(set(draw(st.lists(dec(1, 10**8, 1), min_size=n - 1, max_size=n - 1))))
    tiers = []
    for i, floor in enumerate(floors):
        cap = floors[i + 1] if i + 1 < len(floors) else draw(st.none() | st.just(floor * 3 + 1))
        if not contiguous:
            floor = floor + draw(dec(-1000, 1000, 1)) if i else draw(dec(0, 10, 0))
            cap = draw(st.none() | dec(0, 10**8, 1)) if draw(st.booleans()) else cap
        tiers.append(RiskTier(i + 1, floor, cap, draw(dec(1, 10_000, 4)), D(1), draw(dec(-10**6, 10**7, 2))))
    return TierTable(symbol, tuple(tiers))


def tables(symbol: str) -> st.SearchStrategy[TierTable]:
    return st.one_of(
        st.sampled_from(REAL_KEYS).map(REAL.__getitem__),
        st.just(TierTable.single(symbol, "0.004")),
        dec(1, 10_000, 4).map(lambda m: TierTable.single(symbol, m, maintenance_amount=D(50))),
        validated_tables(symbol),
        hand_tables(symbol, contiguous=True),
        hand_tables(symbol, contiguous=False),
    )


@st.composite
def leg(draw, symbol: str, table: TierTable, side: Side | None = None) -> PositionLeg:
    size = draw(st.one_of(dec(1, 2_000_000, 3), st.sampled_from([D(1), D("0.5"), D(3), D("1.5")])))
    entry = draw(dec(1, 2_000_000, 1))
    mark = entry if draw(st.booleans()) else (entry * draw(dec(500, 1500, 3)))
    return PositionLeg(symbol, draw(st.sampled_from([Side.LONG, Side.SHORT])) if side is None else side,
                       size, entry, mark, table)


@st.composite
def cases(draw):
    """(family, mode, wallet, positions, target, target_side, fee) — one leg, hedged pair, or an account."""
    family = draw(st.sampled_from(ALL_FAMILIES))
    table = draw(tables("BTCUSDT"))
    first = draw(leg("BTCUSDT", table))
    positions = [first]
    shape = draw(st.sampled_from(["one", "hedge", "hedge-same-size", "two-tables"]))
    if shape != "one":
        other_side = Side.SHORT if first.side is Side.LONG else Side.LONG
        other_table = draw(tables("BTCUSDT")) if shape == "two-tables" else table
        second = draw(leg("BTCUSDT", other_table, other_side))
        if shape == "hedge-same-size":
            second = PositionLeg("BTCUSDT", other_side, first.size, second.entry_price, second.mark_price, table)
        positions.append(second)
    mode = draw(st.sampled_from([ISO, CROSS]))
    if mode is CROSS:
        for symbol in draw(st.lists(st.sampled_from(["ETHUSDT", "SOLUSDT"]), max_size=2, unique=True)):
            positions.append(draw(leg(symbol, draw(tables(symbol)))))
    target_side = None
    if len([p for p in positions if p.symbol == "BTCUSDT"]) > 1 and (mode is ISO or draw(st.booleans())):
        target_side = draw(st.sampled_from([Side.LONG, Side.SHORT]))
    wallet = draw(st.one_of(
        st.integers(0, 10).flatmap(lambda k: dec(1, 100 * 10**k, 2)),
        dec(-10**8, 10**8, 3),
        st.integers(-10**6, 10**9),
        st.builds(Fraction, st.integers(-10**12, 10**12), st.integers(1, 10**6)),
    ))
    fee = draw(st.sampled_from([D(0), D("0.0002"), D("0.0005"), D("0.001"), D("-0.0001"), Fraction(1, 3000)]))
    return family, mode, wallet, positions, "BTCUSDT", target_side, fee


def _same(fast, reference) -> None:
    assert fast == reference
    for name in ("mark_price", "liquidation_price", "bankruptcy_price", "distance_pct", "equity", "maintenance_margin"):
        a, b = getattr(fast, name), getattr(reference, name)
        assert type(a) is type(b), name
    assert fast.tier is reference.tier
    assert type(fast.maintenance_amount) is type(reference.maintenance_amount)


@SETTINGS
@given(cases())
def test_liquidation_price_equals_the_reference(case):
    family, mode, wallet, positions, target, target_side, fee = case
    kw = {"target": target, "target_side": target_side, "taker_fee": fee}
    try:
        reference = liquidation_price_reference(family, mode, wallet, positions, **kw)
    except ValidationError as err:
        for solver in (liquidation_price, liquidation_price_value):
            with pytest.raises(ValidationError) as caught:
                solver(family, mode, wallet, positions, **kw)
            assert (caught.value.field, caught.value.message) == (err.field, err.message)
        return
    _same(liquidation_price(family, mode, wallet, positions, **kw), reference)
    _same_price(liquidation_price_value(family, mode, wallet, positions, **kw), reference)
    targets, others = select_targets(mode, positions, target, target_side)
    fee_used = Fraction(fee) if family.uses_taker_fee else Fraction(0)
    c = fixed_balance(family, mode, wallet, others, fee_used)
    event(f"{min(len(solve_trigger_roots_reference(family, c, targets, fee_used)), 2)} root(s)")


@st.composite
def boundary_cases(draw):
    """Targets and a balance ``c`` putting a root exactly on a piece boundary ``floor/q`` (or near one)."""
    family = draw(st.sampled_from(ALL_FAMILIES))
    table = draw(st.one_of(st.sampled_from(REAL_KEYS).map(REAL.__getitem__), validated_tables("BTCUSDT"),
                           hand_tables("BTCUSDT", contiguous=True)))
    targets = [draw(leg("BTCUSDT", table))]
    if draw(st.booleans()):
        other_side = Side.SHORT if targets[0].side is Side.LONG else Side.LONG
        targets.append(draw(leg("BTCUSDT", table, other_side)))
    fee = Fraction(draw(st.sampled_from([D(0), D("0.0005")])))
    floors = [Fraction(t.floor) for t in table.tiers[1:]] or [Fraction(1)]
    price = draw(st.sampled_from(floors)) / Fraction(draw(st.sampled_from(targets)).size)
    price += draw(st.sampled_from([Fraction(0), Fraction(1, 10**9), Fraction(-1, 10**9)]))
    assume(price > 0)
    equity, maintenance = _trigger_at(family, Fraction(0), targets, price, fee)
    return family, maintenance - equity, targets, fee  # c with f(price) = 0 on the piece of `price`


@SETTINGS
@given(boundary_cases())
def test_roots_on_piece_boundaries_equal_the_reference(case):
    family, c, targets, fee = case
    assert solve_trigger_roots(family, c, targets, fee) == solve_trigger_roots_reference(family, c, targets, fee)


@st.composite
def steep_tables(draw, symbol: str) -> TierTable:
    """Validated tables whose last tiers have mmr near 1 (a long's trigger turns down: two roots), or hand-built
    contiguous ones with arbitrary amounts (the trigger jumps at floors)."""
    if draw(st.booleans()):
        return draw(hand_tables(symbol, contiguous=True))
    floors = sorted(set(draw(st.lists(dec(1, 10**7, 0), min_size=1, max_size=4))))
    mmrs = [draw(dec(1, 500, 4))] + [draw(dec(1, 10_000, 4)) for _ in floors[:-1]] + [draw(st.sampled_from([D(1), D("0.9995"), D("0.999"), D("0.95")]))]
    return TierTable.from_brackets(symbol, [(f, m, 1) for f, m in zip([D(0)] + floors, mmrs)])


@st.composite
def multi_root_cases(draw):
    """A balance that keeps the position safe at a price inside a middle piece: roots on both sides likely."""
    family = draw(st.sampled_from(ALL_FAMILIES) | st.sampled_from([FAMILIES["binance"], FAMILIES["generic"]]))
    table = draw(steep_tables("BTCUSDT"))
    targets = [draw(leg("BTCUSDT", table, draw(st.sampled_from([Side.LONG, Side.LONG, Side.SHORT]))))]
    if draw(st.booleans()):
        other_side = Side.SHORT if targets[0].side is Side.LONG else Side.LONG
        targets.append(draw(leg("BTCUSDT", table, other_side)))
    fee = draw(st.sampled_from([D(0), D("0.0005"), D("0.002"), D("0.002")]))
    size = Fraction(draw(st.sampled_from(targets)).size)
    floors = [Fraction(t.floor) for t in table.tiers] + [Fraction(table.tiers[-1].floor) * 2 + 1]
    k = draw(st.integers(0, len(floors) - 2))
    price = (floors[k] + (floors[k + 1] - floors[k]) * Fraction(draw(st.integers(1, 99)), 100)) / size
    fee_used = Fraction(fee) if family.uses_taker_fee else Fraction(0)
    equity, maintenance = _trigger_at(family, Fraction(0), targets, price, fee_used)
    bonus = (maintenance + size * price) * Fraction(draw(st.sampled_from([0, 1, 5, 50])), 1000)
    return family, maintenance - equity + bonus, targets, fee


@SETTINGS
@given(multi_root_cases(), st.sampled_from([ISO, CROSS]))
def test_several_roots_nearest_to_mark_equals_the_reference(case, mode):
    family, wallet, targets, fee = case
    side = targets[0].side if len(targets) > 1 else None
    kw = {"target_side": side, "taker_fee": fee}
    fee_used = Fraction(fee) if family.uses_taker_fee else Fraction(0)
    chosen = [t for t in targets if side is None or mode is CROSS or t.side is side]
    count = len(solve_trigger_roots_reference(family, wallet, chosen, fee_used))
    event(f"{min(count, 3)} root(s); {'fast path' if tier_index(targets[0].tiers).contiguous else 'reference path'}")
    reference = liquidation_price_reference(family, mode, wallet, targets, **kw)
    _same(liquidation_price(family, mode, wallet, targets, **kw), reference)
    _same_price(liquidation_price_value(family, mode, wallet, targets, **kw), reference)


def _same_price(price, reference) -> None:
    """``liquidation_price_value`` is the reference's liquidation price, exactly and of the same type."""
    assert price == reference.liquidation_price and type(price) is type(reference.liquidation_price)


@SETTINGS
@given(st.sampled_from(ALL_FAMILIES), st.data(), st.builds(Fraction, st.integers(-10**15, 10**15), st.integers(1, 10**4)))
def test_solver_roots_equal_the_reference(family, data, c):
    table = data.draw(tables("BTCUSDT"))
    targets = data.draw(st.lists(leg("BTCUSDT", table), min_size=1, max_size=3))
    fee = Fraction(data.draw(st.sampled_from([D(0), D("0.0004"), D("-0.0002")])))
    try:
        reference = solve_trigger_roots_reference(family, c, targets, fee)
    except ValidationError:  # a hand-built table with a negative floor: a negative notional is refused
        with pytest.raises(ValidationError):
            solve_trigger_roots(family, c, targets, fee)
        return
    roots = solve_trigger_roots(family, c, targets, fee)
    assert roots == reference
    event(f"{min(len(roots), 2)} root(s); {'fast path' if all(tier_index(t.tiers).contiguous for t in targets) else 'reference path'}")
    assert all(type(r) is Fraction for r in roots) and roots == sorted(roots)


def test_real_btc_table_takes_the_fast_path_and_hand_built_odd_tables_do_not():
    assert tier_index(REAL["BTC/USDT:USDT"]).contiguous
    odd = TierTable("X", (RiskTier(1, D(0), D(100), D("0.01"), D(1), D(0)),
                          RiskTier(2, D(150), None, D("0.02"), D(1), D(1))))  # a gap: floor 150 ≠ cap 100
    assert tier_index(odd).bisectable and not tier_index(odd).contiguous
    unordered = TierTable("X", (RiskTier(1, D(0), D(100), D("0.01"), D(1), D(0)),
                                RiskTier(2, D(100), D(50), D("0.02"), D(1), D(1)),
                                RiskTier(3, D(50), None, D("0.02"), D(1), D(1))))
    assert not tier_index(unordered).bisectable


def test_hand_built_tables_of_plain_ints_and_fractions_equal_the_reference():
    """Tier fields that are ints/Fractions (not Decimals), and a NaN mmr: lookups and prices as the reference."""
    ints = TierTable("X", (RiskTier(1, 0, 1000, Fraction(1, 250), 100, 0),
                           RiskTier(2, 1000, 5000, Fraction(1, 100), 50, 6),
                           RiskTier(3, 5000, None, Fraction(1, 20), 10, 206)))
    nan = TierTable("X", (RiskTier(1, D(0), D(1000), D("NaN"), D(1), D(0)),
                          RiskTier(2, D(1000), None, D("0.01"), D(1), D(6))))
    assert tier_index(ints).contiguous and not tier_index(nan).exact
    for value in (0, 999, 1000, Fraction(4999), D("5000"), D("1e9"), Fraction(10**12, 7)):
        assert ints.tier_for_notional_clamped(value) is _clamped_linear(ints, value)
        assert nan.tier_for_notional_clamped(value) is _clamped_linear(nan, value)
    for family in ALL_FAMILIES:
        for side in (Side.LONG, Side.SHORT):
            position = PositionLeg("X", side, D("0.3"), D(9000), D(9100), ints)
            for wallet in (D(100), D(600), D(3000)):
                kw = {"taker_fee": D("0.0005")}
                assert liquidation_price(family, ISO, wallet, [position], **kw) == \
                    liquidation_price_reference(family, ISO, wallet, [position], **kw)


def test_single_leg_on_real_btc_tiers_worked_example():
    """1.5 BTC long @ 100,000, isolated margin 15,000, generic family, taker 0.05 %: the engine's typical case."""
    btc = REAL["BTC/USDT:USDT"]
    long_leg = PositionLeg("BTCUSDT", Side.LONG, D("1.5"), D("100000.0"), D("99000.0"), btc)
    generic = get_family("generic")
    result = liquidation_price(generic, ISO, Fraction(15000), [long_leg], taker_fee=D("0.0005"))
    # tier 1 (mmr 0.4 %, cum 0): 15,000 + 1.5·(P − 100,000) = 1.5·P·(0.004 + 0.0005)  →  P = 135,000 / 1.49325
    assert result.liquidation_price == Fraction(135_000) / Fraction("1.49325") == Fraction(180000000, 1991)
    assert result.tier is btc.tiers[0]
    assert result == liquidation_price_reference(generic, ISO, Fraction(15000), [long_leg], taker_fee=D("0.0005"))


# ------------------------------------------------------------------------------------ tier lookup (bisect)


def _clamped_linear(table: TierTable, notional) -> RiskTier:
    for tier in table.tiers:
        if tier.cap is None or notional < tier.cap:
            return tier
    return table.tiers[-1]


@st.composite
def notionals(draw, table: TierTable):
    edges = [t.floor for t in table.tiers] + [t.cap for t in table.tiers if t.cap is not None]
    base = draw(st.sampled_from(edges) | dec(0, 10**10, 2))
    shift = draw(st.sampled_from([Fraction(0), Fraction(1, 10**12), Fraction(-1, 10**12), Fraction(7, 3)]))
    value = Fraction(base) + shift
    assume(value >= 0)
    kind = draw(st.sampled_from(["fraction", "decimal", "int"]))
    if kind == "decimal":
        return Decimal(value.numerator) / Decimal(value.denominator) if value.denominator in (1, 3) else base
    if kind == "int":
        return int(value)
    return value


@SETTINGS
@given(st.data())
def test_clamped_tier_lookup_equals_the_linear_scan(data):
    table = data.draw(tables("BTCUSDT"))
    value = data.draw(notionals(table))
    assert table.tier_for_notional_clamped(value) is _clamped_linear(table, value)


def test_clamped_tier_lookup_edges():
    btc = REAL["BTC/USDT:USDT"]
    for k, tier in enumerate(btc.tiers):
        assert btc.tier_for_notional_clamped(tier.floor) is tier
        assert btc.tier_for_notional_clamped(Fraction(tier.floor)) is tier
        if k:
            assert btc.tier_for_notional_clamped(Fraction(tier.floor) - Fraction(1, 10**30)) is btc.tiers[k - 1]
    assert btc.tier_for_notional_clamped(D("1e30")) is btc.tiers[-1]
    assert btc.tier_for_notional_clamped(10**40) is btc.tiers[-1]
    assert btc.tier_for_notional_clamped(D("Infinity")) is btc.tiers[-1]
    assert btc.tier_for_notional_clamped(1.5e5) is btc.tiers[0]  # a float still works (linear scan)
    with pytest.raises(ValidationError):
        btc.tier_for_notional_clamped(Fraction(-1, 3))


def test_tier_index_is_cached_per_table_and_released_with_it():
    import gc

    from perprisk.instrument import _INDEXES

    table = TierTable.single("X", "0.01")
    assert tier_index(table) is tier_index(table)
    key = id(table)
    assert key in _INDEXES
    del table
    gc.collect()
    assert key not in _INDEXES or _INDEXES[key][0]() is not None


# ------------------------------------------------------------- helpers on integer pairs vs plain Fractions


exact_numbers = st.one_of(
    dec(-10**9, 10**9, 4),
    st.integers(-10**9, 10**9),
    st.builds(Fraction, st.integers(-10**9, 10**9), st.integers(1, 10**5)),
)
positive_numbers = st.one_of(
    dec(1, 10**9, 4), st.integers(1, 10**9), st.builds(Fraction, st.integers(1, 10**9), st.integers(1, 10**5))
)


@SETTINGS
@given(exact_numbers, exact_numbers, exact_numbers, positive_numbers, st.sampled_from([1, -1, Side.LONG, Side.SHORT]))
def test_helpers_equal_plain_fraction_formulas(a, b, c, p, sign):
    F = Fraction
    assert exact_ratio(a)[0] / F(exact_ratio(a)[1]) == F(a) and exact_ratio(a)[1] > 0
    assert notional(a, b) == F(a) * F(b)
    assert unrealized_pnl(sign, a, b, c) == sign * F(a) * (F(c) - F(b))
    tier = RiskTier(1, D(0), None, D("0.0065"), D(75), D("1500.5"))
    for with_amount in (True, False):
        plain = F(a) * F(tier.mmr) - (F(tier.maintenance_amount) if with_amount else 0)
        assert maintenance_margin_in_tier(a, tier, with_amount) == plain
    assert distance_pct(p, b) == abs(F(p) - F(b)) / F(p) * 100
    assert isolated_bankruptcy_price(sign, p, b, c) == F(b) - sign * F(c) / F(p)
    for value in (notional(a, b), unrealized_pnl(sign, a, b, c), distance_pct(p, b)):
        assert type(value) is Fraction


@SETTINGS
@given(st.sampled_from(ALL_FAMILIES), st.data())
def test_family_helpers_equal_plain_fraction_formulas(family, data):
    table = data.draw(tables("BTCUSDT"))
    position = data.draw(leg("BTCUSDT", table))
    price = Fraction(data.draw(dec(1, 10**7, 2)))
    fee = Fraction(data.draw(st.sampled_from([D(0), D("0.0005")])))
    size = Fraction(position.size)
    basis = position.mark_price if family.mm_at_price else position.entry_price
    fixed = _clamped_linear(table, size * Fraction(basis))
    at_price = _clamped_linear(table, size * price) if family.tier_recheck else fixed
    assert family.fixed_tier(position) is fixed
    assert family.tier_at(position, price) is at_price
    mm_basis = price if family.mm_at_price else Fraction(position.entry_price)
    plain = size * mm_basis * Fraction(at_price.mmr)
    if family.uses_maintenance_amount:
        plain -= Fraction(at_price.maintenance_amount)
    assert family.maintenance(position, price) == plain
    assert family.closing_fee(position, price, fee) == (size * price * fee if family.uses_taker_fee else 0)


@SETTINGS
@given(st.data())
def test_bankruptcy_price_equals_the_plain_formula(data):
    table = REAL["BTC/USDT:USDT"]
    targets = data.draw(st.lists(leg("BTCUSDT", table), min_size=1, max_size=3))
    others = data.draw(st.lists(leg("ETHUSDT", REAL["ETH/USDT:USDT"]), max_size=2))
    wallet = data.draw(exact_numbers)
    mode = data.draw(st.sampled_from([ISO, CROSS]))
    c = Fraction(wallet)
    if mode is CROSS:
        for o in others:
            c += o.sign * Fraction(o.size) * (Fraction(o.mark_price) - Fraction(o.entry_price))
    net = sum((t.sign * Fraction(t.size) for t in targets), Fraction(0))
    if net == 0:
        plain = None
    else:
        plain = (sum((t.sign * Fraction(t.size) * Fraction(t.entry_price) for t in targets), Fraction(0)) - c) / net
        plain = plain if plain > 0 else None
    assert bankruptcy_price(mode, wallet, targets, others) == plain
