"""Block trades: an off-book trade between two accounts at an agreed price (the stress simulator's entries and
exits).  Same position, margin, fee and cash effects as a book trade at that price; the same refusals as an
order (margin, tier leverage, reduce-only, debt), each changing nothing; journaled and replayed exactly."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from perprisk import commands as c
from perprisk import events as ev
from perprisk.engine import Engine, recover
from perprisk.errors import ValidationError
from perprisk.journal import SqliteJournal


def _two_accounts(engine: Engine, taker_deposit: D = D(10_000), maker_deposit: D = D(10**8)) -> tuple[int, int]:
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100000), 1))
    taker, maker = (engine.execute(c.CreateAccount())[0].account_id for _ in range(2))
    engine.execute(c.Deposit(taker, "USDT", taker_deposit))
    engine.execute(c.Deposit(maker, "USDT", maker_deposit))
    engine.execute(c.SetLeverage(maker, "BTCUSDT", D(1)))
    return taker, maker


def _book_trade(engine: Engine, taker: int, maker: int, side: str, qty: D, price: D, reduce_only: bool = False):
    other = "sell" if side == "buy" else "buy"
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", other, qty, price=price))
    engine.execute(c.PlaceOrder(taker, "BTCUSDT", side, qty, price=price, time_in_force="ioc",
                                reduce_only=reduce_only))


@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_block_trade_moves_money_and_positions_like_a_book_trade(engine_config, mode):
    """Open 0.5 BTC long at 100,000 (10×) and close it at 100,500, by book and by block: identical ledgers."""
    ledgers = []
    for use_block in (False, True):
        engine = Engine(engine_config)
        taker, maker = _two_accounts(engine)
        if mode == "isolated":
            engine.execute(c.SetMarginMode(taker, "BTCUSDT", "isolated"))
        engine.execute(c.SetLeverage(taker, "BTCUSDT", D(10)))
        for side, price, reduce_only in (("buy", D(100000), False), ("sell", D("100500"), True)):
            if use_block:
                events = engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", side, D("0.5"), price, reduce_only))
                traded = [e for e in events if isinstance(e, ev.BlockTraded)]
                assert len(traded) == 1 and traded[0].taker_fee == D("0.5") * price * D("0.0005")
                assert traded[0].maker_fee == D("0.5") * price * D("0.0002")
            else:
                _book_trade(engine, taker, maker, side, D("0.5"), price, reduce_only)
        assert engine.accounts[taker].open_positions() == []
        assert all(v == 0 for v in engine.conservation_error().values())
        ledgers.append({acct: engine.ledger.balances_of(acct) for acct in (f"trader/{taker}", f"trader/{maker}",
                                                                            "fees")})
    assert ledgers[0] == ledgers[1]
    # the trader made 0.5 × 500 = 250 minus fees 25 + 25.125
    wallet = engine.ledger.balances_of(f"trader/{taker}")["USDT"]
    assert wallet == D(10_000) + D(250) - D("25") - D("25.125")


def test_block_trade_does_not_print_on_the_tape(engine):
    taker, maker = _two_accounts(engine)
    engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "buy", D("0.01"), D("100100")))
    assert engine.markets["BTCUSDT"].last_price is None
    longs, shorts = engine.open_interest("BTCUSDT")
    assert longs == shorts == D("0.01")


REFUSALS = [
    (dict(quantity=D("0.0005")), "quantity"),  # off the lot grid
    (dict(quantity=D(0)), "quantity"),
    (dict(price=D("100000.05")), "price"),  # off the tick grid
    (dict(price=D(120000)), "price"),  # beyond the market-order band of the mark
    (dict(side="hold"), "side"),
    (dict(symbol="DOGEUSDT"), "symbol"),
    (dict(counterparty_id=999), "counterparty_id"),
    (dict(quantity=D(5)), "quantity"),  # 5 BTC at 10× needs 50,000 > 10,000 available
    (dict(reduce_only=True), "reduce_only"),  # nothing to reduce
]


@pytest.mark.parametrize("change,field", REFUSALS)
def test_block_trade_refusals_name_the_field_and_change_nothing(engine, change, field):
    taker, maker = _two_accounts(engine)
    engine.execute(c.SetLeverage(taker, "BTCUSDT", D(10)))
    before = engine.state_hash()
    values = dict(account_id=taker, counterparty_id=maker, symbol="BTCUSDT", side="buy", quantity=D("0.01"),
                  price=D(100000))
    values.update(change)
    with pytest.raises(ValidationError) as err:
        engine.execute(c.BlockTrade(**values))
    assert err.value.field == field
    assert engine.state_hash() == before


def test_block_trade_with_itself_and_tier_leverage_refused(engine):
    taker, maker = _two_accounts(engine, taker_deposit=D(10**7))
    with pytest.raises(ValidationError) as err:
        engine.execute(c.BlockTrade(taker, taker, "BTCUSDT", "buy", D("0.01"), D(100000)))
    assert err.value.field == "counterparty_id"
    engine.execute(c.SetLeverage(taker, "BTCUSDT", D(100)))
    before = engine.state_hash()
    with pytest.raises(ValidationError) as err:  # 10 BTC = 1 M notional: Binance tier 3 (from 800,000) allows 75×
        engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "buy", D(10), D(100000)))
    assert err.value.field == "quantity" and "lower the leverage" in err.value.message
    assert engine.state_hash() == before


def test_block_trade_is_journaled_and_replayed(engine_config):
    journal = SqliteJournal(":memory:")
    engine = Engine(engine_config, journal=journal)
    taker, maker = _two_accounts(engine)
    engine.execute(c.SetLeverage(taker, "BTCUSDT", D(5)))
    engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "sell", D("0.2"), D("99950.5")))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(99000), 2))
    engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "buy", D("0.1"), D(99000), True))
    replayed = recover(engine_config, journal, use_snapshot=False)
    assert replayed.state_hash() == engine.state_hash()


def test_block_trade_takes_int_and_string_inputs_as_the_decimals_it_validated(engine):
    taker, maker = _two_accounts(engine, taker_deposit=D(50_000))
    engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "buy", 1, 100000))
    engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "sell", "0.5", "100000.5", True))
    assert engine.accounts[taker].position("BTCUSDT", "both").size == D("0.5")
    assert all(v == 0 for v in engine.conservation_error().values())
    longs, shorts = engine.open_interest("BTCUSDT")
    assert longs == shorts == D("0.5")


def test_block_trade_away_from_the_mark_counts_the_instant_loss(engine):
    """Buying 0.9 BTC at 105,000 with the mark at 100,000 loses 4,500 at once: with 1,000 deposited at 100×
    (initial margin 945) the trade is refused; at the mark it is accepted."""
    taker, maker = _two_accounts(engine, taker_deposit=D(1_000))
    engine.execute(c.SetLeverage(taker, "BTCUSDT", D(100)))
    before = engine.state_hash()
    with pytest.raises(ValidationError) as err:
        engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "buy", D("0.9"), D(105000)))
    assert err.value.field == "quantity"
    assert engine.state_hash() == before
    engine.execute(c.BlockTrade(taker, maker, "BTCUSDT", "buy", D("0.9"), D(100000)))


def test_block_trade_refuses_a_reduction_that_would_leave_the_counterparty_below_zero(engine):
    """The counterparty is long 0.5 at 100× on 1,000; buying its 0.5 at 95,000 (5 % under the mark) would
    cost it 2,500 + fee against ~950 of equity at the mark: refused, naming the price and the account."""
    taker, maker = _two_accounts(engine, taker_deposit=D(10**6))
    holder = engine.execute(c.CreateAccount())[0].account_id
    engine.execute(c.Deposit(holder, "USDT", D(1_000)))
    engine.execute(c.SetLeverage(holder, "BTCUSDT", D(100)))
    engine.execute(c.BlockTrade(holder, maker, "BTCUSDT", "buy", D("0.5"), D(100000)))
    before = engine.state_hash()
    with pytest.raises(ValidationError) as err:
        engine.execute(c.BlockTrade(taker, holder, "BTCUSDT", "buy", D("0.5"), D(95000)))
    assert err.value.field == "price" and f"account {holder}" in err.value.message
    assert engine.state_hash() == before
    engine.execute(c.BlockTrade(taker, holder, "BTCUSDT", "buy", D("0.5"), D(100000)))  # at the mark: fine
    assert engine.accounts[holder].open_positions() == []


def test_block_trade_counterparty_without_margin_is_named(engine):
    taker, _ = _two_accounts(engine, taker_deposit=D(10**6))
    poor = engine.execute(c.CreateAccount())[0].account_id
    engine.execute(c.Deposit(poor, "USDT", D(10)))
    before = engine.state_hash()
    with pytest.raises(ValidationError) as err:
        engine.execute(c.BlockTrade(taker, poor, "BTCUSDT", "buy", D(1), D(100000)))
    assert err.value.field == "counterparty_id" and f"account {poor}" in err.value.message
    assert engine.state_hash() == before
