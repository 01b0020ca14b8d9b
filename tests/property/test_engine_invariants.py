"""SPEC §4 invariants 1, 2, 5, 6 over random command sequences (orders, cancels, price moves, funding, ...)."""

from __future__ import annotations

import hashlib
import json
import pickle
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perprisk import commands as c
from perprisk import engine as engine_module
from perprisk.engine import Engine, EngineConfig, recover, take_snapshot
from perprisk.errors import ValidationError
from perprisk.instrument import Instrument, load_tier_table
from perprisk.journal import SqliteJournal
from perprisk.paths import BINANCE_TIERS_FILE

TIERS = load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT")
BTC = Instrument.create(symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001",
                        min_size="0.001", maker_fee="-0.0001", taker_fee="0.0005", tiers=TIERS)
CONFIG = EngineConfig(markets=(BTC,))
ACCOUNTS = (1, 2, 3, 4)

account_ids = st.sampled_from(ACCOUNTS + (9,))  # 9 does not exist
prices = st.integers(90_000_0, 110_000_0).map(lambda t: D(t) / 10)  # on the 0.1 tick
quantities = st.integers(1, 3_000).map(lambda lots: D(lots) / 1000)


@st.composite
def place_order(draw):
    order_type = draw(st.sampled_from(["limit", "limit", "limit", "market", "stop_market"]))
    price = draw(prices) if order_type == "limit" else None
    trigger = draw(prices) if order_type == "stop_market" else None
    tif = draw(st.sampled_from([None, "gtc", "ioc", "fok", "post_only"])) if order_type == "limit" else None
    return c.PlaceOrder(
        draw(account_ids), "BTCUSDT", draw(st.sampled_from(["buy", "sell"])), draw(quantities),
        order_type=order_type, price=price, time_in_force=tif, trigger_price=trigger,
        reduce_only=draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False,
        self_trade_prevention=draw(st.sampled_from(["none", "cancel_taker", "cancel_maker", "cancel_both"])),
    )


def commands():
    clock = st.integers(1, 10**6)
    return st.one_of(
        place_order(), place_order(), place_order(),
        st.builds(c.BlockTrade, account_ids, account_ids, st.just("BTCUSDT"), st.sampled_from(["buy", "sell"]),
                  quantities, prices, st.booleans()),
        st.builds(c.CancelOrder, account_ids, st.just("BTCUSDT"), st.integers(1, 40)),
        st.builds(c.AmendOrder, account_ids, st.just("BTCUSDT"), st.integers(1, 40), prices, st.none()),
        st.builds(c.SetMarkPrice, st.just("BTCUSDT"), st.one_of(prices, prices.map(lambda p: p / 2)), clock),
        st.builds(c.SettleFunding, st.just("BTCUSDT"), clock,
                  st.integers(-400, 400).map(lambda bp: D(bp) / 100000)),
        st.builds(c.Deposit, account_ids, st.sampled_from(["USDT", "BTC", "XRP"]),
                  st.integers(-5, 50_000).map(D)),
        st.builds(c.Withdraw, account_ids, st.just("USDT"), st.integers(1, 60_000).map(D)),
        st.builds(c.SetLeverage, account_ids, st.just("BTCUSDT"), st.integers(0, 200).map(D)),
        st.builds(c.SetMarginMode, account_ids, st.just("BTCUSDT"), st.sampled_from(["cross", "isolated", "x"])),
        st.builds(c.AdjustIsolatedMargin, account_ids, st.just("BTCUSDT"), st.integers(-3000, 3000).map(D)),
    )


def fresh_engine(journal=None) -> Engine:
    engine = Engine(CONFIG, journal=journal)
    for account in ACCOUNTS:
        engine.execute(c.CreateAccount())
        engine.execute(c.Deposit(account, "USDT", D(20_000)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100_000), 0))
    return engine


def check_invariants(engine: Engine) -> None:
    assert all(v == 0 for v in engine.conservation_error().values()), engine.conservation_error()
    longs, shorts = engine.open_interest("BTCUSDT")
    assert longs == shorts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=1, max_size=60), st.integers(0, 59))
