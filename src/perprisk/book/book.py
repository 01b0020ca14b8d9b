"""The order-book interface: one Decimal API and one ticks-level API over two interchangeable books.

:class:`OrderBook` holds everything both books share — validation of requests against the tick and lot, the
order flow (post-only, fill-or-kill, matching, then resting or cancelling the rest), the amend rule,
conditional orders and their trigger cascade, events and queries — and leaves the data structure to its
subclasses, :class:`~perprisk.book.naive.NaiveOrderBook` (the plain reference) and
:class:`~perprisk.book.fast.FastOrderBook` (built for speed).  A subclass provides four primitives —
``_match``, ``_rest``, ``_unlink`` and ``_queue`` — and may speed up ``_best``.

Two APIs wrap the same code:

* the **Decimal API** (``submit``, ``amend``, ``cancel``, ``cancel_all``, ``update_mark_price``) validates
  its input — the book is unchanged when it refuses — and returns a :class:`~perprisk.book.events.BookResult`
  with exact Decimal events;
* the **ticks-level API** (``submit_ticks``, ``amend_ticks``, ``cancel_ticks``, ``update_mark_ticks``)
  takes prices in ticks and quantities in lots, trusts them, and returns the tick-level events of
  :mod:`perprisk.book.matching`.  It exists for the engine's and the benchmark's hot paths.

Example::

    book = FastOrderBook("BTCUSDT", tick_size=Decimal("0.1"), lot_size=Decimal("0.001"))
    book.submit(OrderRequest(1, "alice", Side.SELL, "0.5", price="20000.0"))
    result = book.submit(OrderRequest(2, "bob", Side.BUY, "0.2", order_type=OrderType.MARKET))
    result.fills[0].price            # Decimal('20000.0')
    book.best_ask()                  # Decimal('20000.0'), 0.3 left
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from decimal import Decimal
from enum import Enum
from itertools import groupby, islice, takewhile
from typing import Any, Iterable, Iterator, TypeVar

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
from perprisk.book.grid import Grid
from perprisk.book.matching import (
    BookOrder,
    TickCancel,
    TickEvent,
    TickFill,
    TickTrigger,
    crosses,
    fillable_quantity,
)
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
from perprisk.book.stops import StopBook, StopOrder
from perprisk.errors import ValidationError
from perprisk.money import Fraction, format_decimal, fraction_to_decimal, to_decimal

_E = TypeVar("_E", bound=Enum)

_GTC = TimeInForce.GTC
_POST_ONLY = TimeInForce.POST_ONLY
_FOK = TimeInForce.FOK
_LAST = TriggerReference.LAST


class OrderBook(ABC):
    """A price-time priority limit order book for one market, with conditional orders.

    Matching rules: an incoming order trades against the best-priced resting orders of the other side,
    oldest first at each price, always at the resting (maker) order's price.  A fill-or-kill order trades
    only if it can fill completely; a post-only order is cancelled instead of crossing; the unfilled rest of
    an IOC or market order is cancelled; a GTC limit rests.  Self-trade prevention follows the incoming
    order's mode.  An amend keeps time priority only when the price stays and the quantity does not grow;
    otherwise the order leaves the book and re-enters as a new order (matching if it now crosses).
    """

    def __init__(self, symbol: str, tick_size: Decimal | int | str, lot_size: Decimal | int | str) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise ValidationError("symbol", f"expected a non-empty string, got {symbol!r}")
        self.symbol = symbol
        self.grid = Grid(tick_size, lot_size)  # type: ignore[arg-type]  # validated (and parsed) by Grid
        self._orders: dict[int, BookOrder] = {}  # resting orders by id, in the order they entered the book
        self._stops = StopBook()
        self._events: list[TickEvent] = []  # the events of the operation in progress
        self._trade_sequence = 0
        self._last_price: int | None = None
        self._mark_price: int | Fraction | None = None  # in ticks; a mark price need not lie on the grid

    # ------------------------------------------------------------------ primitives of a book structure

    @abstractmethod
    def _match(self, taker: BookOrder) -> None:
        """Trade ``taker`` against the resting orders it crosses, best price first, oldest first.

        Use :meth:`_fill` for each trade and :meth:`_cancel` for self-trade prevention (looked up in
        :data:`perprisk.book.matching.STP_ACTIONS`); remove makers that are filled or cancelled.  Stop when
        ``taker.quantity`` reaches zero or nothing more crosses.
        """

    @abstractmethod
    def _rest(self, order: BookOrder) -> None:
        """Put ``order`` at the back of its price level and in ``self._orders``."""

    @abstractmethod
    def _unlink(self, order: BookOrder) -> None:
        """Take the resting ``order`` out of the book and out of ``self._orders``."""

    @abstractmethod
    def _queue(self, side: Side) -> Iterator[BookOrder]:
        """The resting orders of ``side`` in priority order: best price first, oldest first (read-only)."""

    def _best(self, side: Side) -> int | None:
        """The best price of ``side`` in ticks, ``None`` when the side is empty."""
        order = next(self._queue(side), None)
        return None if order is None else order.price

    def _makers(self, taker: BookOrder) -> Iterator[BookOrder]:
        """The resting orders ``taker`` crosses, in priority order (read-only)."""
        return takewhile(lambda maker: crosses(taker, maker.price), self._queue(taker.side.opposite))

    def _levels(self, side: Side) -> Iterator[tuple[int, int, int]]:
        """``(price, open lots, order count)`` of each level of ``side``, best first."""
        for price, level in groupby(self._queue(side), key=lambda order: order.price):
            orders = list(level)
            yield price, sum(o.quantity for o in orders), len(orders)

    # ------------------------------------------------------------------ Decimal API: commands

    def submit(self, request: OrderRequest, *, max_quantity: Decimal | int | str | None = None) -> BookResult:
        """Validate and submit ``request``; a conditional order is held until its trigger is crossed.

        ``max_quantity`` caps the order's quantity (the engine passes the position size for a reduce-only
        order); a cap of zero is refused.  Raises :class:`~perprisk.errors.ValidationError` naming the field,
        leaving the book unchanged.
        """
        order, events = self._enter(request, max_quantity)
        return self._result(events, order)

    def submit_events(
        self, request: OrderRequest, *, max_quantity: Decimal | int | str | None = None
    ) -> tuple[BookEvent, ...]:
        """:meth:`submit`, returning only the events (the order's state is not built: the engine reads none)."""
        _, events = self._enter(request, max_quantity)
        return self._publish(events)

    def submit_checked_events(self, order: BookOrder | StopOrder) -> tuple[BookEvent, ...]:
        """:meth:`submit_events` for an order :meth:`check` returned, when nothing has changed the book since (the
        caller's promise: the engine checks and submits within one command): it is not parsed again."""
        return self._publish(self._admit(order))

    def _enter(self, request: OrderRequest, max_quantity: object) -> tuple[BookOrder | StopOrder, list[TickEvent]]:
        """Validate ``request`` and let the order in: held (a conditional order) or matched and rested."""
        order = self._parse(request, max_quantity)
        return order, self._admit(order)

    def _admit(self, order: BookOrder | StopOrder) -> list[TickEvent]:
        """Let a parsed order in: held (a conditional order) or matched and rested."""
        if isinstance(order, StopOrder):
            self._stops.add(order, self._reference_price(order.reference))
            return []
        return self._submit_order(order)

    def check(
        self, request: OrderRequest, *, max_quantity: Decimal | int | str | None = None
    ) -> BookOrder | StopOrder:
        """Validate ``request`` as :meth:`submit` would, without changing anything (raises ValidationError); returns
        the order it describes, for :meth:`submit_checked_events`."""
        return self._parse(request, max_quantity)

    def amend(
        self,
        order_id: int,
        *,
        price: Decimal | int | str | None = None,
        quantity: Decimal | int | str | None = None,
    ) -> BookResult:
        """Change the price and/or the open quantity of a resting order.

        Lowering the quantity at the same price keeps time priority; a new price or a larger quantity sends
        the order to the back of its (new) level, and a new price that crosses trades like a new order.
        """
        order = self._resting_order(order_id)
        if price is None and quantity is None:
            raise ValidationError("price", "an amend needs a new price, a new quantity or both")
        ticks = order.price if price is None else self.grid.to_ticks(price, "price")
        lots = order.quantity if quantity is None else self.grid.to_lots(quantity, "quantity")
        assert ticks is not None  # market orders never rest
        return self._result(self.amend_ticks(order_id, ticks, lots), order)

    def cancel(self, order_id: int) -> BookResult:
        """Cancel a resting or pending conditional order."""
        order: BookOrder | StopOrder | None = self._orders.get(order_id) or self._stops.get(order_id)
        events = self.cancel_ticks(order_id)
        assert order is not None  # cancel_ticks refused unknown ids
        return self._result(events, order)

    def cancel_events(self, order_id: int) -> tuple[BookEvent, ...]:
        """:meth:`cancel`, returning only the events (the order's state is not built: the engine reads none)."""
        return self._publish(self.cancel_ticks(order_id))

    def cancel_all(self, account_id: str) -> BookResult:
        """Cancel every resting and pending conditional order of ``account_id`` (e.g. before liquidation)."""
        self._events = events = []
        for order in [o for o in self._orders.values() if o.account_id == account_id]:
            self._unlink(order)
            self._cancel(order, CancelReason.USER)
        for stop in [s for s in self._stops if s.account_id == account_id]:
            self._cancel_stop(stop.order_id)
        return self._result(events, None)

    def update_mark_price(self, price: Decimal | int | str) -> BookResult:
        """Set the mark price (it need not lie on the tick grid); orders watching it may trigger and trade."""
        return self._result(self.update_mark_ticks(self.grid.to_exact_ticks(price, "price")), None)

    # ------------------------------------------------------------------ ticks-level API

    def submit_ticks(
        self,
        order_id: int,
        account_id: str,
        side: Side,
        price: int | None,
        quantity: int,
        time_in_force: TimeInForce = TimeInForce.GTC,
        self_trade_prevention: SelfTradePrevention = SelfTradePrevention.NONE,
        reduce_only: bool = False,
    ) -> list[TickEvent]:
        """Submit a limit order (``price`` in ticks) or a market order (``price`` None), ``quantity`` in lots.

        Trusts its arguments (positive ints, a time in force a market order can take) except for a duplicate
        order id, which it refuses.
        """
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        order = BookOrder(
            order_id, account_id, side, price, quantity, time_in_force, self_trade_prevention, reduce_only,
            order_type,
        )  # fmt: skip
        return self._submit_order(order)

    def amend_ticks(self, order_id: int, price: int, quantity: int | None = None) -> list[TickEvent]:
        """Amend a resting order to ``price`` ticks and ``quantity`` open lots (unchanged when None).

        Rules as :meth:`amend`; ``amend_ticks(order_id, price)`` is a move.
        """
        order = self._orders.get(order_id)
        if order is None:
            raise self._not_resting(order_id)
        if quantity is None:
            quantity = order.quantity
        self._events = events = []
        if price == order.price and quantity <= order.quantity:
            order.quantity = quantity
            return events
        last = self._last_price
        self._unlink(order)
        order.price = price
        order.quantity = quantity
        self._execute(order)
        if self._last_price != last:
            self._on_trades()
        return events

    def cancel_ticks(self, order_id: int) -> list[TickEvent]:
        """Cancel a resting or pending conditional order."""
        order = self._orders.get(order_id)
        self._events = events = []
        if order is not None:
            self._unlink(order)
            self._cancel(order, CancelReason.USER)
            return events
        if order_id not in self._stops:
            raise ValidationError("order_id", f"no open order {order_id}")
        self._cancel_stop(order_id)
        return events

    def update_mark_ticks(self, price: int | Fraction) -> list[TickEvent]:
        """Set the mark price in (possibly fractional) ticks and run the conditional orders it triggers."""
        self._events = events = []
        self._mark_price = price
        if self._stops.watches(TriggerReference.MARK):
            self._fire(TriggerReference.MARK, price)
        return events

    def best_ticks(self, side: Side) -> int | None:
        """The best price of ``side`` in ticks, ``None`` when that side is empty."""
        return self._best(side)

    # ------------------------------------------------------------------ queries

    @property
    def last_price(self) -> Decimal | None:
        """The price of the last trade, ``None`` before the first."""
        return None if self._last_price is None else self.grid.price(self._last_price)

    @property
    def mark_price(self) -> Decimal | None:
        """The last mark price given to :meth:`update_mark_price`, ``None`` before the first."""
        return None if self._mark_price is None else self.grid.price(self._mark_price)

    def best_bid(self) -> Decimal | None:
        """The highest bid, ``None`` when there is none."""
        best = self._best(Side.BUY)
        return None if best is None else self.grid.price(best)

    def best_ask(self) -> Decimal | None:
        """The lowest ask, ``None`` when there is none."""
        best = self._best(Side.SELL)
        return None if best is None else self.grid.price(best)

    def depth(self, levels: int | None = 10) -> BookDepth:
        """The top ``levels`` price levels of each side (all of them when ``levels`` is None), best first."""
        if levels is not None and (isinstance(levels, bool) or not isinstance(levels, int) or levels < 1):
            raise ValidationError("levels", f"expected a positive integer or None, got {levels!r}")
        return BookDepth(self._depth(Side.BUY, levels), self._depth(Side.SELL, levels))

    def impact_price(self, side: Side, notional: Decimal | int | str) -> Decimal | None:
        """The average price of filling ``notional`` (quote currency) against one side of the book.

        ``side`` names the side walked: ``BUY`` walks the bids (the *impact bid price* of the funding
        premium), ``SELL`` the asks (the *impact ask price*).  The last level is taken in part, by notional,
        not rounded to lots.  ``None`` when the side holds less than ``notional``.  Computed exactly; the
        result is exact unless the average has no finite decimal expansion (then 40 significant digits).
        """
        side = _member(Side, side, "side")
        tick = Fraction(self.grid.tick_size)
        amount = Fraction(to_decimal(notional, "notional", positive=True))
        target = amount / (tick * Fraction(self.grid.lot_size))
        spent = Fraction(0)  # notional walked so far, in tick·lot units
        lots = Fraction(0)
        for price, quantity, _ in self._levels(side):
            if spent + price * quantity >= target:
                lots += (target - spent) / price
                return fraction_to_decimal(target / lots * tick)
            spent += price * quantity
            lots += quantity
        return None

    def get_order(self, order_id: int) -> OrderState | None:
        """The open (resting) or pending conditional order ``order_id``, ``None`` when there is none."""
        order: BookOrder | StopOrder | None = self._orders.get(order_id) or self._stops.get(order_id)
        return None if order is None else self._state(order)

    def open_orders(self, account_id: str) -> tuple[OrderState, ...]:
        """The resting orders of ``account_id`` (in the order they entered the book), then its stops."""
        resting = [self._state(o) for o in self._orders.values() if o.account_id == account_id]
        pending = [self._state(s) for s in self._stops if s.account_id == account_id]
        return tuple(resting + pending)

    def snapshot(self) -> dict[str, Any]:
        """The whole state of the book as plain data (JSON-ready, numbers as exact decimal strings).

        Resting orders are listed per side in priority order, conditional orders in submission order.  Two
        books that agree in every observable way give equal snapshots; the engine hashes it into its state.
        """
        return {
            "symbol": self.symbol,
            "tick_size": format_decimal(self.grid.tick_size),
            "lot_size": format_decimal(self.grid.lot_size),
            "last_price": self._price_text(self._last_price),
            "mark_price": self._price_text(self._mark_price),
            "trade_sequence": self._trade_sequence,
            "bids": [self._order_row(order) for order in self._queue(Side.BUY)],
            "asks": [self._order_row(order) for order in self._queue(Side.SELL)],
            "conditional": [self._stop_row(stop) for stop in self._stops],
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.symbol!r}, tick_size={self.grid.tick_size}, "
            f"lot_size={self.grid.lot_size}, best_bid={self.best_bid()}, best_ask={self.best_ask()}, "
            f"resting={len(self._orders)}, conditional={len(self._stops)})"
        )

    def __contains__(self, order_id: object) -> bool:
        """True when ``order_id`` rests in the book or waits as a conditional order."""
        return order_id in self._orders or order_id in self._stops

    # ------------------------------------------------------------------ the order flow (shared)

    def _submit_order(self, order: BookOrder) -> list[TickEvent]:
        self._check_new_id(order.order_id)
        self._events = events = []
        last = self._last_price
        self._execute(order)
        if self._last_price != last:
            self._on_trades()
        return events

    def _execute(self, order: BookOrder) -> None:
        """Post-only and fill-or-kill checks, matching, then rest (GTC, post-only) or cancel the rest."""
        time_in_force = order.time_in_force
        if time_in_force is _POST_ONLY:
            if next(self._makers(order), None) is not None:
                self._cancel(order, CancelReason.POST_ONLY_WOULD_CROSS)
                return
        elif time_in_force is _FOK:
            if fillable_quantity(order, self._makers(order)) < order.quantity:
                self._cancel(order, CancelReason.FOK_UNFILLABLE)
                return
        self._match(order)
        if order.quantity:
            if time_in_force is _GTC or time_in_force is _POST_ONLY:
                self._rest(order)
            else:
                self._cancel(order, CancelReason.IOC_REMAINDER)

    def _fill(self, taker: BookOrder, maker: BookOrder, price: int, quantity: int) -> None:
        """Record a trade of ``quantity`` lots at ``price`` ticks and take it off both orders."""
        taker.quantity -= quantity
        taker.filled += quantity
        maker.quantity -= quantity
        maker.filled += quantity
        self._trade_sequence += 1
        self._last_price = price
        self._events.append(
            TickFill(
                self._trade_sequence,
                taker.order_id,
                maker.order_id,
                taker.account_id,
                maker.account_id,
                price,
                quantity,
                taker.side,
            )
        )

    def _cancel(self, order: BookOrder, reason: CancelReason) -> None:
        """Record that the open quantity of ``order`` leaves untraded (the caller unlinks a resting order)."""
        self._events.append(TickCancel(order.order_id, order.account_id, order.quantity, reason))
        order.quantity = 0

    def _cancel_stop(self, order_id: int) -> None:
        """Drop the pending conditional order ``order_id`` and record its cancellation."""
        stop = self._stops.remove(order_id)
        assert stop is not None
        self._events.append(TickCancel(stop.order_id, stop.account_id, stop.quantity, CancelReason.USER))

    def _on_trades(self) -> None:
        """After trades moved the last price: run the conditional orders watching it."""
        if self._stops.watches(_LAST):
            assert self._last_price is not None
            self._fire(_LAST, self._last_price)

    def _fire(self, reference: TriggerReference, price: int | Fraction) -> None:
        """Trigger what ``price`` of ``reference`` crosses, then whatever the resulting trades trigger."""
        queue = deque((stop, reference, price) for stop in self._stops.triggered(reference, price))
        while queue:
            stop, by, at = queue.popleft()
            self._events.append(TickTrigger(stop.order_id, stop.account_id, by, at))
            last = self._last_price
            self._execute(stop.to_book_order())
            if self._last_price != last and self._stops.watches(_LAST):
                last = self._last_price
                assert last is not None
                queue.extend((s, _LAST, last) for s in self._stops.triggered(_LAST, last))

    # ------------------------------------------------------------------ validation

    def _parse(self, request: OrderRequest, max_quantity: object) -> BookOrder | StopOrder:
        """Check every field of ``request`` against this book; the ticks-and-lots order it describes."""
        if not isinstance(request, OrderRequest):
            raise ValidationError("request", f"expected an OrderRequest, got {type(request).__name__}")
        order_id = request.order_id
        if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id < 0:
            raise ValidationError("order_id", f"expected a non-negative integer, got {order_id!r}")
        if not isinstance(request.account_id, str) or not request.account_id:
            raise ValidationError("account_id", f"expected a non-empty string, got {request.account_id!r}")
        side = _member(Side, request.side, "side")
        order_type = _member(OrderType, request.order_type, "order_type")
        stp = _member(SelfTradePrevention, request.self_trade_prevention, "self_trade_prevention")
        reference = _member(TriggerReference, request.trigger_reference, "trigger_reference")
        if not isinstance(request.reduce_only, bool):
            raise ValidationError("reduce_only", f"expected a boolean, got {request.reduce_only!r}")
        time_in_force = _time_in_force(order_type, request.time_in_force)
        quantity = self.grid.to_lots(request.quantity, "quantity")
        if max_quantity is not None:
            cap = to_decimal(max_quantity, "max_quantity", non_negative=True)
            if cap == 0:
                raise ValidationError("max_quantity", "caps the order at zero: there is nothing to reduce")
            quantity = min(quantity, self.grid.to_lots(cap, "max_quantity"))  # (parsed once: the same Decimal)
        if order_type.is_limit:
            if request.price is None:
                raise ValidationError("price", f"a {order_type.value} order needs a limit price")
            price: int | None = self.grid.to_ticks(request.price, "price")
        elif request.price is not None:
            raise ValidationError("price", f"a {order_type.value} order takes no limit price")
        else:
            price = None
        trailing_fields = ("callback_distance", "callback_rate", "activation_price")
        if not order_type.is_conditional:
            _refuse_fields(request, ("trigger_price", *trailing_fields), f"a {order_type.value} order")
            self._check_new_id(order_id)
            return BookOrder(
                order_id, request.account_id, side, price, quantity, time_in_force, stp, request.reduce_only,
                order_type,
            )  # fmt: skip
        stop = StopOrder(
            order_id, request.account_id, side, order_type, quantity, price, time_in_force, stp,
            request.reduce_only, reference,
        )  # fmt: skip
        if order_type is OrderType.TRAILING_STOP_MARKET:
            self._parse_trailing(request, stop)
        else:
            _refuse_fields(request, trailing_fields, f"a {order_type.value} order")
            if request.trigger_price is None:
                raise ValidationError("trigger_price", f"a {order_type.value} order needs a trigger price")
            stop.trigger = self.grid.to_ticks(request.trigger_price, "trigger_price")
            now = self._reference_price(reference)
            if now is not None and stop.is_triggered(now):
                already = f"the {reference.value} price is already {self.grid.price(now)}"
                raise ValidationError("trigger_price", f"would trigger immediately: {already}")
        self._check_new_id(order_id)
        return stop

    def _parse_trailing(self, request: OrderRequest, stop: StopOrder) -> None:
        """Fill in the callback (distance xor rate) and activation of a trailing stop."""
        _refuse_fields(request, ("trigger_price",), "a trailing stop (it trails by a callback)")
        if (request.callback_distance is None) == (request.callback_rate is None):
            raise ValidationError(
                "callback_distance", "a trailing stop needs exactly one of callback_distance, callback_rate"
            )
        if request.callback_distance is not None:
            stop.distance = self.grid.to_ticks(request.callback_distance, "callback_distance")
        else:
            rate = to_decimal(request.callback_rate, "callback_rate", positive=True)
            if rate >= 1:
                raise ValidationError("callback_rate", f"must be below 1 (a fraction, 0.01 = 1 %): {rate}")
            stop.rate = Fraction(rate)
        if request.activation_price is not None:
            stop.activation = self.grid.to_ticks(request.activation_price, "activation_price")

    def _check_new_id(self, order_id: int) -> None:
        if order_id in self._orders or order_id in self._stops:
            raise ValidationError("order_id", f"order {order_id} is already open")

    def _resting_order(self, order_id: int) -> BookOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise self._not_resting(order_id)
        return order

    def _not_resting(self, order_id: int) -> ValidationError:
        """The refusal of an amend of ``order_id``, which does not rest in the book."""
        if order_id in self._stops:
            return ValidationError(
                "order_id", f"conditional order {order_id} cannot be amended; cancel it and submit a new one"
            )
        return ValidationError("order_id", f"no open order {order_id}")

    def _reference_price(self, reference: TriggerReference) -> int | Fraction | None:
        return self._mark_price if reference is TriggerReference.MARK else self._last_price

    # ------------------------------------------------------------------ Decimal views

    def _result(self, events: list[TickEvent], order: BookOrder | StopOrder | None) -> BookResult:
        published = self._publish(events)
        return BookResult(published, None if order is None else self._state(order, events))

    def _publish(self, events: Iterable[TickEvent]) -> tuple[BookEvent, ...]:
        price = self.grid.price
        quantity = self.grid.quantity
        published: list[BookEvent] = []
        for event in events:
            if isinstance(event, TickFill):
                published.append(
                    Fill(
                        event.sequence,
                        event.taker_order_id,
                        event.maker_order_id,
                        event.taker_account_id,
                        event.maker_account_id,
                        price(event.price),
                        quantity(event.quantity),
                        event.aggressor,
                    )
                )
            elif isinstance(event, TickCancel):
                published.append(
                    Cancellation(event.order_id, event.account_id, quantity(event.quantity), event.reason)
                )
            else:
                published.append(
                    StopTriggered(event.order_id, event.account_id, event.reference, price(event.price))
                )
        return tuple(published)

    def _state(self, order: BookOrder | StopOrder, events: Iterable[TickEvent] = ()) -> OrderState:
        """The Decimal view of ``order``; the events of the operation just run tell cancelled from filled."""
        grid = self.grid
        limit = None if order.price is None else grid.price(order.price)
        if isinstance(order, StopOrder):
            pending = self._stops.get(order.order_id) is order
            level = order.level()
            return OrderState(
                order.order_id,
                order.account_id,
                order.side,
                order.order_type,
                limit,
                grid.quantity(order.quantity if pending else 0),
                grid.quantity(0),
                OrderStatus.PENDING_TRIGGER if pending else OrderStatus.CANCELLED,
                order.time_in_force,
                order.reduce_only,
                None if level is None else grid.price(level),
            )
        if self._orders.get(order.order_id) is order:
            status = OrderStatus.OPEN
        elif any(isinstance(e, TickCancel) and e.order_id == order.order_id for e in events):
            status = OrderStatus.CANCELLED
        else:
            status = OrderStatus.FILLED
        return OrderState(
            order.order_id,
            order.account_id,
            order.side,
            order.order_type,
            limit,
            grid.quantity(order.quantity),
            grid.quantity(order.filled),
            status,
            order.time_in_force,
            order.reduce_only,
        )

    def _price_text(self, ticks: int | Fraction | None) -> str | None:
        return None if ticks is None else format_decimal(self.grid.price(ticks))

    def _order_row(self, order: BookOrder) -> dict[str, Any]:
        return {
            "order_id": order.order_id,
            "account_id": order.account_id,
            "side": order.side.value,
            "order_type": order.order_type.value,
            "price": self._price_text(order.price),
            "open_quantity": format_decimal(self.grid.quantity(order.quantity)),
            "filled_quantity": format_decimal(self.grid.quantity(order.filled)),
            "time_in_force": order.time_in_force.value,
            "self_trade_prevention": order.self_trade_prevention.value,
            "reduce_only": order.reduce_only,
        }

    def _stop_row(self, stop: StopOrder) -> dict[str, Any]:
        return {
            "order_id": stop.order_id,
            "account_id": stop.account_id,
            "side": stop.side.value,
            "order_type": stop.order_type.value,
            "price": self._price_text(stop.price),
            "quantity": format_decimal(self.grid.quantity(stop.quantity)),
            "time_in_force": stop.time_in_force.value,
            "self_trade_prevention": stop.self_trade_prevention.value,
            "reduce_only": stop.reduce_only,
            "trigger_reference": stop.reference.value,
            "trigger_price": self._price_text(stop.trigger),
            "callback_distance": self._price_text(stop.distance),
            "callback_rate": None if stop.rate is None else format_decimal(fraction_to_decimal(stop.rate)),
            "activation_price": self._price_text(stop.activation),
            "best_price_seen": self._price_text(stop.extreme),
        }

    def _depth(self, side: Side, levels: int | None) -> tuple[PriceLevel, ...]:
        return tuple(
            PriceLevel(self.grid.price(price), self.grid.quantity(quantity), count)
            for price, quantity, count in islice(self._levels(side), levels)
        )


def _member(enum_type: type[_E], value: object, field: str) -> _E:
    """``value`` as a member of ``enum_type`` (members and their values are accepted)."""
    if type(value) is enum_type:
        return value  # what enum_type(value) returns for a member
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in enum_type)
        raise ValidationError(field, f"expected one of {choices}, got {value!r}") from None


def _time_in_force(order_type: OrderType, value: object) -> TimeInForce:
    """The time in force of an order: GTC for limit types and IOC for market types unless given."""
    if value is None:
        return TimeInForce.GTC if order_type.is_limit else TimeInForce.IOC
    time_in_force = _member(TimeInForce, value, "time_in_force")
    if not order_type.is_limit and time_in_force not in (TimeInForce.IOC, TimeInForce.FOK):
        raise ValidationError(
            "time_in_force",
            f"a {order_type.value} order cannot rest in the book; use ioc or fok, not {time_in_force.value}",
        )
    return time_in_force


def _refuse_fields(request: OrderRequest, names: tuple[str, ...], what: str) -> None:
    for name in names:
        if getattr(request, name) is not None:
            raise ValidationError(name, f"{what} takes no {name}")
