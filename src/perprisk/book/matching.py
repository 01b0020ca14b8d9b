"""Matching rules both books share: the in-book order record, tick-level events, self-trade prevention.

Inside a book prices are whole ticks and quantities whole lots (see :mod:`perprisk.book.grid`).  The
tick-level events here are what the low-level API returns; :class:`perprisk.book.OrderBook` turns them into
the Decimal events of :mod:`perprisk.book.events`.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Union

from perprisk.book.events import CancelReason
from perprisk.book.orders import OrderType, SelfTradePrevention, Side, TimeInForce, TriggerReference
from perprisk.money import Fraction


class BookOrder:
    """An order inside a book: ``price`` in ticks (``None`` for a market order), ``quantity`` = open lots.

    Mutable on purpose: fills shrink ``quantity`` and grow ``filled`` in place, and an amend moves the same
    record, so the hot paths allocate nothing.
    """

    __slots__ = (
        "order_id",
        "account_id",
        "side",
        "price",
        "quantity",
        "filled",
        "time_in_force",
        "self_trade_prevention",
        "reduce_only",
        "order_type",
    )

    def __init__(
        self,
        order_id: int,
        account_id: str,
        side: Side,
        price: int | None,
        quantity: int,
        time_in_force: TimeInForce,
        self_trade_prevention: SelfTradePrevention,
        reduce_only: bool,
        order_type: OrderType,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.price = price
        self.quantity = quantity
        self.filled = 0
        self.time_in_force = time_in_force
        self.self_trade_prevention = self_trade_prevention
        self.reduce_only = reduce_only
        self.order_type = order_type

    def __repr__(self) -> str:
        return (
            f"BookOrder({self.order_id}, {self.account_id!r}, {self.side.value}, price={self.price}, "
            f"open={self.quantity}, filled={self.filled}, {self.time_in_force.value})"
        )


class TickFill(NamedTuple):
    """A fill in ticks and lots (see :class:`perprisk.book.events.Fill`)."""

    sequence: int
    taker_order_id: int
    maker_order_id: int
    taker_account_id: str
    maker_account_id: str
    price: int
    quantity: int
    aggressor: Side


class TickCancel(NamedTuple):
    """A cancellation in lots (see :class:`perprisk.book.events.Cancellation`)."""

    order_id: int
    account_id: str
    quantity: int
    reason: CancelReason


class TickTrigger(NamedTuple):
    """A stop trigger (see :class:`perprisk.book.events.StopTriggered`); a mark may lie between ticks."""

    order_id: int
    account_id: str
    reference: TriggerReference
    price: int | Fraction


TickEvent = Union[TickFill, TickCancel, TickTrigger]

#: For each self-trade prevention mode that acts: (cancel the resting maker, cancel the rest of the taker).
#: ``NONE`` is absent: the account trades with itself.
STP_ACTIONS: dict[SelfTradePrevention, tuple[bool, bool]] = {
    SelfTradePrevention.CANCEL_TAKER: (False, True),
    SelfTradePrevention.CANCEL_MAKER: (True, False),
    SelfTradePrevention.CANCEL_BOTH: (True, True),
}


def crosses(taker: BookOrder, price: int) -> bool:
    """True when ``taker`` (a market order, or a limit at ``taker.price``) may trade at ``price``."""
    if taker.price is None:
        return True
    return price <= taker.price if taker.side is Side.BUY else price >= taker.price


def fillable_quantity(taker: BookOrder, makers: Iterable[BookOrder]) -> int:
    """How much of ``taker`` would fill against ``makers`` (the orders it crosses, in priority order).

    Self-trade prevention is honoured as matching would apply it: a same-account maker that would be
    cancelled is skipped, and one that would cancel the taker ends the count.  Counting stops once the
    whole order is covered.  This is the fill-or-kill test, free of side effects.
    """
    actions = STP_ACTIONS.get(taker.self_trade_prevention)
    total = 0
    for maker in makers:
        if actions is not None and maker.account_id == taker.account_id:
            if actions[1]:
                break
            continue
        total += maker.quantity
        if total >= taker.quantity:
            break
    return total
