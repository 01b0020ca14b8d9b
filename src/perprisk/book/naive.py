"""The reference order book: one list of resting orders, sorted afresh whenever priority matters.

Nothing here is clever, so it is easy to believe: resting orders sit in one list in the order they (re-)
entered the book; a side in price-time priority is that list filtered by side and stably sorted by price, so
orders at one price stay oldest first.  :class:`~perprisk.book.fast.FastOrderBook` must agree with it on
every operation (``tests/book/test_equivalence.py``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterator

from perprisk.book.book import OrderBook
from perprisk.book.events import CancelReason
from perprisk.book.matching import STP_ACTIONS, BookOrder
from perprisk.book.orders import Side


class NaiveOrderBook(OrderBook):
    """Plain, obviously correct order book: the reference for :class:`~perprisk.book.fast.FastOrderBook`."""

    def __init__(self, symbol: str, tick_size: Decimal | int | str, lot_size: Decimal | int | str) -> None:
        super().__init__(symbol, tick_size, lot_size)
        self._resting: list[BookOrder] = []  # both sides, oldest first

    def _queue(self, side: Side) -> Iterator[BookOrder]:
        orders = [o for o in self._resting if o.side is side]
        orders.sort(key=lambda o: -o.price if side is Side.BUY else o.price)  # type: ignore[operator]
        return iter(orders)

    def _match(self, taker: BookOrder) -> None:
        actions = STP_ACTIONS.get(taker.self_trade_prevention)
        for maker in list(self._makers(taker)):  # a copy: makers leave the book as they fill
            if taker.quantity == 0:
                return
            if actions is not None and maker.account_id == taker.account_id:
                cancel_maker, cancel_taker = actions
                if cancel_maker:
                    self._unlink(maker)
                    self._cancel(maker, CancelReason.SELF_TRADE_PREVENTION)
                if cancel_taker:
                    self._cancel(taker, CancelReason.SELF_TRADE_PREVENTION)
                    return
                continue
            assert maker.price is not None
            self._fill(taker, maker, maker.price, min(taker.quantity, maker.quantity))
            if maker.quantity == 0:
                self._unlink(maker)

    def _rest(self, order: BookOrder) -> None:
        self._resting.append(order)
        self._orders[order.order_id] = order

    def _unlink(self, order: BookOrder) -> None:
        self._resting.remove(order)
        del self._orders[order.order_id]
