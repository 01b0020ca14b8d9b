"""Reduce-only orders never add exposure (SPEC §4 invariant 6), even after their position is gone.

Regression: a reduce-only stop-loss whose position was liquidated stayed among the conditional orders and,
when the mark later crossed its trigger, opened a position on the other side (found by the simulator).
"""

from __future__ import annotations

from decimal import Decimal as D

from perprisk import commands as c
from perprisk import events as ev


def test_reduce_only_stop_is_cancelled_when_its_position_is_liquidated(engine):
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100000), 1))
    maker = engine.execute(c.CreateAccount())[0].account_id
    engine.execute(c.Deposit(maker, "USDT", D(10**9)))
    engine.execute(c.SetLeverage(maker, "BTCUSDT", D(1)))
    trader = engine.execute(c.CreateAccount())[0].account_id
    engine.execute(c.Deposit(trader, "USDT", D(1000)))
    engine.execute(c.SetMarginMode(trader, "BTCUSDT", "isolated"))
    engine.execute(c.SetLeverage(trader, "BTCUSDT", D(20)))
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D("0.1"), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D("0.1"), price=D(100000), time_in_force="ioc"))
    stop = engine.execute(c.PlaceOrder(trader, "BTCUSDT", "sell", D("0.1"), order_type="stop_market",
                                       trigger_price=D(90000), reduce_only=True))[0].order_id
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D(5), price=D(94000)))
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D(5), price=D(89000)))
    events = engine.execute(c.SetMarkPrice("BTCUSDT", D(94500), 2))  # liquidated (LP ≈ 95,500)
    assert engine.accounts[trader].open_positions() == []
    cancelled = [e for e in events if isinstance(e, ev.OrderCancelled) and e.order_id == stop]
    assert [e.reason for e in cancelled] == ["reduce_only_exceeds_position"]
    engine.execute(c.SetMarkPrice("BTCUSDT", D(89500), 3))  # the stop would have triggered here
    assert engine.accounts[trader].open_positions() == []


def test_reduce_only_order_cancelled_when_the_position_flips(engine):
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100000), 1))
    maker, trader = (engine.execute(c.CreateAccount())[0].account_id for _ in range(2))
    for account in (maker, trader):
        engine.execute(c.Deposit(account, "USDT", D(1_000_000)))
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D(1), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D(1), price=D(100000)))  # long 1
    tp = engine.execute(c.PlaceOrder(trader, "BTCUSDT", "sell", D(1), price=D(110000), reduce_only=True))[0]
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D(2), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "sell", D(2), price=D(100000)))  # now short 1
    assert engine.accounts[trader].position("BTCUSDT", "both").size == -1
    assert tp.order_id not in engine.orders  # a reduce-only sell would now add to the short
