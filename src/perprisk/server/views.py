"""Read-only JSON views of the engine's state (numbers as exact decimal strings, as the calculator's contract).

Every figure comes from the engine's own methods (``liquidation``, ``margin_ratio``, ``wallet_balance``,
``available_balance``, the liquidator's ADL quintiles); nothing here decides anything.  Call these with the
service's state lock held (they read mutable engine state).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from perprisk.events import event_to_dict
from perprisk.formulas import MarginMode
from perprisk.ledger import trader_account
from perprisk.money import Fraction, format_decimal

PUBLIC_EVENT_HIDDEN = ("account_id", "liquidated_account_id", "taker_account_id", "maker_account_id")


def num(x: Any) -> str | None:
    """A Decimal/Fraction/int as an exact decimal string (40 significant digits for non-terminating)."""
    if x is None:
        return None
    if isinstance(x, bool):
        return str(x).lower()
    return format_decimal(x)


def pct(ratio: Fraction | None) -> str | None:
    return None if ratio is None else num(ratio * 100)


# ---------------------------------------------------------------------------------------------- markets


def market_view(engine: Any, symbol: str) -> dict[str, Any]:
    state = engine.markets[symbol]
    inst = state.instrument
    longs, shorts = engine.open_interest(symbol)
    return {
        "symbol": inst.symbol,
        "base": inst.base,
        "settle": inst.settle,
        "tick_size": num(inst.tick_size),
        "lot_size": num(inst.lot_size),
        "min_size": num(inst.min_size),
        "maker_fee": num(inst.maker_fee),
        "taker_fee": num(inst.taker_fee),
        "liquidation_fee": num(inst.liquidation_fee),
        "funding_interval_hours": inst.funding_interval_hours,
        "mark_price": num(state.mark_price),
        "index_price": num(state.index_price),
        "last_price": num(state.last_price),
        "funding_rate": num(state.current_rate),
        "timestamp_ms": state.timestamp_ms,
        "open_interest": num(longs),
        "open_interest_short": num(shorts),
        "tiers": [
            {
                "tier": t.tier, "floor": num(t.floor), "cap": num(t.cap), "max_leverage": num(t.max_leverage),
                "mmr": num(t.mmr), "maintenance_amount": num(t.maintenance_amount),
            }
            for t in inst.tiers.tiers
        ],
    }


def mark_view(engine: Any, symbol: str) -> dict[str, Any]:
    state = engine.markets[symbol]
    return {
        "symbol": symbol,
        "mark_price": num(state.mark_price),
        "index_price": num(state.index_price),
        "last_price": num(state.last_price),
        "funding_rate": num(state.current_rate),
        "timestamp_ms": state.timestamp_ms,
    }


def book_view(engine: Any, symbol: str, depth: int = 20) -> dict[str, Any]:
    book = engine.markets[symbol].book.depth(depth)
    return {
        "symbol": symbol,
        "bids": [[num(lv.price), num(lv.quantity), lv.orders] for lv in book.bids],
        "asks": [[num(lv.price), num(lv.quantity), lv.orders] for lv in book.asks],
    }


def funding_view(engine: Any, symbol: str, limit: int | None = None) -> dict[str, Any]:
    state = engine.markets[symbol]
    history = state.funding_history if limit is None else state.funding_history[-limit:]
    return {
        "symbol": symbol,
        "current_rate": num(state.current_rate),
        "interval_hours": state.instrument.funding_interval_hours,
        "premium_samples": len(state.premiums),
        "history": [{"timestamp_ms": t, "rate": num(r), "mark_price": num(m)} for t, r, m in history],
    }


def insurance_view(engine: Any, limit: int | None = None) -> dict[str, Any]:
    fund = engine.insurance
    balances: dict[str, str] = {}
    for (account, asset), amount in sorted(_fund_balances(engine).items()):
        key = asset if account == fund.account(None) else f"{account.split('/', 1)[-1]}:{asset}"
        balances[key] = num(amount)
    history = fund.history if limit is None else fund.history[-limit:]
    return {
        "balances": balances,
        "per_market": fund.per_market,
        "history": [record_view(r) for r in history],
        "records": len(fund.history),
    }


def _fund_balances(engine: Any) -> dict[tuple[str, str], Decimal]:
    fund = engine.insurance
    accounts = {fund.account(None)} | {fund.account(s) for s in engine.markets}
    out: dict[tuple[str, str], Decimal] = {}
    for account in accounts:
        for asset, amount in engine.ledger.balances_of(account).items():
            out[(account, asset)] = amount
    if not fund.per_market:
        for settle in {m.instrument.settle for m in engine.markets.values()}:
            out.setdefault((fund.account(None), settle), Decimal(0))
    return out


def record_view(r: Any) -> dict[str, Any]:
    return {
        "timestamp_ms": r.timestamp_ms, "asset": r.asset, "symbol": r.symbol, "change": num(r.change),
        "balance": num(r.balance), "reason": r.reason,
    }


# ---------------------------------------------------------------------------------------------- accounts


def asset_balances(engine: Any, account: Any) -> dict[str, str]:
    """Cross wallet balance per asset as a trader reads it (:meth:`perprisk.engine.Engine.asset_balances`)."""
    return {asset: num(amount) for asset, amount in sorted(engine.asset_balances(account).items())}


def account_view(engine: Any, account_id: int) -> dict[str, Any]:
    account = engine.accounts[account_id]
    ratio = engine.margin_ratio(account_id)
    return {
        "account_id": account_id,
        "balances": asset_balances(engine, account),
        "ledger_balances": {a: num(v) for a, v in sorted(engine.ledger.balances_of(trader_account(account_id)).items())},
        "wallet_balance": num(engine.wallet_balance(account)),
        "available_balance": num(engine.available_balance(account)),
        "cross_margin_ratio_pct": pct(ratio),
        "position_mode": account.position_mode.value,
        "blocked": account.blocked,
        "settings": {
            s: {"margin_mode": m.margin_mode.value, "leverage": num(m.leverage), "auto_add_margin": m.auto_add_margin}
            for s, m in sorted(account.settings.items())
        },
    }


def position_views(engine: Any, account_id: int) -> list[dict[str, Any]]:
    account = engine.accounts[account_id]
    out = []
    quintiles: dict[str, dict] = {}
    for position in sorted(account.open_positions(), key=lambda p: (p.symbol, p.slot)):
        symbol = position.symbol
        if symbol not in quintiles:
            quintiles[symbol] = engine.liquidator.adl_quintiles(symbol)
        out.append(position_view(engine, account, position, quintiles[symbol]))
    return out


def position_view(engine: Any, account: Any, position: Any, quintiles: dict) -> dict[str, Any]:
    symbol = position.symbol
    inst = engine.markets[symbol].instrument
    mark = engine.mark(symbol)
    size = position.size
    entry = position.entry_price
    liquidation = engine.liquidation(account.account_id, symbol, position.slot)
    ratio = engine.margin_ratio(account.account_id, symbol, position.slot)
    isolated = position.margin_mode is MarginMode.ISOLATED
    notional = abs(Fraction(size)) * Fraction(mark)
    tier = inst.tiers.tier_for_notional_clamped(notional)
    return {
        "symbol": symbol,
        "position_side": position.slot,
        "side": "long" if size > 0 else "short",
        "size": num(abs(size)),
        "signed_size": num(size),
        "entry_price": num(entry),
        "mark_price": num(mark),
        "notional": num(notional),
        "unrealized_pnl": num(Fraction(size) * (Fraction(mark) - entry)),
        "margin_mode": position.margin_mode.value,
        "leverage": num(position.leverage),
        "position_margin": num(engine.position_margin(position)) if isolated else None,
        "maintenance_margin": num(engine.position_maintenance(position, mark)),
        "liquidation_price": num(liquidation.liquidation_price) if liquidation else None,
        "bankruptcy_price": num(liquidation.bankruptcy_price) if liquidation else None,
        "distance_pct": num(liquidation.distance_pct) if liquidation else None,
        "margin_ratio": num(ratio),
        "margin_ratio_pct": pct(ratio),
        "adl_quintile": quintiles.get((account.account_id, position.slot)),
        "tier": tier.tier,
        "auto_add_margin": account.settings[symbol].auto_add_margin if symbol in account.settings else False,
    }


def order_view(engine: Any, meta: Any, info: dict[str, Any] | None = None) -> dict[str, Any]:
    info = info or {}
    return {
        "order_id": meta.order_id,
        "client_order_id": info.get("client_order_id"),
        "symbol": meta.symbol,
        "side": meta.side,
        "position_side": meta.slot,
        "order_type": meta.order_type,
        "price": num(meta.price),
        "quantity": num(info.get("quantity")),
        "remaining_quantity": num(meta.remaining),
        "reduce_only": meta.reduce_only,
        "status": "open" if meta.triggered else "untriggered",
    }


def alert_rule_view(rule: Any) -> dict[str, Any]:
    return {
        "alert_id": rule.alert_id, "kind": rule.kind, "symbol": rule.symbol, "threshold": num(rule.threshold),
        "direction": rule.direction,
    }


# ---------------------------------------------------------------------------------------------- events


def event_view(event: Any, public: bool = False) -> dict[str, Any]:
    d = event_to_dict(event)
    if public:
        for key in PUBLIC_EVENT_HIDDEN:
            d.pop(key, None)
    return d
