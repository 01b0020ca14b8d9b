"""Liquidation scenarios with exact expected ledger movements (issue: liquidation, insurance fund, ADL, policies)."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest

from perprisk import commands as c
from perprisk import events as ev
from perprisk.engine import Engine, EngineConfig
from perprisk.errors import ValidationError
from perprisk.instrument import Instrument, TierTable, load_tier_table
from perprisk.ledger import INSURANCE_FUND, PLATFORM
from perprisk.paths import BINANCE_TIERS_FILE


def unit_market(**overrides) -> Instrument:
    """A market priced around 1 with no fees, so every movement can be checked by hand."""
    values = dict(symbol="XUSDT", base="X", settle="USDT", tick_size="0.01", lot_size="1", min_size="1",
                  maker_fee="0", taker_fee="0", liquidation_fee="0",
                  tiers=TierTable.single("XUSDT", D("0.005"), 0, max_leverage=100))
    values.update(overrides)
    return Instrument.create(**values)


def crash_setup(policy: str, fund: str, maker_ask: str | None = "2.05"):
    """T deposits 100 and shorts 500 at 1 (isolated, 5×); C is the long; M offers 1,000 at ``maker_ask``."""
    engine = Engine(EngineConfig(markets=(unit_market(),), policy=policy))
    t, cc, m = (engine.execute(c.CreateAccount())[0].account_id for _ in range(3))
    engine.execute(c.Deposit(t, "USDT", D(100)))
    engine.execute(c.Deposit(cc, "USDT", D(1000)))
    engine.execute(c.Deposit(m, "USDT", D(10000)))
    if D(fund) > 0:
        engine.execute(c.DepositInsuranceFund("USDT", D(fund)))
    engine.execute(c.SetMarginMode(t, "XUSDT", "isolated"))
    for acct in (t, cc):
        engine.execute(c.SetLeverage(acct, "XUSDT", D(5)))
    engine.execute(c.SetMarkPrice("XUSDT", D(1), 1))
    engine.execute(c.PlaceOrder(cc, "XUSDT", "buy", D(500), price=D(1)))
    engine.execute(c.PlaceOrder(t, "XUSDT", "sell", D(500), price=D(1)))
    if maker_ask is not None:
        engine.execute(c.PlaceOrder(m, "XUSDT", "sell", D(1000), price=D(maker_ask)))
    return engine, t, cc, m


def crash(engine) -> list:
    return engine.execute(c.SetMarkPrice("XUSDT", D(2), 2))


def check_invariants(engine):
    assert all(v == 0 for v in engine.conservation_error().values())
    longs, shorts = engine.open_interest("XUSDT")
    assert longs == shorts
    assert engine.liquidator.flagged(None) == []  # invariant 3


def wallet(engine, account_id) -> Fraction:
    return engine.wallet_balance(engine.accounts[account_id])


def test_documented_deleveraging_example():
    """Deposit 100, short 500 at 1; the price goes to 2; bankruptcy price 1.2; the counterparty is closed at 1.2.

    Source: the deleveraging example of the issue (BitMEX/MEXC ADL documentation style).  With an empty fund
    and no ask the book can absorb, the liquidation engine deleverages the long at the bankruptcy price.
    """
    engine, t, cc, m = crash_setup("insurance_fund", fund="0", maker_ask=None)
    events = crash(engine)
    takeover = [e for e in events if isinstance(e, ev.LiquidationStep) and e.step == "takeover"]
    assert len(takeover) == 1 and takeover[0].price == D("1.2") and takeover[0].quantity == D(500)
    adl = [e for e in events if isinstance(e, ev.AdlExecuted)]
    assert [(e.account_id, e.quantity, e.price) for e in adl] == [(cc, D(500), D("1.2"))]
    assert adl[0].reason == "fund_insufficient"
    assert wallet(engine, t) == 0  # the trader lost exactly the 100 deposited
    assert wallet(engine, cc) == 1100  # the long gained 500 × 0.2 = 100, not the 500 the mark suggests
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == 0
    assert engine.open_interest("XUSDT") == (0, 0)
    check_invariants(engine)


def test_insurance_fund_pays_the_deficit_when_it_can():
    # takeover at 1.2, disposal buys 500 at 2.05 → deficit 500 × 0.85 = 425 paid by the fund (1,000 → 575)
    engine, t, cc, m = crash_setup("insurance_fund", fund="1000")
    events = crash(engine)
    disposal = [e for e in events if isinstance(e, ev.Disposal)]
    assert len(disposal) == 1
    assert (disposal[0].filled, disposal[0].pnl, disposal[0].paid_by) == (D(500), D("-425.00"), "insurance_fund")
    assert disposal[0].limit_price == D("2.1")  # the band: mark 2 × 1.05
    assert not [e for e in events if isinstance(e, ev.AdlExecuted)]
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == D(575)
    assert engine.insurance.history[-1].balance == D(575)
    assert wallet(engine, t) == 0
    assert engine.accounts[cc].position("XUSDT", "both").size == 500  # not deleveraged
    check_invariants(engine)


def test_adl_only_when_the_fund_cannot_pay():
    # fund 100: the disposal may pay at most 1.2 + 100/500 = 1.4, the book's ask is 2.05 → ADL at 1.2
    engine, t, cc, m = crash_setup("insurance_fund", fund="100")
    events = crash(engine)
    disposal = [e for e in events if isinstance(e, ev.Disposal)][0]
    assert disposal.limit_price == D("1.4") and disposal.filled == 0
    adl = [e for e in events if isinstance(e, ev.AdlExecuted)]
    assert [(e.account_id, e.quantity, e.price, e.reason) for e in adl] == [(cc, D(500), D("1.2"), "fund_insufficient")]
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == D(100)  # never negative, untouched
    check_invariants(engine)


def test_negative_balance_protection_platform_books_the_loss():
    engine, t, cc, m = crash_setup("negative_balance_protection", fund="1000")
    crash(engine)
    assert engine.ledger.balance(PLATFORM, "USDT") == D(-425)
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == D(1000)
    assert wallet(engine, t) == 0
    check_invariants(engine)


def test_debt_policy_trader_keeps_the_negative_balance_and_is_blocked():
    # already past bankruptcy (equity 100 − 500 = −400): taken over at the mark 2; slippage 500 × 0.05 = 25 from the fund
    engine, t, cc, m = crash_setup("debt", fund="1000")
    events = crash(engine)
    debt = [e for e in events if isinstance(e, ev.DebtRecorded)]
    assert [(e.account_id, e.amount) for e in debt] == [(t, D(-400))]
    assert engine.accounts[t].blocked
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == D(975)
    with pytest.raises(ValidationError) as info:
        engine.execute(c.Withdraw(t, "USDT", D(1)))
    assert info.value.field == "account_id"
    with pytest.raises(ValidationError):
        engine.execute(c.PlaceOrder(t, "XUSDT", "buy", D(1), price=D(1)))
    engine.execute(c.Deposit(t, "USDT", D(400)))  # repaying the debt unblocks the account
    assert not engine.accounts[t].blocked and wallet(engine, t) == 0
    check_invariants(engine)


def test_socialized_loss_is_spread_pro_rata_over_profitable_positions():
    # deficit 425; profitable: C long 500 from 1 (profit 500 at mark 2), M short 500 from 2.05 (profit 25)
    # shares: 425·500/525 = 404.76190476|19… and 425·25/525 = 20.23809523|80…, floored to 1e-8;
    # the 0.00000001 remainder goes to the largest weight (C) so the sum is exactly 425
    engine, t, cc, m = crash_setup("socialized_loss", fund="0")
    events = crash(engine)
    shares = {e.account_id: e.amount for e in events if isinstance(e, ev.LossSocialized)}
    assert shares == {cc: D("404.76190477"), m: D("20.23809523")}
    assert sum(shares.values()) == D(425)
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == 0
    check_invariants(engine)


def test_socialized_deficits_are_charged_once_per_pass_and_the_pool_ends_flat():
    """The deficit is advanced by the market's socialization pool and charged at the end of the pass: one
    LossSocialized per holder per pass, the pool back at zero, the Disposal naming the payer."""
    from perprisk.risk.liquidation import socialization_pool

    engine, t, cc, m = crash_setup("socialized_loss", fund="0")
    events = crash(engine)
    disposals = [e for e in events if isinstance(e, ev.Disposal)]
    assert [d.paid_by for d in disposals] == ["socialized"]
    charged = [e.account_id for e in events if isinstance(e, ev.LossSocialized)]
    assert sorted(charged) == sorted({cc, m})  # one charge each
    assert engine.ledger.balance(socialization_pool("XUSDT"), "USDT") == 0
    # the charges come after the disposal that caused them (end of the pass)
    first_charge = next(i for i, e in enumerate(events) if isinstance(e, ev.LossSocialized))
    assert first_charge > events.index(disposals[0])


def test_steps_are_events_with_ratios_and_reasons():
    engine, t, cc, m = crash_setup("insurance_fund", fund="1000")
    steps = [e for e in crash(engine) if isinstance(e, ev.LiquidationStep)]
    assert steps[0].account_id == t and steps[0].step == "takeover"
    assert steps[0].margin_ratio_before is None  # equity −400: unbounded
    assert steps[0].reason


def test_cross_account_cancels_orders_before_anything_else():
    """Cancelling the account's open orders frees their margin; if that is enough, nothing else happens."""
    engine = Engine(EngineConfig(markets=(unit_market(),)))
    a, b = (engine.execute(c.CreateAccount())[0].account_id for _ in range(2))
    engine.execute(c.Deposit(a, "USDT", D(120)))
    engine.execute(c.Deposit(b, "USDT", D(10000)))
    engine.execute(c.SetMarkPrice("XUSDT", D(1), 1))
    engine.execute(c.SetLeverage(a, "XUSDT", D(10)))
    engine.execute(c.PlaceOrder(b, "XUSDT", "sell", D(1000), price=D(1)))
    engine.execute(c.PlaceOrder(a, "XUSDT", "buy", D(1000), price=D(1)))  # long 1,000 at 1, 100 IM
    engine.execute(c.PlaceOrder(a, "XUSDT", "buy", D(100), price=D("0.5")))  # order margin 5
    # at 0.89: equity 120 − 110 = 10, MM 890 × 0.005 = 4.45; with the order margin 5: 5 ≤ 4.45? no.
    # at 0.886: equity 6, order margin 5 → 1 ≤ 4.43 → liquidatable; cancelling frees 5 → 6 > 4.43: healthy
    events = engine.execute(c.SetMarkPrice("XUSDT", D("0.886"), 2))
    steps = [e for e in events if isinstance(e, ev.LiquidationStep)]
    assert [s.step for s in steps] == ["cancel_orders"]
    assert engine.accounts[a].position("XUSDT", "both").size == 1000
    assert not [o for o in engine.orders.values() if o.account_id == a]
    assert all(v == 0 for v in engine.conservation_error().values())


