"""The WebSocket hub: routes the writer's committed events to subscribed connections.

Public channels: ``mark``, ``book``, ``trades``, ``liquidations``, ``insurance``, ``funding``.  Private channels
(after ``{"op": "auth", "api_key": ...}`` or an ``X-API-Key`` header on the upgrade): ``orders``,
``positions``, ``account``, ``alerts``.

Client → server::

    {"op": "auth", "api_key": "prk_..."}
    {"op": "subscribe", "channels": ["mark", "positions"]}
    {"op": "unsubscribe", "channels": ["book"]}
    {"op": "ping"}

Server → client: ``{"type": "auth", "account_id": 7}``, ``{"type": "subscribed", "channels": [...]}``,
``{"type": "error", "code": 401|404|422|429, "message": ...}``, ``{"type": "pong"}`` and channel messages
``{"channel": "mark", "symbol": "BTCUSDT", "data": {...}}``.  Subscribing sends the channel's current state
first (``"snapshot": true``).  Book and position messages are full views, sent at most every 100 ms / 250 ms
while something changed.  A connection that cannot keep up (its queue overflows) is closed with code 1013.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from perprisk import events as ev
from perprisk.server import views
from perprisk.server.auth import RateLimiter
from perprisk.server.config import RateLimit
from perprisk.server.service import LIQUIDATION_EVENTS, EngineService, Published

log = logging.getLogger("perprisk.server.ws")

PUBLIC_CHANNELS = ("mark", "book", "trades", "liquidations", "insurance", "funding")
PRIVATE_CHANNELS = ("orders", "positions", "account", "alerts")
CHANNELS = PUBLIC_CHANNELS + PRIVATE_CHANNELS
BOOK_EVERY = 0.1
POSITIONS_EVERY = 0.25
ACCOUNT_EVENTS = (ev.PositionChanged, ev.MarginMoved, ev.FundingPaid, ev.BalanceChanged, ev.SettingChanged,
                  ev.AdlExecuted, ev.LiquidationStep, ev.DebtRecorded, ev.LossSocialized, ev.OrderAccepted,
                  ev.OrderCancelled)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


class Connection:
    def __init__(self, websocket: Any, queue_size: int) -> None:
        self.websocket = websocket
        self.account_id: int | None = None
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=queue_size)
        self.closed = False
        self.close_code = 1000
        self.close_reason = ""
        self.limiter = RateLimiter(RateLimit(20.0, 40))

    def send(self, message: dict[str, Any] | str) -> None:
        if self.closed:
            return
        text = message if isinstance(message, str) else dumps(message)
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("dropping a slow WebSocket client (account %s)", self.account_id)
            self.close(1013, "too slow: messages dropped")

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Stop sending: drop what is queued and let the sender close the socket."""
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        while True:
            try:
                self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
        self.queue.put_nowait(None)

    async def sender(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                if text is None:
                    break
                await self.websocket.send_text(text)
        except Exception:
            pass
        finally:
            if self.closed:
                try:
                    await self.websocket.close(code=self.close_code, reason=self.close_reason)
                except Exception:
                    pass


class Hub:
    def __init__(self, service: EngineService) -> None:
        self.service = service
        self.connections: set[Connection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.dirty_books: set[str] = set()
        self.dirty_accounts: set[int] = set()
        self.all_accounts_dirty = False
        self._task: asyncio.Task | None = None
        service.listeners.append(self._from_writer)

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._task = self.loop.create_task(self._flusher())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for conn in list(self.connections):
            conn.close(1001, "server shutting down")

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)

    def remove(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def subscribers(self, channel: str) -> list[Connection]:
        return [c for c in self.connections if channel in c.channels and not c.closed]

    # ------------------------------------------------------------------------------------ routing

    def _from_writer(self, published: Published) -> None:
        """Called in the writer thread after a commit: hand over to the event loop."""
        loop = self.loop
        if loop is None or not self.connections:
            return
        try:
            loop.call_soon_threadsafe(self._on_batch, published)
        except RuntimeError:
            pass

    def _on_batch(self, published: Published) -> None:
        private: dict[int, list[dict[str, Any]]] = {}
        public: list[tuple[str, dict[str, Any], int | None]] = []
        for _command, events in published.events:
            for event in events:
                kind = type(event)
                if kind is ev.MarkPriceUpdated:
                    public.append(("mark", {"channel": "mark", "symbol": event.symbol, "data": views.event_view(event)},
                                   None))
                    self.all_accounts_dirty = True
                elif kind is ev.Trade:
                    public.append(("trades", {"channel": "trades", "symbol": event.symbol,
                                              "data": views.event_view(event, public=True)}, None))
                    self.dirty_books.add(event.symbol)
                    for account_id, order_id, fee, liquidity in (
                        (event.taker_account_id, event.taker_order_id, event.taker_fee, "taker"),
                        (event.maker_account_id, event.maker_order_id, event.maker_fee, "maker"),
                    ):
                        side = event.taker_side if liquidity == "taker" else ("sell" if event.taker_side == "buy" else "buy")
                        private.setdefault(account_id, []).append({
                            "channel": "orders", "symbol": event.symbol,
                            "data": {"event": "Fill", "order_id": order_id, "side": side, "price": views.num(event.price),
                                     "quantity": views.num(event.quantity), "fee": views.num(fee),
                                     "liquidity": liquidity, "trade_sequence": event.sequence},
                        })
                        self.dirty_accounts.add(account_id)
                elif kind in (ev.OrderAccepted, ev.OrderCancelled, ev.OrderTriggered):
                    private.setdefault(event.account_id, []).append(
                        {"channel": "orders", "symbol": event.symbol, "data": views.event_view(event)})
                    self.dirty_books.add(event.symbol)
                    self.dirty_accounts.add(event.account_id)
                elif kind in LIQUIDATION_EVENTS:
                    owner = getattr(event, "account_id", None)
                    if kind is ev.Disposal:
                        owner = event.liquidated_account_id
                        self.dirty_books.add(event.symbol)
                    public.append(("liquidations", {"channel": "liquidations", "symbol": getattr(event, "symbol", None),
                                                    "data": views.event_view(event, public=True)}, owner))
                    if owner is not None:
                        self.dirty_accounts.add(owner)
                elif kind is ev.Alert:
                    private.setdefault(event.account_id, []).append(
                        {"channel": "alerts", "symbol": event.symbol, "data": views.event_view(event)})
                elif kind is ev.FundingSettled:
                    public.append(("funding", {"channel": "funding", "symbol": event.symbol,
                                               "data": views.event_view(event)}, None))
                    self.all_accounts_dirty = True
                if kind in ACCOUNT_EVENTS and getattr(event, "account_id", None) is not None:
                    self.dirty_accounts.add(event.account_id)
        for record in published.insurance:
            public.append(("insurance", {"channel": "insurance", "data": views.record_view(record)}, None))
        if not public and not private:
            return
        for conn in list(self.connections):
            if conn.closed:
                continue
            for channel, message, owner in public:
                if channel in conn.channels:
                    if owner is not None and owner == conn.account_id:
                        conn.send({**message, "own": True})
                    else:
                        conn.send(message)
            if conn.account_id is not None and "orders" in conn.channels:
                for message in private.get(conn.account_id, ()):
                    if message["channel"] == "orders":
                        conn.send(message)
            if conn.account_id is not None and "alerts" in conn.channels:
                for message in private.get(conn.account_id, ()):
                    if message["channel"] == "alerts":
                        conn.send(message)

    # ------------------------------------------------------------------------------------ throttled views

    async def _flusher(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(BOOK_EVERY)
            ticks += 1
            try:
                await self._flush_books()
                if ticks % round(POSITIONS_EVERY / BOOK_EVERY) == 0:
                    await self._flush_accounts()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("WebSocket flush failed")

    async def _flush_books(self) -> None:
        if not self.dirty_books:
            return
        symbols, self.dirty_books = sorted(self.dirty_books), set()
        conns = self.subscribers("book")
        if not conns:
            return
        books = await asyncio.to_thread(self.service.read, lambda e: [views.book_view(e, s) for s in symbols])
        for book in books:
            text = dumps({"channel": "book", "symbol": book["symbol"], "data": book})
            for conn in conns:
                conn.send(text)

    async def _flush_accounts(self) -> None:
        wanted: dict[int, list[Connection]] = {}
        for conn in self.connections:
            if conn.account_id is not None and not conn.closed and conn.channels & {"positions", "account", "orders"}:
                wanted.setdefault(conn.account_id, []).append(conn)
        if self.all_accounts_dirty:
            accounts = set(wanted)
        else:
            accounts = self.dirty_accounts & set(wanted)
        self.all_accounts_dirty = False
        self.dirty_accounts = set()
        if not accounts:
            return
        snapshots = await asyncio.to_thread(self.service.read, lambda e: {a: private_state(self.service, e, a)
                                                                            for a in accounts})
        for account_id, state in snapshots.items():
            for conn in wanted[account_id]:
                if "positions" in conn.channels:
                    conn.send({"channel": "positions", "data": state["positions"]})
                if "account" in conn.channels:
                    conn.send({"channel": "account", "data": state["account"]})
                if "orders" in conn.channels:
                    conn.send({"channel": "orders", "data": {"event": "OpenOrders", "orders": state["orders"]}})

    # ------------------------------------------------------------------------------------ snapshots on subscribe

    async def snapshot_messages(self, conn: Connection, channels: list[str]) -> list[dict[str, Any]]:
        service = self.service

        def build(engine: Any) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for channel in channels:
                if channel == "mark":
                    for symbol in engine.markets:
                        data = views.mark_view(engine, symbol)
                        data["history"] = [[t, views.num(m), views.num(i)]
                                           for t, m, i in list(service.mark_history[symbol])[-500:]]
                        out.append({"channel": "mark", "symbol": symbol, "snapshot": True, "data": data})
                elif channel == "book":
                    for symbol in engine.markets:
                        out.append({"channel": "book", "symbol": symbol, "snapshot": True,
                                    "data": views.book_view(engine, symbol)})
                elif channel == "trades":
                    for symbol in engine.markets:
                        out.append({"channel": "trades", "symbol": symbol, "snapshot": True,
                                    "data": [views.event_view(t, public=True) for t in list(service.trades[symbol])[-50:]]})
                elif channel == "liquidations":
                    items = []
                    for event in list(service.liquidations)[-100:]:
                        item = views.event_view(event, public=True)
                        owner = event.liquidated_account_id if isinstance(event, ev.Disposal) else getattr(event, "account_id", None)
                        if owner is not None and owner == conn.account_id:
                            item["own"] = True
                        items.append(item)
                    out.append({"channel": "liquidations", "snapshot": True, "data": items})
                elif channel == "insurance":
                    out.append({"channel": "insurance", "snapshot": True, "data": views.insurance_view(engine, 500)})
                elif channel == "funding":
                    for symbol in engine.markets:
                        out.append({"channel": "funding", "symbol": symbol, "snapshot": True,
                                    "data": views.funding_view(engine, symbol, 50)})
                elif conn.account_id is not None:
                    state = private_state(service, engine, conn.account_id)
                    if channel == "positions":
                        out.append({"channel": "positions", "snapshot": True, "data": state["positions"]})
                    elif channel == "account":
                        out.append({"channel": "account", "snapshot": True, "data": state["account"]})
                    elif channel == "orders":
                        out.append({"channel": "orders", "snapshot": True,
                                    "data": {"event": "OpenOrders", "orders": state["orders"]}})
                    elif channel == "alerts":
                        out.append({"channel": "alerts", "snapshot": True,
                                    "data": [views.event_view(a) for a in service.alerts.get(conn.account_id, ())]})
            return out

        return await asyncio.to_thread(service.read, build)


def private_state(service: EngineService, engine: Any, account_id: int) -> dict[str, Any]:
    return {
        "positions": views.position_views(engine, account_id),
        "account": views.account_view(engine, account_id),
        "orders": [views.order_view(engine, m, service.order_info.get(m.order_id))
                   for _, m in sorted(engine.orders.items()) if m.account_id == account_id],
    }
