"""Helpers of the server tests (imported by conftest.py and the test modules): the admin key of the tests, a
TestClient wrapper with account/order helpers, and the configuration of a test server."""

from __future__ import annotations

import warnings
from dataclasses import replace
from decimal import Decimal

warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient  # noqa: E402

from perprisk.server import load_config  # noqa: E402

ADMIN = "test-admin-key-0123456789"
ADMIN_HEADERS = {"X-Admin-Key": ADMIN}


class Api:
    """A TestClient with the helpers every test needs."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.app = client.app

    def __getattr__(self, name):
        return getattr(self.client, name)

    @property
    def engine(self):
        return self.app.state.service.engine

    def account(self, amount: str | None = "100000", mode: str | None = None) -> tuple[int, dict[str, str]]:
        r = self.client.post("/v1/admin/accounts", headers=ADMIN_HEADERS, json={"position_mode": mode} if mode else None)
        assert r.status_code == 201, r.text
        body = r.json()
        if amount:
            r = self.client.post("/v1/admin/deposits", headers=ADMIN_HEADERS,
                                 json={"account_id": body["account_id"], "asset": "USDT", "amount": amount})
            assert r.status_code == 200, r.text
        return body["account_id"], {"X-API-Key": body["api_key"]}

    def mark(self, symbol: str, price: str) -> dict:
        r = self.client.post("/v1/admin/mark", headers=ADMIN_HEADERS, json={"symbol": symbol, "mark_price": price})
        assert r.status_code == 200, r.text
        return r.json()

    def order(self, headers, symbol="BTCUSDT", side="buy", quantity="0.1", price="100000", **extra) -> dict:
        body = {"symbol": symbol, "side": side, "quantity": quantity, **extra}
        if price is not None:
            body["price"] = price
        r = self.client.post("/v1/orders", headers=headers, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def state_hash(self) -> str:
        return self.client.get("/v1/admin/state-hash", headers=ADMIN_HEADERS).json()["state_hash"]


def make_config(db: str, **overrides):
    config = load_config(None, db=db)
    return replace(config, **{"admin_key": ADMIN, **overrides})



D = Decimal
