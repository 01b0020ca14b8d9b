"""The ADL queue screened with float scores gives exactly the head of the exact ranking, and the screened quintiles
the exact ones (SPEC §2.1 step 6)."""

from __future__ import annotations

from decimal import Decimal as D
from unittest.mock import patch

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perprisk import commands as c
from perprisk.account import PositionMode
from perprisk.engine import Engine, EngineConfig
from perprisk.errors import ValidationError
from perprisk.instrument import Instrument, load_tier_table
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.risk import adl
from perprisk.risk.adl import AdlIndex
from perprisk.risk.liquidation import Liquidator
from tests_support import btc_instrument

trader = st.tuples(st.integers(500, 20_000), st.sampled_from([2, 5, 10, 20, 50]), st.sampled_from(["cross", "isolated"]),
                   st.sampled_from(["buy", "sell"]), st.integers(1, 2_000), st.integers(95_000, 105_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trader, min_size=2, max_size=12), st.integers(96_000, 104_000), st.integers(1, 20_000))
def test_screened_queue_head_is_the_exact_head(traders, mark, lots):
    engine = Engine(EngineConfig(markets=(btc_instrument(),)))
    maker = engine.execute(c.CreateAccount())[0].account_id
    engine.execute(c.Deposit(maker, "USDT", D(10**9)))
    engine.execute(c.SetLeverage(maker, "BTCUSDT", D(2)))
    for deposit, leverage, mode, side, qty_lots, price in traders:
        engine.execute(c.SetMarkPrice("BTCUSDT", D(price), 0))
        account = engine.execute(c.CreateAccount())[0].account_id
        engine.execute(c.Deposit(account, "USDT", D(deposit)))
        engine.execute(c.SetMarginMode(account, "BTCUSDT", mode))
        engine.execute(c.SetLeverage(account, "BTCUSDT", D(leverage)))
        qty = D(qty_lots) / 1000
        try:
            engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell" if side == "buy" else "buy", qty, price=D(price)))
            engine.execute(c.PlaceOrder(account, "BTCUSDT", side, qty, price=D(price)))
        except ValidationError:
            pass
        for o in list(engine.orders.of(maker)):
            engine.execute(c.CancelOrder(maker, "BTCUSDT", o.order_id))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(mark), 1))
    quantity = D(lots) / 1000
    for sign in (1, -1):
        exact = engine.liquidator.adl_queue("BTCUSDT", sign)
        screened = engine.liquidator.adl_queue("BTCUSDT", sign, quantity)
        # the screened queue is a prefix of the exact one that covers the quantity (or the whole queue)
        assert screened == exact[: len(screened)]
        covered = sum((abs(p.size) for _, p in screened), D(0))
        assert covered >= min(quantity, sum((abs(p.size) for _, p in exact), D(0)))
    assert engine.liquidator.adl_quintiles("BTCUSDT") == engine.liquidator.adl_quintiles_reference("BTCUSDT")
    assert engine.liquidator.adl_index.repairs == 0


# ---------------------------------------------------------------------------------------------------------------
# The incremental index (AdlIndex) against the plain exact ranking, after every command of random sequences that
# change positions and balances in every way the engine knows: two markets, cross accounts spread over both and
# over priced collateral (BTC), isolated positions, hedge mode, funding, margin moves, liquidations and ADL.

ETH = Instrument.create(symbol="ETHUSDT", base="ETH", settle="USDT", tick_size="0.01", lot_size="0.001",
                        min_size="0.001", maker_fee="0.0002", taker_fee="0.0005",
                        tiers=load_tier_table(BINANCE_TIERS_FILE, "ETHUSDT"))
MARKETS = {"BTCUSDT": 100_000, "ETHUSDT": 2_500}
TRADERS = (2, 3, 4, 5, 6, 7)  # account 1 is the market maker


def two_market_engine() -> Engine:
    engine = Engine(EngineConfig(markets=(btc_instrument(), ETH)))
    for _ in range(1 + len(TRADERS)):
        engine.execute(c.CreateAccount())
    engine.execute(c.Deposit(1, "USDT", D(10**9)))
    for symbol, price in MARKETS.items():
        engine.execute(c.SetLeverage(1, symbol, D(1)))
        engine.execute(c.SetMarkPrice(symbol, D(price), 0))
    for account in TRADERS:
        engine.execute(c.Deposit(account, "USDT", D(1_500)))
        for symbol in MARKETS:
            engine.execute(c.SetLeverage(account, symbol, D(50)))
    return engine


def relative_price(symbol: str, permille: int) -> D:
    step = D("0.1") if symbol == "BTCUSDT" else D("0.01")
    return (D(MARKETS[symbol]) * (1000 + permille) / 1000).quantize(step)


