"""The REST contract of issue 6: admin endpoints, account endpoints, public endpoints, status codes."""

from __future__ import annotations

import sqlite3
from urllib.parse import quote
from decimal import Decimal as D
from fractions import Fraction

import pytest
from fastapi.testclient import TestClient

from perprisk.server import create_app
from perprisk.server.config import RateLimit
from perprisk.server.views import num

from serverkit import ADMIN_HEADERS, make_config


# ------------------------------------------------------------------------------------------ admin


def test_create_account_deposit_and_read_it_back(api):
    r = api.post("/v1/admin/accounts", headers=ADMIN_HEADERS)
    assert r.status_code == 201
    body = r.json()
    assert set(body) >= {"account_id", "api_key"} and isinstance(body["account_id"], int)
    key = {"X-API-Key": body["api_key"]}
    r = api.post("/v1/admin/deposits", headers=ADMIN_HEADERS,
                 json={"account_id": body["account_id"], "asset": "USDT", "amount": "1000"})
    assert r.status_code == 200 and r.json()["balances"] == {"USDT": "1000"}
    account = api.get("/v1/account", headers=key).json()
    assert account["account_id"] == body["account_id"]
    assert account["balances"] == {"USDT": "1000"}
    assert account["available_balance"] == "1000"
    # JSON numbers are exact decimals too
    r = api.post("/v1/admin/deposits", headers=ADMIN_HEADERS,
                 json={"account_id": body["account_id"], "asset": "USDT", "amount": 0.1})
    assert r.json()["balances"] == {"USDT": "1000.1"}


def test_state_hash_is_the_engines(api, pair):
    r = api.get("/v1/admin/state-hash", headers=ADMIN_HEADERS)
    assert r.status_code == 200
    assert r.json()["state_hash"] == api.engine.state_hash()
    assert r.json()["sequence"] == api.engine.sequence


@pytest.mark.parametrize("headers", [{}, {"X-Admin-Key": "wrong"}, {"X-Admin-Key": ""}, {"X-API-Key": "prk_x"}])
def test_admin_endpoints_refuse_without_the_admin_key(api, headers):
    assert api.post("/v1/admin/accounts", headers=headers).status_code == 401
    assert api.get("/v1/admin/state-hash", headers=headers).status_code == 401
    assert api.post("/v1/admin/deposits", headers=headers,
                    json={"account_id": 1, "asset": "USDT", "amount": "1"}).status_code == 401


def test_a_users_key_is_not_an_admin_key(api):
    _, key = api.account()
    assert api.get("/v1/admin/state-hash", headers={"X-Admin-Key": key["X-API-Key"]}).status_code == 401


def test_no_admin_key_configured_means_no_admin_api(tmp_path, monkeypatch):
    monkeypatch.delenv("PERPRISK_ADMIN_KEY", raising=False)
    config = make_config(f"sqlite:///{tmp_path / 'x.db'}", admin_key=None)
    with TestClient(create_app(config)) as client:
        r = client.post("/v1/admin/accounts", headers={"X-Admin-Key": ""})
        assert r.status_code == 401 and "no admin key" in r.json()["detail"]
        assert client.post("/v1/admin/accounts", headers={"X-Admin-Key": "None"}).status_code == 401


def test_admin_key_comes_from_the_environment(tmp_path, monkeypatch):
    from perprisk.server.config import load_config

    monkeypatch.setenv("PERPRISK_ADMIN_KEY", "from-the-environment-123")
    config = load_config(None, db=f"sqlite:///{tmp_path / 'x.db'}")
    assert config.admin_key == "from-the-environment-123"
    monkeypatch.delenv("PERPRISK_ADMIN_KEY")
    assert load_config(None, db=f"sqlite:///{tmp_path / 'y.db'}").admin_key is None