def test_invariants_hold_and_replay_reproduces_state(tmp_path_factory, sequence, snapshot_at):
    path = tmp_path_factory.mktemp("journal") / "j.sqlite"
    journal = SqliteJournal(path, synchronous="OFF")
    engine = fresh_engine(journal)
    accepted = 0
    for i, command in enumerate(sequence):
        before = engine.state_hash()
        try:
            engine.execute(command)
            accepted += 1
        except ValidationError as err:
            assert err.field and err.message  # a clear error naming the field
            assert engine.state_hash() == before, f"refused {command} changed the state"  # invariant 6
        check_invariants(engine)  # invariants 1 and 2
        if i == snapshot_at:
            take_snapshot(engine)
    expected = engine.state_hash()
    # invariant 5: replay from empty, and from the snapshot plus the tail, gives the same state
    assert recover(CONFIG, journal, use_snapshot=False).state_hash() == expected
    assert recover(CONFIG, journal).state_hash() == expected
    journal.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(commands(), min_size=1, max_size=40))
def test_same_commands_same_events(sequence):
    """Determinism: two engines fed the same commands emit the same events and reach the same hash."""
    outputs = []
    for _ in range(2):
        engine = fresh_engine()
        events = []
        for command in sequence:
            try:
                events.append(engine.execute(command))
            except ValidationError as err:
                events.append(("refused", err.field))
        outputs.append((events, engine.state_hash()))
    assert outputs[0] == outputs[1]


def engine_after(sequence) -> Engine:
    """A fresh engine after ``sequence``, the commands it refuses skipped."""
    engine = fresh_engine()
    for command in sequence:
        try:
            engine.execute(command)
        except ValidationError:
            pass
    return engine


def _whole_text_hash(engine: Engine) -> str:
    """The state hash's definition: sha256 of the whole snapshot encoded at once."""
    text = json.dumps(engine.snapshot_state(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _hash_in_chunks(engine: Engine, chunk: int) -> str:
    saved = engine_module.HASH_CHUNK
    engine_module.HASH_CHUNK = chunk
    try:
        return engine.state_hash()
    finally:
        engine_module.HASH_CHUNK = saved


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=0, max_size=40), st.sampled_from([1, 2, 3, 4096]))
def test_state_hash_written_in_pieces_is_the_hash_of_the_whole_snapshot(sequence, chunk):
    """``state_hash`` encodes the big sections a chunk at a time: the bytes, so the hash, must be those of the
    whole snapshot encoded at once, whatever the state and the chunk size."""
    engine = engine_after(sequence)
    assert _hash_in_chunks(engine, chunk) == _whole_text_hash(engine)


def test_state_hash_in_pieces_keeps_json_key_order_past_nine_accounts():
    """JSON sorts keys as strings ("10" before "9"), so the accounts are written in that order, across chunks."""
    engine = Engine(CONFIG)
    for account in range(1, 13):
        engine.execute(c.CreateAccount())
        engine.execute(c.Deposit(account, "USDT", D(1000 + account)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100_000), 0))
    engine.execute(c.BlockTrade(10, 9, "BTCUSDT", "buy", D("0.01"), D(100_000), False))
    expected = _whole_text_hash(engine)
    assert {_hash_in_chunks(engine, chunk) for chunk in (1, 2, 5, 4096)} == {expected}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=0, max_size=40))
def test_liquidation_price_alone_is_the_full_results_price(sequence):
    """``liquidation_price_of`` (what the stress runner places stop-losses by) is :meth:`Engine.liquidation`'s
    price for every account, cross or isolated, with a position or without."""
    engine = engine_after(sequence)
    for account in ACCOUNTS:
        full = engine.liquidation(account, "BTCUSDT")
        expected = None if full is None else full.liquidation_price
        assert engine.liquidation_price_of(account, "BTCUSDT") == expected


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.text(max_size=6)
    | st.text(st.characters(max_codepoint=0x7F), max_size=6)  # every ASCII character, controls and DEL too
    | st.decimals(allow_nan=False, allow_infinity=False, places=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES)
