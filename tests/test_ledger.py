"""The ledger's arithmetic is exact: a transfer whose result would need rounding is refused, changing nothing."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from perprisk.errors import ValidationError
from perprisk.ledger import EXTERNAL, Ledger
from perprisk.money import EXACT_CONTEXT


def test_balances_keep_every_digit_beyond_the_default_context():
    ledger = Ledger()
    ledger.transfer(EXTERNAL, "a", "USDT", D("99999999999999999999.99999999"), "deposit")
    ledger.transfer(EXTERNAL, "a", "USDT", D("0.00000001"), "deposit")
    assert ledger.balance("a", "USDT") == D("100000000000000000000")
    assert ledger.totals() == {"USDT": D("100000000000000000000")}
    assert ledger.conservation_error() == {"USDT": 0}


def test_a_transfer_that_would_round_is_refused_and_changes_nothing():
    ledger = Ledger()
    ledger.transfer(EXTERNAL, "a", "USDT", D("1E+40"), "deposit")
    with pytest.raises(ValidationError) as err:
        ledger.transfer(EXTERNAL, "a", "USDT", D("1E-30"), "deposit")  # 71 significant digits
    assert err.value.field == "amount"
    assert ledger.balance("a", "USDT") == D("1E+40") and ledger.conservation_error() == {"USDT": 0}


def test_a_conservation_error_is_reported_exactly_whatever_its_digits():
    """The check's own arithmetic never rounds: a broken balance (tampered with here, as a bug would) shows its
    full difference, even one with more significant digits than the default 28-digit context keeps."""
    ledger = Ledger()
    ledger.transfer(EXTERNAL, "a", "USDT", D("1E+25"), "deposit")
    ledger.transfer(EXTERNAL, "b", "BTC", D("1"), "deposit")
    error = D("100000000000000000000.0000000001")  # 31 significant digits
    ledger._balances["USDT"]["a"] = EXACT_CONTEXT.add(ledger._balances["USDT"]["a"], error)
    assert ledger.balance("a", "USDT") == D("10000100000000000000000000.0000000001")
    assert ledger.conservation_error() == {"BTC": 0, "USDT": error}


def test_a_snapshot_of_the_account_major_layout_restores_to_the_same_balances():
    """Snapshots pickled before the asset-major layout (``_accounts``: account → asset → balance) restore to
    the same balances, totals and conservation."""
    ledger = Ledger()
    ledger.transfer(EXTERNAL, "a", "USDT", D("12.5"), "deposit")
    ledger.transfer(EXTERNAL, "b", "BTC", D("0.25"), "deposit")
    ledger.transfer("a", "b", "USDT", D("2.5"), "fill")
    state = ledger.__getstate__()
    old = {k: v for k, v in state.items() if k != "_balances"}
    old["_accounts"] = {}
    for asset, balances in state["_balances"].items():
        for acct, bal in balances.items():
            old["_accounts"].setdefault(acct, {})[asset] = bal
    restored = Ledger.__new__(Ledger)
    restored.__setstate__(old)
    assert restored.snapshot() == ledger.snapshot()
    assert restored.balances_of("b") == {"USDT": D("2.5"), "BTC": D("0.25")}
    assert restored.conservation_error() == {"BTC": 0, "USDT": 0}


def test_without_history_a_transfer_moves_the_same_money_and_counts_the_same():
    """A ledger that keeps no history moves balances and numbers transfers exactly as one that does; only the
    records are not built."""
    kept, bare = Ledger(), Ledger(keep_history=False)
    for ledger in (kept, bare):
        ledger.transfer(EXTERNAL, "a", "USDT", D("100"), "deposit")
        ledger.move("a", "b", "USDT", D("-2.5"), "funding")  # negative: b pays a
        ledger.transfer("a", "b", "USDT", D("0"), "nothing")
    assert kept.history()[-1].amount == D("2.5") and bare.history() == ()
    assert kept.snapshot() == bare.snapshot() and kept.sequence == bare.sequence == 2
    assert bare.balance("a", "USDT") == D("102.5") and bare.conservation_error() == {"USDT": 0}


# -------------------------------------------------------------------------------- move_many = a loop of move

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

amounts = st.one_of(
    st.integers(-10**12, 10**12).map(lambda n: D(n).scaleb(-8)),
    st.sampled_from([D(0), D("-0"), D("0E-12"), D("1E+40"), D("-1E-30"), D("123.4500")]),
)


@settings(max_examples=300, deadline=None)
@given(
    start=st.dictionaries(st.sampled_from(["a", "b", "c", "pool"]), st.integers(-10**6, 10**6).map(D), max_size=4),
    moves=st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), amounts), max_size=12),
    history=st.booleans(),
)
def test_move_many_is_a_loop_of_move(start, moves, history):
    """The same balances, transfer records, sequence, touched accounts and watchers as one move() per item —
    also when an item is refused part-way (a balance beyond 60 digits): the items before it stay applied."""
    ledgers = [Ledger(keep_history=history) for _ in range(2)]
    watchers = []
    for ledger in ledgers:
        for account, balance in start.items():
            ledger.move(EXTERNAL, account, "USDT", balance, "seed")
        ledger.drain_touched()
        watchers.append(ledger.watch())
    errors = []
    try:
        for destination, amount in moves:
            ledgers[0].move("pool", destination, "USDT", amount, "funding")
    except ValidationError as err:
        errors.append(err.field)
    try:
        ledgers[1].move_many("pool", moves, "USDT", "funding")
    except ValidationError as err:
        errors.append(err.field)
    assert len(errors) in (0, 2) and len(set(errors)) <= 1
    a, b = ledgers
    assert a.snapshot() == b.snapshot() and a.sequence == b.sequence
    assert a.touched == b.touched and watchers[0] == watchers[1]
    assert list(a.history()) == list(b.history())
    assert a.conservation_error() == b.conservation_error()
    assert all(v == 0 for v in b.conservation_error().values())


def test_move_many_refuses_a_bad_amount_or_a_move_to_itself():
    ledger = Ledger()
    with pytest.raises(ValidationError) as err:
        ledger.move_many("pool", [("a", D("1")), ("b", D("NaN"))], "USDT", "funding")
    assert err.value.field == "amount" and ledger.balance("a", "USDT") == D(1)  # the first move stays, as a loop
    with pytest.raises(ValidationError) as err:
        ledger.move_many("pool", [("pool", D("1"))], "USDT", "funding")
    assert err.value.field == "destination"
    with pytest.raises(ValidationError) as err:
        ledger.move_many("pool", [("a", 1.5)], "USDT", "funding")  # type: ignore[list-item]
    assert err.value.field == "amount"


def test_a_negative_move_keeps_every_digit():
    """move() of a negative amount transfers it the other way exactly: negating it must not round it to the
    default context's 28 digits (it did, and left a funding pool off by 1e-27 at a rate of 56 digits)."""
    amount = D("-11.1111111111111111111111111111111111111111111111111111110000")  # 60 digits
    for many in (False, True):
        ledger = Ledger()
        if many:
            ledger.move_many("pool", [("a", amount)], "USDT", "funding")
        else:
            ledger.move("pool", "a", "USDT", amount, "funding")
        assert ledger.balance("a", "USDT") == amount and ledger.balance("pool", "USDT") == amount.copy_negate()
        assert ledger.conservation_error() == {"USDT": 0}
