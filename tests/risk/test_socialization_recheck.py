"""``socialized_loss`` (SPEC §2.2): the charge of a risk pass is followed by another liquidation round.

The deficits of a pass are advanced by the market's ``socialization/<symbol>`` pool and charged to the
holders once per pass (risk/liquidation.py ``Liquidator.risk_pass``, at most ``MAX_SOCIALIZATIONS`` charges);
a holder the charge pushes to or over 100 % margin ratio is liquidated in the same ``SetMarkPrice`` command,
so SPEC invariant 3 holds when the command returns.

The scenario (a market priced around 1 with no fees, one 0.5 % tier, as in test_liquidation_scenarios.py, so
every figure can be checked by hand):

- T shorts 500 at 1, isolated, 5×: position margin PM = 500 × 1 / 5 = 100.  Its counterparty C goes long
  500 at 1 (cross, 5×, deposit ``c_deposit``).
- E goes long 500 at 1 against F (short 500 at 1, deposit 1,000), and offers its whole long, reduce-only, at
  1.70 — a seller *closing* a long: the disposal's slippage lands as E's realized profit, not as an open
  profitable position, so it comes back as a charge on the remaining holders larger than their profit.
- B bids 500 at ``bid`` (depth for C's disposal).
- Disposal band 50 % so the liquidation engine may pay E's 1.70 at a mark of 1.2.

At the mark 1.2 (one ``SetMarkPrice``):

- T: equity = PM + U = 100 − 500 × 0.2 = 0 ≤ MM = 500 × 1.2 × 0.005 = 3 → taken over at its bankruptcy price
  E + PM/q = 1 + 100/500 = 1.2; the engine buys back at E's 1.70 (limit: 1.2 × 1.5 = 1.80) → deficit
  500 × (1.70 − 1.20) = 250, advanced by the pool.
- Holders left: C long 500 from 1 (U = +100), F short 500 from 1 (U = −100); E is flat.  Only C is in
  profit → weight 100/100 → C is charged the whole 250.
- C's cross equity: c_deposit + 100 − 250 = c_deposit − 150 against MM 3: liquidated iff c_deposit ≤ 153.
"""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest

from perprisk import commands as c
from perprisk import events as ev
from perprisk.engine import Engine, EngineConfig
from perprisk.instrument import Instrument, TierTable
from perprisk.ledger import INSURANCE_FUND, PLATFORM
from perprisk.risk import liquidation
from perprisk.risk.liquidation import socialization_pool

SYMBOL = "XUSDT"
POOL = socialization_pool(SYMBOL)


def unit_market() -> Instrument:
    """Priced around 1, no fees, one tier of 0.5 % maintenance (as in test_liquidation_scenarios.py)."""
    return Instrument.create(symbol=SYMBOL, base="X", settle="USDT", tick_size="0.01", lot_size="1", min_size="1",
                             maker_fee="0", taker_fee="0", liquidation_fee="0",
                             tiers=TierTable.single(SYMBOL, D("0.005"), 0, max_leverage=100))


def setup(c_deposit: int, bid: str, use_scanner: bool = True):
    engine = Engine(EngineConfig(markets=(unit_market(),), policy="socialized_loss", disposal_band=D("0.5"),
                                 use_scanner=use_scanner))
    t, holder, e, f, b = (engine.execute(c.CreateAccount())[0].account_id for _ in range(5))
    for account, amount in ((t, 100), (holder, c_deposit), (e, 1000), (f, 1000), (b, 10000)):
        engine.execute(c.Deposit(account, "USDT", D(amount)))
    engine.execute(c.SetMarginMode(t, SYMBOL, "isolated"))
    for account in (t, holder, e, f):
        engine.execute(c.SetLeverage(account, SYMBOL, D(5)))
    engine.execute(c.SetMarkPrice(SYMBOL, D(1), 1))
    engine.execute(c.PlaceOrder(holder, SYMBOL, "buy", D(500), price=D(1)))
    engine.execute(c.PlaceOrder(t, SYMBOL, "sell", D(500), price=D(1)))
    engine.execute(c.PlaceOrder(f, SYMBOL, "sell", D(500), price=D(1)))
    engine.execute(c.PlaceOrder(e, SYMBOL, "buy", D(500), price=D(1)))
    engine.execute(c.PlaceOrder(e, SYMBOL, "sell", D(500), price=D("1.70"), reduce_only=True))
    engine.execute(c.PlaceOrder(b, SYMBOL, "buy", D(500), price=D(bid)))
    assert engine.liquidator.flagged(None) == []  # nobody is under water at the mark 1
    return engine, t, holder, e, f, b


