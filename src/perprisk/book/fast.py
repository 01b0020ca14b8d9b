"""The fast order book: integer keys, a dict per price level, a sorted key list per side.

Each side keeps

* ``levels``: price key → an insertion-ordered ``dict`` of order id → :class:`BookOrder` (the queue of one
  price: oldest first, O(1) removal of any order);
* ``keys``: the occupied price keys, sorted ascending so that the best level is ``keys[0]``.

A key is the price in ticks signed so that a smaller key is always a better price: ``+price`` for asks,
``-price`` for bids.  An order that crosses the other side is then simply one whose own limit, signed for
that side, is at least ``keys[0]`` — one comparison, the same for buys and sells.  Levels appear and vanish
with :func:`bisect.insort` and a bisected ``del``: C-level memmoves over a few hundred ints.

Nothing on these paths touches a Decimal; the amend of a resting order allocates nothing unless it creates
a level.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import Decimal
from typing import Iterator

from perprisk.book.book import OrderBook
from perprisk.book.events import CancelReason
from perprisk.book.matching import STP_ACTIONS, BookOrder
from perprisk.book.orders import Side

_BUY = Side.BUY
_SELF_TRADE = CancelReason.SELF_TRADE_PREVENTION


class _BookSide:
    """One side of the book; ``sign`` turns a price into this side's key (smaller key = better price)."""

    __slots__ = ("levels", "keys", "sign")

    def __init__(self, sign: int) -> None:
        self.levels: dict[int, dict[int, BookOrder]] = {}
        self.keys: list[int] = []
        self.sign = sign


class FastOrderBook(OrderBook):
    """Order book built for throughput; behaves exactly as :class:`~perprisk.book.naive.NaiveOrderBook`."""

    def __init__(self, symbol: str, tick_size: Decimal | int | str, lot_size: Decimal | int | str) -> None:
        super().__init__(symbol, tick_size, lot_size)
        self._bids = _BookSide(-1)
        self._asks = _BookSide(1)

    def _match(self, taker: BookOrder) -> None:
        book = self._asks if taker.side is _BUY else self._bids
        keys = book.keys
        if not keys:
            return
        sign = book.sign
        limit = None if taker.price is None else sign * taker.price
        if limit is not None and keys[0] > limit:
            return
        levels = book.levels
        orders = self._orders
        account = taker.account_id
        actions = STP_ACTIONS.get(taker.self_trade_prevention)
        fill = self._fill
        while keys and (limit is None or keys[0] <= limit):
            key = keys[0]
            level = levels[key]
            price = sign * key
            gone = []  # makers filled or cancelled at this level; removed after the walk over it
            for maker in level.values():
                if actions is not None and maker.account_id == account:
                    if actions[0]:
                        self._cancel(maker, _SELF_TRADE)
                        gone.append(maker.order_id)
                    if actions[1]:
                        self._cancel(taker, _SELF_TRADE)
                        break
                    continue
                wanted = taker.quantity
                offered = maker.quantity
                fill(taker, maker, price, offered if offered < wanted else wanted)
                if offered > wanted:
                    break
                gone.append(maker.order_id)
                if offered == wanted:
                    break
            for order_id in gone:
                del level[order_id]
                del orders[order_id]
            if not level:
                del levels[key]
                del keys[0]
            if not taker.quantity:
                return

    def _rest(self, order: BookOrder) -> None:
        book = self._bids if order.side is _BUY else self._asks
        key = book.sign * order.price  # type: ignore[operator]  # resting orders have a price
        level = book.levels.get(key)
        if level is None:
            book.levels[key] = level = {}
            insort(book.keys, key)
        level[order.order_id] = order
        self._orders[order.order_id] = order

    def _unlink(self, order: BookOrder) -> None:
        book = self._bids if order.side is _BUY else self._asks
        key = book.sign * order.price  # type: ignore[operator]
        level = book.levels[key]
        del level[order.order_id]
        if not level:
            del book.levels[key]
            keys = book.keys
            del keys[bisect_left(keys, key)]
        del self._orders[order.order_id]

    def _queue(self, side: Side) -> Iterator[BookOrder]:
        book = self._bids if side is _BUY else self._asks
        for key in book.keys:
            yield from book.levels[key].values()

    def _best(self, side: Side) -> int | None:
        book = self._bids if side is _BUY else self._asks
        return book.sign * book.keys[0] if book.keys else None
