"""Property tests: random order streams give identical results on the naive and the fast book, and keep the
book's invariants (never crossed after an operation; filled + resting + cancelled = submitted, per order)."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from perprisk.book import (
    BookResult,
    FastOrderBook,
    NaiveOrderBook,
    OrderBook,
    OrderRequest,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TriggerReference,
)
from perprisk.errors import ValidationError

TICK = Decimal("0.5")
LOT = Decimal("0.1")
ACCOUNTS = ("a", "b", "c")

prices = st.integers(95, 105)  # ticks: a narrow band, so orders cross often
quantities = st.integers(1, 6)  # lots
accounts = st.sampled_from(ACCOUNTS)
sides = st.sampled_from(Side)
targets = st.integers(1, 45)  # order ids to cancel or amend: some unknown or gone

operations = st.one_of(
    st.tuples(
        st.just("limit"), accounts, sides, quantities, prices, st.sampled_from(TimeInForce),
        st.sampled_from(SelfTradePrevention), st.one_of(st.none(), quantities),
    ),
    st.tuples(
        st.just("market"), accounts, sides, quantities, st.sampled_from([TimeInForce.IOC, TimeInForce.FOK]),
        st.sampled_from(SelfTradePrevention),
    ),
    st.tuples(st.just("cancel"), targets),
    st.tuples(st.just("amend"), targets, st.one_of(st.none(), prices), st.one_of(st.none(), quantities)),
    st.tuples(
        st.just("stop"), accounts, sides, quantities, prices,
        st.sampled_from([OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.STOP_LIMIT]),
        st.sampled_from(TriggerReference), prices,
    ),
    st.tuples(
        st.just("trailing"), accounts, sides, quantities, st.integers(1, 4), st.sampled_from(TriggerReference)
    ),
    st.tuples(st.just("mark"), prices, st.booleans()),
)  # fmt: skip


def _request(order_id: int, op: tuple[Any, ...]) -> tuple[OrderRequest, Decimal | None, int]:
    """The request of a submitting operation, its max_quantity, and the lots it submits."""
    kind, account, side, lots = op[:4]
    quantity = lots * LOT
    if kind == "limit":
        _, _, _, _, price, tif, stp, cap = op
        request = OrderRequest(order_id, account, side, quantity, price=price * TICK, time_in_force=tif,
                               self_trade_prevention=stp)  # fmt: skip
        return request, None if cap is None else cap * LOT, lots if cap is None else min(lots, cap)
    if kind == "market":
        _, _, _, _, tif, stp = op
        request = OrderRequest(order_id, account, side, quantity, order_type=OrderType.MARKET,
                               time_in_force=tif, self_trade_prevention=stp)  # fmt: skip
        return request, None, lots
    if kind == "stop":
        _, _, _, _, trigger, order_type, reference, limit = op
        price = limit * TICK if order_type is OrderType.STOP_LIMIT else None
        request = OrderRequest(order_id, account, side, quantity, order_type=order_type, price=price,
                               trigger_price=trigger * TICK, trigger_reference=reference)  # fmt: skip
        return request, None, lots
    _, _, _, _, distance, reference = op
    request = OrderRequest(order_id, account, side, quantity, order_type=OrderType.TRAILING_STOP_MARKET,
                           callback_distance=distance * TICK, trigger_reference=reference)  # fmt: skip
    return request, None, lots


def _apply(book: OrderBook, order_id: int, op: tuple[Any, ...]) -> BookResult | str:
    """Run ``op`` on ``book``: its result, or the field named by the refusal."""
    try:
        if op[0] == "cancel":
            return book.cancel(op[1])
        if op[0] == "amend":
            _, target, price, lots = op
            return book.amend(
                target,
                price=None if price is None else price * TICK,
                quantity=None if lots is None else lots * LOT,
            )
        if op[0] == "mark":
            return book.update_mark_price(op[1] * TICK + (TICK / 2 if op[2] else 0))
        request, cap, _ = _request(order_id, op)
        return book.submit(request, max_quantity=cap)
    except ValidationError as refused:
        return refused.field


def _open_lots(book: OrderBook) -> Counter[int]:
    snapshot = book.snapshot()
    open_lots: Counter[int] = Counter()
    for row in snapshot["bids"] + snapshot["asks"]:
        open_lots[row["order_id"]] += int(Decimal(row["open_quantity"]) / LOT)
    for row in snapshot["conditional"]:
        open_lots[row["order_id"]] += int(Decimal(row["quantity"]) / LOT)
    return open_lots


@settings(max_examples=1000, deadline=None)
@given(st.lists(operations, min_size=1, max_size=50))
def test_both_books_agree_and_keep_their_invariants(ops: list[tuple[Any, ...]]) -> None:
    naive = NaiveOrderBook("TEST", TICK, LOT)
    fast = FastOrderBook("TEST", TICK, LOT)
    submitted: Counter[int] = Counter()
    filled: Counter[int] = Counter()
    cancelled: Counter[int] = Counter()
    for order_id, op in enumerate(ops, start=1):
        before = naive.get_order(op[1]) if op[0] == "amend" else None
        outcome = _apply(naive, order_id, op)
        assert _apply(fast, order_id, op) == outcome
        assert fast.snapshot() == naive.snapshot()

        bid, ask = fast.best_bid(), fast.best_ask()
        assert bid is None or ask is None or bid < ask, "crossed book"

        if isinstance(outcome, str):
            continue
        if op[0] in ("limit", "market", "stop", "trailing"):
            submitted[order_id] += _request(order_id, op)[2]
        elif op[0] == "amend" and op[3] is not None:
            assert before is not None
            submitted[op[1]] += op[3] - int(before.open_quantity / LOT)
        for fill in outcome.fills:
            filled[fill.taker_order_id] += int(fill.quantity / LOT)
            filled[fill.maker_order_id] += int(fill.quantity / LOT)
        for cancellation in outcome.cancellations:
            cancelled[cancellation.order_id] += int(cancellation.quantity / LOT)

        open_lots = _open_lots(fast)
        for order in submitted:
            assert submitted[order] == filled[order] + open_lots[order] + cancelled[order], f"order {order}"


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(200, 600))
def test_both_books_agree_on_long_ticks_level_streams(seed: int, length: int) -> None:
    """Longer seeded streams through the ticks-level API, with a deeper book than the Decimal test builds."""
    rng = random.Random(seed)
    naive = NaiveOrderBook("TEST", TICK, LOT)
    fast = FastOrderBook("TEST", TICK, LOT)
    for order_id in range(1, length + 1):
        roll = rng.random()
        account = rng.choice(ACCOUNTS)
        stp = rng.choice(list(SelfTradePrevention))
        if roll < 0.45:
            tif = rng.choice([TimeInForce.GTC] * 4 + list(TimeInForce))
            market = tif in (TimeInForce.IOC, TimeInForce.FOK) and rng.random() < 0.3
            price = None if market else rng.randint(80, 120)
            side = rng.choice(list(Side))
            op = ("submit_ticks", (order_id, account, side, price, rng.randint(1, 20), tif, stp))
        elif roll < 0.6:
            op = ("cancel_ticks", (rng.randint(1, order_id),))
        else:
            lots = rng.choice([None, rng.randint(1, 20)])
            op = ("amend_ticks", (rng.randint(max(1, order_id - 60), order_id), rng.randint(80, 120), lots))
        outcomes = []
        for book in (naive, fast):
            try:
                outcomes.append(getattr(book, op[0])(*op[1]))
            except ValidationError as refused:
                outcomes.append(refused.field)
        assert outcomes[0] == outcomes[1], op
    assert fast.snapshot() == naive.snapshot()