def test_api_keys_are_stored_hashed(api, server_config):
    _, key = api.account()
    secret = key["X-API-Key"]
    db = sqlite3.connect(server_config.db.removeprefix("sqlite:///"))
    rows = db.execute("SELECT key_id, salt, key_hash FROM api_keys").fetchall()
    assert len(rows) == 1 and len(rows[0][1]) == 16 and len(rows[0][2]) == 32
    dump = "\n".join(db.iterdump())
    assert secret not in dump and secret.split("_")[2] not in dump


def test_deposit_to_an_unknown_account_is_404(api):
    r = api.post("/v1/admin/deposits", headers=ADMIN_HEADERS, json={"account_id": 999, "asset": "USDT", "amount": "1"})
    assert r.status_code == 404


# ------------------------------------------------------------------------------------------ account auth

PRIVATE = [("GET", "/v1/account", None), ("GET", "/v1/orders", None), ("GET", "/v1/positions", None),
           ("GET", "/v1/alerts", None), ("DELETE", "/v1/orders/1", None),
           ("POST", "/v1/orders", {"symbol": "BTCUSDT", "side": "buy", "quantity": "1", "price": "1"}),
           ("POST", "/v1/positions/BTCUSDT/margin", {"amount": "1"})]


@pytest.mark.parametrize("method,path,body", PRIVATE)
@pytest.mark.parametrize("key", [None, "", "nope", "prk_0000000000000000_" + "0" * 48])
def test_account_endpoints_need_a_valid_key(api, method, path, body, key):
    api.account()
    headers = {} if key is None else {"X-API-Key": key}
    r = api.request(method, path, headers=headers, json=body)
    assert r.status_code == 401, r.text


def test_another_accounts_resources_are_403_and_missing_ones_404(api, pair):
    (maker, mh), (taker, th) = pair
    order = api.order(mh, side="sell", quantity="0.1", price="101000")
    assert api.delete(f"/v1/orders/{order['order_id']}", headers=th).status_code == 403
    assert api.get(f"/v1/orders/{order['order_id']}", headers=th).status_code == 403
    assert api.patch(f"/v1/orders/{order['order_id']}", headers=th, json={"price": "101100"}).status_code == 403
    assert api.delete("/v1/orders/987654", headers=th).status_code == 404
    assert api.get(f"/v1/accounts/{maker}", headers=th).status_code == 403
    assert api.get("/v1/accounts/4242", headers=th).status_code == 404
    assert api.get(f"/v1/accounts/{taker}", headers=th).status_code == 200
    r = api.post("/v1/alerts", headers=mh, json={"kind": "price", "symbol": "BTCUSDT", "threshold": "90000",
                                                 "direction": "below"})
    assert r.status_code == 201
    assert api.delete(f"/v1/alerts/{r.json()['alert_id']}", headers=th).status_code == 403
    assert api.delete("/v1/alerts/777", headers=th).status_code == 404
    # the owner can
    assert api.delete(f"/v1/orders/{order['order_id']}", headers=mh).status_code == 200
    assert api.delete(f"/v1/orders/{order['order_id']}", headers=mh).status_code == 404


def test_unknown_markets_are_404(api):
    _, key = api.account()
    assert api.get("/v1/markets/NOPE").status_code == 404
    assert api.get("/v1/markets/NOPE/book").status_code == 404
    assert api.get("/v1/mark/NOPE").status_code == 404
    assert api.get("/v1/funding/NOPE").status_code == 404
    assert api.post("/v1/positions/NOPE/margin", headers=key, json={"amount": "1"}).status_code == 404
    r = api.post("/v1/orders", headers=key, json={"symbol": "NOPE", "side": "buy", "quantity": "1", "price": "1"})
    assert r.status_code == 404


# ------------------------------------------------------------------------------------------ 422