def btc_market() -> Instrument:
    return Instrument.create(symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001",
                             min_size="0.001", maker_fee="0", taker_fee="0", liquidation_fee="0",
                             tiers=load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT"))


def test_tier_down_on_real_binance_tiers():
    """10 BTC long at 100,000 (notional 1,000,000: tier 3, mmr 0.65 %, cum 1,500) isolated at 50×.

    PM = 20,000.  Tier-3 trigger: 20,000 + 10(M − 100,000) = 10·M·0.0065 − 1,500 → M = 978,500/9.935 ≈ 98,490.19.
    At a mark of 98,400 the engine first takes over just enough to drop below the tier-3 floor of 800,000:
    the largest lot-grid size with notional < 800,000 is 8.130 (8.130 × 98,400 = 799,992), so 1.870 BTC at the
    bankruptcy price 100,000 − 20,000/10 = 98,000.  Equity per BTC is unchanged (400 × 8.13 = 3,252) while MM
    drops to 799,992 × 0.005 − 300 = 3,699.96: still under water, so the next step drops to tier 1
    (size 3.048, notional 299,923.2 < 300,000), then MM = 1,199.69 < equity 1,219.2: healthy.
    """
    engine = Engine(EngineConfig(markets=(btc_market(),)))
    a, b = (engine.execute(c.CreateAccount())[0].account_id for _ in range(2))
    engine.execute(c.Deposit(a, "USDT", D(20000)))
    engine.execute(c.Deposit(b, "USDT", D(1_000_000)))
    engine.execute(c.DepositInsuranceFund("USDT", D(1_000_000)))
    engine.execute(c.SetMarginMode(a, "BTCUSDT", "isolated"))
    engine.execute(c.SetLeverage(a, "BTCUSDT", D(50)))
    engine.execute(c.SetLeverage(b, "BTCUSDT", D(10)))
    engine.execute(c.SetMarkPrice("BTCUSDT", D(100000), 1))
    engine.execute(c.PlaceOrder(b, "BTCUSDT", "sell", D(10), price=D(100000)))
    engine.execute(c.PlaceOrder(a, "BTCUSDT", "buy", D(10), price=D(100000)))
    engine.execute(c.PlaceOrder(b, "BTCUSDT", "buy", D(20), price=D(98300)))  # depth for the disposal
    events = engine.execute(c.SetMarkPrice("BTCUSDT", D(98400), 2))
    steps = [e for e in events if isinstance(e, ev.LiquidationStep)]
    assert [(s.step, s.quantity, s.price) for s in steps] == [
        ("tier_down", D("1.870"), D("98000")),
        ("tier_down", D("5.082"), D("98000")),
    ]
    assert steps[0].margin_ratio_before > 100 and steps[-1].margin_ratio_after < 100
    assert engine.accounts[a].position("BTCUSDT", "both").size == D("3.048")
    # each chunk disposed at 98,300: surplus 300 per BTC to the fund
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == D(1_000_000) + D("6.952") * 300
    assert all(v == 0 for v in engine.conservation_error().values())
    assert engine.open_interest("BTCUSDT")[0] == engine.open_interest("BTCUSDT")[1]


def test_adl_quintiles_rank_profit_times_leverage():
    engine, t, cc, m = crash_setup("insurance_fund", fund="1000")
    quintiles = engine.liquidator.adl_quintiles("XUSDT")
    assert quintiles == {(cc, "both"): 5, (t, "both"): 5}  # one position per side: each first in its queue


def test_alerts_margin_ratio_at_most_every_30_minutes_price_once_and_adl():
    engine, t, cc, m = crash_setup("insurance_fund", fund="1000", maker_ask=None)
    engine.execute(c.SetAlert(t, "margin_ratio", "XUSDT", D(50)))
    engine.execute(c.SetAlert(cc, "price", "XUSDT", D("1.1"), "above"))
    engine.execute(c.SetAlert(cc, "adl_quintile", "XUSDT", D(5)))
    # T: short 500 at 1 with 100 margin; at 1.15: equity 25, MM 575 × 0.005 = 2.875 → 11.5 %; at 1.18: equity 10,
    # MM 2.95 → 29.5 %; at 1.19: equity 5, MM 2.975 → 59.5 % ≥ 50 → alert
    def alerts(events):
        return [(e.account_id, e.kind) for e in events if isinstance(e, ev.Alert)]

    first = engine.execute(c.SetMarkPrice("XUSDT", D("1.15"), 60_000))
    assert sorted(alerts(first)) == sorted([(cc, "price"), (cc, "adl_quintile")])
    assert alerts(engine.execute(c.SetMarkPrice("XUSDT", D("1.19"), 120_000))) == [(t, "margin_ratio")]
    assert alerts(engine.execute(c.SetMarkPrice("XUSDT", D("1.191"), 180_000))) == []  # within 30 minutes
    later = engine.execute(c.SetMarkPrice("XUSDT", D("1.19"), 120_000 + 30 * 60_000))
    assert alerts(later) == [(t, "margin_ratio"), (cc, "adl_quintile")]  # the price alert was spent
    with pytest.raises(ValidationError) as info:
        engine.execute(c.SetAlert(t, "adl_quintile", "XUSDT", D(7)))
    assert info.value.field == "threshold"
