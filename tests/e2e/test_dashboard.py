"""The dashboard in a real browser (headless Debian Chromium via Playwright): log in with a key, place an
order, see the position and its liquidation price, then watch the replayed 2025-10-10 crash (real Binance
1-minute candles) liquidate it.  Saves a screenshot (docs/dashboard.png with PERPRISK_UPDATE_SCREENSHOT=1)."""

from __future__ import annotations

import os
import re
from decimal import Decimal

import httpx
import numpy as np

from perprisk.candles import load_candles
from perprisk.paths import DATA_DIR
from perprisk.server.testing import ROOT, ServerProcess

ADMIN = "e2e-admin-key-0123456789"
CRASH_FILE = DATA_DIR / "binance_um" / "BTCUSDT-1m-2025-10-10_11.csv"
ETH_FILE = DATA_DIR / "binance_um" / "ETH_USDT_USDT-5m-futures.json"
START = 1760130300000  # 2025-10-10 21:05 UTC, a few minutes before the fall
# the README's screenshot is refreshed on request (PERPRISK_UPDATE_SCREENSHOT=1); a plain test run writes to
# reports/ so `make test` leaves the work tree clean
SCREENSHOT = ROOT / ("docs" if os.environ.get("PERPRISK_UPDATE_SCREENSHOT") == "1" else "reports") / "dashboard.png"


def shown(x: str) -> str:
    """A price as the dashboard shows it (en-US grouping, one decimal above 1,000)."""
    return f"{Decimal(x):,.1f}"


