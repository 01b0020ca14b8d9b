"""Property tests: the fast scanner and the exact reference scanner flag the same units after every tick.

Random populations (isolated positions and cross accounts of one to three markets, hedged legs included) on
the real Binance USDⓈ-M tier tables (data/binance_um/leverage_tiers_ccxt.json), sizes on the 0.001 lot grid
and balances in cents as Decimals (some cross collaterals as non-decimal Fractions, as a haircut makes them),
then random sequences of ticks — small walks on the tick grid, gaps (×0.3 … ×3), marks *exactly* at a unit's
liquidation price as solved by ``perprisk.formulas.liquidation_price`` (rational, usually off the tick grid),
the tick on each side of it, and marks where a position's notional sits exactly on a tier floor —
interleaved with upserts and removals.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from perprisk.formulas import FAMILIES, MarginMode, PositionLeg, Side, liquidation_price
from perprisk.instrument import TierTable, load_tier_tables
from perprisk.money import Rounding, round_price
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.errors import ValidationError
from perprisk.risk.scanner import FastScanner, ReferenceScanner, ScanMarket

D = Decimal
GENERIC = FAMILIES["generic"]
REAL = load_tier_tables(BINANCE_TIERS_FILE)
#: (symbol, table in the Binance file, starting mark, tick)
SPECS = (
    ("BTCUSDT", "BTC/USDT:USDT", D("100000.0"), D("0.1")),
    ("ETHUSDT", "ETH/USDT:USDT", D("4000.00"), D("0.01")),
    ("SOLUSDT", "SOL/USDT:USDT", D("200.000"), D("0.001")),
)
TICK = {sym: tick for sym, _, _, tick in SPECS}
START = {sym: mark for sym, _, mark, _ in SPECS}
SYMBOLS = [sym for sym, *_ in SPECS]
GAPS = (D("0.3"), D("0.5"), D("0.6"), D("0.8"), D("0.9"), D("0.97"), D("1.03"), D("1.1"), D("1.25"), D("1.5"), D("2"), D("3"))

fees = st.sampled_from([D("0"), D("0.0002"), D("0.0005"), D("0.001")])
lots = st.one_of(st.integers(1, 1_000), st.integers(1_000, 100_000), st.integers(100_000, 3_000_000))
signs = st.sampled_from([1, -1])


def cents(x: Fraction) -> Decimal:
    return round_price(x, D("0.01"), Rounding.HALF_EVEN)


@st.composite
def leg(draw, symbol: str, sign: int | None = None) -> tuple[str, Decimal, Fraction]:
    """(symbol, signed size, the initial margin it was opened with at the starting mark)."""
    s = sign if sign is not None else draw(signs)
    size = D(draw(lots)) * D("0.001") * s
    leverage = draw(st.integers(1, 125))
    entry = Fraction(START[symbol]) * (1 + Fraction(draw(st.integers(-500, 500)), 10_000))
    margin = abs(Fraction(size)) * entry / leverage
    return symbol, size, margin - Fraction(size) * entry  # margin and cost in quote-balance form


@st.composite
def isolated_unit(draw):
    symbol = draw(st.sampled_from(SYMBOLS))
    symbol, size, quote = draw(leg(symbol))
    extra = Fraction(draw(st.integers(-20_000, 200_000)), 100)
    return ("isolated", symbol, size, cents(quote + extra))


@st.composite
def cross_unit(draw):
    markets = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True))
    legs = []
    balance = Fraction(0)
    for symbol in markets:
        if draw(st.integers(0, 5)) == 0:  # hedge mode: a long and a short leg in this market
            for s in (1, -1):
                _, size, part = draw(leg(symbol, s))
                legs.append((symbol, size))
                balance += part
        else:
            _, size, part = draw(leg(symbol))
            legs.append((symbol, size))
            balance += part
    balance += Fraction(draw(st.integers(-20_000, 500_000)), 100)
    collateral: Fraction | Decimal = cents(balance)
    if draw(st.booleans()):
        collateral = Fraction(collateral) + Fraction(draw(st.integers(1, 2)), 3)  # not a decimal number
    return ("cross", collateral, tuple(legs))


units = st.one_of(isolated_unit(), cross_unit())
keys = st.integers(0, 14)
operations = st.one_of(
    st.tuples(st.just("tick"), st.sampled_from(SYMBOLS),
              st.sampled_from(["walk", "gap", "boundary", "above", "below", "floor"]), st.integers(0, 10**6)),
    st.tuples(st.just("ticks"), st.lists(st.sampled_from(SYMBOLS), min_size=2, max_size=3, unique=True),
              st.integers(-40, 40)),
    st.tuples(st.just("upsert"), keys, units),
    st.tuples(st.just("remove"), keys),
    st.tuples(st.just("all"),),
)


def solver_lp(scanner: ReferenceScanner, key, symbol: str, fee: Decimal) -> Fraction | None:
    """The calculator's liquidation price of ``symbol`` for a unit, the other marks fixed (entry = mark)."""
    unit = scanner.unit(key)
    legs = []
    wallet = Fraction(unit.balance)
    for sym, size in unit.positions:
        mark = scanner.mark(sym)
        legs.append(PositionLeg(sym, Side.LONG if size > 0 else Side.SHORT, abs(size), mark, mark,
                                scanner.markets[sym].tiers))
        wallet += Fraction(size) * mark
    mode = MarginMode.ISOLATED if unit.kind == "isolated" else MarginMode.CROSS
    return liquidation_price(GENERIC, mode, wallet, legs, target=symbol, taker_fee=fee).liquidation_price


