"""The engine's per-account state classes are slotted; they pickle (engine snapshots in journals) as dicts of
their fields, and pickles of their former dict-based layout still load."""

from __future__ import annotations

import pickle
from decimal import Decimal as D

import pytest

from perprisk.account import Account, MarketSettings, Position, PositionMode
from perprisk.engine import OrderMeta
from perprisk.formulas import MarginMode
from perprisk.money import Fraction


class _FormerLayout:
    """Pickles as a plain (dict-based) dataclass instance did: a bare instance of the class, then its
    ``__dict__`` as the state to build it with (pickle's BUILD)."""

    def __init__(self, cls: type, state: dict) -> None:
        self.cls, self.state = cls, state

    def __reduce_ex__(self, protocol):
        return object.__new__, (self.cls,), self.state


def _examples():
    position = Position(7, "BTCUSDT", "both", MarginMode.ISOLATED, D(25), D("-0.125"), Fraction(-12_500_125, 1000))
    settings = MarketSettings(MarginMode.ISOLATED, D(25), True)
    account = Account(7, PositionMode.ONE_WAY, {"BTCUSDT": settings}, {("BTCUSDT", "both"): position}, True)
    order = OrderMeta(3, 7, "BTCUSDT", "both", "buy", None, D("0.125"), True, "stop_market", False)
    return [position, settings, account, order]


@pytest.mark.parametrize("obj", _examples(), ids=lambda o: type(o).__name__)
def test_slotted_and_pickled_as_before(obj):
    assert not hasattr(obj, "__dict__")  # slotted: no per-instance dict
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        assert pickle.loads(pickle.dumps(obj, protocol)) == obj
    former = pickle.dumps(_FormerLayout(type(obj), obj.__getstate__()), pickle.HIGHEST_PROTOCOL)
    restored = pickle.loads(former)
    assert type(restored) is type(obj) and restored == obj
