"""Conditional orders: stops, take-profits and trailing stops held outside the book until triggered.

A conditional order watches the mark price or the book's last trade price.  Once its trigger is crossed it
becomes an ordinary market or limit order (:meth:`StopOrder.to_book_order`) and enters the book, where a
market order walks as deep as it must: in a thin book it slips through several levels.

Which way a trigger fires:

=====================  ==========================  ==========================
type                   buy fires when price …      sell fires when price …
=====================  ==========================  ==========================
stop (market/limit)    rises to ≥ trigger          falls to ≤ trigger
take-profit            falls to ≤ trigger          rises to ≥ trigger
trailing stop          rises to ≥ lowest + cb      falls to ≤ highest − cb
=====================  ==========================  ==========================

``cb`` (the callback) is an absolute distance in ticks or a rate of the best price seen.  A trailing stop
starts trailing at submission (from the current reference price, if known) or, with an activation price,
once the reference reaches it (≥ for a sell, ≤ for a buy).  All prices are ticks, compared exactly (a mark
price between ticks is an exact fraction of a tick).
"""

from __future__ import annotations

import math
from typing import Iterator

from sortedcontainers import SortedList

from perprisk.book.matching import BookOrder
from perprisk.book.orders import OrderType, SelfTradePrevention, Side, TimeInForce, TriggerReference
from perprisk.money import Fraction

_FIRES_ON_RISE_WHEN_BUYING = frozenset(
    {OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP_MARKET}
)