@st.composite
def trade(draw):
    """A trader takes ``qty`` from a resting order of the maker (the maker's order is cancelled after)."""
    symbol = draw(st.sampled_from(sorted(MARKETS)))
    return ("trade", draw(st.sampled_from(TRADERS)), symbol, draw(st.sampled_from(["buy", "sell"])),
            D(draw(st.integers(1, 300))) / 1000 * (40 if symbol == "ETHUSDT" else 1),
            relative_price(symbol, draw(st.integers(-60, 60))), draw(st.sampled_from([None, "long", "short"])))


def adl_commands():
    symbols = st.sampled_from(sorted(MARKETS))
    clock = st.integers(1, 10**6)
    return st.one_of(
        trade(), trade(), trade(), trade(),
        st.tuples(st.just("mark"), symbols, st.integers(-150, 150)),
        st.tuples(st.just("mark"), symbols, st.integers(-150, 150)),
        st.builds(c.SettleFunding, symbols, clock, st.integers(-400, 400).map(lambda bp: D(bp) / 100000)),
        st.builds(c.Deposit, st.sampled_from(TRADERS), st.sampled_from(["USDT", "BTC"]),
                  st.integers(1, 3_000).map(lambda x: D(x) / 1000)),
        st.builds(c.Withdraw, st.sampled_from(TRADERS), st.just("USDT"), st.integers(1, 3_000).map(D)),
        st.builds(c.SetLeverage, st.sampled_from(TRADERS), symbols, st.sampled_from([D(2), D(10), D(50)])),
        st.builds(c.SetMarginMode, st.sampled_from(TRADERS), symbols, st.sampled_from(["cross", "isolated"])),
        st.builds(c.SetPositionMode, st.sampled_from(TRADERS), st.sampled_from(["one_way", "hedge"])),
        st.builds(c.AdjustIsolatedMargin, st.sampled_from(TRADERS), symbols, st.integers(-500, 500).map(D),
                  st.sampled_from([None, "long", "short"])),
    )


def run(engine: Engine, command, clock: list[int]) -> list:
    """Execute one drawn command; returns its events (none if refused)."""
    events: list = []
    try:
        if isinstance(command, tuple) and command[0] == "trade":
            _, account, symbol, side, qty, price, position_side = command
            if engine.accounts[account].position_mode is not PositionMode.HEDGE:
                position_side = None
            elif position_side is None:
                position_side = "long" if side == "buy" else "short"
            maker_side = "sell" if side == "buy" else "buy"
            events += engine.execute(c.PlaceOrder(1, symbol, maker_side, qty, price=price))
            try:
                events += engine.execute(c.PlaceOrder(account, symbol, side, qty, price=price, time_in_force="ioc",
                                                      position_side=position_side))
            finally:
                for order in list(engine.orders.of(1)):
                    events += engine.execute(c.CancelOrder(1, order.symbol, order.order_id))
        elif isinstance(command, tuple):  # a mark move: liquidations meet an empty book, so ADL happens here
            _, symbol, permille = command
            clock[0] += 1
            events += engine.execute(c.SetMarkPrice(symbol, relative_price(symbol, permille), clock[0]))
        else:
            if isinstance(command, c.SettleFunding):
                clock[0] += 1
                command = c.SettleFunding(command.symbol, clock[0], command.rate)
            if isinstance(command, c.AdjustIsolatedMargin) and \
                    engine.accounts[command.account_id].position_mode is not PositionMode.HEDGE:
                command = c.AdjustIsolatedMargin(command.account_id, command.symbol, command.amount)
            events += engine.execute(command)
    except ValidationError:
        pass
    return events


def scores_by_position(index: AdlIndex, symbol: str, sign: int) -> dict[tuple[int, str], float]:
    side, scores = index._scores(symbol, sign)
    return {(side.objects[row][0].account_id, side.objects[row][1].slot): float(scores[row])
            for row in np.flatnonzero(side.rows.alive[: len(scores)]).tolist()}


def assert_cached_scores_are_fresh(engine: Engine) -> None:
    """The scores the index keeps between queries (rescoring only rows changed since) are, position by position,
    the floats an index built from scratch on the live state computes."""
    index = engine.liquidator.adl_index
    fresh = AdlIndex(engine, index.exact)
    try:
        for symbol in MARKETS:
            if engine._mark_or_none(symbol) is not None:
                for sign in (1, -1):
                    assert scores_by_position(index, symbol, sign) == scores_by_position(fresh, symbol, sign)
    finally:
        if fresh._ledger is not None:
            fresh._ledger.unwatch(fresh._changed)


