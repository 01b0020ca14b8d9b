"""Bad input is refused with the field named, and the book is left exactly as it was (SPEC §4.6)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from perprisk.book import FastOrderBook, OrderBook, OrderRequest, OrderType, Side
from perprisk.errors import ValidationError

BUY, SELL = Side.BUY, Side.SELL


def limit(**fields: object) -> OrderRequest:
    """Bob's buy of 1 at 99.0 (id 10), with ``fields`` replaced."""
    base: dict[str, object] = {"order_id": 10, "account_id": "bob", "side": BUY, "quantity": "1"}
    return OrderRequest(**{**base, "price": "99.0", **fields})  # type: ignore[arg-type]


@pytest.fixture
def busy_book(book: OrderBook, orders) -> OrderBook:
    """A book with something on both sides and a pending stop, so that a partial change would show."""
    orders.limit("alice", BUY, "1", "99.5")
    orders.limit("alice", SELL, "1", "100.5")
    orders.limit("carol", SELL, "2", "101.0")
    book.update_mark_price("100.0")
    book.submit(OrderRequest(4, "alice", SELL, "1", order_type=OrderType.STOP_MARKET, trigger_price="95.0"))
    return book


STOP: dict[str, object] = {"order_type": OrderType.STOP_MARKET, "price": None}
TRAIL: dict[str, object] = {"order_type": OrderType.TRAILING_STOP_MARKET, "price": None}

