"""The ledger's arithmetic is exact: a transfer whose result would need rounding is refused, changing nothing."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from perprisk.errors import ValidationError
from perprisk.ledger import EXTERNAL, Ledger


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
