"""The engine's exact-decimal fast paths (margin on entry, the mark band, a reduction's cost, isolated margin on
open, the margin of an amended order) decide exactly as the rational reference code: an engine with ``fast_paths`` off is the reference, and
both must emit the same events, refuse with the same field and message, and reach the same state hash — on
random command sequences and at the refusal boundaries (required == available, leverage at a tier boundary,
trades at the edge of the mark band).  The decimal figures themselves are checked against the functions they
stand for (collateral value, available balance, cross equity less order margin, the scanner's balance of a
cross unit)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from perprisk import commands as c
from perprisk.book import FastOrderBook, NaiveOrderBook
from perprisk.book.orders import OrderRequest, OrderType, Side
from perprisk.engine import Engine, EngineConfig, _at_most_zero
from perprisk.errors import ValidationError
from perprisk.instrument import Instrument, load_tier_table
from perprisk.money import Fraction, Rounding, round_to_step
from perprisk.paths import BINANCE_TIERS_FILE
from tests_support import btc_instrument

ETH = Instrument.create(symbol="ETHUSDT", base="ETH", settle="USDT", tick_size="0.01", lot_size="0.001",
                        min_size="0.001", maker_fee="-0.0001", taker_fee="0.0005",
                        tiers=load_tier_table(BINANCE_TIERS_FILE, "ETHUSDT"))
CONFIG = EngineConfig(markets=(btc_instrument(), ETH))
ACCOUNTS = (1, 2, 3, 4, 5)  # 5 is in hedge mode
STEP = D("0.00000001")


class ReferenceEngine(Engine):
    fast_paths = False


def outcome(engine: Engine, command) -> tuple:
    try:
        return ("ok", repr(engine.execute(command)))
    except ValidationError as err:
        return ("refused", err.field, err.message)


def run_both(commands, config: EngineConfig = CONFIG, setup=()) -> list:
    """Feed both engines the same commands; every outcome and every state hash must agree."""
    fast, reference = Engine(config), ReferenceEngine(config)
    outcomes = []
    for command in (*setup, *commands):
        got, expected = outcome(fast, command), outcome(reference, command)
        assert got == expected, command
        assert fast.state_hash() == reference.state_hash(), command
        outcomes.append(got)
    return outcomes


def setup_commands() -> list:
    out = []
    for account in ACCOUNTS:
        out.append(c.CreateAccount("hedge" if account == 5 else "one_way"))
        out.append(c.Deposit(account, "USDT", D(2_000 if account > 1 else 10**8)))
    out.append(c.Deposit(2, "BTC", D("0.01")))  # priced collateral (with a haircut)
    out.append(c.Deposit(3, "USDC", D(500)))
    out.append(c.SetMarkPrice("BTCUSDT", D("100000.0"), 0))
    out.append(c.SetMarkPrice("ETHUSDT", D("2500.00"), 0))
    return out


# ------------------------------------------------------------------------------ random command sequences

accounts = st.sampled_from(ACCOUNTS + (9,))
symbols = st.sampled_from(["BTCUSDT", "ETHUSDT"])
leverages = st.sampled_from([1, 2, 3, 5, 7, 11, 20, 50, 75, 100, 125, 150, 200]).map(D)


@st.composite
def near_mark(draw, symbol: str):
    """A price on the grid around the mark, often at (or one tick beyond) the edge of the 5 % band."""
    mark = D("100000.0") if symbol == "BTCUSDT" else D("2500.00")
    tick = D("0.1") if symbol == "BTCUSDT" else D("0.01")
    edge = draw(st.sampled_from([D(0), D("0.05"), D("-0.05"), D("0.049"), D("-0.02"), D("0.01")]))
    offset = draw(st.integers(-2, 2)) * tick
    return round_to_step(mark * (1 + edge), tick, Rounding.HALF_EVEN) + offset


@st.composite
def block_trade(draw):
    symbol = draw(symbols)
    lots = draw(st.one_of(st.integers(1, 40), st.integers(1, 4000)))
    quantity = D(lots) * D("0.001")
    return c.BlockTrade(draw(accounts), draw(accounts), symbol, draw(st.sampled_from(["buy", "sell"])), quantity,
                        draw(near_mark(symbol)), draw(st.booleans()))


@st.composite
def place_order(draw):
    symbol = draw(symbols)
    order_type = draw(st.sampled_from(["limit", "limit", "market", "stop_market"]))
    price = draw(near_mark(symbol)) if order_type == "limit" else None
    trigger = draw(near_mark(symbol)) if order_type == "stop_market" else None
    account = draw(accounts)
    return c.PlaceOrder(account, symbol, draw(st.sampled_from(["buy", "sell"])),
                        D(draw(st.integers(1, 3000))) * D("0.001"), order_type=order_type, price=price,
                        trigger_price=trigger, reduce_only=draw(st.booleans()),
                        position_side=draw(st.sampled_from(["long", "short"])) if account == 5 else None)


@st.composite
def amend_order(draw):
    """An amendment of one of the first orders: a new price near the mark and/or a new quantity (larger ones
    need more margin: the fast path of the check decides those)."""
    symbol = draw(symbols)
    price = draw(st.one_of(st.none(), near_mark(symbol)))
    quantity = draw(st.one_of(st.none(), st.integers(1, 6000).map(lambda n: D(n) * D("0.001"))))
    assume(price is not None or quantity is not None)
    return c.AmendOrder(draw(accounts), symbol, draw(st.integers(1, 30)), price=price, quantity=quantity)


@st.composite
def mark_move(draw):
    symbol = draw(symbols)
    base = 100_000 if symbol == "BTCUSDT" else 2_500
    factor = D(draw(st.integers(80_000, 120_000))) / 100_000
    mark = (base * factor).quantize(D("0.001"))  # a mark need not lie on the tick grid
    return c.SetMarkPrice(symbol, mark, draw(st.integers(1, 10**6)))


def commands():
    return st.one_of(
        block_trade(), block_trade(), block_trade(), place_order(), place_order(), mark_move(),
        st.builds(c.SetLeverage, accounts, symbols, leverages),
        st.builds(c.SetMarginMode, accounts, symbols, st.sampled_from(["cross", "isolated"])),
        st.builds(c.Deposit, accounts, st.sampled_from(["USDT", "BTC", "ETH"]),
                  st.integers(1, 5_000).map(lambda n: D(n) / 100)),
        st.builds(c.Withdraw, accounts, st.just("USDT"), st.integers(1, 3_000).map(D)),
        st.builds(c.CancelOrder, accounts, symbols, st.integers(1, 30)),
        amend_order(), amend_order(),
        st.builds(c.AdjustIsolatedMargin, accounts, symbols, st.integers(-500, 500).map(D)),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=1, max_size=50))
def test_fast_paths_decide_as_the_reference(sequence):
    run_both(sequence, setup=setup_commands())


# ------------------------------------------------------------------------------ the decimal figures themselves


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=1, max_size=40))
def test_decimal_figures_equal_the_rational_functions(sequence):
    engine = Engine(CONFIG)
    for command in (*setup_commands(), *sequence):
        try:
            engine.execute(command)
        except ValidationError:
            pass
        for account in (engine.accounts[i] for i in ACCOUNTS if i in engine.accounts):
            collateral = engine._collateral_exact(account.wallet)
            assert collateral is not None and Fraction(collateral) == engine.collateral_value(account.wallet)
            parts = engine._cross_margin_exact(account)
            assert parts is not None
            base, terms = parts
            assert Fraction(base) == engine.cross_equity(account)
            available = Fraction(base) - sum((Fraction(n) / Fraction(lev) for lev, n in terms.items()), Fraction(0))
            assert available == engine.available_balance(account)
            base, terms = engine._cross_margin_exact(account, with_positions=False)
            margin = Fraction(base) - sum((Fraction(n) / Fraction(lev) for lev, n in terms.items()), Fraction(0))
            assert margin == engine.cross_equity(account) - engine.order_margin(account)
            # the scanner's balance of a cross unit (its fast path also covers reduce-only orders: no margin)
            scan_balance = engine._scan_collateral(account, engine.orders.of(account.account_id))
            assert Fraction(scan_balance) == engine.collateral_value(account.wallet) - engine.order_margin(account)


@settings(max_examples=300, deadline=None)
@given(st.integers(-10**9, 10**9), st.integers(0, 4).map(lambda k: D(1) / 10**k),
       st.dictionaries(st.sampled_from([1, 2, 3, 7, 20, 125, D("2.5"), D("33.3")]).map(D),
                       st.integers(0, 10**12).map(lambda n: D(n) / 1000), max_size=4))
def test_at_most_zero_is_the_rational_comparison(numerator, scale, terms):
    constant = D(numerator) * scale
    expected = Fraction(constant) + sum((Fraction(n) / Fraction(lev) for lev, n in terms.items()), Fraction(0)) <= 0
    decided = _at_most_zero(constant, terms)
    assert decided is None or decided == expected
    if len(terms) <= 1:
        assert decided is not None  # one leverage: always decided (no division)
    if len(terms) == 1:  # exactly at zero: c = −n/L
        ((lev, n),) = terms.items()
        if (Fraction(n) / Fraction(lev)).denominator in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 1000):
            zero = -Fraction(n) / Fraction(lev)
            at_zero = D(zero.numerator) / D(zero.denominator)
            assert _at_most_zero(at_zero, terms) is True


PRECISIONS = (STEP, D("0.01"), D("1E-12"), D("0.5"))
ENGINES = {step: (Engine(replace(CONFIG, balance_precision=step)),
                  ReferenceEngine(replace(CONFIG, balance_precision=step))) for step in PRECISIONS}


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 10**7).map(lambda n: D(n) / 1000), st.integers(1, 10**8).map(lambda n: D(n) / 100),
       st.sampled_from([1, 2, 3, 6, 7, 9, 11, 20, 33, 125, "2.5", "33.3"]).map(D), st.sampled_from(PRECISIONS))
def test_isolated_margin_on_open_is_the_rational_rounding(quantity, price, leverage, step):
    fast, reference = ENGINES[step]
    expected = round_to_step(Fraction(quantity) * Fraction(price) / Fraction(leverage), step, Rounding.CEILING)
    got = fast._isolated_margin_on_open(quantity, price, leverage)
    assert got == expected and str(got) == str(expected)  # the same figure, written the same way
    assert str(reference._isolated_margin_on_open(quantity, price, leverage)) == str(expected)


# ------------------------------------------------------------------------------ refusal boundaries


def required_margin(quantity: D, price: D, mark: D, leverage: D, fee: D, side: str) -> Fraction:
    notional = Fraction(quantity) * Fraction(price)
    worse = (Fraction(price) - Fraction(mark)) * (1 if side == "buy" else -1)
    return notional / Fraction(leverage) + notional * max(Fraction(fee), Fraction(0)) + max(
        Fraction(quantity) * worse, Fraction(0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3000), st.sampled_from([1, 2, 3, 7, 9, 20, 100, 125]).map(D), st.integers(-50, 50),
       st.sampled_from(["buy", "sell"]), st.sampled_from(["cross", "isolated"]), st.sampled_from([-1, 0, 1]),
       st.booleans())
def test_required_equal_to_available_is_the_boundary(lots, leverage, ticks_away, side, mode, nudge, with_order):
    """A deposit of exactly the required margin (when that is a whole number of 1e-8) fits; 1e-8 less does not —
    and both engines agree, message included."""
    inst = btc_instrument()
    mark, quantity = D("100000.0"), D(lots) * D("0.001")
    price = mark + ticks_away * D("0.1")
    # the leverage must fit the tier of the notional, or the refusal is about the tier (tested below)
    assume(leverage <= inst.tiers.tier_for_notional_clamped(quantity * price).max_leverage)
    required = required_margin(quantity, price, mark, leverage, inst.taker_fee, side)
    if with_order:  # a resting order of the trader reserves margin too (its own leverage: the same market's)
        required += Fraction(D("0.001") * D("90000.0")) / Fraction(leverage)
    deposit = round_to_step(required, STEP, Rounding.CEILING) + nudge * STEP
    setup = [c.CreateAccount(), c.CreateAccount(), c.Deposit(1, "USDT", D(10**9)),
             c.SetMarkPrice("BTCUSDT", mark, 0), c.SetMarginMode(2, "BTCUSDT", mode),
             c.SetLeverage(2, "BTCUSDT", leverage), c.Deposit(2, "USDT", deposit)]
    if with_order:
        setup.append(c.PlaceOrder(2, "BTCUSDT", "buy", D("0.001"), price=D("90000.0")))
    config = EngineConfig(markets=(inst,))
    (result,) = run_both([c.BlockTrade(2, 1, "BTCUSDT", side, quantity, price)], config, setup)[-1:]
    assert (result[0] == "ok") == (Fraction(deposit) >= required), (result, deposit, required)
    if result[0] == "refused":
        assert result[1] == "quantity" and result[2].startswith("initial margin")


@pytest.mark.parametrize("lots_below_cap", [1, 0, -1])
@pytest.mark.parametrize("leverage", ["125", "100", "150"])
def test_leverage_at_a_tier_boundary(lots_below_cap, leverage):
    """Tier 1 of BTCUSDT ends at a notional of 300,000 (150×), tier 2 allows 100×: at exactly the cap the
    resulting notional is in tier 2."""
    inst = btc_instrument()
    price = D("100000.0")
    quantity = D(3) - lots_below_cap * D("0.001")  # 3 BTC × 100,000 = the cap
    setup = [c.CreateAccount(), c.CreateAccount(), c.Deposit(1, "USDT", D(10**9)), c.Deposit(2, "USDT", D(10**6)),
             c.SetMarkPrice("BTCUSDT", price, 0), c.SetLeverage(2, "BTCUSDT", D(leverage))]
    (result,) = run_both([c.BlockTrade(2, 1, "BTCUSDT", "buy", quantity, price)], EngineConfig(markets=(inst,)),
                         setup)[-1:]
    in_tier_2 = quantity * price >= inst.tiers.tiers[0].cap
    allowed = D(leverage) <= (inst.tiers.tiers[1].max_leverage if in_tier_2 else inst.tiers.tiers[0].max_leverage)
    assert (result[0] == "ok") == allowed, result
    if not allowed:
        assert result[1] == "quantity" and "lower the leverage" in result[2]


@pytest.mark.parametrize("mark", ["100000.0", "100000.03", "99999.97"])
@pytest.mark.parametrize("ticks", [-1, 0, 1])
@pytest.mark.parametrize("direction", [1, -1])
def test_block_trade_at_the_edge_of_the_mark_band(mark, ticks, direction):
    inst = btc_instrument()
    mark_d = D(mark)
    edge = mark_d * (1 + direction * D("0.05"))
    price = round_to_step(edge, D("0.1"), Rounding.DOWN if direction > 0 else Rounding.UP) + direction * ticks * D("0.1")
    setup = [c.CreateAccount(), c.CreateAccount(), c.Deposit(1, "USDT", D(10**9)), c.Deposit(2, "USDT", D(10**6)),
             c.SetMarkPrice("BTCUSDT", mark_d, 0)]
    (result,) = run_both([c.BlockTrade(2, 1, "BTCUSDT", "buy", D("0.01"), price)], EngineConfig(markets=(inst,)),
                         setup)[-1:]
    away = abs(Fraction(price) - Fraction(mark_d)) > Fraction(mark_d) * Fraction(D("0.05"))
    assert (result[0] == "refused" and result[1] == "price") == away, result


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 400), st.sampled_from([1, 3, 7, 20, 125]).map(D), st.integers(-20, 20),
       st.sampled_from([-1, 0, 1]), st.booleans())
def test_an_amendment_needing_exactly_the_available_balance(lots, leverage, ticks_up, nudge, with_position):
    """Amending a resting buy to a larger quantity (and a price ``ticks_up`` away) needs the extra notional / L:
    a deposit that leaves exactly that available passes, 1e-8 less is refused — on both engines, message
    included."""
    inst = btc_instrument()
    mark, price = D("100000.0"), D("95000.0")
    new_price = price + ticks_up * D("0.1")
    quantity, new_quantity = D("0.01"), D("0.01") + lots * D("0.001")
    extra = Fraction(new_quantity) * Fraction(new_price) - Fraction(quantity) * Fraction(price)
    assume(extra > 0)
    required = (Fraction(quantity) * Fraction(price) + extra) / Fraction(leverage)  # both orders' margin at the end
    setup = [c.CreateAccount(), c.CreateAccount(), c.Deposit(1, "USDT", D(10**9)), c.SetMarkPrice("BTCUSDT", mark, 0),
             c.SetLeverage(2, "BTCUSDT", leverage)]
    if with_position:  # an open position's margin and unrealized PnL (bought above the mark) count too
        setup.append(c.Deposit(2, "USDT", D(10_000)))
        setup.append(c.BlockTrade(2, 1, "BTCUSDT", "buy", D("0.02"), D("100100.0")))
    engine = Engine(EngineConfig(markets=(inst,)))
    for command in setup:
        engine.execute(command)
    already = engine.available_balance(engine.accounts[2])  # before the order and the amendment's deposit
    deposit = round_to_step(required - already, STEP, Rounding.CEILING) + nudge * STEP
    assume(deposit > 0)
    setup += [c.Deposit(2, "USDT", deposit), c.PlaceOrder(2, "BTCUSDT", "buy", quantity, price=price)]
    (result,) = run_both([c.AmendOrder(2, "BTCUSDT", 1, price=new_price, quantity=new_quantity)],
                         EngineConfig(markets=(inst,)), setup)[-1:]
    assert (result[0] == "ok") == (already + Fraction(deposit) >= required), (result, deposit, required)
    if result[0] == "refused":
        assert result[1] == "quantity" and "initial margin exceeds the available balance" in result[2]


@pytest.mark.parametrize("nudge", [-1, 0, 1])
@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_a_reduction_costing_exactly_its_margin(nudge, mode):
    """Closing away from the mark costs the loss against the mark plus the fee; at exactly the margin left it
    passes, beyond it is refused — the same way on both engines."""
    inst = btc_instrument()
    setup = [c.CreateAccount(), c.CreateAccount(), c.Deposit(1, "USDT", D(10**9)), c.Deposit(2, "USDT", D(600)),
             c.SetMarkPrice("BTCUSDT", D("100000.0"), 0), c.SetMarginMode(2, "BTCUSDT", mode),
             c.SetLeverage(2, "BTCUSDT", D(20)), c.BlockTrade(2, 1, "BTCUSDT", "buy", D("0.1"), D("100000.0")),
             c.SetMarkPrice("BTCUSDT", D("95500.0"), 1)]
    engine = Engine(EngineConfig(markets=(inst,)))
    for command in setup:
        engine.execute(command)
    position = engine.accounts[2].position("BTCUSDT", "both")
    equity = (engine.isolated_equity(position) if mode == "isolated"
              else engine.cross_equity(engine.accounts[2]) - engine.order_margin(engine.accounts[2]))
    # selling 0.1 at P < mark costs 0.1 × (mark − P) + 0.1 × P × fee = 9550 − 0.1 P (1 − fee)
    fee = Fraction(inst.taker_fee)
    exact_price = (Fraction(9550) - equity) / (Fraction(1, 10) * (1 - fee))
    price = round_to_step(exact_price, D("0.1"), Rounding.CEILING) - nudge * D("0.1")
    (result,) = run_both([c.BlockTrade(2, 1, "BTCUSDT", "sell", D("0.1"), price, True)],
                         EngineConfig(markets=(inst,)), setup)[-1:]
    cost = Fraction(D("0.1")) * (Fraction(D("95500.0")) - Fraction(price)) + Fraction(D("0.1")) * Fraction(price) * fee
    assert (result[0] == "ok") == (cost <= equity), (result, cost, equity)


def test_an_undecidable_figure_falls_back_to_the_reference():
    """Leverages with non-terminating quotients spread over two markets (several groups to divide) leave the
    decimal comparison undecided; the reference then decides, the same as with the fast paths off."""
    setup = [c.CreateAccount(), c.CreateAccount(), c.Deposit(1, "USDT", D(10**9)), c.Deposit(2, "USDT", D(5000)),
             c.SetMarkPrice("BTCUSDT", D("100000.0"), 0), c.SetMarkPrice("ETHUSDT", D("2500.00"), 0),
             c.SetLeverage(2, "BTCUSDT", D(3)), c.SetLeverage(2, "ETHUSDT", D(7)),
             c.BlockTrade(2, 1, "ETHUSDT", "buy", D("1.001"), D("2500.00"))]
    engine = Engine(CONFIG)
    for command in setup:
        engine.execute(command)
    _, terms = engine._cross_margin_exact(engine.accounts[2])
    assert list(terms) == [D(7)]
    account, price = engine.accounts[2], D("100000.0")
    assert not engine._opening_fits(account, "BTCUSDT", D("0.001"), price, D(0))  # 2502.5/7 + 100/3: undecided
    for lots in (1, 2, 3, 30, 99, 100, 101, 120, 150):
        quantity = D(lots) * D("0.001")
        result = run_both([c.BlockTrade(2, 1, "BTCUSDT", "buy", quantity, price)], CONFIG, setup)[-1]
        available = engine.available_balance(account)
        required = Fraction(quantity * price) / 3 + Fraction(quantity * price * D("0.0005"))
        assert (result[0] == "ok") == (required <= available), (lots, result)


# ------------------------------------------------------------------------------ the book's events-only submit


def _two_books_and_requests(book_type, last_bid: str):
    """Two empty books of one kind, and four requests: a resting ask, a market buy partly filling it, a pending
    stop, and a buy at ``last_bid`` (crossing the ask at 101.0, resting at 98.0)."""
    books = book_type("BTCUSDT", "0.1", "0.001"), book_type("BTCUSDT", "0.1", "0.001")
    requests = [
        OrderRequest(1, "a", Side.SELL, "0.5", price="100.0"),
        OrderRequest(2, "b", Side.BUY, "0.2", order_type=OrderType.MARKET),
        OrderRequest(3, "b", Side.SELL, "0.1", order_type=OrderType.STOP_MARKET, trigger_price="99.0"),
        OrderRequest(4, "c", Side.BUY, "1.0", price=last_bid),
    ]
    return books, requests


@pytest.mark.parametrize("book_type", [FastOrderBook, NaiveOrderBook])
def test_submit_events_is_submit_without_the_state(book_type):
    (one, two), requests = _two_books_and_requests(book_type, "101.0")
    for request in requests:
        assert one.submit(request).events == two.submit_events(request)
        assert one.snapshot() == two.snapshot()
    for book in (one, two):
        with pytest.raises(ValidationError) as refused:
            book.submit_events(OrderRequest(5, "c", Side.BUY, "0.5", price="100.0"), max_quantity="0")
        assert refused.value.field == "max_quantity"


@pytest.mark.parametrize("book_type", [FastOrderBook, NaiveOrderBook])
def test_cancel_events_is_cancel_without_the_state(book_type):
    """The engine cancels through ``cancel_events``: the same events and the same book as ``cancel``, for a
    resting order, a partly filled one and a pending stop; an unknown id refused the same way."""
    (one, two), requests = _two_books_and_requests(book_type, "98.0")
    for request in requests:
        one.submit(request)
        two.submit(request)
    for order_id in (1, 3, 4):
        events = two.cancel_events(order_id)
        assert one.cancel(order_id).events == events and len(events) == 1
        assert one.snapshot() == two.snapshot()
    for book in (one, two):
        with pytest.raises(ValidationError) as refused:
            book.cancel_events(1)  # already cancelled
        assert refused.value.field == "order_id"


def test_an_order_is_parsed_once_when_executed_and_again_when_the_state_moved_in_between():
    """``execute`` hands the book's parse from validation to apply (one parse per order); an order validated
    before another command was applied is parsed again at apply, so the book's checks see the state then."""
    engine = Engine(CONFIG)
    for command in (c.CreateAccount(), c.Deposit(1, "USDT", D(100_000)), c.SetMarkPrice("BTCUSDT", D("100000.0"), 0),
                    c.CreateAccount(), c.Deposit(2, "USDT", D(100_000)),
                    c.BlockTrade(1, 2, "BTCUSDT", "buy", D("0.1"), D("100000.0"))):
        engine.execute(command)
    book = engine.markets["BTCUSDT"].book
    parses = []
    original = book._parse
    book._parse = lambda *args: parses.append(args[0].order_id) or original(*args)
    stop = c.PlaceOrder(1, "BTCUSDT", "sell", D("0.1"), order_type="stop_market", trigger_price=D("95000.0"),
                        reduce_only=True)
    engine.execute(stop)
    assert len(parses) == 1 and len(book._stops) == 1
    later = c.PlaceOrder(1, "BTCUSDT", "sell", D("0.1"), order_type="stop_market", trigger_price=D("96000.0"),
                         reduce_only=True)
    engine.validate(later)
    engine.execute(c.SetMarkPrice("BTCUSDT", D("95500.0"), 1))  # the mark moves past the later stop's trigger
    with pytest.raises(ValidationError) as refused:
        engine.apply(later)  # parsed again: the trigger is now crossed
    assert refused.value.field == "trigger_price" and len(parses) == 3
