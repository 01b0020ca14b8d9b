"""Matching rules, run against both books: priority, fills, time in force, self-trade prevention, amends."""

from __future__ import annotations

import pickle
from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.book import (
    CancelReason,
    Cancellation,
    Fill,
    OrderBook,
    OrderRequest,
    OrderStatus,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from perprisk.errors import ValidationError
from perprisk.money import fraction_to_decimal

BUY, SELL = Side.BUY, Side.SELL
D = Decimal


def fills(result) -> list[tuple[int, Decimal, Decimal]]:
    """(maker order id, price, quantity) of each fill."""
    return [(f.maker_order_id, f.price, f.quantity) for f in result.fills]


def test_price_then_time_priority_and_the_maker_price(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "1", "100.0")  # id 1
    orders.limit("bob", SELL, "1", "100.0")  # id 2, same price, later
    orders.limit("carol", SELL, "1", "99.9")  # id 3, better price
    result = orders.limit("dave", BUY, "2.5", "100.5")  # id 4 crosses all three
    assert fills(result) == [(3, D("99.9"), D("1")), (1, D("100.0"), D("1")), (2, D("100.0"), D("0.5"))]
    assert [f.sequence for f in result.fills] == [1, 2, 3]
    assert {(f.aggressor, f.taker_order_id, f.taker_account_id) for f in result.fills} == {(BUY, 4, "dave")}
    assert [f.maker_account_id for f in result.fills] == ["carol", "alice", "bob"]
    assert result.order.status is OrderStatus.FILLED and result.order.filled_quantity == D("2.5")
    assert book.get_order(2).open_quantity == D("0.5") and book.get_order(2).filled_quantity == D("0.5")
    assert book.last_price == D("100.0")


def test_a_partially_filled_limit_rests_the_rest_at_its_price(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "0.3", "100.0")
    result = orders.limit("bob", BUY, "1", "100.2")
    assert fills(result) == [(1, D("100.0"), D("0.3"))]
    assert result.order.status is OrderStatus.OPEN
    assert (result.order.open_quantity, result.order.filled_quantity) == (D("0.7"), D("0.3"))
    assert (book.best_bid(), book.best_ask()) == (D("100.2"), None)


def test_sequence_numbers_run_on_across_operations(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "3", "100.0")
    first = orders.market("bob", BUY, "1")
    second = orders.market("carol", BUY, "1")
    assert [f.sequence for f in first.fills + second.fills] == [1, 2]


def test_ioc_fills_what_it_can_and_cancels_the_rest(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "1", "100.0")
    orders.limit("alice", SELL, "1", "100.5")
    result = orders.limit("bob", BUY, "3", "100.2", time_in_force=TimeInForce.IOC)
    assert fills(result) == [(1, D("100.0"), D("1"))]
    assert result.cancellations == (Cancellation(3, "bob", D("2"), CancelReason.IOC_REMAINDER),)
    assert result.order.status is OrderStatus.CANCELLED
    assert book.best_bid() is None and book.best_ask() == D("100.5")


@pytest.mark.parametrize(
    ("quantity", "filled"),
    [("2.5", False), ("2", True)],
    ids=["not-enough-kills", "enough-fills"],
)
def test_fill_or_kill_is_all_or_nothing(book: OrderBook, orders, quantity: str, filled: bool) -> None:
    orders.limit("alice", SELL, "1", "100.0")
    orders.limit("alice", SELL, "1", "100.1")
    orders.limit("alice", SELL, "5", "100.2")  # beyond the limit: does not count
    before = book.snapshot()
    result = orders.limit("bob", BUY, quantity, "100.1", time_in_force=TimeInForce.FOK)
    if filled:
        assert fills(result) == [(1, D("100.0"), D("1")), (2, D("100.1"), D("1"))]
        assert result.order.status is OrderStatus.FILLED
    else:
        assert result.fills == ()
        assert result.cancellations == (Cancellation(4, "bob", D("2.5"), CancelReason.FOK_UNFILLABLE),)
        assert book.snapshot() == before


def test_market_fill_or_kill_counts_the_whole_side(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "1", "100.0")
    orders.limit("alice", SELL, "1", "120.0")
    assert orders.market("bob", BUY, "2.001", time_in_force=TimeInForce.FOK).fills == ()
    assert len(orders.market("bob", BUY, "2", time_in_force=TimeInForce.FOK).fills) == 2


def test_post_only_rests_or_is_cancelled_instead_of_crossing(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "1", "100.0")
    before = book.snapshot()
    crossing = orders.limit("bob", BUY, "1", "100.0", time_in_force=TimeInForce.POST_ONLY)
    assert crossing.fills == ()
    assert crossing.cancellations[0].reason is CancelReason.POST_ONLY_WOULD_CROSS
    assert crossing.order.status is OrderStatus.CANCELLED
    assert book.snapshot() == before
    passive = orders.limit("bob", BUY, "1", "99.9", time_in_force=TimeInForce.POST_ONLY)
    assert passive.events == () and passive.order.status is OrderStatus.OPEN
    assert book.best_bid() == D("99.9")


def test_market_order_walks_the_book_and_cancels_what_is_left(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "1", "100.0")
    orders.limit("bob", BUY, "2", "99.0")
    result = orders.market("carol", SELL, "5")
    assert fills(result) == [(1, D("100.0"), D("1")), (2, D("99.0"), D("2"))]
    assert result.cancellations[0].quantity == D("2")
    assert result.cancellations[0].reason is CancelReason.IOC_REMAINDER
    assert book.best_bid() is None
    empty = orders.market("carol", SELL, "1")
    assert empty.fills == () and empty.order.status is OrderStatus.CANCELLED


STP = CancelReason.SELF_TRADE_PREVENTION
IOC_REST = CancelReason.IOC_REMAINDER


@pytest.mark.parametrize(
    ("mode", "expected_fills", "expected_cancels", "alice_left"),
    [
        # alice rests id 1, bob rests id 2 behind it; alice's own IOC buy (id 3) arrives
        (SelfTradePrevention.NONE, [(1, D("100.0"), D("1")), (2, D("100.0"), D("1"))], [], False),
        (SelfTradePrevention.CANCEL_TAKER, [], [(3, D("2"), STP)], True),
        (
            SelfTradePrevention.CANCEL_MAKER,
            [(2, D("100.0"), D("1"))],
            [(1, D("1"), STP), (3, D("1"), IOC_REST)],
            False,
        ),
        (SelfTradePrevention.CANCEL_BOTH, [], [(1, D("1"), STP), (3, D("2"), STP)], False),
    ],
)
def test_self_trade_prevention_modes(
    book: OrderBook, orders, mode, expected_fills, expected_cancels, alice_left
) -> None:
    orders.limit("alice", SELL, "1", "100.0")
    orders.limit("bob", SELL, "1", "100.0")
    result = orders.limit(
        "alice", BUY, "2", "100.0", time_in_force=TimeInForce.IOC, self_trade_prevention=mode
    )
    assert fills(result) == expected_fills
    assert [(c.order_id, c.quantity, c.reason) for c in result.cancellations] == expected_cancels
    assert (1 in book) is alice_left


def test_self_trade_prevention_keeps_the_fills_before_the_own_order(book: OrderBook, orders) -> None:
    orders.limit("bob", SELL, "1", "100.0")
    orders.limit("alice", SELL, "1", "100.1")
    orders.limit("bob", SELL, "1", "100.2")
    result = orders.limit("alice", BUY, "3", "100.2", self_trade_prevention=SelfTradePrevention.CANCEL_TAKER)
    assert fills(result) == [(1, D("100.0"), D("1"))]
    assert result.cancellations == (Cancellation(4, "alice", D("2"), CancelReason.SELF_TRADE_PREVENTION),)
    assert book.best_bid() is None and book.best_ask() == D("100.1")


@pytest.mark.parametrize(
    ("mode", "fills_ok"),
    [(SelfTradePrevention.CANCEL_MAKER, True), (SelfTradePrevention.CANCEL_TAKER, False)],
)
def test_fill_or_kill_counts_liquidity_as_self_trade_prevention_would(
    book: OrderBook, orders, mode, fills_ok
) -> None:
    orders.limit("alice", SELL, "1", "100.0")  # own order first in the queue
    orders.limit("bob", SELL, "2", "100.0")
    before = book.snapshot()
    result = orders.limit(
        "alice", BUY, "2", "100.0", time_in_force=TimeInForce.FOK, self_trade_prevention=mode
    )
    if fills_ok:  # the own order would be cancelled, bob's 2 suffice
        assert fills(result) == [(2, D("100.0"), D("2"))]
        assert result.cancellations[0] == Cancellation(1, "alice", D("1"), CancelReason.SELF_TRADE_PREVENTION)
    else:  # matching would stop at the own order: nothing fillable, nothing touched
        assert result.fills == () and result.cancellations[0].reason is CancelReason.FOK_UNFILLABLE
        assert book.snapshot() == before


def test_cancel(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "1", "100.0")
    result = book.cancel(1)
    assert result.cancellations == (Cancellation(1, "alice", D("1"), CancelReason.USER),)
    assert result.order.status is OrderStatus.CANCELLED
    assert book.best_bid() is None and 1 not in book
    with pytest.raises(ValidationError) as refused:
        book.cancel(1)
    assert refused.value.field == "order_id"


def _queue_at(book: OrderBook, side: Side) -> list[int]:
    return [row["order_id"] for row in book.snapshot()["bids" if side is BUY else "asks"]]


def test_amend_down_keeps_priority(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "2", "100.0")
    orders.limit("bob", BUY, "1", "100.0")
    result = book.amend(1, quantity="1.5")
    assert result.events == () and result.order.open_quantity == D("1.5")
    assert _queue_at(book, BUY) == [1, 2]
    assert fills(orders.market("carol", SELL, "1")) == [(1, D("100.0"), D("1"))]


def test_amend_up_or_to_a_new_price_loses_priority(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "1", "100.0")
    orders.limit("bob", BUY, "1", "100.0")
    orders.limit("carol", BUY, "1", "100.0")
    book.amend(1, quantity="2")
    assert _queue_at(book, BUY) == [2, 3, 1]
    book.amend(2, price="99.9")
    book.amend(2, price="100.0")  # back at the old price: behind the others
    assert _queue_at(book, BUY) == [3, 1, 2]
    same = book.amend(3, price="100.0", quantity="1")  # nothing changes
    assert same.events == () and _queue_at(book, BUY) == [3, 1, 2]


def test_an_amend_that_crosses_trades_like_a_new_order(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "1", "100.0")
    orders.limit("bob", BUY, "3", "99.0")
    result = book.amend(2, price="100.5")
    assert fills(result) == [(1, D("100.0"), D("1"))]
    assert result.fills[0].taker_order_id == 2
    assert (result.order.open_quantity, result.order.price) == (D("2"), D("100.5"))
    assert book.best_bid() == D("100.5")


def test_a_post_only_amend_that_would_cross_is_cancelled(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "1", "100.0")
    orders.limit("bob", BUY, "1", "99.0", time_in_force=TimeInForce.POST_ONLY)
    result = book.amend(2, price="100.0")
    assert result.fills == () and result.cancellations[0].reason is CancelReason.POST_ONLY_WOULD_CROSS
    assert 2 not in book and book.best_ask() == D("100.0")


def test_depth_aggregates_levels_best_first(book: OrderBook, orders) -> None:
    orders.limit("a", BUY, "1", "100.0")
    orders.limit("b", BUY, "0.5", "100.0")
    orders.limit("c", BUY, "2", "99.5")
    orders.limit("d", BUY, "1", "98.0")
    orders.limit("e", SELL, "3", "101.0")
    depth = book.depth(2)
    assert [(lv.price, lv.quantity, lv.orders) for lv in depth.bids] == [
        (D("100.0"), D("1.5"), 2),
        (D("99.5"), D("2"), 1),
    ]
    assert [(lv.price, lv.quantity) for lv in depth.asks] == [(D("101.0"), D("3"))]
    assert len(book.depth(None).bids) == 3


def test_open_orders_get_order_and_cancel_all(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "1", "100.0")
    orders.limit("bob", BUY, "1", "99.0")
    orders.limit("alice", SELL, "2", "101.0", reduce_only=True)
    mine = book.open_orders("alice")
    assert [(o.order_id, o.side, o.price, o.reduce_only) for o in mine] == [
        (1, BUY, D("100.0"), False),
        (3, SELL, D("101.0"), True),
    ]
    assert book.get_order(2).account_id == "bob" and book.get_order(99) is None
    result = book.cancel_all("alice")
    assert [(c.order_id, c.reason) for c in result.cancellations] == [
        (1, CancelReason.USER),
        (3, CancelReason.USER),
    ]
    assert book.open_orders("alice") == () and len(book.open_orders("bob")) == 1


def test_max_quantity_caps_a_reduce_only_order(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "5", "100.0")
    request = OrderRequest(2, "bob", SELL, "3", price="100.0", reduce_only=True)
    result = book.submit(request, max_quantity="1.2")
    assert fills(result) == [(1, D("100.0"), D("1.2"))]
    assert result.order.filled_quantity == D("1.2") and result.order.reduce_only


def test_impact_price_walks_the_book_exactly(book: OrderBook, orders) -> None:
    orders.limit("a", SELL, "1", "100.0")
    orders.limit("b", SELL, "2", "101.0")
    # 150 of notional: 100 at 100.0 (1 unit), then 50 at 101.0 (50/101 units) → 150 / (1 + 50/101)
    assert book.impact_price(SELL, "150") == fraction_to_decimal(Fraction(15150, 151))
    assert book.impact_price(SELL, "100.0") == D("100")
    assert book.impact_price(SELL, "302") == fraction_to_decimal(Fraction(302, 3))  # exactly the whole side
    assert book.impact_price(SELL, "302.1") is None  # deeper than the book
    assert book.impact_price(BUY, "1") is None


def test_impact_price_on_a_real_bid_side(real_bids_book: OrderBook, real_bids) -> None:
    """A 200,000 USDT sell walks seven real levels (20377.0 down to 20376.4, the last in part)."""
    notional = Fraction(200_000)
    spent, units = Fraction(0), Fraction(0)
    for price, quantity in map(lambda level: (Fraction(level[0]), Fraction(level[1])), real_bids):
        if spent + price * quantity >= notional:
            units += (notional - spent) / price
            break
        spent += price * quantity
        units += quantity
    impact = real_bids_book.impact_price(BUY, "200000")
    assert impact == fraction_to_decimal(notional / units)
    assert D("20376.4") < impact < D("20377.0")
    assert real_bids_book.impact_price(SELL, "200000") is None  # no asks in this snapshot


def test_snapshot_and_pickle_round_trip(book: OrderBook, orders) -> None:
    orders.limit("alice", BUY, "1", "100.0")
    orders.limit("bob", SELL, "1", "100.5")
    copy = pickle.loads(pickle.dumps(book))
    assert copy.snapshot() == book.snapshot()
    assert fills(copy.submit(OrderRequest(3, "carol", BUY, "1", price="100.5"))) == [(2, D("100.5"), D("1"))]
    assert book.best_ask() == D("100.5")  # the original is untouched


def test_fills_are_exact_decimals(book: OrderBook, orders) -> None:
    orders.limit("alice", SELL, "0.001", "20377.1")
    fill = orders.market("bob", BUY, "0.001").fills[0]
    assert fill == Fill(1, 2, 1, "bob", "alice", D("20377.1"), D("0.001"), BUY)
    assert isinstance(fill.price, Decimal) and isinstance(fill.quantity, Decimal)