def crash(engine) -> list:
    return engine.execute(c.SetMarkPrice(SYMBOL, D("1.2"), 2))


def size(engine, account_id) -> D:
    position = engine.accounts[account_id].position(SYMBOL, "both")
    return D(0) if position is None else position.size


def check_invariants(engine) -> None:
    assert all(v == 0 for v in engine.conservation_error().values())  # SPEC invariant 1
    longs, shorts = engine.open_interest(SYMBOL)
    assert longs == shorts  # invariant 2
    assert engine.liquidator.flagged(None) == []  # invariant 3
    assert engine.ledger.balance(POOL, "USDT") == 0  # the pool only advances within a pass
    assert engine.ledger.balance(PLATFORM, "USDT") == 0  # nothing was "unsocializable"


def first(events, kind, **fields) -> int:
    return next(i for i, e in enumerate(events)
                if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items()))


# c_deposit → C's bankruptcy price P (cross long, WB + q(P − E) = 0 with WB = c_deposit − 250, the
# charge taken from the wallet): P = 1 + (250 − c_deposit)/500; C's margin ratio before its takeover
# = MM / equity = 3 / (c_deposit − 150); its disposal sells to B's bid 1.20 (limit ceil(1.2 × 0.5) = 0.60):
# surplus 500 × (1.20 − P) to the insurance fund.
@pytest.mark.parametrize("use_scanner", [True, False], ids=["scanner", "exact_loop"])
@pytest.mark.parametrize("c_deposit, bankruptcy, ratio, surplus", [
    (152, D("1.196"), D(150), D(2)),  # equity 2 < MM 3
    (153, D("1.194"), D(100), D(3)),  # equity 3 = MM 3: "at or over 100 %" is liquidated
])
def test_a_holder_pushed_under_by_the_charge_is_liquidated_in_the_same_command(
        use_scanner, c_deposit, bankruptcy, ratio, surplus):
    engine, t, holder, e, f, b = setup(c_deposit, "1.20", use_scanner)
    events = crash(engine)

    # T's liquidation and its deficit, advanced by the pool
    disposals = [d for d in events if isinstance(d, ev.Disposal)]
    assert [(d.liquidated_account_id, d.filled, d.bankruptcy_price, d.limit_price, d.pnl, d.paid_by)
            for d in disposals] == [
        (t, D(500), D("1.2"), D("1.80"), D(-250), "socialized"),
        (holder, D(500), bankruptcy, D("0.60"), surplus, "insurance_fund"),
    ]
    # one charge: the whole deficit to C, the only holder in profit
    charges = [(x.account_id, x.amount) for x in events if isinstance(x, ev.LossSocialized)]
    assert charges == [(holder, D(250))]
    # C is taken over after the charge, in the same SetMarkPrice command, at its bankruptcy price
    steps = [(s.account_id, s.step, s.quantity, s.price, s.margin_ratio_before)
             for s in events if isinstance(s, ev.LiquidationStep)]
    assert steps == [
        (t, "takeover", D(500), D("1.2"), None),  # equity 0: ratio unbounded
        (holder, "takeover", D(500), bankruptcy, ratio),
    ]
    assert first(events, ev.Disposal, liquidated_account_id=t) < first(events, ev.LossSocialized) \
        < first(events, ev.LiquidationStep, account_id=holder)

    # where everything ended: T and C at zero, E realized 0.70 × 500 = 350, F's short now faces B's long
    assert (size(engine, t), size(engine, holder), size(engine, e), size(engine, f), size(engine, b)) == \
        (0, 0, 0, -500, 500)
    assert engine.open_interest(SYMBOL) == (D(500), D(500))
    assert engine.wallet_balance(engine.accounts[t]) == 0
    assert engine.wallet_balance(engine.accounts[holder]) == 0
    assert engine.wallet_balance(engine.accounts[e]) == 1350
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == surplus
    # Σ ledger = Σ deposits: 100 + c_deposit + 1,000 + 1,000 + 10,000
    total = sum((engine.ledger.balance(engine.accounts[a].wallet, "USDT") for a in (t, holder, e, f, b)), D(0))
    assert total + surplus == 12100 + c_deposit
    check_invariants(engine)


