"""The HTTP and WebSocket interface (FastAPI): parsing, authentication, rate limits and JSON views only —
every rule is the engine's, reached through the single writer (:mod:`perprisk.server.service`).

Status codes: 401 without or with a wrong key; 403 for another account's resource, 404 for one that does not
exist; 422 with ``{"detail": [{"field", "message"}]}`` for bad input (the engine's refusals included); 429 when
rate-limited (``Retry-After``); 503 when the server cannot take commands.  Client mistakes never give 500.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Optional

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    Header,
    Path,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from perprisk import commands as cmd
from perprisk import events as ev
from perprisk.errors import ValidationError
from perprisk.formulas import FAMILIES
from perprisk.ledger import LIQUIDATION_ENGINE_ID
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.server import schemas as s
from perprisk.server import views
from perprisk.server.auth import RateLimiter, admin_key_matches, new_key
from perprisk.server.config import ServerConfig
from perprisk.server.dashboard import DASHBOARD_HTML
from perprisk.server.feed import FundingClock, make_feed, stamp
from perprisk.server.hub import CHANNELS, PRIVATE_CHANNELS, Connection, Hub
from perprisk.server.service import EngineService, InternalError, ServiceUnavailable, now_ms

log = logging.getLogger("perprisk.server")

API_VERSION = "v1"


class HTTPError(Exception):
    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail
        self.headers = headers


def _field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "header")]
        message = str(err.get("msg", "invalid"))
        ctx = err.get("ctx") or {}
        if err.get("type") == "json_invalid" and ctx.get("error"):
            message = f"invalid JSON: {ctx['error']}"
            loc = ["body"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413 (a pure ASGI middleware: cheap per request)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    status = 413 if value.isdigit() else 400
                    detail = f"request body larger than {self.limit} bytes" if status == 413 else "bad Content-Length"
                    response = JSONResponse(status_code=status, content={"detail": detail})
                    return await response(scope, receive, send)
        total = 0

        async def limited() -> Any:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.limit:
                    raise HTTPError(413, f"request body larger than {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


def create_app(config: ServerConfig, service: EngineService | None = None) -> FastAPI:
    """The application; opens (and recovers) the database now, starts the writer and feeds on startup."""
    service = service or EngineService.open(config)
    hub = Hub(service)
    feed = make_feed(service)
    funding = FundingClock(service, config.funding_interval_seconds, config.funding_sample_seconds) \
        if config.funding_interval_seconds > 0 else None
    user_limiter = RateLimiter(config.user_rate)
    public_limiter = RateLimiter(config.public_rate)
    if not config.admin_key:
        log.warning("no admin key (set PERPRISK_ADMIN_KEY): the admin API refuses every request")
    elif len(config.admin_key) < 16:
        log.warning("the admin key is shorter than 16 characters")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        hub.start()
        if config.insurance_seed is not None and service.engine.sequence == 0:
            await service.submit(cmd.DepositInsuranceFund("USDT", config.insurance_seed))
        feed.launch()
        if funding is not None:
            funding.launch()
        log.info("perprisk serving %s (feed: %s)", service.store.description, feed.kind)
        try:
            yield
        finally:
            await feed.stop()
            if funding is not None:
                await funding.stop()
            await hub.stop()
            await asyncio.to_thread(service.stop)

    app = FastAPI(
        title="perprisk paper exchange",
        version=API_VERSION,
        description="Exact clearing and risk engine for crypto perpetuals behind a REST + WebSocket API. "
        "Numbers are exact decimal strings; JSON numbers are read as exact decimals. "
        "Admin endpoints need `X-Admin-Key`, account endpoints `X-API-Key`.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.hub = hub
    app.state.feed = feed
    app.state.config = config

    # ------------------------------------------------------------------------------------ errors

    def error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError) -> JSONResponse:
        return error(exc.status, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, _field_errors(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def _engine_refused(request: Request, exc: ValidationError) -> JSONResponse:
        return error(422, [exc.to_dict()])

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
        return error(503, str(exc), headers)

    @app.exception_handler(InternalError)
    async def _internal(request: Request, exc: InternalError) -> JSONResponse:
        return error(500, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, "internal error")

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)

    # ------------------------------------------------------------------------------------ dependencies

    def client_address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def limit(limiter: RateLimiter, key: str) -> None:
        allowed, wait = limiter.allow(key)
        if not allowed:
            raise HTTPError(429, f"rate limit exceeded ({limiter.limit.rate:g} requests/s, burst "
                                 f"{limiter.limit.burst}): retry after {wait:.2f} s",
                            {"Retry-After": str(max(1, int(wait + 0.999)))})

    async def public(request: Request) -> None:
        limit(public_limiter, f"ip:{client_address(request)}")

    async def account(request: Request,
                      x_api_key: Optional[str] = Header(None, description="the account's API key")) -> int:
        account_id = service.keys.account_for(x_api_key)
        if account_id is None:
            limit(public_limiter, f"ip:{client_address(request)}")
            raise HTTPError(401, "missing API key (X-API-Key)" if not x_api_key else "invalid API key",
                            {"WWW-Authenticate": "X-API-Key"})
        limit(user_limiter, f"account:{account_id}")
        return account_id

    async def admin(request: Request,
                    x_admin_key: Optional[str] = Header(None, description="the admin key (PERPRISK_ADMIN_KEY)")) -> None:
        limit(public_limiter, f"ip:{client_address(request)}")
        if not config.admin_key:
            raise HTTPError(401, "the admin API is disabled: no admin key configured (PERPRISK_ADMIN_KEY)")
        if not admin_key_matches(config.admin_key, x_admin_key):
            raise HTTPError(401, "missing admin key (X-Admin-Key)" if not x_admin_key else "invalid admin key",
                            {"WWW-Authenticate": "X-Admin-Key"})

    def market_or_404(symbol: str) -> str:
        if symbol not in service.engine.markets:
            raise HTTPError(404, f"unknown market {symbol!r} (markets: {', '.join(sorted(service.engine.markets))})")
        return symbol

    def account_exists(account_id: int) -> bool:
        return account_id != LIQUIDATION_ENGINE_ID and account_id in service.engine.accounts

    async def read(fn: Any) -> Any:
        return await asyncio.to_thread(service.read, fn)

    admin_api = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin)], route_class=s.ExactJSONRoute)
    user_api = APIRouter(prefix="/v1", tags=["account"], route_class=s.ExactJSONRoute)
    public_api = APIRouter(prefix="/v1", tags=["public"], dependencies=[Depends(public)], route_class=s.ExactJSONRoute)

    # ------------------------------------------------------------------------------------ admin

    @admin_api.post("/accounts", status_code=201)
    async def create_account(body: Optional[s.CreateAccountBody] = Body(None)) -> dict[str, Any]:
        """Create an account and its first API key (shown once; stored hashed)."""
        mode = body.position_mode if body is not None else "one_way"

        def issue_key(engine: Any, command: Any, events: list) -> Any:
            account_id = next(e.account_id for e in events if isinstance(e, ev.AccountCreated))
            key, record = new_key(account_id, now_ms())
            service.store.insert_key(record)  # in the same transaction as the command
            return account_id, key, record

        job = await service.submit(cmd.CreateAccount(mode), issue_key)
        account_id, key, record = job.result
        service.keys.add(record)
        return {"account_id": account_id, "api_key": key, "position_mode": mode}

    @admin_api.post("/accounts/{account_id}/keys", status_code=201)
    async def add_key(account_id: int = Path(ge=1)) -> dict[str, Any]:
        """Issue another API key for an existing account."""
        if not await read(lambda e: account_exists(account_id)):
            raise HTTPError(404, f"no account {account_id}")
        key, record = new_key(account_id, now_ms())
        await asyncio.to_thread(service.write_extra, lambda store: store.insert_key(record))
        service.keys.add(record)
        return {"account_id": account_id, "api_key": key}

    async def money_command(body: s.DepositBody, make: Any) -> dict[str, Any]:
        if not await read(lambda e: account_exists(body.account_id)):
            raise HTTPError(404, f"no account {body.account_id}")
        await service.submit(make(body.account_id, body.asset, body.amount))
        balances = await read(lambda e: views.asset_balances(e, e.accounts[body.account_id]))
        return {"account_id": body.account_id, "asset": body.asset, "amount": views.num(body.amount),
                "balances": balances}

    @admin_api.post("/deposits")
    async def deposit(body: s.DepositBody) -> dict[str, Any]:
        """Credit an account (paper money)."""
        return await money_command(body, cmd.Deposit)

    @admin_api.post("/withdrawals")
    async def withdraw(body: s.WithdrawBody) -> dict[str, Any]:
        return await money_command(body, cmd.Withdraw)

    @admin_api.get("/state-hash")
    async def state_hash() -> dict[str, Any]:
        """The engine's state hash (equal to a replay of the journal) and its sequence."""
        return await read(lambda e: {"state_hash": e.state_hash(), "sequence": e.sequence})

    @admin_api.post("/mark")
    async def set_mark(body: s.MarkBody) -> dict[str, Any]:
        """Set a market's mark (and index) price now: runs the risk pass like a feed tick."""
        market_or_404(body.symbol)
        job = await service.submit(lambda e: cmd.SetMarkPrice(body.symbol, body.mark_price, stamp(e, body.symbol),
                                                              body.index_price))
        return {"mark": await read(lambda e: views.mark_view(e, body.symbol)),
                "events": [views.event_view(x) for x in job.events]}

    @admin_api.post("/insurance-fund")
    async def fund_deposit(body: s.InsuranceBody) -> dict[str, Any]:
        await service.submit(cmd.DepositInsuranceFund(body.asset, body.amount, body.symbol))
        return await read(lambda e: views.insurance_view(e, 10))

    @admin_api.post("/funding")
    async def settle_funding(body: s.FundingBody) -> dict[str, Any]:
        """Settle funding now, at ``rate`` or at the rate computed from the premium samples."""
        market_or_404(body.symbol)
        job = await service.submit(lambda e: cmd.SettleFunding(body.symbol, stamp(e, body.symbol), body.rate))
        settled = next((x for x in job.events if isinstance(x, ev.FundingSettled)), None)
        return {"symbol": body.symbol, "rate": views.num(settled.rate) if settled else None,
                "payments": settled.payments if settled else 0}

    @admin_api.post("/feed")
    async def control_feed(body: s.FeedBody) -> dict[str, Any]:
        if feed.kind == "none":
            raise HTTPError(409, "no price feed is configured (--feed none)")
        feed.start() if body.action == "start" else feed.pause()
        return feed.status()

    @admin_api.post("/snapshot")
    async def snapshot() -> dict[str, Any]:
        sequence = await asyncio.to_thread(service.snapshot_now)
        return {"sequence": sequence}

    @admin_api.get("/status")
    async def status() -> dict[str, Any]:
        return {
            "database": service.store.description, "sequence": service.engine.sequence,
            "commands_applied": service.commands_applied, "batches": service.batches,
            "queued": service.queue.qsize(), "failed": service.failed, "keys": len(service.keys),
            "websockets": len(hub.connections), "feed": feed.status(), "started_ms": service.started_ms,
        }

    # ------------------------------------------------------------------------------------ account

    def open_order_or_error(engine: Any, account_id: int, order_id: int) -> Any:
        meta = engine.orders.get(order_id)
        if meta is None:
            return HTTPError(404, f"no open order {order_id}")
        if meta.account_id != account_id:
            return HTTPError(403, f"order {order_id} belongs to another account")
        return meta

    @user_api.get("/account")
    async def get_account(account_id: int = Depends(account)) -> dict[str, Any]:
        """Balances per asset (cross wallet), wallet and available balance, margin ratio, settings."""
        return await read(lambda e: views.account_view(e, account_id))

    @user_api.get("/accounts/{requested}")
    async def get_account_by_id(requested: int, account_id: int = Depends(account)) -> dict[str, Any]:
        if requested != account_id:
            exists = await read(lambda e: account_exists(requested))
            raise HTTPError(403 if exists else 404,
                            f"account {requested} is not yours" if exists else f"no account {requested}")
        return await read(lambda e: views.account_view(e, account_id))

    @user_api.post("/orders", status_code=201)
    async def place_order(body: s.OrderBody, account_id: int = Depends(account)) -> dict[str, Any]:
        """Place an order (limit, market, stop, take-profit, trailing; the engine's full order model)."""
        market_or_404(body.symbol)
        command = cmd.PlaceOrder(account_id=account_id, **body.model_dump())
        job = await service.submit(command, order_result)
        return job.result

    @user_api.get("/orders")
    async def list_orders(symbol: Optional[str] = Query(None, max_length=32),
                          account_id: int = Depends(account)) -> list[dict[str, Any]]:
        """The account's open orders (conditional orders waiting for their trigger included)."""
        if symbol is not None:
            market_or_404(symbol)
        return await read(lambda e: [views.order_view(e, m, service.order_info.get(m.order_id))
                                     for _, m in sorted(e.orders.items())
                                     if m.account_id == account_id and (symbol is None or m.symbol == symbol)])

    @user_api.get("/orders/{order_id}")
    async def get_order(order_id: int, account_id: int = Depends(account)) -> dict[str, Any]:
        def view(engine: Any) -> Any:
            meta = open_order_or_error(engine, account_id, order_id)
            return meta if isinstance(meta, HTTPError) else views.order_view(engine, meta, service.order_info.get(order_id))
        result = await read(view)
        if isinstance(result, HTTPError):
            raise result
        return result

    @user_api.patch("/orders/{order_id}")
    async def amend_order(order_id: int, body: s.AmendBody, account_id: int = Depends(account)) -> dict[str, Any]:
        meta = await read(lambda e: open_order_or_error(e, account_id, order_id))
        if isinstance(meta, HTTPError):
            raise meta
        job = await service.submit(cmd.AmendOrder(account_id, meta.symbol, order_id, body.price, body.quantity))
        return {"order_id": order_id, "events": [views.event_view(x) for x in job.events
                                                 if getattr(x, "account_id", account_id) == account_id]}

    @user_api.delete("/orders/{order_id}")
    async def cancel_order(order_id: int, account_id: int = Depends(account)) -> dict[str, Any]:
        meta = await read(lambda e: open_order_or_error(e, account_id, order_id))
        if isinstance(meta, HTTPError):
            raise meta
        try:
            job = await service.submit(cmd.CancelOrder(account_id, meta.symbol, order_id))
        except ValidationError as err:
            if err.field == "order_id":  # filled or cancelled meanwhile
                raise HTTPError(404, f"no open order {order_id}") from None
            raise
        cancelled = next((x for x in job.events if isinstance(x, ev.OrderCancelled) and x.order_id == order_id), None)
        return {"order_id": order_id, "symbol": meta.symbol, "status": "cancelled",
                "cancelled_quantity": views.num(cancelled.quantity) if cancelled else None}

    @user_api.get("/positions")
    async def positions(account_id: int = Depends(account)) -> list[dict[str, Any]]:
        """Open positions with liquidation and bankruptcy price, distance %, margin ratio and ADL quintile."""
        return await read(lambda e: views.position_views(e, account_id))

    @user_api.post("/positions/{symbol}/margin")
    async def adjust_margin(symbol: str, body: s.MarginBody, account_id: int = Depends(account)) -> dict[str, Any]:
        """Add (amount > 0) or remove (amount < 0) margin of an isolated position."""
        market_or_404(symbol)
        await service.submit(cmd.AdjustIsolatedMargin(account_id, symbol, body.amount, body.position_side))
        return {"symbol": symbol, "positions": await read(lambda e: [p for p in views.position_views(e, account_id)
                                                                     if p["symbol"] == symbol])}

    async def setting(command: Any, account_id: int) -> dict[str, Any]:
        await service.submit(command)
        return await read(lambda e: views.account_view(e, account_id))

    @user_api.post("/leverage")
    async def set_leverage(body: s.LeverageBody, account_id: int = Depends(account)) -> dict[str, Any]:
        market_or_404(body.symbol)
        return await setting(cmd.SetLeverage(account_id, body.symbol, body.leverage), account_id)

    @user_api.post("/margin-mode")
    async def set_margin_mode(body: s.MarginModeBody, account_id: int = Depends(account)) -> dict[str, Any]:
        market_or_404(body.symbol)
        return await setting(cmd.SetMarginMode(account_id, body.symbol, body.margin_mode), account_id)

    @user_api.post("/position-mode")
    async def set_position_mode(body: s.PositionModeBody, account_id: int = Depends(account)) -> dict[str, Any]:
        return await setting(cmd.SetPositionMode(account_id, body.position_mode), account_id)

    @user_api.post("/auto-add-margin")
    async def set_auto_add(body: s.AutoAddBody, account_id: int = Depends(account)) -> dict[str, Any]:
        market_or_404(body.symbol)
        return await setting(cmd.SetAutoAddMargin(account_id, body.symbol, body.enabled), account_id)

    @user_api.get("/alerts")
    async def alerts(account_id: int = Depends(account)) -> dict[str, Any]:
        """The account's alert rules and the alerts fired since the server started."""
        def view(engine: Any) -> dict[str, Any]:
            book = getattr(engine, "alerts", None)
            rules = [] if book is None else [views.alert_rule_view(r) for _, r in sorted(book.rules.items())
                                            if r.account_id == account_id]
            fired = [views.event_view(a) for a in service.alerts.get(account_id, ())]
            return {"rules": rules, "alerts": fired}
        return await read(view)

    @user_api.post("/alerts", status_code=201)
    async def add_alert(body: s.AlertBody, account_id: int = Depends(account)) -> dict[str, Any]:
        """A margin-ratio (threshold %), price (level, above|below) or ADL-quintile (1–5) alert."""
        if not hasattr(cmd, "SetAlert"):
            raise HTTPError(501, "this engine has no alerts")
        market_or_404(body.symbol)

        def created(engine: Any, command: Any, events: list) -> dict[str, Any]:
            rule = max((r for r in engine.alerts.rules.values() if r.account_id == account_id),
                       key=lambda r: r.alert_id)
            return views.alert_rule_view(rule)

        job = await service.submit(cmd.SetAlert(account_id, body.kind, body.symbol, body.threshold, body.direction),
                                   created)
        return job.result

    @user_api.delete("/alerts/{alert_id}")
    async def remove_alert(alert_id: int, account_id: int = Depends(account)) -> dict[str, Any]:
        if not hasattr(cmd, "RemoveAlert"):
            raise HTTPError(501, "this engine has no alerts")

        def owner(engine: Any) -> int | None:
            rule = engine.alerts.rules.get(alert_id)
            return None if rule is None else rule.account_id

        found = await read(owner)
        if found is None:
            raise HTTPError(404, f"no alert {alert_id}")
        if found != account_id:
            raise HTTPError(403, f"alert {alert_id} belongs to another account")
        await service.submit(cmd.RemoveAlert(account_id, alert_id))
        return {"alert_id": alert_id, "status": "removed"}

    # ------------------------------------------------------------------------------------ public

    @public_api.get("/markets")
    async def markets() -> list[dict[str, Any]]:
        return await read(lambda e: [views.market_view(e, sym) for sym in e.markets])

    @public_api.get("/markets/{symbol}")
    async def market(symbol: str) -> dict[str, Any]:
        market_or_404(symbol)
        return await read(lambda e: views.market_view(e, symbol))

    @public_api.get("/markets/{symbol}/book")
    async def book(symbol: str, depth: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
        market_or_404(symbol)
        return await read(lambda e: views.book_view(e, symbol, depth))

    @public_api.get("/mark/{symbol}")
    async def mark(symbol: str, history: int = Query(0, ge=0, le=5000)) -> dict[str, Any]:
        """Mark, index and last price; ``history=N`` adds the last N marks seen since the server started."""
        market_or_404(symbol)

        def view(engine: Any) -> dict[str, Any]:
            data = views.mark_view(engine, symbol)
            if history:
                points = list(service.mark_history[symbol])[-history:]
                data["history"] = [[t, views.num(m), views.num(i)] for t, m, i in points]
            return data
        return await read(view)

    @public_api.get("/trades/{symbol}")
    async def trades(symbol: str, limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
        market_or_404(symbol)
        return await read(lambda e: [views.event_view(t, public=True) for t in list(service.trades[symbol])[-limit:]])

    @public_api.get("/insurance-fund")
    async def insurance_fund(limit: int = Query(500, ge=1, le=100_000)) -> dict[str, Any]:
        """The insurance fund's balance per asset and its history (every movement in and out)."""
        def view(engine: Any) -> dict[str, Any]:
            data = views.insurance_view(engine, limit)
            settle = engine.markets[next(iter(engine.markets))].instrument.settle
            data["balance"] = data["balances"].get(settle, "0")
            return data
        return await read(view)

    @public_api.get("/funding/{symbol}")
    async def funding_history(symbol: str, limit: int = Query(500, ge=1, le=100_000)) -> dict[str, Any]:
        market_or_404(symbol)
        return await read(lambda e: views.funding_view(e, symbol, limit))

    @public_api.get("/liquidations")
    async def liquidations(limit: int = Query(100, ge=1, le=500)) -> list[dict[str, Any]]:
        """Recent liquidation steps, disposals and ADL (accounts not named), since the server started."""
        return await read(lambda e: [views.event_view(x, public=True) for x in list(service.liquidations)[-limit:]])

    @public_api.get("/feed")
    async def feed_status() -> dict[str, Any]:
        return feed.status()

    @public_api.get("/calc/families")
    async def families() -> dict[str, Any]:
        return {"families": sorted(FAMILIES), "tiers_symbols": sorted(service.engine.markets)}

    @public_api.post("/calc/liquidation")
    async def calc_liquidation(request: Request) -> dict[str, Any]:
        """The calculator (``perprisk calc liquidation --json`` contract).  Tiers: give ``mmr`` (and
        ``maintenance_amount``) or ``tiers_symbol`` for the shipped Binance USDⓈ-M tiers."""
        from perprisk.tools.requests import liquidation_response, parse_liquidation_request, solve_liquidation

        doc = await json_body(request)
        check_magnitudes(doc)
        if isinstance(doc, dict) and isinstance(doc.get("positions"), list):
            doc = dict(doc)
            positions = []
            for i, p in enumerate(doc["positions"]):
                if isinstance(p, dict):
                    if "tiers_file" in p:
                        raise ValidationError(f"positions[{i}].tiers_file",
                                              "not accepted over HTTP: give tiers_symbol (shipped Binance tiers) or mmr")
                    if p.get("tiers_symbol") is not None:
                        p = {**p, "tiers_file": str(BINANCE_TIERS_FILE)}
                positions.append(p)
            doc["positions"] = positions
        query = parse_liquidation_request(doc)
        return liquidation_response(query, solve_liquidation(query))

    @public_api.post("/calc/reverse-size")
    async def calc_reverse_size(body: s.ReverseSizeBody) -> dict[str, Any]:
        """Reverse sizing (seed 003): the largest isolated position whose liquidation price lies beyond
        ``worst`` with ``margin`` allotted."""
        from perprisk.tools.sizing import reverse_size
        from perprisk.tools.venue import DEFAULT_LOT, make_venue

        venue = make_venue(body.family, symbol=body.symbol, mmr=body.mmr, maintenance_amount=body.maintenance_amount,
                           taker_fee=body.taker_fee if body.taker_fee is not None else "0")
        result = await asyncio.to_thread(reverse_size, venue, body.side, body.entry, body.worst, body.margin,
                                         body.lot if body.lot is not None else DEFAULT_LOT)
        return result.to_json()

    def check_magnitudes(doc: Any, where: str = "") -> None:
        """Refuse numbers beyond 1e±30 or 40 digits anywhere in a calculator request (shape, not rules)."""
        if isinstance(doc, dict):
            for key, value in doc.items():
                check_magnitudes(value, f"{where}.{key}" if where else str(key))
        elif isinstance(doc, list):
            for i, value in enumerate(doc):
                check_magnitudes(value, f"{where}[{i}]")
        elif isinstance(doc, (str, int, Decimal)) and not isinstance(doc, bool):
            if isinstance(doc, str):
                try:
                    doc = Decimal(doc.strip().replace("_", ""))
                except ArithmeticError:
                    return
            try:
                s._decimal(doc)
            except ValueError as err:
                if isinstance(doc, Decimal) and not doc.is_finite():
                    return  # the calculator names NaN/infinity itself
                raise ValidationError(where or "body", str(err)) from None

    async def json_body(request: Request) -> Any:
        body = await request.body()
        try:
            return s.loads(body)
        except (ValueError, RecursionError) as err:
            raise HTTPError(422, [{"field": "body", "message": f"invalid JSON: {err}"}]) from None

    # ------------------------------------------------------------------------------------ order replies

    def order_result(engine: Any, command: Any, events: list) -> dict[str, Any]:
        """The reply to a placed order, read right after it applied (inside the writer)."""
        accepted = next(e for e in events if isinstance(e, ev.OrderAccepted) and e.account_id == command.account_id)
        order_id = accepted.order_id
        fills = []
        for e in events:
            if isinstance(e, ev.Trade) and order_id in (e.taker_order_id, e.maker_order_id):
                taker = e.taker_order_id == order_id
                fills.append({"price": views.num(e.price), "quantity": views.num(e.quantity),
                              "fee": views.num(e.taker_fee if taker else e.maker_fee),
                              "liquidity": "taker" if taker else "maker", "trade_sequence": e.sequence})
        filled = sum((Decimal(f["quantity"]) for f in fills), Decimal(0))
        notional = sum((Decimal(f["quantity"]) * Decimal(f["price"]) for f in fills), Decimal(0))
        cancelled = next((e for e in events if isinstance(e, ev.OrderCancelled) and e.order_id == order_id), None)
        meta = engine.orders.get(order_id)
        if meta is not None:
            status = "untriggered" if not meta.triggered else ("partially_filled" if filled else "open")
        elif filled == command.quantity:
            status = "filled"
        else:
            status = "cancelled"
        return {
            "order_id": order_id, "client_order_id": command.client_order_id, "symbol": command.symbol,
            "side": command.side, "order_type": command.order_type, "price": views.num(command.price),
            "quantity": views.num(command.quantity), "filled_quantity": views.num(filled),
            "remaining_quantity": views.num(meta.remaining) if meta is not None else "0",
            "average_price": views.num(notional / filled) if filled else None, "status": status,
            "cancel_reason": cancelled.reason if cancelled is not None and meta is None else None,
            "fills": fills,
        }

    # ------------------------------------------------------------------------------------ WebSocket

    @app.websocket("/v1/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        conn = Connection(ws, config.ws_queue)
        hub.add(conn)
        sender = asyncio.get_running_loop().create_task(conn.sender())
        try:
            header_key = ws.headers.get("x-api-key")
            if header_key:
                await ws_auth(conn, header_key)
            while not conn.closed:
                try:
                    text = await ws.receive_text()
                except KeyError:  # a binary frame
                    conn.send({"type": "error", "code": 422, "message": "send JSON text frames"})
                    continue
                allowed, _ = conn.limiter.allow("ws")
                if not allowed:
                    conn.send({"type": "error", "code": 429, "message": "too many messages: at most 20 per second"})
                    continue
                await ws_message(conn, text)
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("WebSocket handler failed")
        finally:
            hub.remove(conn)
            conn.close()
            try:
                await asyncio.wait_for(sender, 2)
            except (asyncio.TimeoutError, Exception):
                sender.cancel()

    async def ws_auth(conn: Connection, key: Any) -> None:
        account_id = service.keys.account_for(key if isinstance(key, str) else None)
        if account_id is None:
            conn.send({"type": "error", "code": 401, "message": "invalid API key"})
            return
        conn.account_id = account_id
        conn.send({"type": "auth", "account_id": account_id})

    async def ws_message(conn: Connection, text: str) -> None:
        try:
            msg = s.loads(text) if len(text) <= 4096 else None
        except (ValueError, RecursionError):
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            conn.send({"type": "error", "code": 422, "message": 'expected {"op": "auth"|"subscribe"|"unsubscribe"|"ping", ...}'})
            return
        op = msg["op"]
        if op == "ping":
            conn.send({"type": "pong"})
        elif op == "auth":
            await ws_auth(conn, msg.get("api_key"))
        elif op in ("subscribe", "unsubscribe"):
            channels = msg.get("channels")
            if isinstance(channels, str):
                channels = [channels]
            if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
                conn.send({"type": "error", "code": 422, "message": "channels: a list of channel names"})
                return
            unknown = [c for c in channels if c not in CHANNELS]
            if unknown:
                conn.send({"type": "error", "code": 404, "message": f"unknown channels {unknown}; "
                           f"channels: {', '.join(CHANNELS)}"})
                return
            if op == "unsubscribe":
                conn.channels -= set(channels)
                conn.send({"type": "unsubscribed", "channels": channels})
                return
            private = [c for c in channels if c in PRIVATE_CHANNELS]
            if private and conn.account_id is None:
                conn.send({"type": "error", "code": 401,
                           "message": f"authenticate first ({{\"op\": \"auth\", \"api_key\": ...}}) for {private}"})
                channels = [c for c in channels if c not in PRIVATE_CHANNELS]
                if not channels:
                    return
            new = [c for c in channels if c not in conn.channels]
            conn.channels |= set(channels)
            conn.send({"type": "subscribed", "channels": sorted(conn.channels)})
            if new:
                for message in await hub.snapshot_messages(conn, new):
                    conn.send(message)
        else:
            conn.send({"type": "error", "code": 422, "message": f"unknown op {op!r}"})

    # ------------------------------------------------------------------------------------ pages

    @app.get("/", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(DASHBOARD_HTML, headers={"Cache-Control": "no-store"})

    @app.get("/healthz", tags=["public"])
    async def healthz() -> dict[str, Any]:
        return {"status": "failed" if service.failed else "ok", "sequence": service.engine.sequence}

    app.include_router(admin_api)
    app.include_router(user_api)
    app.include_router(public_api)
    return app