BAD_ORDERS = [
    ({"quantity": "NaN"}, "quantity"),
    ({"quantity": "abc"}, "quantity"),
    ({"quantity": "-1"}, "quantity"),
    ({"quantity": "0"}, "quantity"),
    ({"quantity": "0.0005"}, "quantity"),  # off the lot
    ({"price": "100000.05"}, "price"),  # off the tick
    ({"quantity": "1e40"}, "quantity"),
    ({"quantity": True}, "quantity"),
    ({"quantity": [1]}, "quantity"),
    ({"side": "up"}, "side"),
    ({"order_type": "magic"}, "order_type"),
    ({"surprise": 1}, "surprise"),
    ({"quantity": "50"}, "quantity"),  # initial margin beyond the balance
    ({"reduce_only": True}, "reduce_only"),  # nothing to reduce
]


@pytest.mark.parametrize("change,field", BAD_ORDERS)
def test_bad_orders_are_422_with_the_field_and_change_nothing(api, change, field):
    api.mark("BTCUSDT", "100000")
    _, key = api.account("1000")
    before = api.state_hash()
    body = {"symbol": "BTCUSDT", "side": "buy", "quantity": "0.01", "price": "100000", **change}
    r = api.post("/v1/orders", headers=key, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["field"] == field and detail[0]["message"]
    assert api.state_hash() == before


def test_leverage_above_the_tier_is_422(api):
    _, key = api.account()
    r = api.post("/v1/leverage", headers=key, json={"symbol": "BTCUSDT", "leverage": "500"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "leverage"


@pytest.mark.parametrize("raw", [b"{", b"[1,2]", b'{"symbol": NaN}', b'{"quantity": Infinity}', b"\xff\xfe",
                                 b'{"quantity": 1' + b"0" * 5000 + b"}", b"[" * 5000 + b"]" * 5000, b"null", b'""'])
def test_malformed_json_is_422_never_500(api, raw):
    _, key = api.account()
    r = api.post("/v1/orders", headers={**key, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == 422, r.text


HOSTILE = ["", " ", "NaN", "-Infinity", "1e999999", "0x10", "１２", "1" * 70, None, True, [], {}, -1, 0,
           "1_000", "'; DROP TABLE commands; --", "\u0000", "9" * 45]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_never_give_500(api, value):
    api.mark("BTCUSDT", "100000")
    account_id, key = api.account()
    calls = [
        ("POST", "/v1/orders", key, {"symbol": "BTCUSDT", "side": "buy", "quantity": value, "price": "100000"}),
        ("POST", "/v1/orders", key, {"symbol": value, "side": "buy", "quantity": "1", "price": "1"}),
        ("POST", "/v1/leverage", key, {"symbol": "BTCUSDT", "leverage": value}),
        ("POST", "/v1/margin-mode", key, {"symbol": "BTCUSDT", "margin_mode": value}),
        ("POST", "/v1/positions/BTCUSDT/margin", key, {"amount": value}),
        ("POST", "/v1/alerts", key, {"kind": "price", "symbol": "BTCUSDT", "threshold": value}),
        ("POST", "/v1/admin/deposits", ADMIN_HEADERS, {"account_id": account_id, "asset": "USDT", "amount": value}),
        ("POST", "/v1/admin/deposits", ADMIN_HEADERS, {"account_id": value, "asset": "USDT", "amount": "1"}),
        ("POST", "/v1/admin/mark", ADMIN_HEADERS, {"symbol": "BTCUSDT", "mark_price": value}),
        ("POST", "/v1/admin/funding", ADMIN_HEADERS, {"symbol": "BTCUSDT", "rate": value}),
        ("POST", "/v1/calc/liquidation", {}, {"family": "binance", "margin_mode": "isolated", "wallet_balance": value,
                                              "positions": [{"symbol": "BTCUSDT", "side": "long", "size": "1",
                                                             "entry_price": "100000", "mark_price": "100000",
                                                             "mmr": "0.004"}]}),
        ("POST", "/v1/calc/reverse-size", {}, {"side": "long", "entry": "100000", "worst": value, "margin": "100"}),
        ("GET", f"/v1/orders/{quote(str(value))}", key, None),
        ("GET", f"/v1/markets/BTCUSDT/book?depth={quote(str(value))}", {}, None),
    ]
    for method, path, headers, body in calls:
        r = api.request(method, path, headers=headers, json=body)
        assert r.status_code < 500, (method, path, value, r.status_code, r.text)


# ------------------------------------------------------------------------------------------ 429


def test_rate_limits_answer_429_with_retry_after(tmp_path):
    config = make_config(f"sqlite:///{tmp_path / 'r.db'}", user_rate=RateLimit(1.0, 3), public_rate=RateLimit(1.0, 5))
    with TestClient(create_app(config)) as client:
        r = client.post("/v1/admin/accounts", headers=ADMIN_HEADERS)
        key = {"X-API-Key": r.json()["api_key"]}
        codes = [client.get("/v1/account", headers=key).status_code for _ in range(6)]
        assert codes[:3] == [200, 200, 200] and codes[-1] == 429
        r = client.get("/v1/account", headers=key)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "rate limit" in r.json()["detail"]
        codes = [client.get("/v1/markets").status_code for _ in range(8)]
        assert 429 in codes and codes[0] == 200
        # failed authentication is limited per address too
        codes = [client.get("/v1/account", headers={"X-API-Key": "bad"}).status_code for _ in range(8)]
        assert set(codes) <= {401, 429} and codes[-1] == 429


# ------------------------------------------------------------------------------------------ trading


def test_orders_fill_and_positions_carry_the_engines_risk_figures(api, pair):
    (maker, mh), (taker, th) = pair
    positions = api.get("/v1/positions", headers=th).json()
    assert len(positions) == 1
    p = positions[0]
    for field in ("liquidation_price", "bankruptcy_price", "distance_pct", "margin_ratio", "margin_ratio_pct",
                  "adl_quintile", "entry_price", "mark_price", "size", "side"):
        assert field in p
    assert p["side"] == "long" and p["size"] == "0.5" and p["entry_price"] == "100000"
    result = api.engine.liquidation(taker, "BTCUSDT")
    assert p["liquidation_price"] == num(result.liquidation_price)
    assert p["bankruptcy_price"] == num(result.bankruptcy_price)
    assert p["distance_pct"] == num(result.distance_pct)
    assert p["margin_ratio"] == num(api.engine.margin_ratio(taker, "BTCUSDT"))
    assert p["adl_quintile"] in (1, 2, 3, 4, 5)
    assert D(p["liquidation_price"]) < D("100000")
    short = api.get("/v1/positions", headers=mh).json()[0]
    assert short["side"] == "short" and D(short["liquidation_price"]) > D("100000")


def test_order_lifecycle_place_list_amend_cancel(api, pair):
    (_, mh), _ = pair
    placed = api.order(mh, side="sell", quantity="0.2", price="105000", client_order_id="my-1")
    assert placed["status"] == "open" and placed["remaining_quantity"] == "0.2"
    orders = api.get("/v1/orders", headers=mh).json()
    assert [o["order_id"] for o in orders] == [placed["order_id"]]
    assert orders[0]["client_order_id"] == "my-1" and orders[0]["quantity"] == "0.2"
    r = api.patch(f"/v1/orders/{placed['order_id']}", headers=mh, json={"price": "106000"})
    assert r.status_code == 200
    assert api.get(f"/v1/orders/{placed['order_id']}", headers=mh).json()["price"] == "106000"
    r = api.delete(f"/v1/orders/{placed['order_id']}", headers=mh)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert api.get("/v1/orders", headers=mh).json() == []


def test_market_order_ioc_remainder_is_reported(api, pair):
    (_, mh), (_, th) = pair
    api.order(mh, side="sell", quantity="0.1", price="100100")
    r = api.order(th, side="buy", quantity="0.3", price="100200", time_in_force="ioc")
    assert r["status"] == "cancelled" and r["filled_quantity"] == "0.1" and r["average_price"] == "100100"


def test_isolated_margin_moves_the_liquidation_price_away(api):
    api.mark("BTCUSDT", "100000")
    _, mh = api.account("100000")
    _, th = api.account("20000")
    for body in ({"symbol": "BTCUSDT", "margin_mode": "isolated"},):
        assert api.post("/v1/margin-mode", headers=th, json=body).status_code == 200
    assert api.post("/v1/leverage", headers=th, json={"symbol": "BTCUSDT", "leverage": "20"}).status_code == 200
    api.order(mh, side="sell", quantity="0.1", price="100000")
    api.order(th, side="buy", quantity="0.1", price="100000")
    before = api.get("/v1/positions", headers=th).json()[0]
    assert before["margin_mode"] == "isolated" and before["position_margin"] is not None
    r = api.post("/v1/positions/BTCUSDT/margin", headers=th, json={"amount": "200"})
    assert r.status_code == 200, r.text
    after = r.json()["positions"][0]
    assert D(after["liquidation_price"]) < D(before["liquidation_price"])
    assert D(after["position_margin"]) == D(before["position_margin"]) + 200
    # removing more than allowed is refused by the engine
    r = api.post("/v1/positions/BTCUSDT/margin", headers=th, json={"amount": "-100000"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "amount"


def test_alerts_rules_and_fired_alerts(api, pair):
    _, (taker, th) = pair
    r = api.post("/v1/alerts", headers=th, json={"kind": "price", "symbol": "BTCUSDT", "threshold": "95000",
                                                 "direction": "below"})
    assert r.status_code == 201
    api.mark("BTCUSDT", "94000")
    alerts = api.get("/v1/alerts", headers=th).json()
    assert alerts["rules"] == []  # a price alert is spent when it fires
    assert alerts["alerts"][0]["kind"] == "price" and alerts["alerts"][0]["symbol"] == "BTCUSDT"
    bad = api.post("/v1/alerts", headers=th, json={"kind": "adl_quintile", "symbol": "BTCUSDT", "threshold": "9"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "threshold"


# ------------------------------------------------------------------------------------------ public


def test_markets_include_btcusdt_settled_in_usdt(api):
    markets = {m["symbol"]: m for m in api.get("/v1/markets").json()}
    assert markets["BTCUSDT"]["settle"] == "USDT" and "ETHUSDT" in markets
    assert markets["BTCUSDT"]["tiers"][0]["mmr"] == "0.004"  # Binance USDⓈ-M BTCUSDT bracket 1


def test_book_mark_trades_insurance_and_funding(api, pair):
    (_, mh), _ = pair
    api.order(mh, side="sell", quantity="0.2", price="101000")
    book = api.get("/v1/markets/BTCUSDT/book", params={"depth": 5}).json()
    assert book["asks"][0][:2] == ["101000", "0.2"] and book["bids"] == []
    mark = api.get("/v1/mark/BTCUSDT", params={"history": 10}).json()
    assert mark["mark_price"] == "100000" and mark["history"][-1][1] == "100000"
    trades = api.get("/v1/trades/BTCUSDT").json()
    assert trades[-1]["price"] == "100000" and "taker_account_id" not in trades[-1]
    r = api.post("/v1/admin/insurance-fund", headers=ADMIN_HEADERS, json={"asset": "USDT", "amount": "5000"})
    assert r.status_code == 200
    fund = api.get("/v1/insurance-fund").json()
    assert fund["balances"]["USDT"] == "5000" and fund["balance"] == "5000"
    assert fund["history"][-1]["change"] == "5000" and fund["history"][-1]["reason"] == "fund deposit"
    r = api.post("/v1/admin/funding", headers=ADMIN_HEADERS, json={"symbol": "BTCUSDT", "rate": "0.0001"})
    assert r.status_code == 200 and r.json()["payments"] == 2
    funding = api.get("/v1/funding/BTCUSDT").json()
    assert funding["history"][-1]["rate"] == "0.0001" and funding["history"][-1]["mark_price"] == "100000"


def test_liquidation_feed_and_insurance_history_after_a_crash(api):
    api.mark("BTCUSDT", "100000")
    api.post("/v1/admin/insurance-fund", headers=ADMIN_HEADERS, json={"asset": "USDT", "amount": "10000"})
    _, mh = api.account("1000000")
    victim, vh = api.account("600")
    api.post("/v1/leverage", headers=vh, json={"symbol": "BTCUSDT", "leverage": "20"})
    api.order(mh, side="sell", quantity="0.1", price="100000")
    api.order(vh, side="buy", quantity="0.1", price="100000")
    api.order(mh, side="buy", quantity="1", price="92500")
    api.mark("BTCUSDT", "93000")
    assert api.get("/v1/positions", headers=vh).json() == []
    feed = api.get("/v1/liquidations").json()
    assert any(e["event"] == "LiquidationStep" and e["step"] == "takeover" for e in feed)
    assert all("account_id" not in e for e in feed)
    history = api.get("/v1/insurance-fund").json()["history"]
    assert len(history) >= 2


def test_openapi_and_docs_are_published(api):
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()
    for path in ("/v1/admin/accounts", "/v1/admin/deposits", "/v1/admin/state-hash", "/v1/orders",
                 "/v1/orders/{order_id}", "/v1/positions", "/v1/positions/{symbol}/margin", "/v1/account",
                 "/v1/alerts", "/v1/markets", "/v1/markets/{symbol}/book", "/v1/mark/{symbol}",
                 "/v1/insurance-fund", "/v1/funding/{symbol}"):
        assert path in spec["paths"], path
    assert api.get("/").headers["content-type"].startswith("text/html")


def test_dashboard_page_is_self_contained(api):
    html = api.get("/").text
    assert "<script>" in html and "/v1/ws" in html
    for marker in ("http://", "https://", "cdn", "<link"):
        assert marker not in html.replace("location.protocol === \"https:\"", ""), marker


# ------------------------------------------------------------------------------------------ calculator


def test_calculator_endpoint_is_the_calc_contract(api):
    req = {"family": "bybit", "margin_mode": "isolated", "wallet_balance": "400",
           "positions": [{"symbol": "BTCUSDT", "side": "long", "size": "1", "entry_price": "20000",
                          "mark_price": "20000", "leverage": "50", "mmr": "0.005"}]}
    r = api.post("/v1/calc/liquidation", json=req)
    assert r.status_code == 200 and r.json()["liquidation_price"] == "19700"  # SPEC §2 example
    tiers = dict(req, family="binance", positions=[{**req["positions"][0], "mmr": None, "leverage": None,
                                                    "tiers_symbol": "BTCUSDT"}])
    tiers["positions"][0] = {k: v for k, v in tiers["positions"][0].items() if v is not None}
    r = api.post("/v1/calc/liquidation", json=tiers)
    assert r.status_code == 200 and r.json()["tier"] == 1
    sneaky = dict(req, positions=[{**req["positions"][0], "mmr": None, "tiers_file": "/etc/passwd"}])
    r = api.post("/v1/calc/liquidation", json=sneaky)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "positions[0].tiers_file"
    r = api.post("/v1/calc/liquidation", json={**req, "family": "nope"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "family"


def test_reverse_sizing_endpoint(api):
    r = api.post("/v1/calc/reverse-size", json={"side": "long", "entry": "100000", "worst": "90000", "margin": "1000"})
    assert r.status_code == 200
    body = r.json()
    assert D(body["size"]) > 0 and Fraction(body["liquidation"]["liquidation_price"]) < 90000
    r = api.post("/v1/calc/reverse-size", json={"side": "long", "entry": "100000", "worst": "110000", "margin": "1"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "worst"
