"""A bounded loopback load test (50 clients, 20,000 orders by default) and a crash test: SIGKILL the server in
the middle of a load, restart it, and check every acknowledged order is there and the state hash is the
journal's replay.  Figures go to reports/server-load.json (and the test output with -s).

PERPRISK_LOAD_ORDERS / PERPRISK_LOAD_CLIENTS change the load's size."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import httpx
import pytest

from perprisk import commands as c
from perprisk import events as ev
from perprisk.engine import Engine, EngineConfig
from perprisk.journal import SqliteJournal
from perprisk.journal_pg import PostgresJournal
from perprisk.server.config import default_markets
from perprisk.server.loadgen import run_load, setup_accounts
from perprisk.server.testing import ROOT, ServerProcess

from serverkit import ADMIN

ORDERS = int(os.environ.get("PERPRISK_LOAD_ORDERS", "20000"))
CLIENTS = int(os.environ.get("PERPRISK_LOAD_CLIENTS", "50"))
REPORT = ROOT / "reports" / "server-load.json"


def run_async(coro):
    """Run a coroutine on a fresh event loop in its own thread (whatever loop this thread may hold)."""
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as err:  # re-raised in the caller
            box["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def write_report(name: str, figures: dict) -> None:
    REPORT.parent.mkdir(exist_ok=True)
    try:
        data = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = figures
    REPORT.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\n{name}: {json.dumps(figures)}")


def test_load_50_clients(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path / 'load.db'}", ADMIN) as server:
        result = run_async(run_load(server.url, ADMIN, CLIENTS, ORDERS, time_limit=240))
        summary = result.summary()
        status = httpx.get(server.url + "/v1/admin/status", headers=server.admin()).json()
        summary["batches"] = status["batches"]
        summary["commands"] = status["commands_applied"]
        summary["commands_per_batch"] = round(status["commands_applied"] / max(1, status["batches"]), 2)
        write_report("load", summary)
        assert result.errors == 0 and result.refused == 0
        assert len(result.acknowledged) == ORDERS, "the time limit cut the run short"
        assert status["failed"] is None
        assert len(set(result.acknowledged.values())) == ORDERS  # distinct order ids


def replay(journal) -> tuple[str, dict[str, int]]:
    """Replay the journal from empty; the order id each client order id received."""
    engine = Engine(EngineConfig(markets=default_markets()))
    ids: dict[str, int] = {}
    for _, command in journal.commands():
        events = engine.apply(command)
        if isinstance(command, c.PlaceOrder) and command.client_order_id:
            accepted = next(e for e in events if isinstance(e, ev.OrderAccepted))
            ids[command.client_order_id] = accepted.order_id
    return engine.state_hash(), ids


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigkill_mid_load_loses_no_acknowledged_order(kind, tmp_path, request):
    db = f"sqlite:///{tmp_path / 'crash.db'}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    server = ServerProcess(db, ADMIN).start()
    try:
        keys = run_async(setup_accounts(server.url, ADMIN, 20, "BTCUSDT", "100000"))
    except BaseException:
        server.stop()
        raise
    stop_holder: dict = {}
    killed = threading.Event()

    async def load():
        stop = asyncio.Event()
        stop_holder["stop"], stop_holder["loop"] = stop, asyncio.get_running_loop()
        return await run_load(server.url, ADMIN, 20, 100_000, time_limit=60, stop=stop, keys=keys)

    def killer():
        time.sleep(3.0)  # mid-load: thousands of orders in, hundreds in flight
        server.kill()
        killed.set()
        stop_holder["loop"].call_soon_threadsafe(stop_holder["stop"].set)

    threading.Thread(target=killer, daemon=True).start()
    try:
        result = run_async(load())
    finally:
        server.kill()
        server.stop()  # closes the log; the process is already dead
    assert killed.is_set() and len(result.acknowledged) > 100
    acked = result.acknowledged

    # restart on the same database: recovery from snapshot + journal
    restarted = ServerProcess(db, ADMIN).start()
    try:
        state = httpx.get(restarted.url + "/v1/admin/state-hash", headers=restarted.admin()).json()
        open_ids = set()
        for key in keys:
            orders = httpx.get(restarted.url + "/v1/orders", headers={"X-API-Key": key}).json()
            open_ids.update(o["order_id"] for o in orders)
    finally:
        restarted.stop()

    journal = SqliteJournal(db.removeprefix("sqlite:///")) if kind == "sqlite" else PostgresJournal(db)
    try:
        replay_hash, replayed_ids = replay(journal)
        # every acknowledged order is in the journal, with the order id it was acknowledged with
        missing = [cid for cid in acked if cid not in replayed_ids]
        assert not missing, f"{len(missing)} acknowledged orders lost, e.g. {missing[:5]}"
        assert all(replayed_ids[cid] == oid for cid, oid in acked.items())
        # the restarted server's state is the replay of the journal (after a graceful stop: same journal)
        assert state["state_hash"] == replay_hash
        # orders that were resting when the server died are still resting
        engine_open = {oid for oid in acked.values() if oid in open_ids}
        assert engine_open, "some acknowledged orders should still rest in the book"
    finally:
        journal.close()
    write_report(f"crash_{kind}", {"acknowledged_before_kill": len(acked), "journaled_orders": len(replayed_ids),
                                   "unacknowledged_but_journaled": len(replayed_ids) - len(acked),
                                   "lost": 0, "state_hash_matches_replay": True, "connection_errors": result.errors})