BAD_REQUESTS = [
    # (case, request fields, max_quantity, field named)
    ("float price", {"price": 99.0}, None, "price"),
    ("price off tick", {"price": "99.05"}, None, "price"),
    ("zero price", {"price": "0"}, None, "price"),
    ("negative price", {"price": "-1"}, None, "price"),
    ("NaN price", {"price": "NaN"}, None, "price"),
    ("infinite price", {"price": "Infinity"}, None, "price"),
    ("text price", {"price": "ninety"}, None, "price"),
    ("limit without price", {"price": None}, None, "price"),
    ("market with price", {"order_type": OrderType.MARKET}, None, "price"),
    ("quantity off lot", {"quantity": "0.0005"}, None, "quantity"),
    ("zero quantity", {"quantity": "0"}, None, "quantity"),
    ("negative quantity", {"quantity": "-1"}, None, "quantity"),
    ("float quantity", {"quantity": 0.1}, None, "quantity"),
    ("boolean quantity", {"quantity": True}, None, "quantity"),
    ("duplicate open id", {"order_id": 1}, None, "order_id"),
    ("duplicate pending stop id", {"order_id": 4}, None, "order_id"),
    ("negative id", {"order_id": -1}, None, "order_id"),
    ("text id", {"order_id": "10"}, None, "order_id"),
    ("empty account", {"account_id": ""}, None, "account_id"),
    ("unknown side", {"side": "long"}, None, "side"),
    ("unknown type", {"order_type": "iceberg"}, None, "order_type"),
    ("unknown time in force", {"time_in_force": "day"}, None, "time_in_force"),
    ("market that would rest", {"order_type": OrderType.MARKET, "price": None, "time_in_force": "gtc"}, None,
     "time_in_force"),
    ("unknown self-trade mode", {"self_trade_prevention": "maybe"}, None, "self_trade_prevention"),
    ("reduce_only not a bool", {"reduce_only": "yes"}, None, "reduce_only"),
    ("trigger on a limit", {"trigger_price": "90.0"}, None, "trigger_price"),
    ("callback on a limit", {"callback_rate": "0.01"}, None, "callback_rate"),
    ("cap of zero", {}, "0", "max_quantity"),
    ("cap off lot", {}, "0.0001", "max_quantity"),
    ("negative cap", {}, "-1", "max_quantity"),
    ("stop without trigger", STOP, None, "trigger_price"),
    ("stop trigger off tick", {**STOP, "trigger_price": "90.01"}, None, "trigger_price"),
    # a buy stop below the mark (100.0) would trigger immediately
    ("stop that fires at once", {**STOP, "trigger_price": "99.0"}, None, "trigger_price"),
    ("stop-limit without price", {**STOP, "order_type": OrderType.STOP_LIMIT, "trigger_price": "101.0"}, None,
     "price"),
    ("unknown trigger reference", {**STOP, "trigger_price": "101.0", "trigger_reference": "index"}, None,
     "trigger_reference"),
    ("trailing without callback", TRAIL, None, "callback_distance"),
    ("trailing with both callbacks", {**TRAIL, "callback_distance": "1.0", "callback_rate": "0.01"}, None,
     "callback_distance"),
    ("trailing rate of 100 %", {**TRAIL, "callback_rate": "1"}, None, "callback_rate"),
    ("trailing distance off tick", {**TRAIL, "callback_distance": "0.05"}, None, "callback_distance"),
    ("trailing with a trigger", {**TRAIL, "callback_rate": "0.01", "trigger_price": "101.0"}, None,
     "trigger_price"),
    ("activation off tick", {**TRAIL, "callback_rate": "0.01", "activation_price": "101.01"}, None,
     "activation_price"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "fields", "max_quantity", "field"), BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_orders_are_refused_and_change_nothing(
    busy_book: OrderBook, case, fields, max_quantity, field
) -> None:
    before = busy_book.snapshot()
    with pytest.raises(ValidationError) as refused:
        busy_book.submit(limit(**fields), max_quantity=max_quantity)
    assert refused.value.field == field, refused.value
    assert busy_book.snapshot() == before


BAD_AMENDS = [
    ("unknown order", 99, {"price": "99.0"}, "order_id"),
    ("pending stop", 4, {"price": "99.0"}, "order_id"),
    ("nothing to change", 1, {}, "price"),
    ("price off tick", 1, {"price": "99.55"}, "price"),
    ("zero quantity", 1, {"quantity": "0"}, "quantity"),
    ("quantity off lot", 1, {"quantity": "0.0001"}, "quantity"),
    ("float price", 1, {"price": 99.0}, "price"),
]


@pytest.mark.parametrize(("case", "order_id", "changes", "field"), BAD_AMENDS, ids=[c[0] for c in BAD_AMENDS])
def test_bad_amends_are_refused_and_change_nothing(
    busy_book: OrderBook, case, order_id, changes, field
) -> None:
    before = busy_book.snapshot()
    with pytest.raises(ValidationError) as refused:
        busy_book.amend(order_id, **changes)
    assert refused.value.field == field
    assert busy_book.snapshot() == before


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: b.cancel(99), "order_id"),
        (lambda b: b.update_mark_price("-1"), "price"),
        (lambda b: b.update_mark_price(100.0), "price"),
        (lambda b: b.depth(0), "levels"),
        (lambda b: b.impact_price(Side.BUY, "0"), "notional"),
        (lambda b: b.impact_price("middle", "10"), "side"),
        (lambda b: b.submit({"order_id": 1}), "request"),
    ],
    ids=["unknown", "negative mark", "float mark", "zero levels", "zero notional", "bad side", "no request"],
)
def test_other_bad_calls_are_refused_and_change_nothing(busy_book: OrderBook, call, field) -> None:
    before = busy_book.snapshot()
    with pytest.raises(ValidationError) as refused:
        call(busy_book)
    assert refused.value.field == field
    assert busy_book.snapshot() == before


def test_the_ticks_level_api_refuses_a_duplicate_id(book: OrderBook) -> None:
    book.submit_ticks(1, "alice", BUY, 1000, 5)
    before = book.snapshot()
    with pytest.raises(ValidationError) as refused:
        book.submit_ticks(1, "bob", SELL, 900, 5)
    assert refused.value.field == "order_id"
    assert book.snapshot() == before


@pytest.mark.parametrize(
    ("args", "field"),
    [(("", "0.1", "0.001"), "symbol"), (("X", "0", "0.001"), "tick_size"), (("X", "0.1", "-1"), "lot_size")],
)
def test_a_book_needs_a_symbol_and_a_positive_grid(args, field) -> None:
    with pytest.raises(ValidationError) as refused:
        FastOrderBook(*args)
    assert refused.value.field == field


def test_a_huge_price_is_refused_not_rounded(book: OrderBook) -> None:
    with pytest.raises(ValidationError) as refused:
        book.submit(limit(price=Decimal("1" + "0" * 70 + ".1")))  # beyond 60 significant digits
    assert refused.value.field == "price"