def test_dashboard_login_order_position_and_liquidation(browser, tmp_path):
    btc = load_candles(CRASH_FILE)
    first = btc.decimal_row(int(np.searchsorted(btc.timestamps_ms, START)))
    eth_price = load_candles(ETH_FILE).decimal_row(-1).close
    server = ServerProcess(f"sqlite:///{tmp_path / 'e2e.db'}", ADMIN, "--feed", str(CRASH_FILE),
                           "--feed-start", str(START), "--feed-speed", "150", "--feed-paused").start()
    try:
        api = httpx.Client(base_url=server.url, timeout=10)
        admin = server.admin()

        def create(amount: str) -> tuple[int, str]:
            r = api.post("/v1/admin/accounts", headers=admin)
            assert r.status_code == 201, r.text
            account = r.json()
            r = api.post("/v1/admin/deposits", headers=admin,
                         json={"account_id": account["account_id"], "asset": "USDT", "amount": amount})
            assert r.status_code == 200, r.text
            return account["account_id"], account["api_key"]

        assert api.post("/v1/admin/insurance-fund", headers=admin, json={"asset": "USDT", "amount": "2000"}).status_code == 200
        maker_id, maker = create("10000000")
        user_id, user = create("20000")
        for symbol, price in (("BTCUSDT", first.open), ("ETHUSDT", eth_price)):
            r = api.post("/v1/admin/mark", headers=admin, json={"symbol": symbol, "mark_price": str(price)})
            assert r.status_code == 200, r.text
        mk = {"X-API-Key": maker}
        for side, qty, price in (("sell", "0.5", first.open), ("sell", "1", first.open + 50),
                                 ("buy", "0.05", Decimal("110000")), ("buy", "0.5", Decimal("104000"))):
            r = api.post("/v1/orders", headers=mk, json={"symbol": "BTCUSDT", "side": side, "quantity": qty, "price": str(price)})
            assert r.status_code == 201, r.text
        assert api.post("/v1/orders", headers=mk, json={"symbol": "ETHUSDT", "side": "sell", "quantity": "3",
                                                         "price": str(eth_price)}).status_code == 201
        # the user also holds ETH (via the API), which the BTC crash does not touch
        us = {"X-API-Key": user}
        assert api.post("/v1/margin-mode", headers=us, json={"symbol": "ETHUSDT", "margin_mode": "isolated"}).status_code == 200
        assert api.post("/v1/leverage", headers=us, json={"symbol": "ETHUSDT", "leverage": "10"}).status_code == 200
        r = api.post("/v1/alerts", headers=us, json={"kind": "margin_ratio", "symbol": "BTCUSDT", "threshold": "10"})
        assert r.status_code == 201, r.text
        r = api.post("/v1/orders", headers=us, json={"symbol": "ETHUSDT", "side": "buy", "quantity": "2",
                                                      "price": str(eth_price)})
        assert r.json()["status"] == "filled", r.text

        page = browser.new_page(viewport={"width": 1600, "height": 1050})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.get_by_test_id("api-key").fill(user)
        page.get_by_test_id("login").click()
        page.get_by_test_id("account-id").wait_for()
        assert page.get_by_test_id("account-id").inner_text() == str(user_id)

        # order entry: 0.1 BTC long, market, 20× isolated
        page.get_by_test_id("order-type").select_option("market")
        page.get_by_test_id("order-qty").fill("0.1")
        page.get_by_test_id("order-leverage").fill("20")
        page.get_by_test_id("order-margin-mode").select_option("isolated")
        page.get_by_test_id("side-buy").click()
        page.get_by_test_id("order-submit").click()
        msg = page.get_by_test_id("order-msg")
        page.wait_for_function("document.querySelector('[data-testid=order-msg]').textContent.includes('filled')",
                               timeout=15000)
        assert "filled" in msg.inner_text(), msg.inner_text()

        # the position appears with the engine's liquidation price
        row = page.locator('[data-testid=position-row][data-symbol=BTCUSDT]')
        row.wait_for(timeout=15000)
        position = next(p for p in api.get("/v1/positions", headers=us).json() if p["symbol"] == "BTCUSDT")
        assert position["margin_mode"] == "isolated" and position["leverage"] == "20"
        liq = Decimal(position["liquidation_price"])
        assert Decimal("100000") < liq < first.open
        page.wait_for_function(
            "(t) => { const c = document.querySelector('[data-testid=position-row][data-symbol=BTCUSDT] .liq-price');"
            " return c && c.textContent.trim() === t; }", arg=shown(position["liquidation_price"]), timeout=15000)
        assert page.locator('[data-testid=position-row][data-symbol=ETHUSDT]').count() == 1
        page.screenshot(path=str(tmp_path / "before-crash.png"), full_page=True)

        # the feed replays the crash: the 20× long is liquidated, live on the page
        r = api.post("/v1/admin/feed", headers=admin, json={"action": "start"})
        assert r.status_code == 200 and r.json()["running"], r.text
        page.locator("[data-testid=liquidation]", has_text="YOU").first.wait_for(timeout=60000)
        row.wait_for(state="detached", timeout=30000)
        assert page.locator('[data-testid=position-row][data-symbol=ETHUSDT]').count() == 1
        feed_text = page.get_by_test_id("liquidations").inner_text()
        assert re.search(r"takeover", feed_text), feed_text
        alerts = api.get("/v1/alerts", headers=us).json()
        assert any(a["kind"] == "margin_ratio" and a["symbol"] == "BTCUSDT" for a in alerts["alerts"]), alerts

        # the API agrees: no BTC position left, the liquidation and the fund's movements are recorded
        assert all(p["symbol"] != "BTCUSDT" for p in api.get("/v1/positions", headers=us).json())
        steps = api.get("/v1/liquidations").json()
        assert any(e["event"] == "LiquidationStep" and e["step"] == "takeover" for e in steps)
        fund = api.get("/v1/insurance-fund").json()
        assert len(fund["history"]) >= 2
        # the calculator: the SPEC's Bybit example (1 BTC long at 20,000, 50x, mmr 0.5 %: liquidation 19,700)
        page.get_by_role("button", name="Bybit 50× (SPEC)").click()
        page.get_by_test_id("calc-result").filter(has_text="19,700.00").wait_for(timeout=10000)
        # reverse sizing with the shipped Binance tiers: a size whose liquidation price lies beyond 90,000
        page.get_by_test_id("size-go").click()
        page.get_by_test_id("size-result").filter(has_text="largest size").wait_for(timeout=10000)
        sized = api.post("/v1/calc/reverse-size", json={"side": "long", "entry": "100000", "worst": "90000",
                                                        "margin": "1000"}).json()
        assert sized["size"] in page.get_by_test_id("size-result").inner_text()
        page.wait_for_timeout(1500)  # let the chart draw a few more candles after the fall
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert not errors, errors
    finally:
        server.stop()
