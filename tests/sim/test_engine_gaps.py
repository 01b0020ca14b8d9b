"""Engine behaviour the simulator relies on, found while building it.

A reduce-only stop-loss whose position was liquidated must not survive it: left among the conditional orders,
it would execute when the mark later crosses its trigger and *open* a position on the other side — a
reduce-only order that increases exposure (SPEC §4 invariant 6).  (The runner also cancels the stop of every
account whose position went to zero, ``StressRunner._cleanup``.)
"""

from __future__ import annotations

from decimal import Decimal as D

from perprisk import commands as c
from perprisk.engine import Engine, EngineConfig
from perprisk.instrument import Instrument, load_tier_table
from perprisk.paths import BINANCE_TIERS_FILE


def test_reduce_only_stop_never_opens_a_position_after_liquidation():
    inst = Instrument.create(
        symbol="BTCUSDT",
        base="BTC",
        settle="USDT",
        tick_size="0.1",
        lot_size="0.001",
        min_size="0.001",
        tiers=load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT"),
    )
    e = Engine(EngineConfig(markets=(inst,)))
    e.execute(c.SetMarkPrice("BTCUSDT", D(100000), 1))
    maker = e.execute(c.CreateAccount())[0].account_id
    e.execute(c.Deposit(maker, "USDT", D(10**9)))
    e.execute(c.SetLeverage(maker, "BTCUSDT", D(1)))
    trader = e.execute(c.CreateAccount())[0].account_id
    e.execute(c.Deposit(trader, "USDT", D(1000)))
    e.execute(c.SetMarginMode(trader, "BTCUSDT", "isolated"))
    e.execute(c.SetLeverage(trader, "BTCUSDT", D(20)))
    e.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D("0.1"), price=D(100000)))
    e.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D("0.1"), price=D(100000), time_in_force="ioc"))
    # a stop placed beyond the liquidation price (~95,500): the liquidation comes first
    e.execute(
        c.PlaceOrder(
            trader,
            "BTCUSDT",
            "sell",
            D("0.1"),
            order_type="stop_market",
            trigger_price=D(90000),
            reduce_only=True,
        )
    )
    e.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D(5), price=D(94000)))
    e.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D(5), price=D(89000)))
    e.execute(c.SetMarkPrice("BTCUSDT", D(94500), 2))  # liquidated
    assert e.accounts[trader].open_positions() == []
    e.execute(c.SetMarkPrice("BTCUSDT", D(89500), 3))  # the orphan stop triggers
    assert (
        e.accounts[trader].open_positions() == []
    )  # fails: a 0.1 BTC short was opened by a reduce-only order
