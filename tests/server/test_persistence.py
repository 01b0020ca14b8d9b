"""Persistence: the journal (SQLite or a real PostgreSQL server) + snapshots bring a restarted server back to
the same state hash; keys survive; the PostgreSQL journal behaves like the SQLite one."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from perprisk import commands as c
from perprisk.engine import Engine, recover
from perprisk.journal import SqliteJournal
from perprisk.journal_pg import PostgresJournal
from perprisk.server import create_app
from perprisk.server.config import default_markets
from perprisk.server.storage import open_store
from perprisk.engine import EngineConfig

from serverkit import ADMIN_HEADERS, Api, make_config


def trade_some(api: Api) -> dict:
    """A small session: accounts, deposits, fills, an isolated position, resting orders, funding, a liquidation."""
    api.mark("BTCUSDT", "100000")
    api.mark("ETHUSDT", "4000")
    api.post("/v1/admin/insurance-fund", headers=ADMIN_HEADERS, json={"asset": "USDT", "amount": "5000"})
    _, mh = api.account("1000000")
    _, th = api.account("50000")
    _, vh = api.account("600")
    api.post("/v1/margin-mode", headers=th, json={"symbol": "ETHUSDT", "margin_mode": "isolated"})
    api.post("/v1/leverage", headers=vh, json={"symbol": "BTCUSDT", "leverage": "20"})
    api.order(mh, side="sell", quantity="1", price="100000")
    api.order(th, side="buy", quantity="0.5", price="100000")
    api.order(vh, side="buy", quantity="0.1", price="100000")
    api.order(mh, symbol="ETHUSDT", side="sell", quantity="3", price="4000")
    api.order(th, symbol="ETHUSDT", side="buy", quantity="2", price="4000")
    api.order(mh, side="buy", quantity="2", price="92000")
    api.order(th, side="sell", quantity="0.2", price="105000", client_order_id="rest")
    api.post("/v1/positions/ETHUSDT/margin", headers=th, json={"amount": "50"})
    api.post("/v1/admin/funding", headers=ADMIN_HEADERS, json={"symbol": "BTCUSDT", "rate": "0.0001"})
    api.mark("BTCUSDT", "93000")  # liquidates the 20x long
    assert api.get("/v1/liquidations").json()
    return th


def replayed_hash(journal) -> str:
    engine = Engine(EngineConfig(markets=default_markets()))
    engine.replay(command for _, command in journal.commands())
    return engine.state_hash()


def restart_roundtrip(config, tmp_snapshot_every=None):
    if tmp_snapshot_every:
        config = replace(config, snapshot_every=tmp_snapshot_every)
    with TestClient(create_app(config)) as client:
        api = Api(client)
        key = trade_some(api)
        before = api.state_hash()
        positions = api.get("/v1/positions", headers=key).json()
        orders = api.get("/v1/orders", headers=key).json()
    with TestClient(create_app(config)) as client:  # restart on the same database
        api = Api(client)
        assert api.state_hash() == before
        assert api.get("/v1/positions", headers=key).json() == positions  # the key still works
        assert [o["order_id"] for o in api.get("/v1/orders", headers=key).json()] == [o["order_id"] for o in orders]
        api.order(key, side="sell", quantity="0.1", price="106000")  # and the exchange goes on
        after = api.state_hash()
    return before, after


def test_sqlite_restart_recovers_the_same_state(tmp_path):
    config = make_config(f"sqlite:///{tmp_path / 'p.db'}")
    before, after = restart_roundtrip(config, tmp_snapshot_every=7)
    store = open_store(config.db)
    try:
        assert store.journal.latest_snapshot() is not None  # snapshots were taken along the way
        assert replayed_hash(store.journal) == after  # and a replay from empty agrees
        assert recover(EngineConfig(markets=default_markets()), store.journal).state_hash() == after
    finally:
        store.close()


def test_postgresql_restart_recovers_the_same_state(pg_url):
    config = make_config(pg_url)
    before, after = restart_roundtrip(config, tmp_snapshot_every=5)
    journal = PostgresJournal(pg_url)
    try:
        assert journal.latest_snapshot() is not None
        assert replayed_hash(journal) == after
        assert recover(EngineConfig(markets=default_markets()), journal, use_snapshot=False).state_hash() == after
    finally:
        journal.close()


def test_one_server_per_database(tmp_path, pg_url):
    for url in (f"sqlite:///{tmp_path / 'one.db'}", pg_url):
        store = open_store(url)
        try:
            with pytest.raises(Exception, match="in use by another perprisk server"):
                open_store(url)
        finally:
            store.close()
        open_store(url).close()  # free again


def test_a_database_of_other_markets_is_refused(tmp_path):
    config = make_config(f"sqlite:///{tmp_path / 'm.db'}")
    with TestClient(create_app(config)):
        pass
    with pytest.raises(Exception, match="written with markets"):
        create_app(replace(config, markets=config.markets[:1]))


COMMANDS = [
    c.CreateAccount(), c.Deposit(1, "USDT", Decimal("1000")), c.SetMarkPrice("BTCUSDT", Decimal("100000"), 5),
    c.PlaceOrder(1, "BTCUSDT", "buy", Decimal("0.01"), price=Decimal("99000"), client_order_id="a"),
]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_journal_interface_and_semantics_match(kind, tmp_path, pg_url):
    journal = SqliteJournal(tmp_path / "j.db") if kind == "sqlite" else PostgresJournal(pg_url)
    try:
        assert journal.last_sequence == 0 and list(journal.commands()) == []
        assert [journal.append(x) for x in COMMANDS] == [1, 2, 3, 4]
        assert [seq for seq, _ in journal.commands()] == [1, 2, 3, 4]
        assert [x for _, x in journal.commands(2)] == COMMANDS[2:]
        assert journal.latest_snapshot() is None
        journal.save_snapshot(2, {"state": [1, 2]}, "h2")
        journal.save_snapshot(4, {"state": [4]}, "h4")
        journal.save_snapshot(4, {"state": [5]}, "h5")  # replaces
        assert journal.latest_snapshot() == (4, {"state": [5]}, "h5")
    finally:
        journal.close()
    # reopening continues the sequence
    journal = SqliteJournal(tmp_path / "j.db") if kind == "sqlite" else PostgresJournal(pg_url)
    try:
        assert journal.last_sequence == 4
        assert journal.append(c.CreateAccount()) == 5
    finally:
        journal.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_group_commit_batches_are_atomic(kind, tmp_path, pg_url):
    store = open_store(f"sqlite:///{tmp_path / 'b.db'}" if kind == "sqlite" else pg_url)
    try:
        journal = store.journal
        with journal.batch():
            journal.append(COMMANDS[0])
            journal.append(COMMANDS[1])
        assert journal.last_sequence == 2
        with pytest.raises(RuntimeError):
            with journal.batch():
                journal.append(COMMANDS[2])
                raise RuntimeError("crash inside a batch")
        assert journal.last_sequence == 2 and [s for s, _ in journal.commands()] == [1, 2]
    finally:
        store.close()


def test_postgres_tables_match_sqlite_schema(tmp_path, pg_url):
    sqlite_store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    pg_store = open_store(pg_url)
    try:
        lite = {name: [row[1] for row in sqlite_store.journal.connection.execute(f"PRAGMA table_info({name})")]
                for name in ("commands", "snapshots", "api_keys", "server_meta")}
        pg = {}
        for name in lite:
            rows = pg_store.journal.connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (name,)).fetchall()
            pg[name] = [r[0] for r in rows]
        assert pg == lite
    finally:
        sqlite_store.close()
        pg_store.close()