def on_grid(symbol: str, price: Fraction) -> Decimal:
    return max(round_price(price, TICK[symbol], Rounding.HALF_EVEN), TICK[symbol])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    fee=fees,
    population=st.lists(st.tuples(keys, units), min_size=1, max_size=15),
    ops=st.lists(operations, min_size=1, max_size=30),
    resync_every=st.sampled_from([1, 3, 4096, 4096]),
)
def test_fast_and_reference_flag_the_same_units(fee, population, ops, resync_every) -> None:
    markets = [ScanMarket(sym, REAL[key], fee) for sym, key, _, _ in SPECS]
    scanners = (ReferenceScanner(markets, START), FastScanner(markets, START, resync_every=resync_every))
    reference, fast = scanners

    def upsert(key, unit) -> None:
        for scanner in scanners:
            if unit[0] == "isolated":
                scanner.upsert_isolated(key, unit[1], unit[2], unit[3])
            else:
                scanner.upsert_cross(key, unit[1], unit[2])

    def scan(marks: dict) -> list:
        results = [s.scan_marks(marks) for s in scanners]
        assert results[0] == results[1], (marks, results)
        return results[0]

    for key, unit in population:
        upsert(key, unit)
    scan(dict(START))

    for op in ops:
        if op[0] == "upsert":
            upsert(op[1], op[2])
        elif op[0] == "remove":
            if op[1] in reference:
                for scanner in scanners:
                    scanner.remove(op[1])
        elif op[0] == "all":
            results = [s.scan_all() for s in scanners]
            assert results[0] == results[1]
        elif op[0] == "ticks":
            _, symbols, steps = op
            scan({sym: on_grid(sym, reference.mark(sym) + steps * Fraction(TICK[sym])) for sym in symbols})
        else:
            _, symbol, mode, pick = op
            mark = Fraction(reference.mark(symbol))
            exposed = [k for k in reference if symbol in reference.unit(k).symbols]
            accounts = [k for k in exposed if len(reference.unit(k).positions) > 1]
            if accounts and pick % 2:  # half the time, aim at a cross account of several legs
                exposed = accounts
            target = exposed[pick % len(exposed)] if exposed else None
            new: Fraction | Decimal
            if mode in ("boundary", "above", "below") and target is not None:
                lp = solver_lp(reference, target, symbol, fee)
                if lp is None:
                    mode = "walk"
                else:
                    side = {"boundary": 0, "above": 1, "below": -1}[mode]
                    new = lp + side * Fraction(TICK[symbol])
                    if new <= 0:
                        mode = "walk"
            elif mode == "floor" and target is not None:
                sizes = [abs(q) for sym, q in reference.unit(target).positions if sym == symbol]
                floors = reference.markets[symbol].tiers.tiers[1:]
                tier = floors[pick % len(floors)]
                new = Fraction(tier.floor) / Fraction(sizes[pick % len(sizes)])
            elif mode in ("boundary", "above", "below", "floor"):
                mode = "walk"
            if mode == "walk":
                new = on_grid(symbol, mark + (pick % 81 - 40) * Fraction(TICK[symbol]))
            elif mode == "gap":
                new = on_grid(symbol, mark * Fraction(GAPS[pick % len(GAPS)]))
            event(f"tick: {mode}")
            flagged = scan({symbol: new})
            if mode == "boundary":
                assert target in flagged  # exactly at the liquidation price: margin ratio 100 %, liquidated
                equity, requirement = reference.margin(target)
                assert equity == requirement


