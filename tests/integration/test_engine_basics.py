"""Engine walk-throughs: deposit, leveraged positions, marks, margin ratio, liquidation price, funding."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest

from perprisk import commands as c
from perprisk.engine import recover, take_snapshot
from perprisk.errors import ValidationError
from perprisk.events import FundingPaid, Trade
from perprisk.formulas import FAMILIES, MarginMode, liquidation_price
from perprisk.journal import SqliteJournal
from perprisk.ledger import FEES


def open_pair(engine, price="100000", qty="1", leverage="10", mode="cross"):
    """Account 1 (maker) sells, account 2 (taker) buys ``qty`` at ``price``."""
    a = engine.execute(c.CreateAccount())[0].account_id
    b = engine.execute(c.CreateAccount())[0].account_id
    for acct in (a, b):
        engine.execute(c.Deposit(acct, "USDT", D("50000")))
        engine.execute(c.SetMarginMode(acct, "BTCUSDT", mode))
        engine.execute(c.SetLeverage(acct, "BTCUSDT", D(leverage)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(price), 1))
    engine.execute(c.PlaceOrder(a, "BTCUSDT", "sell", D(qty), price=D(price)))
    events = engine.execute(c.PlaceOrder(b, "BTCUSDT", "buy", D(qty), price=D(price)))
    return a, b, events


def test_trade_moves_positions_fees_and_conserves_money(engine):
    a, b, events = open_pair(engine)
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(trades) == 1 and trades[0].price == D("100000") and trades[0].quantity == D(1)
    # taker pays 0.05 % of 100,000 = 50, maker 0.02 % = 20
    assert (trades[0].taker_fee, trades[0].maker_fee) == (D("50.0000"), D("20.0000"))
    assert engine.ledger.balance(FEES, "USDT") == D(70)
    assert engine.accounts[b].position("BTCUSDT", "both").size == D(1)
    assert engine.accounts[a].position("BTCUSDT", "both").size == D(-1)
    assert engine.open_interest("BTCUSDT") == (D(1), D(1))
    assert all(v == 0 for v in engine.conservation_error().values())
    # wallet as a trader reads it: 50,000 − fee
    assert engine.wallet_balance(engine.accounts[b]) == Fraction(49950)


def test_engine_liquidation_price_equals_the_calculators_cross(engine):
    a, b, _ = open_pair(engine)
    engine.execute(c.SetMarkPrice("BTCUSDT", D("98000"), 2))
    result = engine.liquidation(b, "BTCUSDT")
    account = engine.accounts[b]
    pos = account.position("BTCUSDT", "both")
    # the same inputs a trader gives the calculator: wallet 49,950, 1 BTC long @ 100,000, mark 98,000
    calc = liquidation_price(
        FAMILIES["generic"], MarginMode.CROSS, D("49950"),
        [pos.leg(engine.markets["BTCUSDT"].instrument, D("98000"))], taker_fee=D("0.0005"),
    )
    assert result.liquidation_price == calc.liquidation_price
    # by hand: 49,950 + (P − 100,000) = P·(0.004 + 0.0005) → P = 50,050 / 0.9955
    assert result.liquidation_price == Fraction(50050) / Fraction("0.9955")
    # margin ratio = MM / equity at the mark
    mm = Fraction(98000) * Fraction("0.0045")
    assert engine.margin_ratio(b) == mm / (Fraction(49950) - 2000)


def test_engine_liquidation_price_equals_the_calculators_isolated(engine):
    a, b, _ = open_pair(engine, mode="isolated")
    # isolated margin moved on open: 100,000 / 10 = 10,000; fee paid from the position margin
    pos = engine.accounts[b].position("BTCUSDT", "both")
    assert engine.position_margin(pos) == Fraction(10000 - 50)
    result = engine.liquidation(b, "BTCUSDT")
    calc = liquidation_price(FAMILIES["generic"], MarginMode.ISOLATED, D("9950"),
                             [pos.leg(engine.markets["BTCUSDT"].instrument, D("100000"))], taker_fee=D("0.0005"))
    assert result.liquidation_price == calc.liquidation_price == (Fraction(100000) - 9950) / (1 - Fraction("0.0045"))


def test_funding_long_pays_short_receives(engine):
    a, b, _ = open_pair(engine)
    events = engine.execute(c.SettleFunding("BTCUSDT", 8 * 3600 * 1000, rate=D("0.0001")))
    paid = {e.account_id: e.amount for e in events if isinstance(e, FundingPaid)}
    assert paid == {b: D("-10.0000"), a: D("10.0000")}  # 1 BTC × 100,000 × 0.01 %
    assert all(v == 0 for v in engine.conservation_error().values())


def test_funding_at_a_rate_of_many_digits_settles_and_the_scan_stays_exact(engine):
    """A rate with 56 significant digits (0.01 % and 55 more): every payment keeps every digit — the ledger
    used to negate a payment in the default 28-digit context, which rounded it and left the funding pool
    unbalanced — the scanner's bound for the settlement is exact, and later risk passes flag what the exact loop
    flags."""
    a, b, _ = open_pair(engine, leverage="20")
    rate = D("0.0001" + "1" * 55)
    events = engine.execute(c.SettleFunding("BTCUSDT", 8 * 3600 * 1000, rate=rate))
    paid = {e.account_id: e.amount for e in events if isinstance(e, FundingPaid)}
    assert Fraction(paid[b]) == -100000 * Fraction(rate) and Fraction(paid[a]) == 100000 * Fraction(rate)  # exact
    assert all(v == 0 for v in engine.conservation_error().values())
    for mark in ("96000", "95600", "95500", "104400", "104600"):
        engine.execute(c.SetMarkPrice("BTCUSDT", D(mark), 8 * 3600 * 1000 + 1))
        assert engine.liquidator.flagged(None) == []  # every unit at or over 100 % was liquidated


def test_funding_pays_in_account_order_whatever_order_positions_opened(engine):
    """Payments (and their events) go account by account, each account's slots in their own order — not in the
    order the positions happened to open (accounts 3 and 4 trade before 1 and 2 here)."""
    ids = [engine.execute(c.CreateAccount())[0].account_id for _ in range(4)]
    for acct in ids:
        engine.execute(c.Deposit(acct, "USDT", D("50000")))
        engine.execute(c.SetLeverage(acct, "BTCUSDT", D("10")))
    engine.execute(c.SetMarkPrice("BTCUSDT", D("100000"), 1))
    for seller, buyer in ((ids[3], ids[2]), (ids[1], ids[0])):
        engine.execute(c.PlaceOrder(seller, "BTCUSDT", "sell", D("0.5"), price=D("100000")))
        engine.execute(c.PlaceOrder(buyer, "BTCUSDT", "buy", D("0.5"), price=D("100000")))
    events = engine.execute(c.SettleFunding("BTCUSDT", 8 * 3600 * 1000, rate=D("0.0001")))
    paid = [(e.account_id, e.amount) for e in events if isinstance(e, FundingPaid)]
    assert paid == [(ids[0], D("-5")), (ids[1], D("5")), (ids[2], D("-5")), (ids[3], D("5"))]
    assert all(v == 0 for v in engine.conservation_error().values())


def test_refused_commands_change_nothing(engine):
    a, b, _ = open_pair(engine)
    before = engine.state_hash()
    bad = [
        (c.PlaceOrder(a, "BTCUSDT", "buy", D("0.0005"), price=D("100000")), "quantity"),  # off lot
        (c.PlaceOrder(a, "BTCUSDT", "buy", D("1"), price=D("100000.05")), "price"),  # off tick
        (c.PlaceOrder(a, "DOGEUSDT", "buy", D("1"), price=D("1")), "symbol"),
        (c.PlaceOrder(a, "BTCUSDT", "buy", D("-1"), price=D("1")), "quantity"),
        (c.PlaceOrder(b, "BTCUSDT", "buy", D("1"), price=D("90000"), reduce_only=True), "reduce_only"),
        (c.PlaceOrder(a, "BTCUSDT", "buy", D("100"), price=D("100000")), "quantity"),  # margin
        (c.SetLeverage(a, "BTCUSDT", D("500")), "leverage"),
        (c.Withdraw(b, "USDT", D("49000")), "amount"),
        (c.Deposit(a, "USDT", D("NaN")), "amount"),
        (c.Deposit(99, "USDT", D("1")), "account_id"),
    ]
    for command, field in bad:
        with pytest.raises(ValidationError) as info:
            engine.execute(command)
        assert info.value.field == field, (command, info.value)
    assert engine.state_hash() == before


def test_replay_and_snapshot_give_the_same_hash(tmp_path, engine_config):
    from perprisk.engine import Engine

    config = engine_config
    journal = SqliteJournal(tmp_path / "j.sqlite")
    engine = Engine(config, journal=journal)
    a, b, _ = open_pair(engine)
    take_snapshot(engine)
    engine.execute(c.SetMarkPrice("BTCUSDT", D("101000"), 5))
    engine.execute(c.SettleFunding("BTCUSDT", 6, rate=D("0.0002")))
    engine.execute(c.PlaceOrder(a, "BTCUSDT", "buy", D("0.5"), price=D("99000")))
    expected = engine.state_hash()
    journal.close()
    reopened = SqliteJournal(tmp_path / "j.sqlite")
    assert recover(config, reopened).state_hash() == expected
    assert recover(config, reopened, use_snapshot=False).state_hash() == expected