def check_index(engine: Engine) -> None:
    liquidator = engine.liquidator
    assert_cached_scores_are_fresh(engine)
    for symbol in MARKETS:
        if engine._mark_or_none(symbol) is None:
            continue
        for sign in (1, -1):
            exact = liquidator.adl_queue(symbol, sign)
            total = sum((abs(p.size) for _, p in exact), D(0))
            for quantity in {D("0.001"), total / 3, total / 2, total, total + 1}:
                if quantity <= 0:
                    continue
                for exclude in (None, 3):
                    reference = [q for q in exact if q[0].account_id != exclude]
                    screened = liquidator.adl_queue(symbol, sign, quantity, exclude=exclude)
                    assert screened == reference[: len(screened)]
                    covered = sum((abs(p.size) for _, p in screened), D(0))
                    wanted = min(quantity, sum((abs(p.size) for _, p in reference), D(0)))
                    assert covered >= wanted
                    assert covered - abs(screened[-1][1].size) < wanted if screened else True  # no more than needed
        assert liquidator.adl_quintiles(symbol) == liquidator.adl_quintiles_reference(symbol)
    assert liquidator.adl_index.repairs == 0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(adl_commands(), min_size=5, max_size=40))
def test_incremental_index_matches_exact_ranking_after_every_command(sequence):
    engine = two_market_engine()
    clock = [0]
    check_index(engine)  # builds the index early: every later change must reach it incrementally
    for command in sequence:
        run(engine, command, clock)
        check_index(engine)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(adl_commands(), min_size=5, max_size=40), st.sampled_from([1, 2, 3]))
def test_a_short_kept_head_gives_the_same_queue(sequence, head_rows):
    """With a kept head of only one to three rows, queries must widen it, take rows that re-join it after a
    change, and look past it for the tolerance band: the same exact queue as ever."""
    with patch.object(adl, "HEAD_ROWS", head_rows):
        engine = two_market_engine()
        clock = [0]
        check_index(engine)
        for command in sequence:
            run(engine, command, clock)
            check_index(engine)


def plain_adl_queue(liquidator):
    """The liquidator's ``adl_queue`` replaced by the plain exact ranking of the whole queue."""
    def adl_queue(symbol, sign, quantity=None, exclude=None):
        return Liquidator.adl_queue(liquidator, symbol, sign, None, exclude)
    return adl_queue


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(adl_commands(), min_size=5, max_size=30), st.sampled_from(sorted(MARKETS)), st.integers(-200, 200))
def test_deleveraging_identical_to_plain_exact_ranking(sequence, symbol, crash):
    """Same counterparties, same order, same quantities as ranking every position exactly (with the usual kept
    head of the queue, and with one of a single row)."""
    outputs = []
    for plain, head_rows in ((False, adl.HEAD_ROWS), (False, 1), (True, adl.HEAD_ROWS)):
        with patch.object(adl, "HEAD_ROWS", head_rows):
            engine = two_market_engine()
            if plain:
                engine.liquidator.adl_queue = plain_adl_queue(engine.liquidator)
            clock = [0]
            events = [run(engine, command, clock) for command in [*sequence, ("mark", symbol, crash)]]
            outputs.append((events, engine.state_hash()))
    assert outputs[0] == outputs[1] == outputs[2]


def isolated_longs(deposit: int, extras: list[int]) -> tuple[Engine, list[int]]:
    """A market maker and one isolated 10× long of 0.05 BTC at 100,000 per entry of ``extras`` (margin added
    after the open), each trader depositing ``deposit``; marked at 100,000."""
    engine = Engine(EngineConfig(markets=(btc_instrument(),)))
    maker = engine.execute(c.CreateAccount())[0].account_id
    engine.execute(c.Deposit(maker, "USDT", D(10**9)))
    engine.execute(c.SetLeverage(maker, "BTCUSDT", D(1)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100_000), 0))
    longs = []
    for extra in extras:
        account = engine.execute(c.CreateAccount())[0].account_id
        engine.execute(c.Deposit(account, "USDT", D(deposit)))
        engine.execute(c.SetMarginMode(account, "BTCUSDT", "isolated"))
        engine.execute(c.SetLeverage(account, "BTCUSDT", D(10)))
        engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D("0.05"), price=D(100_000)))
        engine.execute(c.PlaceOrder(account, "BTCUSDT", "buy", D("0.05"), price=D(100_000)))
        if extra:
            engine.execute(c.AdjustIsolatedMargin(account, "BTCUSDT", D(extra)))
        longs.append(account)
    return engine, longs