single_tables = st.builds(
    lambda mmr, amount: TierTable.single("X", D(mmr) / 10_000, D(amount)),
    st.integers(1, 5_000), st.integers(0, 50_000),
)  # one tier with a maintenance amount: MM = N·mmr − amount, h(0) ≠ 0


@settings(max_examples=500, deadline=None)
@given(
    table=st.one_of(st.sampled_from(sorted(REAL)).map(REAL.__getitem__), single_tables),
    fee=fees,
    sign=signs,
    size_lots=lots,
    quote_cents=st.integers(-10**12, 10**12),
    cross=st.booleans(),
    third=st.sampled_from([0, 0, 1, 2]),
)
def test_single_position_threshold_flips_at_the_exact_liquidation_price(
    table, fee, sign, size_lots, quote_cents, cross, third
) -> None:
    """The fast scanner's one-comparison threshold (over all tiers) against the exact solver, on every real table
    (balances in cents, or cents plus a third: the Fraction path of the threshold)."""
    market = ScanMarket("X", table, fee)
    size = D(size_lots) * D("0.001") * sign
    quote: Decimal | Fraction = D(quote_cents) / 100
    if third:
        quote = Fraction(quote) + Fraction(third, 3)
    scanners = (ReferenceScanner([market], {"X": D(1)}), FastScanner([market], {"X": D(1)}))
    for s in scanners:
        if cross:
            s.upsert_cross("u", quote, [("X", size)])
        else:
            s.upsert_isolated("u", "X", size, quote)
    lp = solver_lp(scanners[0], "u", "X", fee)
    event("no liquidation price" if lp is None else "liquidation price")
    probes = [Fraction(1, 1000), Fraction(10**9)]
    if lp is not None:
        probes += [lp, lp * (1 + Fraction(1, 10**15)), lp * (1 - Fraction(1, 10**15)), lp + 1, max(lp - 1, lp / 2)]
    for mark in probes:
        results = [s.scan("X", mark) for s in scanners]
        assert results[0] == results[1], (mark, results)
        if mark == lp:
            assert results[0] == ["u"]


@st.composite
def account(draw):
    """A cross account of two or three markets with large positions (their notionals span several tiers)."""
    markets = draw(st.lists(st.sampled_from(SYMBOLS), min_size=2, max_size=3, unique=True))
    legs, balance = [], Fraction(0)
    for symbol in markets:
        sign = draw(signs)
        size = D(draw(st.integers(10_000, 3_000_000))) * D("0.001") * sign
        leverage = draw(st.integers(2, 40))
        entry = Fraction(START[symbol])
        legs.append((symbol, size))
        balance += abs(Fraction(size)) * entry / leverage - Fraction(size) * entry
    return cents(balance), tuple(legs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fee=fees,
    accounts=st.lists(account(), min_size=1, max_size=6),
    ticks=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2), st.sampled_from([0, 0, 1, -1])), min_size=1, max_size=12),
)
def test_cross_accounts_follow_tier_changes_to_their_liquidation_prices(fee, accounts, ticks) -> None:
    """Marks jump straight to (or a tick beside) a cross account's liquidation price in one market — usually in
    another tier than the last mark — without the fast scanner's periodic rebuild to fix its tiers."""
    markets = [ScanMarket(sym, REAL[key], fee) for sym, key, _, _ in SPECS]
    scanners = (ReferenceScanner(markets, START), FastScanner(markets, START, resync_every=65_536))
    reference = scanners[0]
    for i, (collateral, legs) in enumerate(accounts):
        for scanner in scanners:
            scanner.upsert_cross(i, collateral, legs)
    for which, market, side in ticks:
        key = which % len(accounts)
        symbols = sorted(reference.unit(key).symbols)
        symbol = symbols[market % len(symbols)]
        lp = solver_lp(reference, key, symbol, fee)
        if lp is None or lp + side * Fraction(TICK[symbol]) <= 0:
            continue
        mark = lp + side * Fraction(TICK[symbol])
        results = [s.scan(symbol, mark) for s in scanners]
        assert results[0] == results[1], (symbol, mark, results)
        if side == 0:
            assert key in results[0]


