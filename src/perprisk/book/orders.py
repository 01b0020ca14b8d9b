"""Order value types: sides, order types, time in force, self-trade prevention, requests and order states.

These are the words the engine and the books share.  A request carries prices and quantities as given
(``Decimal``, ``int`` or ``str``); the book validates them against its tick and lot when it is submitted, so a
request on its own is never known to be good or bad.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum


class Side(str, Enum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        """The other side."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(str, Enum):
    """What the order does; the conditional types wait outside the book until their trigger is crossed."""

    LIMIT = "limit"
    MARKET = "market"
    STOP_MARKET = "stop_market"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT_MARKET = "take_profit_market"
    TAKE_PROFIT_LIMIT = "take_profit_limit"
    TRAILING_STOP_MARKET = "trailing_stop_market"

    @property
    def is_conditional(self) -> bool:
        """True for the stop, take-profit and trailing-stop types."""
        return self not in (OrderType.LIMIT, OrderType.MARKET)

    @property
    def is_limit(self) -> bool:
        """True when the order (once triggered) carries a limit price."""
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class TimeInForce(str, Enum):
    """How long the unfilled rest of an order lives.

    ``GTC`` rests in the book; ``IOC`` cancels whatever does not fill at once; ``FOK`` fills completely at
    once or not at all; ``POST_ONLY`` is a GTC limit that is cancelled instead of taking liquidity.
    """

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


class SelfTradePrevention(str, Enum):
    """What happens when an incoming order would trade against a resting order of the same account.

    The incoming (taker) order's mode decides.  ``CANCEL_TAKER`` cancels the newest order (the rest of the
    taker), ``CANCEL_MAKER`` cancels the oldest (the resting order) and keeps matching, ``CANCEL_BOTH``
    cancels both, ``NONE`` lets the account trade with itself.
    """

    NONE = "none"
    CANCEL_TAKER = "cancel_taker"
    CANCEL_MAKER = "cancel_maker"
    CANCEL_BOTH = "cancel_both"


class TriggerReference(str, Enum):
    """Which price a conditional order watches: the mark price or the last trade price of this book."""

    MARK = "mark"
    LAST = "last"


class OrderStatus(str, Enum):
    """Where an order stands after an operation."""

    PENDING_TRIGGER = "pending_trigger"  # a conditional order waiting outside the book
    OPEN = "open"  # resting in the book (possibly partially filled)
    FILLED = "filled"
    CANCELLED = "cancelled"  # by request, time in force, post-only, self-trade prevention (fills may precede)


@dataclass(frozen=True)
class OrderRequest:
    """A new order as the engine submits it.

    ``price`` is the limit price (limit types only).  ``trigger_price`` is the stop or take-profit level;
    a trailing stop takes either ``callback_distance`` (absolute price distance) or ``callback_rate`` (a
    fraction, ``0.01`` = 1 %) and optionally an ``activation_price`` from which it starts trailing.
    ``time_in_force`` defaults to GTC for limit types and IOC for market types (a market order may be FOK).
    ``reduce_only`` is carried through; the engine enforces it, using ``max_quantity`` of
    :meth:`perprisk.book.OrderBook.submit` to cap the order at the position size.
    """

    order_id: int
    account_id: str
    side: Side
    quantity: Decimal | int | str
    order_type: OrderType = OrderType.LIMIT
    price: Decimal | int | str | None = None
    time_in_force: TimeInForce | None = None
    self_trade_prevention: SelfTradePrevention = SelfTradePrevention.NONE
    reduce_only: bool = False
    trigger_price: Decimal | int | str | None = None
    trigger_reference: TriggerReference = TriggerReference.MARK
    callback_distance: Decimal | int | str | None = None
    callback_rate: Decimal | int | str | None = None
    activation_price: Decimal | int | str | None = None


@dataclass(frozen=True)
class OrderState:
    """An order as the book sees it: open, filled, cancelled or waiting for its trigger.

    ``open_quantity`` is what still rests (or waits, for a conditional order); ``trigger_price`` is the
    current trigger level of a conditional order (for a trailing stop: the level implied by the best price
    seen, ``None`` before it starts trailing).
    """

    order_id: int
    account_id: str
    side: Side
    order_type: OrderType
    price: Decimal | None
    open_quantity: Decimal
    filled_quantity: Decimal
    status: OrderStatus
    time_in_force: TimeInForce
    reduce_only: bool = False
    trigger_price: Decimal | None = None
