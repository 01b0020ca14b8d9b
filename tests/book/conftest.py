"""Fixtures of the order-book suite: every test taking ``book`` runs against both implementations."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from perprisk.book import FastOrderBook, NaiveOrderBook, OrderBook, OrderRequest, OrderType, Side

TICK = Decimal("0.1")
LOT = Decimal("0.001")
DEPTH_SNAPSHOT = Path(__file__).resolve().parents[2] / "data" / "orderbook" / "btcusdt-depth-snap.csv"


@pytest.fixture(params=[NaiveOrderBook, FastOrderBook], ids=["naive", "fast"])
def book_class(request: pytest.FixtureRequest) -> type[OrderBook]:
    return request.param


@pytest.fixture
def book(book_class: type[OrderBook]) -> OrderBook:
    """An empty BTCUSDT book: tick 0.1, lot 0.001 (Binance USDⓈ-M BTCUSDT)."""
    return book_class("BTCUSDT", TICK, LOT)


class Orders:
    """Shorthand for submitting orders with fresh ids: ``orders.limit("alice", Side.BUY, "1", "100.0")``."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.next_id = 1

    def request(self, account: str, side: Side, quantity: str, **fields: object) -> OrderRequest:
        order_id = self.next_id
        self.next_id += 1
        return OrderRequest(order_id, account, side, quantity, **fields)  # type: ignore[arg-type]

    def limit(self, account: str, side: Side, quantity: str, price: str, **fields: object):
        return self.book.submit(self.request(account, side, quantity, price=price, **fields))

    def market(self, account: str, side: Side, quantity: str, **fields: object):
        return self.book.submit(self.request(account, side, quantity, order_type=OrderType.MARKET, **fields))


@pytest.fixture
def orders(book: OrderBook) -> Orders:
    return Orders(book)


@pytest.fixture(scope="session")
def real_bids() -> list[tuple[Decimal, Decimal]]:
    """Binance BTCUSDT bids of 2022-11-01 23:49 UTC, 100 levels best first (data/orderbook, see MANIFEST)."""
    with DEPTH_SNAPSHOT.open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["side"] == "b"]
    return [(Decimal(row["price"]), Decimal(row["qty"])) for row in rows]


@pytest.fixture
def real_bids_book(book: OrderBook, real_bids: list[tuple[Decimal, Decimal]]) -> OrderBook:
    """``book`` holding the real bid side, one order per level, accounts ``maker-0`` … ``maker-99``."""
    for i, (price, quantity) in enumerate(real_bids):
        book.submit(OrderRequest(10_000 + i, f"maker-{i}", Side.BUY, quantity, price=price))
    return book