funding_ops = st.one_of(
    st.tuples(st.just("funding"), st.sampled_from(SYMBOLS), st.integers(-300, 300)),  # rate in basis points
    st.tuples(st.just("tick"), st.sampled_from(SYMBOLS), st.sampled_from(["walk", "gap", "boundary", "above", "below"]),
              st.integers(0, 10**6)),
    st.tuples(st.just("upsert"), keys, units),
    st.tuples(st.just("remove"), keys),
    st.tuples(st.just("all"),),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    fee=fees,
    population=st.lists(st.tuples(keys, units), min_size=1, max_size=15),
    ops=st.lists(funding_ops, min_size=1, max_size=30),
    resync_every=st.sampled_from([1, 4096]),
)
def test_units_marked_stale_by_funding_flag_what_revalued_units_flag(fee, population, ops, resync_every) -> None:
    """Funding settled without re-valuing every unit (``mark_stale`` with the bound ``M·|F|``, then the stale
    candidates re-valued by the caller and scanned again) flags exactly what scanners given every unit's new
    balance flag — marks aimed at the exact liquidation prices *after* the settlement included, where a unit
    still carrying its old balance would be missed unless the screen was widened enough."""
    markets = [ScanMarket(sym, REAL[key], fee) for sym, key, _, _ in SPECS]
    eager = ReferenceScanner(markets, START)  # every funding payment applied to every unit
    lazy = (ReferenceScanner(markets, START), FastScanner(markets, START, resync_every=resync_every))
    truth: dict = {}  # key → the unit's balance with every payment

    def upsert(key, unit) -> None:
        truth[key] = unit[3] if unit[0] == "isolated" else unit[1]
        for scanner in (eager, *lazy):
            if unit[0] == "isolated":
                scanner.upsert_isolated(key, unit[1], unit[2], unit[3])
            else:
                scanner.upsert_cross(key, unit[1], unit[2])

    def scan(marks: dict) -> list:
        expected = eager.scan_marks(marks)
        assert eager.stale_candidates == []
        for scanner in lazy:
            found = scanner.scan_marks(marks)
            if scanner.stale_candidates:
                event("stale candidates re-valued")
                for key in scanner.stale_candidates:
                    assert scanner.is_stale(key)
                    scanner.rebalance(key, truth[key])
                found = sorted(found + scanner.confirm_stale(), key=scanner._seq.__getitem__)
                assert scanner.stale_candidates == []
                assert scanner.scan_marks(marks) == found  # a second scan adds nothing
            assert found == expected, (type(scanner).__name__, marks, found, expected)
        return expected

    for key, unit in population:
        upsert(key, unit)
    scan(dict(START))
    for op in ops:
        if op[0] == "upsert":
            upsert(op[1], op[2])
        elif op[0] == "remove":
            if op[1] in eager:
                for scanner in (eager, *lazy):
                    scanner.remove(op[1])
                del truth[op[1]]
        elif op[0] == "all":
            expected = eager.scan_all()
            for scanner in lazy:
                found = scanner.scan_all()
                for key in scanner.stale_candidates:
                    scanner.rebalance(key, truth[key])
                if scanner.stale_candidates:
                    found = scanner.scan_all()
                assert found == expected
        elif op[0] == "funding":
            _, symbol, bps = op
            mark, rate = Fraction(eager.mark(symbol)), Fraction(bps, 10_000)
            for key in list(eager):
                unit = eager.unit(key)
                credit = sum((-Fraction(size) * mark * rate for sym, size in unit.positions if sym == symbol), Fraction(0))
                if credit:
                    truth[key] = Fraction(truth[key]) + credit  # longs pay when the rate is positive
                    eager.rebalance(key, truth[key])
            for scanner in lazy:
                scanner.mark_stale(symbol, mark * abs(rate))
            event("funding" if bps else "funding at a zero rate")
        else:
            _, symbol, mode, pick = op
            mark = Fraction(eager.mark(symbol))
            exposed = [k for k in eager if symbol in eager.unit(k).symbols]
            target = exposed[pick % len(exposed)] if exposed else None
            new = None
            if mode in ("boundary", "above", "below") and target is not None:
                lp = solver_lp(eager, target, symbol, fee)  # with the balance after every settlement
                side = {"boundary": 0, "above": 1, "below": -1}[mode]
                if lp is not None and lp + side * Fraction(TICK[symbol]) > 0:
                    new = lp + side * Fraction(TICK[symbol])
            if new is None:
                new = on_grid(symbol, mark * Fraction(GAPS[pick % len(GAPS)])) if mode == "gap" else \
                    on_grid(symbol, mark + (pick % 81 - 40) * Fraction(TICK[symbol]))
                mode = "walk"
            flagged = scan({symbol: new})
            if mode == "boundary":
                assert target in flagged