class StopOrder:
    """A conditional order in ticks and lots.

    ``trigger`` is the fixed trigger level (``None`` for a trailing stop); a trailing stop has either
    ``distance`` (ticks) or ``rate``, an optional ``activation`` level, and ``extreme``: the best reference
    price seen since it started trailing (highest for a sell, lowest for a buy), ``None`` before.
    """

    __slots__ = (
        "order_id",
        "account_id",
        "side",
        "order_type",
        "quantity",
        "price",
        "time_in_force",
        "self_trade_prevention",
        "reduce_only",
        "reference",
        "trigger",
        "distance",
        "rate",
        "activation",
        "extreme",
        "fires_on_rise",
    )

    def __init__(
        self,
        order_id: int,
        account_id: str,
        side: Side,
        order_type: OrderType,
        quantity: int,
        price: int | None,
        time_in_force: TimeInForce,
        self_trade_prevention: SelfTradePrevention,
        reduce_only: bool,
        reference: TriggerReference,
        trigger: int | None = None,
        distance: int | None = None,
        rate: Fraction | None = None,
        activation: int | None = None,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.price = price
        self.time_in_force = time_in_force
        self.self_trade_prevention = self_trade_prevention
        self.reduce_only = reduce_only
        self.reference = reference
        self.trigger = trigger
        self.distance = distance
        self.rate = rate
        self.activation = activation
        self.extreme: int | Fraction | None = None
        self.fires_on_rise = (side is Side.BUY) == (order_type in _FIRES_ON_RISE_WHEN_BUYING)

    def level(self) -> Fraction | None:
        """The current trigger level in ticks (exact; a rate-based trailing level may fall between ticks)."""
        if self.trigger is not None:
            return Fraction(self.trigger)
        if self.extreme is None:
            return None
        direction = 1 if self.fires_on_rise else -1
        if self.distance is not None:
            return Fraction(self.extreme + direction * self.distance)
        assert self.rate is not None
        return self.extreme * (1 + direction * self.rate)

    def observe(self, price: int | Fraction) -> None:
        """Let a trailing stop see a reference price: activate it, or move its best price seen."""
        if self.trigger is not None:
            return
        if self.extreme is None:
            if self.activation is not None and (
                price > self.activation if self.fires_on_rise else price < self.activation
            ):
                return
            self.extreme = price
        elif self.fires_on_rise:
            self.extreme = min(self.extreme, price)
        else:
            self.extreme = max(self.extreme, price)

    def is_triggered(self, price: int | Fraction) -> bool:
        """True when ``price`` crosses the current trigger level (trailing stops: after :meth:`observe`)."""
        level = self.level()
        if level is None:
            return False
        return price >= level if self.fires_on_rise else price <= level

    def to_book_order(self) -> BookOrder:
        """The order that enters the book once triggered: a limit at ``price``, or a market order."""
        return BookOrder(
            self.order_id,
            self.account_id,
            self.side,
            self.price,
            self.quantity,
            self.time_in_force,
            self.self_trade_prevention,
            self.reduce_only,
            self.order_type,
        )


class StopBook:
    """The conditional orders of one book, indexed for cheap trigger checks.

    Fixed-trigger orders sit in sorted lists per reference and direction (``SortedList``: adding or removing
    one is O(log n), where a plain sorted list moves half its entries — ~16 µs per change at 100,000 pending
    stops), so a price update finds the triggered ones by bisection; trailing stops are visited on every
    update of their reference.
    """

    def __init__(self) -> None:
        self._pending: dict[int, StopOrder] = {}
        self._sequence: dict[int, int] = {}
        self._next_sequence = 0
        # (trigger, sequence, order_id), ascending; "rising" fire at price >= trigger, "falling" at <=.
        self._rising: dict[TriggerReference, SortedList] = {r: SortedList() for r in TriggerReference}
        self._falling: dict[TriggerReference, SortedList] = {r: SortedList() for r in TriggerReference}
        self._trailing: dict[TriggerReference, dict[int, StopOrder]] = {r: {} for r in TriggerReference}
        self._watching: dict[TriggerReference, int] = {r: 0 for r in TriggerReference}

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[StopOrder]:
        """Pending orders in submission order."""
        return iter(self._pending.values())

    def get(self, order_id: int) -> StopOrder | None:
        """The pending order ``order_id``, if any."""
        return self._pending.get(order_id)

    def watches(self, reference: TriggerReference) -> bool:
        """True when some pending order watches ``reference``."""
        return self._watching[reference] > 0

    def add(self, stop: StopOrder, reference_price: int | Fraction | None) -> None:
        """Hold ``stop``; a trailing stop starts trailing from ``reference_price`` when it is known."""
        sequence = self._next_sequence
        self._next_sequence += 1
        self._pending[stop.order_id] = stop
        self._sequence[stop.order_id] = sequence
        self._watching[stop.reference] += 1
        if stop.trigger is None:
            if reference_price is not None:
                stop.observe(reference_price)
            self._trailing[stop.reference][stop.order_id] = stop
        else:
            self._fixed_list(stop).add((stop.trigger, sequence, stop.order_id))

    def remove(self, order_id: int) -> StopOrder | None:
        """Stop holding ``order_id``; returns it, or ``None`` when it is not pending."""
        stop = self._pending.pop(order_id, None)
        if stop is None:
            return None
        sequence = self._sequence.pop(order_id)
        self._watching[stop.reference] -= 1
        if stop.trigger is None:
            del self._trailing[stop.reference][order_id]
        else:
            self._fixed_list(stop).remove((stop.trigger, sequence, order_id))
        return stop

    def triggered(self, reference: TriggerReference, price: int | Fraction) -> list[StopOrder]:
        """Remove and return the orders that ``price`` of ``reference`` triggers, in submission order.

        Trailing stops watching ``reference`` see the price first (it may move their level).
        """
        rising = self._rising[reference]
        falling = self._falling[reference]
        # (price, +inf) sorts after every entry whose trigger is ≤ price, (price, −inf) before every one ≥ price
        fired = [entry[2] for entry in rising.islice(0, rising.bisect_right((price, math.inf)))]
        fired += [entry[2] for entry in falling.islice(falling.bisect_left((price, -math.inf)))]
        for stop in self._trailing[reference].values():
            stop.observe(price)
            if stop.is_triggered(price):
                fired.append(stop.order_id)
        fired.sort(key=self._sequence.__getitem__)
        stops = [self._pending[order_id] for order_id in fired]
        for order_id in fired:
            self.remove(order_id)
        return stops

    def _fixed_list(self, stop: StopOrder) -> SortedList:
        return (self._rising if stop.fires_on_rise else self._falling)[stop.reference]
