"""The incremental ADL index (perprisk.risk.adl.AdlIndex): changes it must see, and state it must not carry."""

from __future__ import annotations

import pickle
from decimal import Decimal as D

from perprisk import commands as c
from perprisk.engine import Engine, EngineConfig, recover, take_snapshot
from perprisk.instrument import Instrument, TierTable
from perprisk.journal import SqliteJournal
from perprisk.ledger import Ledger


def zero_fee_market() -> Instrument:
    return Instrument.create(symbol="XUSDT", base="X", settle="USDT", tick_size="0.01", lot_size="1", min_size="1",
                             maker_fee="0", taker_fee="0", liquidation_fee="0",
                             tiers=TierTable.single("XUSDT", D("0.005"), 0, max_leverage=100))


def assert_index_exact(engine: Engine, symbol: str) -> None:
    liquidator = engine.liquidator
    for sign in (1, -1):
        exact = liquidator.adl_queue(symbol, sign)
        total = sum((abs(p.size) for _, p in exact), D(0))
        for quantity in (D(1), total):
            screened = liquidator.adl_queue(symbol, sign, quantity)
            assert screened == exact[: len(screened)]
            assert sum((abs(p.size) for _, p in screened), D(0)) >= min(quantity, total)
    assert liquidator.adl_quintiles(symbol) == liquidator.adl_quintiles_reference(symbol)
    assert liquidator.adl_index.repairs == 0


def test_zero_fee_self_trade_in_hedge_mode_reaches_the_index():
    """Both legs of one wallet, no fee: no money moves, yet both positions change (the ledger's watchers see
    the zero fee moves of the trade)."""
    engine = Engine(EngineConfig(markets=(zero_fee_market(),)))
    maker, hedger, other = (engine.execute(c.CreateAccount())[0].account_id for _ in range(3))
    for account, amount in ((maker, 100_000), (hedger, 1_000), (other, 1_000)):
        engine.execute(c.Deposit(account, "USDT", D(amount)))
    engine.execute(c.SetPositionMode(hedger, "hedge"))
    engine.execute(c.SetMarkPrice("XUSDT", D(1), 1))
    engine.execute(c.PlaceOrder(maker, "XUSDT", "sell", D(300), price=D(1)))
    engine.execute(c.PlaceOrder(other, "XUSDT", "buy", D(300), price=D(1)))
    engine.execute(c.SetMarkPrice("XUSDT", D("1.2"), 2))
    assert_index_exact(engine, "XUSDT")  # the index is built here
    # the hedger trades with itself: its long and its short open at 1.2 against each other
    engine.execute(c.PlaceOrder(hedger, "XUSDT", "sell", D(500), price=D("1.2"), position_side="short"))
    engine.execute(c.PlaceOrder(hedger, "XUSDT", "buy", D(500), price=D("1.2"), position_side="long"))
    assert engine.accounts[hedger].position("XUSDT", "long").size == 500
    engine.execute(c.SetMarkPrice("XUSDT", D("1.3"), 3))
    assert_index_exact(engine, "XUSDT")
    queue = engine.liquidator.adl_queue("XUSDT", 1, D(800))
    assert {a.account_id for a, _ in queue} == {hedger, other}


def test_snapshot_carries_no_watchers_and_recovery_rebuilds_the_index(tmp_path):
    journal = SqliteJournal(tmp_path / "j.sqlite", synchronous="OFF")
    config = EngineConfig(markets=(zero_fee_market(),))
    engine = Engine(config, journal=journal)
    ids = [engine.execute(c.CreateAccount())[0].account_id for _ in range(4)]
    for account in ids:
        engine.execute(c.Deposit(account, "USDT", D(1_000)))
    engine.execute(c.SetMarkPrice("XUSDT", D(1), 1))
    for buyer, seller, qty in ((ids[0], ids[1], 100), (ids[2], ids[3], 250)):
        engine.execute(c.PlaceOrder(seller, "XUSDT", "sell", D(qty), price=D(1)))
        engine.execute(c.PlaceOrder(buyer, "XUSDT", "buy", D(qty), price=D(1)))
    assert_index_exact(engine, "XUSDT")
    assert engine.ledger._watchers  # the index watches the live ledger ...
    assert pickle.loads(pickle.dumps(engine.ledger))._watchers == []  # ... a snapshot does not carry it
    take_snapshot(engine)
    engine.execute(c.SetMarkPrice("XUSDT", D("1.1"), 2))
    engine.execute(c.PlaceOrder(ids[1], "XUSDT", "buy", D(40), price=D("1.1")))
    engine.execute(c.PlaceOrder(ids[2], "XUSDT", "sell", D(40), price=D("1.1")))
    recovered = recover(config, journal)
    assert recovered.state_hash() == engine.state_hash()
    assert_index_exact(recovered, "XUSDT")
    assert [a.account_id for a, _ in recovered.liquidator.adl_queue("XUSDT", 1, D(1))] == \
        [a.account_id for a, _ in engine.liquidator.adl_queue("XUSDT", 1, D(1))]
    journal.close()


def test_ledger_pickled_before_watchers_existed_still_transfers():
    ledger = Ledger()
    state = ledger.__dict__.copy()
    del state["_watchers"]
    old = Ledger.__new__(Ledger)
    old.__setstate__(state)
    watcher = old.watch()
    old.transfer("external", "trader/1", "USDT", D(5), "deposit")
    assert watcher == {"external", "trader/1"}
    old.unwatch(watcher)
    old.transfer("trader/1", "external", "USDT", D(5), "withdrawal")
    assert watcher == {"external", "trader/1"}
