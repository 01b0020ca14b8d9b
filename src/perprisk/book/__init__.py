"""Order book and matching: order types, two interchangeable books (naive reference and fast), stops.

>>> from decimal import Decimal
>>> book = FastOrderBook("BTCUSDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"))
>>> _ = book.submit(OrderRequest(1, "alice", Side.SELL, "0.5", price="20000.0"))
>>> fill = book.submit(OrderRequest(2, "bob", Side.BUY, "0.2", order_type=OrderType.MARKET)).fills[0]
>>> fill.price, fill.quantity, fill.maker_account_id
(Decimal('20000.0'), Decimal('0.200'), 'alice')
>>> book.depth().asks[0].quantity
Decimal('0.300')
"""

from perprisk.book.book import OrderBook
from perprisk.book.events import (
    BookDepth,
    BookEvent,
    BookResult,
    Cancellation,
    CancelReason,
    Fill,
    PriceLevel,
    StopTriggered,
)
from perprisk.book.fast import FastOrderBook
from perprisk.book.grid import Grid
from perprisk.book.matching import TickCancel, TickEvent, TickFill, TickTrigger
from perprisk.book.naive import NaiveOrderBook
from perprisk.book.orders import (
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerReference,
)

__all__ = [
    "BookDepth",
    "BookEvent",
    "BookResult",
    "CancelReason",
    "Cancellation",
    "FastOrderBook",
    "Fill",
    "Grid",
    "NaiveOrderBook",
    "OrderBook",
    "OrderRequest",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "PriceLevel",
    "SelfTradePrevention",
    "Side",
    "StopTriggered",
    "TickCancel",
    "TickEvent",
    "TickFill",
    "TickTrigger",
    "TimeInForce",
    "TriggerReference",
]
