"""Conditional orders, run against both books: stops, take-profits, trailing stops, mark and last triggers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from perprisk.book import (
    CancelReason,
    Fill,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    StopTriggered,
    TriggerReference,
)

BUY, SELL = Side.BUY, Side.SELL
MARK, LAST = TriggerReference.MARK, TriggerReference.LAST
D = Decimal


def conditional(
    order_id: int, side: Side, quantity: str, order_type: OrderType, **fields: object
) -> OrderRequest:
    """A conditional order of account ``trader``."""
    return OrderRequest(
        order_id, "trader", side, quantity, order_type=order_type, **fields  # type: ignore[arg-type]
    )


def test_stop_market_sell_triggered_by_the_mark_slips_through_a_thin_real_bid_side(
    real_bids_book: OrderBook, real_bids
) -> None:
    """A 4 BTC stop at 20,380.0 meets the real Binance bids of 2022-11-01 (1.770 BTC at the touch, then
    dust): it fills at seven prices, all below its trigger, the last level in part."""
    book = real_bids_book
    book.update_mark_price("20390.0")
    pending = book.submit(conditional(1, SELL, "4", OrderType.STOP_MARKET, trigger_price="20380.0"))
    assert pending.order.status is OrderStatus.PENDING_TRIGGER and pending.order.trigger_price == D("20380.0")
    assert book.update_mark_price("20385.0").events == ()

    result = book.update_mark_price("20379.6")

    assert result.events[0] == StopTriggered(1, "trader", MARK, D("20379.6"))
    fills = result.fills
    expected_levels = real_bids[:7]
    assert [f.price for f in fills] == [price for price, _ in expected_levels]
    assert [f.quantity for f in fills[:-1]] == [quantity for _, quantity in expected_levels[:-1]]
    assert fills[-1].quantity == D("4") - sum(q for _, q in expected_levels[:-1])  # 0.555 of 7.199
    assert all(f.price < D("20380.0") for f in fills)
    assert all(f.taker_order_id == 1 and f.aggressor is SELL for f in fills)
    assert sum(f.quantity for f in fills) == D("4")
    assert book.last_price == D("20376.4") and book.best_bid() == D("20376.4")
    assert 1 not in book


def test_stop_limit_on_the_last_price_rests_when_it_cannot_fill(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "1", "100.0")  # 1
    orders.limit("alice", SELL, "1", "100.5")  # 2
    orders.limit("alice", SELL, "5", "101.0")  # 3
    book.submit(
        conditional(
            100, BUY, "2", OrderType.STOP_LIMIT, trigger_price="100.5", price="100.6", trigger_reference=LAST
        )
    )
    assert orders.market("bob", BUY, "1").triggers == ()  # last 100.0
    result = orders.market("bob", BUY, "1")  # last 100.5: the stop fires, 101.0 is beyond its limit
    assert [type(e) for e in result.events] == [Fill, StopTriggered]
    assert result.triggers == (StopTriggered(100, "trader", LAST, D("100.5")),)
    state = book.get_order(100)
    assert (state.status, state.order_type, state.price, state.open_quantity) == (
        OrderStatus.OPEN, OrderType.STOP_LIMIT, D("100.6"), D("2"),
    )


def test_stops_on_the_last_price_cascade(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "1", "100.0")  # 1
    orders.limit("alice", BUY, "1", "99.0")  # 2
    orders.limit("alice", BUY, "5", "98.0")  # 3
    for order_id, trigger in ((100, "99.5"), (101, "98.5")):
        fields = {"trigger_price": trigger, "trigger_reference": LAST}
        book.submit(conditional(order_id, SELL, "1", OrderType.STOP_MARKET, **fields))
    result = orders.market("carol", SELL, "2")  # id 4: 100.0 then 99.0 → stop 100 → 98.0 → stop 101 → 98.0
    described = [
        (e.taker_order_id, e.price) if isinstance(e, Fill) else ("trigger", e.order_id, e.price)
        for e in result.events
    ]
    assert described == [
        (4, D("100.0")),
        (4, D("99.0")),
        ("trigger", 100, D("99.0")),
        (100, D("98.0")),
        ("trigger", 101, D("98.0")),
        (101, D("98.0")),
    ]
    assert book.get_order(3).open_quantity == D("3")


@pytest.mark.parametrize(
    ("side", "order_type", "fields", "quiet_marks", "firing_mark"),
    [
        (SELL, OrderType.TAKE_PROFIT_MARKET, {"trigger_price": "110.0"}, ["105.0", "109.9"], "110.0"),
        (BUY, OrderType.TAKE_PROFIT_MARKET, {"trigger_price": "90.0"}, ["95.0", "90.1"], "89.0"),
        (BUY, OrderType.STOP_MARKET, {"trigger_price": "101.0"}, ["100.9"], "101.0"),
        (SELL, OrderType.STOP_LIMIT, {"trigger_price": "99.0", "price": "80.0"}, ["99.1"], "99.0"),
        (BUY, OrderType.TAKE_PROFIT_LIMIT, {"trigger_price": "95.0", "price": "120.0"}, ["95.1"], "94.9"),
    ],
    ids=["tp-sell-rise", "tp-buy-fall", "stop-buy-rise", "stop-limit-sell-fall", "tp-limit-buy-fall"],
)
def test_trigger_directions(
    book: OrderBook, orders, side, order_type, fields, quiet_marks, firing_mark
) -> None:
    orders.limit("alice", BUY, "10", "85.0")
    orders.limit("alice", SELL, "10", "115.0")
    book.update_mark_price("100.0")
    book.submit(conditional(9, side, "1", order_type, **fields))
    for mark in quiet_marks:
        assert book.update_mark_price(mark).events == ()
    result = book.update_mark_price(firing_mark)
    assert result.triggers[0].order_id == 9
    touch = D("85.0") if side is SELL else D("115.0")
    assert [(f.price, f.quantity) for f in result.fills] == [(touch, D("1"))]


def test_trailing_stop_by_distance_follows_the_highest_mark(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "10", "90.0")
    book.update_mark_price("100.0")
    book.submit(conditional(9, SELL, "1", OrderType.TRAILING_STOP_MARKET, callback_distance="2.0"))
    assert book.get_order(9).trigger_price == D("98.0")
    book.update_mark_price("103.0")
    assert book.get_order(9).trigger_price == D("101.0")
    assert book.update_mark_price("102.0").events == ()
    assert book.get_order(9).trigger_price == D("101.0")  # a fall does not lower it
    assert book.update_mark_price("101.1").events == ()
    result = book.update_mark_price("101.0")
    assert result.triggers == (StopTriggered(9, "trader", MARK, D("101.0")),)
    assert [f.price for f in result.fills] == [D("90.0")]


def test_trailing_stop_by_rate_follows_the_lowest_last_price(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "100", "120.0")
    orders.limit("maker", BUY, "1", "100.0")
    orders.market("taker", SELL, "1")  # last 100.0
    book.submit(
        conditional(
            100, BUY, "1", OrderType.TRAILING_STOP_MARKET, callback_rate="0.05", trigger_reference=LAST
        )
    )
    assert book.get_order(100).trigger_price == D("105.0")
    orders.limit("maker", BUY, "1", "90.0")
    orders.market("taker", SELL, "1")  # last 90.0: level 94.5
    assert book.get_order(100).trigger_price == D("94.5")
    orders.limit("maker", SELL, "1", "94.4")
    assert orders.market("taker", BUY, "1").triggers == ()  # last 94.4
    orders.limit("maker", SELL, "1", "94.5")
    result = orders.market("taker", BUY, "1")  # last 94.5: fires, buys at 120.0
    assert result.triggers[0].order_id == 100
    assert result.fills[-1].taker_order_id == 100 and result.fills[-1].price == D("120.0")


def test_trailing_stop_waits_for_its_activation_price(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "10", "90.0")
    book.update_mark_price("100.0")
    book.submit(
        conditional(
            9, SELL, "1", OrderType.TRAILING_STOP_MARKET, callback_distance="1.0", activation_price="105.0"
        )
    )
    assert book.get_order(9).trigger_price is None
    assert book.update_mark_price("98.0").events == ()  # far below: not trailing yet, no trigger
    book.update_mark_price("105.0")
    assert book.get_order(9).trigger_price == D("104.0")
    assert book.update_mark_price("104.5").events == ()
    assert book.update_mark_price("103.9").triggers[0].order_id == 9


def test_a_mark_between_ticks_is_compared_exactly(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "10", "90.0")
    book.update_mark_price("100.0")
    book.submit(conditional(9, SELL, "1", OrderType.STOP_MARKET, trigger_price="99.9"))
    assert book.update_mark_price("99.90001").events == ()
    assert book.mark_price == D("99.90001")
    result = book.update_mark_price("99.89999")
    assert result.triggers == (StopTriggered(9, "trader", MARK, D("99.89999")),)


def test_stops_fired_together_run_in_submission_order(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "10", "90.0")
    book.update_mark_price("100.0")
    book.submit(conditional(7, SELL, "1", OrderType.STOP_MARKET, trigger_price="95.0"))
    book.submit(conditional(5, SELL, "1", OrderType.STOP_MARKET, trigger_price="99.0"))
    book.submit(conditional(6, SELL, "1", OrderType.TRAILING_STOP_MARKET, callback_distance="3.0"))
    result = book.update_mark_price("94.0")
    assert [t.order_id for t in result.triggers] == [7, 5, 6]


def test_a_stop_submitted_before_any_mark_waits_for_one(book: OrderBook, orders) -> None:
    book.submit(conditional(9, SELL, "1", OrderType.STOP_MARKET, trigger_price="99.0"))
    result = book.update_mark_price("98.0")  # fires into an empty book
    assert result.triggers[0].order_id == 9
    assert result.cancellations[0].reason is CancelReason.IOC_REMAINDER


def test_pending_stops_can_be_cancelled_and_are_listed(book: OrderBook, orders) -> None:
    book.update_mark_price("100.0")
    book.submit(conditional(8, SELL, "1", OrderType.STOP_MARKET, trigger_price="95.0", reduce_only=True))
    book.submit(conditional(9, SELL, "2", OrderType.STOP_MARKET, trigger_price="94.0"))
    listed = book.open_orders("trader")
    assert [(o.order_id, o.status, o.reduce_only) for o in listed] == [
        (8, OrderStatus.PENDING_TRIGGER, True),
        (9, OrderStatus.PENDING_TRIGGER, False),
    ]
    result = book.cancel(8)
    assert result.cancellations[0].quantity == D("1") and result.order.status is OrderStatus.CANCELLED
    assert book.cancel_all("trader").cancellations[0].order_id == 9
    assert book.update_mark_price("50.0").events == ()
    assert book.snapshot()["conditional"] == []
