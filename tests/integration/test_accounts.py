"""Account features of the engine: multi-asset collateral, hedge mode, isolated margin, leverage bounds, index."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest

from perprisk import commands as c
from perprisk import events as ev
from perprisk.errors import ValidationError
from perprisk.formulas import FAMILIES, MarginMode, Side, liquidation_price


def make_accounts(engine, n=2, usdt="100000"):
    ids = [engine.execute(c.CreateAccount())[0].account_id for _ in range(n)]
    for i in ids:
        engine.execute(c.Deposit(i, "USDT", D(usdt)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100000), 1))
    engine.execute(c.SetMarkPrice("ETHUSDT", D(4000), 1))
    return ids


def test_btc_collateral_is_valued_at_index_with_haircut(engine):
    maker, = make_accounts(engine, 1)
    trader = engine.execute(c.CreateAccount())[0].account_id
    engine.execute(c.Deposit(trader, "BTC", D("0.1")))  # 10,000 at index, 9,500 after the 5 % haircut
    account = engine.accounts[trader]
    assert engine.collateral_value(account.wallet) == Fraction(9500)
    assert engine.available_balance(account) == Fraction(9500)
    engine.execute(c.SetLeverage(trader, "BTCUSDT", D(10)))
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D("0.5"), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D("0.5"), price=D(100000)))  # IM 5,000 + fee 25
    assert engine.accounts[trader].position("BTCUSDT", "both").size == D("0.5")
    # the USDT balance went negative (quote form), the BTC still backs it; the mark moves the collateral too
    engine.execute(c.SetMarkPrice("BTCUSDT", D(90000), 2))
    # collateral 0.1 × 90,000 × 0.95 − 25 fee − 50,000 cost; + 0.5 × 90,000
    assert engine.cross_equity(account) == Fraction(8550) - 25 - 50000 + 45000
    with pytest.raises(ValidationError) as info:  # would leave the position under initial margin
        engine.execute(c.Withdraw(trader, "BTC", D("0.1")))
    assert info.value.field == "amount"
    with pytest.raises(ValidationError) as info:
        engine.execute(c.Deposit(trader, "DOGE", D(1)))
    assert info.value.field == "asset"


def test_hedge_mode_holds_both_legs_and_closes_them_separately(engine):
    maker, trader = make_accounts(engine)
    engine.execute(c.SetPositionMode(trader, "hedge"))
    with pytest.raises(ValidationError) as info:
        engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D(1), price=D(100000)))
    assert info.value.field == "position_side"
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D(1), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D(1), price=D(100000), position_side="long"))
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D("0.4"), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "sell", D("0.4"), price=D(100000), position_side="short"))
    account = engine.accounts[trader]
    assert account.position("BTCUSDT", "long").size == 1
    assert account.position("BTCUSDT", "short").size == D("-0.4")
    with pytest.raises(ValidationError) as info:  # closing more than the short leg holds
        engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D(1), price=D(100000), position_side="short"))
    assert info.value.field == "quantity"
    with pytest.raises(ValidationError):  # the mode cannot change with open positions
        engine.execute(c.SetPositionMode(trader, "one_way"))
    # the engine's liquidation price solves both legs together (net 0.6 long), as the calculator does; with
    # 100,000 of wallet the account survives any fall, and the root lies far above, where the tiered MM of
    # both legs (1.4 BTC of notional) outgrows the net long's gains
    result = engine.liquidation(trader, "BTCUSDT", "long")
    inst = engine.markets["BTCUSDT"].instrument
    legs = [account.position("BTCUSDT", s).leg(inst, D(100000)) for s in ("long", "short")]
    calc = liquidation_price(FAMILIES["generic"], MarginMode.CROSS, engine.wallet_balance(account), legs,
                             target_side=Side.LONG, taker_fee=inst.taker_fee)
    assert result.liquidation_price == calc.liquidation_price
    assert result.liquidation_price > 100000 * 1000
    assert engine.open_interest("BTCUSDT") == (D(1), D(1))


def test_isolated_margin_add_remove_and_bounds(engine):
    maker, trader = make_accounts(engine)
    engine.execute(c.SetMarginMode(trader, "BTCUSDT", "isolated"))
    engine.execute(c.SetLeverage(trader, "BTCUSDT", D(20)))
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D(1), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "sell", D(1), price=D(100000)))
    position = engine.accounts[trader].position("BTCUSDT", "both")
    before = engine.liquidation(trader, "BTCUSDT").liquidation_price
    assert engine.position_margin(position) == Fraction(5000 - 50)  # 100,000 / 20, less the taker fee
    engine.execute(c.AdjustIsolatedMargin(trader, "BTCUSDT", D(1000)))
    after = engine.liquidation(trader, "BTCUSDT").liquidation_price
    assert after > before  # a short's LP moves up (away from the mark) with more margin
    with pytest.raises(ValidationError) as info:  # cannot go below initial margin
        engine.execute(c.AdjustIsolatedMargin(trader, "BTCUSDT", D(-2000)))
    assert info.value.field == "amount"
    events = engine.execute(c.AdjustIsolatedMargin(trader, "BTCUSDT", D(-500)))
    assert [e.amount for e in events if isinstance(e, ev.MarginMoved)] == [D(-500)]
    with pytest.raises(ValidationError):  # the margin mode cannot change with a position open
        engine.execute(c.SetMarginMode(trader, "BTCUSDT", "cross"))
    # closing the position returns the isolated balance to the wallet
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D(1), price=D(100000)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D(1), price=D(100000)))
    assert engine.ledger.balance(position.margin_account, "USDT") == 0
    assert engine.wallet_balance(engine.accounts[trader]) == Fraction(100000 - 50 - 50)


def test_leverage_is_bounded_by_the_tier_of_the_resulting_notional(engine):
    maker, trader = make_accounts(engine, usdt="10000000")
    engine.execute(c.SetLeverage(trader, "BTCUSDT", D(100)))  # tier 1 allows 150×
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D(20), price=D(100000)))
    with pytest.raises(ValidationError) as info:  # 2,000,000 notional: tier 3, max 75×
        engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D(20), price=D(100000)))
    assert info.value.field == "quantity" and "tier 3" in info.value.message
    engine.execute(c.SetLeverage(trader, "BTCUSDT", D(50)))
    engine.execute(c.PlaceOrder(trader, "BTCUSDT", "buy", D(20), price=D(100000)))
    with pytest.raises(ValidationError) as info:
        engine.execute(c.SetLeverage(trader, "BTCUSDT", D(100)))
    assert info.value.field == "leverage"


def test_index_quotes_drive_index_and_fair_mark(engine):
    # SPEC §2: a source more than 5 % from the median gets weight 0; fair = index·(1 + F·t/interval)
    make_accounts(engine, 1)
    quotes = c.IndexQuotes("BTCUSDT", 8 * 3600 * 1000 - 2 * 3600 * 1000, ("a", "b", "c", "d"),
                           (D(99900), D(100000), D(100100), D(106053)), (D(20), D(50), D(30), D(10)))
    events = engine.execute(quotes)
    update = [e for e in events if isinstance(e, ev.MarkPriceUpdated)][0]
    assert update.index_price == D(100010)  # the 106,053 source is excluded (6 % from the median 100,050)
    # 2 h before the 8 h funding with the default rate 0.01 %: 100,010 × (1 + 0.0001 × 2/8) = 100,012.50025
    assert update.mark_price == D("100012.5")


def test_funding_from_premium_samples_of_the_book(engine):
    maker, trader = make_accounts(engine)
    # a book 0.2 % above the index: impact bid/ask both above → positive premium → longs pay
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "buy", D(5), price=D(100200)))
    engine.execute(c.PlaceOrder(maker, "BTCUSDT", "sell", D(5), price=D(100300)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100000), 10, index_price=D(100000)))
    events = engine.execute(c.SampleFunding("BTCUSDT", 20))
    premium = [e.premium for e in events if isinstance(e, ev.FundingSampled)][0]
    assert premium == Fraction(200, 100000)  # (impact bid 100,200 − index) / index
    settled = engine.execute(c.SettleFunding("BTCUSDT", 30))
    rate = [e.rate for e in settled if isinstance(e, ev.FundingSettled)][0]
    assert rate == D("0.0015")  # P + clamp(0.0001 − P, ±0.0005) = 0.002 − 0.0005