def test_the_fast_canonical_bytes_are_the_json_bytes(value):
    """``_canonical_bytes`` (orjson where it writes the same bytes) is ``json.dumps`` with sorted keys, no spaces
    and ``str`` for the rest — over ASCII control characters and DEL, non-ASCII text (json escapes them), integers beyond 64 bits (orjson refuses
    them), Decimals and key order.  Floats are left out: the state holds none (numbers of record are strings),
    and the two libraries write some of them differently."""
    assert engine_module._canonical_bytes(value) == engine_module._canonical_json(value).encode()


def _assert_market_lists_the_open_positions(engine: Engine) -> None:
    for symbol, state in engine.markets.items():
        expected = {
            (account.account_id, slot): position
            for account in engine.accounts.values()
            for (sym, slot), position in account.positions.items()
            if sym == symbol and position.size != 0
        }
        assert state.positions.keys() == expected.keys()
        assert all(state.positions[k] is expected[k] for k in expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands(), min_size=0, max_size=60))
def test_the_market_lists_exactly_the_open_positions(sequence):
    """``MarketState.positions`` (what open interest and funding walk) holds every open position of the market
    — the liquidation engine's too — and no flat one, whatever the commands did."""
    _assert_market_lists_the_open_positions(engine_after(sequence))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3]), st.sampled_from(["open", "close", "flip"]),
                          st.sampled_from(["buy", "sell"]), st.integers(1, 50)), min_size=1, max_size=40))
def test_positions_closed_flipped_and_reopened_leave_and_rejoin_the_market(steps):
    """Exact closes (random sequences rarely close a position to exactly zero): after every trade, the market
    lists exactly the open positions — a closed one leaves, a reopened one comes back, a flipped one stays."""
    engine = fresh_engine()
    engine.execute(c.Deposit(4, "USDT", D(10**7)))  # account 4 takes the other side of everything
    for account, action, side, lots in steps:
        position = engine.accounts[account].position("BTCUSDT", "both")
        size = position.size if position is not None else D(0)
        if action == "close" and size == 0:
            continue
        if action == "close":
            side, quantity = ("sell" if size > 0 else "buy"), abs(size)
        elif action == "flip" and size != 0:
            side, quantity = ("sell" if size > 0 else "buy"), abs(size) + D(lots) / 1000
        else:
            quantity = D(lots) / 1000
        engine.execute(c.BlockTrade(account, 4, "BTCUSDT", side, quantity, D(100_000), action == "close"))
        _assert_market_lists_the_open_positions(engine)
        check_invariants(engine)


def test_a_snapshot_listing_every_slot_ever_opened_still_loads():
    """Engine snapshots from before kept every position slot ever opened in a list: they load as the open ones."""
    engine = Engine(CONFIG)
    for account in (1, 2, 3):
        engine.execute(c.CreateAccount())
        engine.execute(c.Deposit(account, "USDT", D(50_000)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100_000), 0))
    engine.execute(c.BlockTrade(1, 2, "BTCUSDT", "buy", D("0.1"), D(100_000), False))
    engine.execute(c.BlockTrade(3, 2, "BTCUSDT", "buy", D("0.2"), D(100_000), False))
    engine.execute(c.BlockTrade(1, 2, "BTCUSDT", "sell", D("0.1"), D(100_000), True))  # 1 is flat again
    state = engine.markets["BTCUSDT"]
    old_layout = dict(state.__dict__, positions=[engine.accounts[a].positions[("BTCUSDT", "both")] for a in (1, 2, 3)])
    restored = object.__new__(type(state))
    restored.__setstate__(pickle.loads(pickle.dumps(old_layout)))
    assert list(restored.positions) == [(2, "both"), (3, "both")]
    assert [p.size for p in restored.positions.values()] == [D("-0.2"), D("0.2")]
