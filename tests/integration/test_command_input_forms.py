"""A command may give its numbers as Decimals, integers or decimal strings (the API's JSON and the CLI do): once
validated, the engine holds Decimals — the same state, the same events, the same figures afterwards.  (Leverage,
order prices and quantities, and mark prices used to be stored as given: a string leverage or order price then
broke a later margin computation.)"""

from __future__ import annotations

from decimal import Decimal as D

from perprisk import commands as c
from perprisk.engine import Engine, EngineConfig
from tests_support import btc_instrument


def script(form) -> list:
    """One trading session; ``form`` turns each number into the form under test."""
    return [
        c.CreateAccount(), c.CreateAccount(),
        c.Deposit(1, "USDT", D(50_000)), c.Deposit(2, "USDT", D(50_000)),
        c.SetMarkPrice("BTCUSDT", form(D("100000.0")), 0),
        c.SetLeverage(1, "BTCUSDT", form(D(20))), c.SetLeverage(2, "BTCUSDT", form(D(10))),
        c.PlaceOrder(2, "BTCUSDT", "sell", form(D("0.5")), price=form(D("100010.0"))),
        c.PlaceOrder(1, "BTCUSDT", "buy", form(D("0.2")), price=form(D("100010.0"))),
        c.PlaceOrder(1, "BTCUSDT", "sell", form(D("0.2")), order_type="stop_market", reduce_only=True,
                     trigger_price=form(D("95000.0"))),
        c.AmendOrder(2, "BTCUSDT", 1, price=form(D("100020.0")), quantity=form(D("0.2"))),
        c.SetMarkPrice("BTCUSDT", form(D("99000.0")), 1000, index_price=form(D("99010.0"))),
    ]


def run(form) -> tuple[Engine, list]:
    engine = Engine(EngineConfig(markets=(btc_instrument(),)))
    events = [engine.execute(command) for command in script(form)]
    return engine, events


def test_strings_and_integers_give_the_state_of_decimals():
    reference, reference_events = run(lambda x: x)
    # integers where the Decimal is written as one (an int cannot say "100000.0": the state would show "100000")
    for form in (str, lambda x: int(x) if x.as_tuple().exponent == 0 else str(x)):
        engine, events = run(form)
        assert engine.state_hash() == reference.state_hash()
        assert events == reference_events
        for account_id in (1, 2):
            account = engine.accounts[account_id]
            assert type(account.market("BTCUSDT").leverage) is D
            assert engine.available_balance(account) == reference.available_balance(reference.accounts[account_id])
            assert engine.order_margin(account) == reference.order_margin(reference.accounts[account_id])
        for meta in engine.orders.values():
            assert type(meta.remaining) is D and (meta.price is None or type(meta.price) is D)
        state = engine.markets["BTCUSDT"]
        assert type(state.mark_price) is D and type(state.index_price) is D
        assert state.mark_price == D("99000.0") and state.index_price == D("99010.0")
