"""The ADL queue screened with float scores gives exactly the head of the exact ranking (SPEC §2.1 step 6)."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perprisk import commands as c
from perprisk.engine import Engine, EngineConfig
from perprisk.errors import ValidationError
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