def thirteen_tied_longs() -> tuple[Engine, list[int]]:
    """Thirteen identical isolated longs (0.05 BTC at 100,000, 10×) marked at 101,000: equal exact scores."""
    engine, longs = isolated_longs(1_000, [0] * 13)
    engine.execute(c.SetMarkPrice("BTCUSDT", D(101_000), 1))
    return engine, longs


def test_quintiles_of_tied_positions_follow_account_order():
    """Identical positions have equal exact scores: ties go by account id, even across quintile boundaries."""
    engine, longs = thirteen_tied_longs()
    quintiles = engine.liquidator.adl_quintiles("BTCUSDT")
    assert quintiles == engine.liquidator.adl_quintiles_reference("BTCUSDT")
    assert [quintiles[(a, "both")] for a in longs] == [5 - (i * 5) // 13 for i in range(13)]
    queue = engine.liquidator.adl_queue("BTCUSDT", 1, D("0.12"))
    assert [a.account_id for a, _ in queue] == longs[:3]


def same_mark_commands():
    """Everything of :func:`adl_commands` but a mark move: the ADL index keeps its scores and its head."""
    symbols = st.sampled_from(sorted(MARKETS))
    return st.one_of(
        trade(), trade(), trade(),
        st.builds(c.SettleFunding, symbols, st.integers(1, 10**6), st.integers(-400, 400).map(lambda bp: D(bp) / 100000)),
        st.builds(c.Deposit, st.sampled_from(TRADERS), st.just("USDT"), st.integers(1, 3_000).map(D)),
        st.builds(c.Withdraw, st.sampled_from(TRADERS), st.just("USDT"), st.integers(1, 3_000).map(D)),
        st.builds(c.AdjustIsolatedMargin, st.sampled_from(TRADERS), symbols, st.integers(-500, 500).map(D),
                  st.sampled_from([None, "long", "short"])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trade(), min_size=4, max_size=12), st.lists(same_mark_commands(), min_size=3, max_size=25),
       st.sampled_from([1, 2]))
def test_the_kept_head_follows_changes_at_one_mark(opening, changes, head_rows):
    """The head is asked for the smallest quantity after every change at an unchanged mark, so it is never
    widened: a position whose score rises into the head (or leaves it) must be seen there, and the screened
    queue is the exact one's prefix every time."""
    with patch.object(adl, "HEAD_ROWS", head_rows):
        engine = two_market_engine()
        clock = [0]
        for command in opening:
            run(engine, command, clock)
        liquidator = engine.liquidator
        for command in [None, *changes]:
            if command is not None:
                run(engine, command, clock)
            for symbol in MARKETS:
                for sign in (1, -1):
                    exact = liquidator.adl_queue(symbol, sign)
                    screened = liquidator.adl_queue(symbol, sign, D("0.001"))
                    assert screened == exact[: len(screened)]
                    assert bool(screened) == bool(exact)
        assert liquidator.adl_index.repairs == 0


def test_the_head_holds_every_position_tied_with_its_boundary():
    """Thirteen identical positions score the same: asked for one position's worth with a kept head of one
    row, the screen returns all thirteen (the tolerance band reaches past the head), and the exact ranking
    then takes the lowest account id."""
    engine, longs = thirteen_tied_longs()
    with patch.object(adl, "HEAD_ROWS", 1):
        head = engine.liquidator.adl_index.head("BTCUSDT", 1, D("0.05"))
        assert sorted(a.account_id for a, _ in head) == longs
        assert [a.account_id for a, _ in engine.liquidator.adl_queue("BTCUSDT", 1, D("0.05"))] == longs[:1]


def test_a_position_rising_into_the_kept_head_is_seen():
    """Three profitable isolated longs, ranked A, B, C by effective leverage; the head kept after a query holds
    A and B. Taking margin out of C at the same mark makes it the most leveraged: the next query puts it first,
    as the exact ranking does."""
    engine, accounts = isolated_longs(5_000, [300, 600, 2_000])
    a, b, c_ = accounts
    engine.execute(c.SetMarkPrice("BTCUSDT", D(101_000), 1))
    liquidator = engine.liquidator
    with patch.object(adl, "HEAD_ROWS", 2):
        assert [x.account_id for x, _ in liquidator.adl_queue("BTCUSDT", 1, D("0.001"))] == [a]
        assert liquidator.adl_index.sides[("BTCUSDT", 1)].floor > -np.inf  # a kept head of two rows
        engine.execute(c.AdjustIsolatedMargin(c_, "BTCUSDT", D(-1_950)))
        assert [x.account_id for x, _ in liquidator.adl_queue("BTCUSDT", 1)] == [c_, a, b]
        assert [x.account_id for x, _ in liquidator.adl_queue("BTCUSDT", 1, D("0.001"))] == [c_]
