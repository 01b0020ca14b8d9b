"""WebSocket /v1/ws against a real ``perprisk serve`` process: public channels, authentication, private
channels, errors."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.sync.client import connect

from perprisk.server.testing import ServerProcess

from serverkit import ADMIN


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("ws") / "ws.db"
    proc = ServerProcess(f"sqlite:///{db}", ADMIN).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def account(http, server, amount="100000"):
    r = http.post("/v1/admin/accounts", headers=server.admin())
    body = r.json()
    http.post("/v1/admin/deposits", headers=server.admin(),
              json={"account_id": body["account_id"], "asset": "USDT", "amount": amount})
    return body["account_id"], body["api_key"]


def ws_url(server):
    return server.url.replace("http://", "ws://") + "/v1/ws"


def until(ws, predicate, timeout=10.0):
    """The first message that satisfies ``predicate`` (skipping others), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
        except TimeoutError:
            break
        if predicate(msg):
            return msg
        seen.append(msg)
    raise AssertionError(f"no matching message within {timeout} s; saw {seen[-10:]}")


def send(ws, **msg):
    ws.send(json.dumps(msg))


def test_public_mark_book_trades_and_insurance(server, http):
    _, maker = account(http, server)
    _, taker = account(http, server)
    with connect(ws_url(server)) as ws:
        send(ws, op="subscribe", channels=["mark", "book", "trades", "insurance"])
        assert until(ws, lambda m: m.get("type") == "subscribed")["channels"] == ["book", "insurance", "mark", "trades"]
        until(ws, lambda m: m.get("channel") == "mark" and m.get("snapshot") and m["symbol"] == "BTCUSDT")
        http.post("/v1/admin/mark", headers=server.admin(), json={"symbol": "BTCUSDT", "mark_price": "100000"})
        msg = until(ws, lambda m: m.get("channel") == "mark" and not m.get("snapshot"))
        assert msg["symbol"] == "BTCUSDT" and msg["data"]["mark_price"] == "100000"
        http.post("/v1/orders", headers={"X-API-Key": maker},
                  json={"symbol": "BTCUSDT", "side": "sell", "quantity": "0.3", "price": "100500"})
        book = until(ws, lambda m: m.get("channel") == "book" and not m.get("snapshot") and m["data"]["asks"])
        assert book["data"]["asks"][0][:2] == ["100500", "0.3"]
        http.post("/v1/orders", headers={"X-API-Key": taker},
                  json={"symbol": "BTCUSDT", "side": "buy", "quantity": "0.1", "price": "100500"})
        trade = until(ws, lambda m: m.get("channel") == "trades" and not m.get("snapshot"))
        assert trade["data"]["price"] == "100500" and trade["data"]["quantity"] == "0.1"
        assert "taker_account_id" not in trade["data"] and "maker_account_id" not in trade["data"]
        http.post("/v1/admin/insurance-fund", headers=server.admin(), json={"asset": "USDT", "amount": "777"})
        fund = until(ws, lambda m: m.get("channel") == "insurance" and not m.get("snapshot"))
        assert fund["data"]["change"] == "777"


