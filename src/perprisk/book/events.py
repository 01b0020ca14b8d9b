"""What an order-book operation reports: fills, cancellations, stop triggers, and book snapshots.

Every operation returns a :class:`BookResult` whose ``events`` are in the order they happened, so the engine
can journal them as they are.  Prices and quantities are exact Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Union

from perprisk.book.orders import OrderState, Side, TriggerReference


class CancelReason(str, Enum):
    """Why an order, or the unfilled rest of one, left the book without trading."""

    USER = "user"  # cancel request (or cancel-all)
    IOC_REMAINDER = "ioc_remainder"  # what an IOC or market order could not fill at once
    FOK_UNFILLABLE = "fok_unfillable"  # a fill-or-kill order that could not fill completely
    POST_ONLY_WOULD_CROSS = "post_only_would_cross"
    SELF_TRADE_PREVENTION = "self_trade_prevention"


@dataclass(frozen=True)
class Fill:
    """One trade between an incoming (taker) order and a resting (maker) order, at the maker's price.

    ``sequence`` numbers the trades of one book from 1 with no gaps.
    """

    sequence: int
    taker_order_id: int
    maker_order_id: int
    taker_account_id: str
    maker_account_id: str
    price: Decimal
    quantity: Decimal
    aggressor: Side


@dataclass(frozen=True)
class Cancellation:
    """``quantity`` of order ``order_id`` left the book untraded, for ``reason``."""

    order_id: int
    account_id: str
    quantity: Decimal
    reason: CancelReason


@dataclass(frozen=True)
class StopTriggered:
    """A conditional order's trigger was crossed by ``reference`` at ``price``; it now enters the book."""

    order_id: int
    account_id: str
    reference: TriggerReference
    price: Decimal


BookEvent = Union[Fill, Cancellation, StopTriggered]


@dataclass(frozen=True)
class BookResult:
    """The outcome of one operation: its events in order, and the state of the order it addressed.

    ``order`` is ``None`` for operations that address no single order (a mark-price update, cancel-all).
    """

    events: tuple[BookEvent, ...]
    order: OrderState | None = None

    @property
    def fills(self) -> tuple[Fill, ...]:
        """The fills among the events, in sequence."""
        return tuple(e for e in self.events if isinstance(e, Fill))

    @property
    def cancellations(self) -> tuple[Cancellation, ...]:
        """The cancellations among the events."""
        return tuple(e for e in self.events if isinstance(e, Cancellation))

    @property
    def triggers(self) -> tuple[StopTriggered, ...]:
        """The stop triggers among the events."""
        return tuple(e for e in self.events if isinstance(e, StopTriggered))


@dataclass(frozen=True)
class PriceLevel:
    """One aggregated price level: total open quantity and number of orders at ``price``."""

    price: Decimal
    quantity: Decimal
    orders: int


@dataclass(frozen=True)
class BookDepth:
    """The top levels of each side, best first."""

    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
