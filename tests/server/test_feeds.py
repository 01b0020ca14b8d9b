"""Price feeds: none (state changes only by API commands), synthetic, and the replay of a real candle file
(pausable from the admin API); funding on a schedule."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx

from perprisk.paths import DATA_DIR
from perprisk.server.testing import ServerProcess

from serverkit import ADMIN

CRASH_FILE = DATA_DIR / "binance_um" / "BTCUSDT-1m-2025-10-10_11.csv"


def test_feed_none_changes_nothing_by_itself(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path / 'n.db'}", ADMIN, "--feed", "none") as server:
        admin = server.admin()
        first = httpx.get(server.url + "/v1/admin/state-hash", headers=admin).json()
        time.sleep(1.5)
        assert httpx.get(server.url + "/v1/admin/state-hash", headers=admin).json() == first
        assert httpx.get(server.url + "/v1/feed").json()["kind"] == "none"
        r = httpx.post(server.url + "/v1/admin/feed", headers=admin, json={"action": "start"})
        assert r.status_code == 409
        markets = {m["symbol"]: m for m in httpx.get(server.url + "/v1/markets").json()}
        assert markets["BTCUSDT"]["settle"] == "USDT" and markets["BTCUSDT"]["mark_price"] is None


def test_synthetic_feed_moves_marks_on_the_tick_with_the_funding_clock_on(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path / 's.db'}", ADMIN, "--feed", "synthetic", "--feed-speed", "20",
                       "--funding-interval", "1") as server:
        time.sleep(2.5)
        mark = httpx.get(server.url + "/v1/mark/BTCUSDT", params={"history": 100}).json()
        assert mark["mark_price"] is not None and len(mark["history"]) >= 10
        assert len({p[1] for p in mark["history"]}) > 1  # it moves
        for _, price, _ in mark["history"]:
            assert Decimal(price) % Decimal("0.1") == 0  # on the tick
        status = httpx.get(server.url + "/v1/feed").json()
        assert status["kind"] == "synthetic" and status["running"] and status["ticks"] >= 20


def test_replay_feed_is_paused_then_started(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path / 'r.db'}", ADMIN, "--feed", str(CRASH_FILE), "--feed-speed", "600",
                       "--feed-start", "2025-10-10T21:10:00Z", "--feed-paused") as server:
        status = httpx.get(server.url + "/v1/feed").json()
        assert status["kind"] == "replay" and not status["running"] and status["ticks"] == 0
        assert httpx.post(server.url + "/v1/admin/feed", json={"action": "start"}).status_code == 401
        r = httpx.post(server.url + "/v1/admin/feed", headers=server.admin(), json={"action": "start"})
        assert r.status_code == 200 and r.json()["running"]
        time.sleep(1.5)
        mark = httpx.get(server.url + "/v1/mark/BTCUSDT", params={"history": 500}).json()
        prices = [Decimal(p[1]) for p in mark["history"]]
        # the first replayed candle (2025-10-10 21:10 UTC) opens at 114,382.3 in the real file
        assert prices[0] == Decimal("114382.3") and min(prices) < Decimal("114000")
        status = httpx.get(server.url + "/v1/feed").json()
        assert status["candle_time_ms"] >= 1760130600000
        r = httpx.post(server.url + "/v1/admin/feed", headers=server.admin(), json={"action": "pause"})
        assert r.status_code == 200 and not r.json()["running"]