@pytest.mark.parametrize("use_scanner", [True, False], ids=["scanner", "exact_loop"])
@pytest.mark.parametrize("c_deposit", [154, 200])
def test_a_holder_the_charge_leaves_above_maintenance_stays_open(use_scanner, c_deposit):
    engine, t, holder, _e, _f, b = setup(c_deposit, "1.20", use_scanner)
    events = crash(engine)
    assert [(x.account_id, x.amount) for x in events if isinstance(x, ev.LossSocialized)] == [(holder, D(250))]
    assert [s.account_id for s in events if isinstance(s, ev.LiquidationStep)] == [t]  # only T
    # C: equity c_deposit + 100 − 250 = c_deposit − 150 > MM 3 → ratio 3 / (c_deposit − 150), still open
    account = engine.accounts[holder]
    assert size(engine, holder) == 500
    assert engine.cross_equity(account) == c_deposit - 150
    assert engine.cross_maintenance(account) == 3
    assert engine.margin_ratio(holder) == Fraction(3, c_deposit - 150)
    # the wallet carries the charge: c_deposit − 250 (it may read negative while the open profit backs it)
    assert engine.wallet_balance(account) == c_deposit - 250
    assert size(engine, b) == 0  # B's bid was never needed
    assert engine.open_interest(SYMBOL) == (D(500), D(500))  # C long 500, F short 500
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == 0
    check_invariants(engine)


@pytest.mark.parametrize("use_scanner", [True, False], ids=["scanner", "exact_loop"])
def test_a_charge_that_liquidates_a_holder_with_a_deficit_charges_again_in_the_same_pass(use_scanner):
    """B bids only 1.19: C's disposal sells below C's bankruptcy price 1.196 → deficit 500 × 0.006 = 3, advanced
    by the pool again; the second charge goes to B (long 500 from 1.19, U = +5 at 1.2; F's short is at a loss),
    then one more round finds nobody.  Two charges, the pool flat, all in one command."""
    engine, t, holder, _e, _f, b = setup(152, "1.19", use_scanner)
    events = crash(engine)
    disposals = [(d.liquidated_account_id, d.pnl, d.paid_by) for d in events if isinstance(d, ev.Disposal)]
    assert disposals == [(t, D(-250), "socialized"), (holder, D(-3), "socialized")]
    charges = [(x.account_id, x.amount) for x in events if isinstance(x, ev.LossSocialized)]
    assert charges == [(holder, D(250)), (b, D(3))]
    # B: wallet 10,000 − 3; position 500 long from 1.19 (cost 595): equity 9,997 + 5 = 10,002 ≫ MM 3
    assert engine.wallet_balance(engine.accounts[b]) == 9997
    assert size(engine, b) == 500 and size(engine, holder) == 0
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == 0
    check_invariants(engine)


def test_the_scanner_and_the_exact_loop_emit_the_same_events_and_state():
    runs = []
    for flag in (True, False):
        engine, *_ = setup(152, "1.19", flag)
        runs.append((crash(engine), engine.state_hash()))
    assert runs[0] == runs[1]


def test_past_the_cap_the_last_charge_is_still_made_and_its_victim_waits_for_the_next_pass(monkeypatch):
    """With no re-check left (MAX_SOCIALIZATIONS = 0) the pass still charges what the pool advanced — money
    stays conserved and the pool flat — but whom the charge pushes under waits for the next pass (the code's
    "the rest waits": SPEC invariant 3 is not held past the cap, like ``liquidation_capacity``)."""
    monkeypatch.setattr(liquidation, "MAX_SOCIALIZATIONS", 0)
    engine, t, holder, _e, _f, _b = setup(152, "1.20")
    events = crash(engine)
    assert [(x.account_id, x.amount) for x in events if isinstance(x, ev.LossSocialized)] == [(holder, D(250))]
    assert [s.account_id for s in events if isinstance(s, ev.LiquidationStep)] == [t]
    assert all(v == 0 for v in engine.conservation_error().values())
    assert engine.ledger.balance(POOL, "USDT") == 0
    assert [(a.account_id, p) for a, p in engine.liquidator.flagged(None)] == [(holder, None)]  # equity 2 ≤ MM 3
    # the next pass (same mark) liquidates C exactly as the uncapped pass would have: 1.196, surplus 2
    events = engine.execute(c.SetMarkPrice(SYMBOL, D("1.2"), 3))
    assert [(s.account_id, s.step, s.price) for s in events if isinstance(s, ev.LiquidationStep)] == [
        (holder, "takeover", D("1.196"))]
    assert engine.ledger.balance(INSURANCE_FUND, "USDT") == 2
    check_invariants(engine)