def test_private_channels_need_auth_then_stream_orders_and_positions(server, http):
    account_id, key = account(http, server)
    _, other = account(http, server)
    http.post("/v1/admin/mark", headers=server.admin(), json={"symbol": "ETHUSDT", "mark_price": "4000"})
    with connect(ws_url(server)) as ws:
        send(ws, op="subscribe", channels=["orders", "positions"])
        err = until(ws, lambda m: m.get("type") == "error")
        assert err["code"] == 401
        send(ws, op="auth", api_key="prk_nope")
        assert until(ws, lambda m: m.get("type") in ("error", "auth"))["code"] == 401
        send(ws, op="auth", api_key=key)
        assert until(ws, lambda m: m.get("type") == "auth")["account_id"] == account_id
        send(ws, op="subscribe", channels=["orders", "positions", "account", "alerts"])
        until(ws, lambda m: m.get("channel") == "positions" and m.get("snapshot"))
        # the other account's orders are not streamed here
        http.post("/v1/orders", headers={"X-API-Key": other},
                  json={"symbol": "ETHUSDT", "side": "sell", "quantity": "1", "price": "4000"})
        r = http.post("/v1/orders", headers={"X-API-Key": key},
                      json={"symbol": "ETHUSDT", "side": "buy", "quantity": "1", "price": "4000"})
        order_id = r.json()["order_id"]
        accepted = until(ws, lambda m: m.get("channel") == "orders" and m["data"].get("event") == "OrderAccepted")
        assert accepted["data"]["order_id"] == order_id and accepted["data"]["account_id"] == account_id
        fill = until(ws, lambda m: m.get("channel") == "orders" and m["data"].get("event") == "Fill")
        assert fill["data"]["order_id"] == order_id and fill["data"]["liquidity"] == "taker"
        positions = until(ws, lambda m: m.get("channel") == "positions" and m["data"])
        p = positions["data"][0]
        assert p["symbol"] == "ETHUSDT" and p["size"] == "1"
        assert {"liquidation_price", "bankruptcy_price", "distance_pct", "margin_ratio_pct", "adl_quintile"} <= set(p)
        # alerts arrive on the private channel
        http.post("/v1/alerts", headers={"X-API-Key": key},
                  json={"kind": "price", "symbol": "ETHUSDT", "threshold": "3900", "direction": "below"})
        http.post("/v1/admin/mark", headers=server.admin(), json={"symbol": "ETHUSDT", "mark_price": "3850"})
        alert = until(ws, lambda m: m.get("channel") == "alerts" and not m.get("snapshot"))
        assert alert["data"]["kind"] == "price" and alert["data"]["account_id"] == account_id


def test_header_auth_liquidations_flagged_as_own(server, http):
    http.post("/v1/admin/mark", headers=server.admin(), json={"symbol": "BTCUSDT", "mark_price": "100000"})
    _, maker = account(http, server, "1000000")
    victim_id, victim = account(http, server, "600")
    http.post("/v1/leverage", headers={"X-API-Key": victim}, json={"symbol": "BTCUSDT", "leverage": "20"})
    with connect(ws_url(server), additional_headers={"X-API-Key": victim}) as ws, connect(ws_url(server)) as anon:
        assert until(ws, lambda m: m.get("type") == "auth")["account_id"] == victim_id
        send(ws, op="subscribe", channels=["liquidations"])
        send(anon, op="subscribe", channels=["liquidations"])
        until(ws, lambda m: m.get("channel") == "liquidations" and m.get("snapshot"))
        until(anon, lambda m: m.get("channel") == "liquidations" and m.get("snapshot"))
        http.post("/v1/orders", headers={"X-API-Key": maker},
                  json={"symbol": "BTCUSDT", "side": "sell", "quantity": "0.1", "price": "100000"})
        http.post("/v1/orders", headers={"X-API-Key": victim},
                  json={"symbol": "BTCUSDT", "side": "buy", "quantity": "0.1", "price": "100000"})
        http.post("/v1/admin/mark", headers=server.admin(), json={"symbol": "BTCUSDT", "mark_price": "90000"})
        mine = until(ws, lambda m: m.get("channel") == "liquidations" and not m.get("snapshot")
                     and m["data"]["event"] == "LiquidationStep")
        assert mine.get("own") is True and "account_id" not in mine["data"]
        theirs = until(anon, lambda m: m.get("channel") == "liquidations" and not m.get("snapshot"))
        assert "own" not in theirs and "account_id" not in theirs["data"]


def test_protocol_errors(server):
    with connect(ws_url(server)) as ws:
        ws.send("not json")
        assert until(ws, lambda m: m.get("type") == "error")["code"] == 422
        send(ws, op="subscribe", channels=["nope"])
        assert until(ws, lambda m: m.get("type") == "error")["code"] == 404
        send(ws, op="dance")
        assert until(ws, lambda m: m.get("type") == "error")["code"] == 422
        send(ws, op="ping")
        assert until(ws, lambda m: m.get("type") == "pong")
        for _ in range(60):
            send(ws, op="ping")
        assert until(ws, lambda m: m.get("type") == "error")["code"] == 429