def test_mark_stale_refuses_bad_input_and_changes_nothing() -> None:
    market = ScanMarket("BTCUSDT", REAL["BTC/USDT:USDT"], D("0.0005"))
    for scanner in (ReferenceScanner([market], {"BTCUSDT": D(100_000)}), FastScanner([market], {"BTCUSDT": D(100_000)})):
        scanner.upsert_isolated("u", "BTCUSDT", D("1"), D("-95000"))
        for symbol, bound, field in (("ETHUSDT", D(1), "symbol"), ("BTCUSDT", D(-1), "loss_per_size"),
                                     ("BTCUSDT", float("nan"), "loss_per_size")):
            try:
                scanner.mark_stale(symbol, bound)
            except ValidationError as err:
                assert err.field == field
            else:
                raise AssertionError(f"mark_stale({symbol!r}, {bound!r}) was accepted")
        assert not scanner.is_stale("u")
        scanner.mark_stale("BTCUSDT", D(0))  # nothing moved: still fresh
        assert not scanner.is_stale("u")
        scanner.mark_stale("BTCUSDT", D(10))
        assert scanner.is_stale("u")
        scanner.rebalance("u", D("-95010"))
        assert not scanner.is_stale("u")


def test_a_unit_never_liquidatable_before_funding_is_checked_after_it() -> None:
    """A fully collateralized long (positive quote balance: no liquidation price) that funding pushes below zero:
    the fast scanner holds it in no threshold array, so after ``mark_stale`` it must be listed for re-valuation
    (and then flagged at a mark under its new liquidation price)."""
    market = ScanMarket("BTCUSDT", REAL["BTC/USDT:USDT"], D("0.0005"))
    marks = {"BTCUSDT": D(100_000)}
    for scanner in (ReferenceScanner([market], marks), FastScanner([market], marks)):
        scanner.upsert_cross("u", D("10"), [("BTCUSDT", D("1"))])  # 100,010 of collateral for 1 BTC bought at 100,000
        assert scanner.scan("BTCUSDT", D("0.1")) == []  # no price liquidates it
        scanner.mark_stale("BTCUSDT", D(100_000) * D("0.003"))  # it paid 300 of funding at a 0.3 % rate
        assert scanner.scan("BTCUSDT", D("100")) == []
        assert scanner.stale_candidates == ["u"]
        try:
            scanner.confirm_stale()  # not re-valued yet: refused, and still listed
        except ValidationError as err:
            assert err.field == "stale_candidates"
        else:
            raise AssertionError("confirm_stale accepted a stale unit")
        assert scanner.stale_candidates == ["u"]
        scanner.rebalance("u", D("-290"))
        assert scanner.confirm_stale() == ["u"]  # 100 < its new liquidation price (~291.6)
        assert scanner.stale_candidates == []
        assert scanner.scan("BTCUSDT", D("100")) == ["u"]


def test_a_scanner_pickled_before_staleness_existed_loads_and_handles_funding() -> None:
    """Engine snapshots pickle the scanner.  One from before ``mark_stale`` (no clock, no freshness on the
    entries, no list of never-liquidatable units) loads with nothing stale, lists those units again, and then
    catches a never-liquidatable long that a settlement pushes under."""
    import pickle

    market = ScanMarket("BTCUSDT", REAL["BTC/USDT:USDT"], D("0.0005"))
    scanner = FastScanner([market], {"BTCUSDT": D(100_000)})
    scanner.upsert_cross("never", D("10"), [("BTCUSDT", D("1"))])
    scanner.upsert_isolated("iso", "BTCUSDT", D("-1"), D("110000"))
    for name in ("_clock", "_stale_since", "_stored_at", "stale_candidates"):  # the former layout
        delattr(scanner, name)
    for mi in scanner._index.values():
        for name in ("sigma_min", "never", "never_stale"):
            delattr(mi, name)
    for entry in scanner._handles:
        del entry.stored_at
    loaded = pickle.loads(pickle.dumps(scanner))
    assert not loaded.is_stale("never") and not loaded.is_stale("iso")
    assert loaded.scan("BTCUSDT", D("100")) == []
    loaded.mark_stale("BTCUSDT", D(100_000) * D("0.003"))
    assert loaded.scan("BTCUSDT", D("100")) == [] and loaded.stale_candidates == ["never"]
    loaded.rebalance("never", D("-290"))
    assert loaded.confirm_stale() == ["never"]
