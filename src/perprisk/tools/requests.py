"""Validated requests for the calculators: loosely typed documents (JSON, forms) → formula inputs.

Every refusal is a :class:`~perprisk.errors.ValidationError` naming the field (``positions[0].size``) and
the reason; nothing is computed from a request that did not validate in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from perprisk.errors import ValidationError
from perprisk.formulas import (
    LiquidationFamily,
    LiquidationResult,
    MarginMode,
    PositionLeg,
    Side,
    get_family,
    liquidation_price,
    margin_ratio,
)
from perprisk.instrument import TierTable, load_tier_tables, select_tier_table
from perprisk.money import ZERO, Fraction, format_decimal, to_decimal

REQUEST_FIELDS = {"family", "margin_mode", "wallet_balance", "taker_fee", "target", "target_side", "positions"}
REQUIRED_REQUEST_FIELDS = ("family", "margin_mode", "wallet_balance", "positions")
POSITION_FIELDS = {
    "symbol", "side", "size", "entry_price", "mark_price", "leverage", "mmr", "maintenance_amount",
    "tiers_file", "tiers_symbol",
}
REQUIRED_POSITION_FIELDS = ("symbol", "side", "size", "entry_price", "mark_price")


@dataclass(frozen=True)
class LiquidationQuery:
    family: LiquidationFamily
    margin_mode: MarginMode
    wallet_balance: Decimal
    positions: tuple[PositionLeg, ...]
    taker_fee: Decimal = ZERO
    target: str | None = None
    target_side: Side | None = None


def check_fields(doc: object, allowed: set[str], required: tuple[str, ...], where: str) -> Mapping[str, Any]:
    """The mapping itself, or an error naming the first unknown or missing field."""
    prefix = f"{where}." if where else ""
    if not isinstance(doc, Mapping):
        raise ValidationError(where or "request", f"expected a JSON object, got {type(doc).__name__}")
    for key in doc:
        if key not in allowed:
            raise ValidationError(f"{prefix}{key}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in doc or doc[key] is None:
            raise ValidationError(f"{prefix}{key}", "required field is missing")
    return doc


@lru_cache(maxsize=32)
def _tier_tables_cached(path: str, mtime_ns: int) -> dict[str, TierTable]:
    return load_tier_tables(path)


def tier_table_from_file(path: object, symbol: str, where: str) -> TierTable:
    """Load (cached by path and modification time) and select one symbol's tier table."""
    if not isinstance(path, str) or not path:
        raise ValidationError(f"{where}.tiers_file", "must be a file path")
    p = Path(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise ValidationError(f"{where}.tiers_file", f"no such file: {path}") from None
    try:
        tables = _tier_tables_cached(str(p.resolve()), mtime)
    except ValidationError as err:
        raise ValidationError(f"{where}.tiers_file", f"{path}: {err.field}: {err.message}") from None
    try:
        return select_tier_table(tables, symbol, path)
    except ValidationError as err:
        raise ValidationError(f"{where}.tiers_symbol", err.message) from None


def parse_position(doc: object, where: str) -> PositionLeg:
    d = check_fields(doc, POSITION_FIELDS, REQUIRED_POSITION_FIELDS, where)
    symbol = d["symbol"]
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValidationError(f"{where}.symbol", "must be a non-empty string")
    symbol = symbol.strip()
    side = Side.parse(d["side"], f"{where}.side")
    size = to_decimal(d["size"], f"{where}.size", positive=True)
    entry = to_decimal(d["entry_price"], f"{where}.entry_price", positive=True)
    mark = to_decimal(d["mark_price"], f"{where}.mark_price", positive=True)
    leverage = None
    if d.get("leverage") is not None:
        leverage = to_decimal(d["leverage"], f"{where}.leverage")
        if leverage < 1:
            raise ValidationError(f"{where}.leverage", f"must be at least 1, got {leverage}")
    has_mmr = d.get("mmr") is not None
    has_file = d.get("tiers_file") is not None
    if has_mmr and has_file:
        raise ValidationError(f"{where}.mmr", "give either mmr (and maintenance_amount) or tiers_file, not both")
    if not has_mmr and not has_file:
        raise ValidationError(f"{where}.mmr", "required: give mmr (and optionally maintenance_amount) or tiers_file")
    if has_file:
        if d.get("maintenance_amount") is not None:
            raise ValidationError(f"{where}.maintenance_amount", "comes from the tiers file; do not give it as well")
        tiers_symbol = d.get("tiers_symbol", symbol)
        if not isinstance(tiers_symbol, str) or not tiers_symbol.strip():
            raise ValidationError(f"{where}.tiers_symbol", "must be a non-empty string")
        tiers = tier_table_from_file(d["tiers_file"], tiers_symbol.strip(), where)
        if leverage is not None:
            tier = tiers.tier_for_notional_clamped(size * entry)
            if leverage > tier.max_leverage:
                raise ValidationError(
                    f"{where}.leverage",
                    f"{leverage}× exceeds the maximum {tier.max_leverage}× of tier {tier.tier} "
                    f"for a notional of {format_decimal(size * entry)}",
                )
    else:
        if d.get("tiers_symbol") is not None:
            raise ValidationError(f"{where}.tiers_symbol", "only meaningful with tiers_file")
        mmr = to_decimal(d["mmr"], f"{where}.mmr")
        if not (ZERO < mmr <= 1):
            raise ValidationError(f"{where}.mmr", f"must lie in (0, 1], got {mmr}")
        amount = to_decimal(d.get("maintenance_amount", 0), f"{where}.maintenance_amount", non_negative=True)
        tiers = TierTable.single(symbol, mmr, amount)
    return PositionLeg(symbol, side, size, entry, mark, tiers, leverage)


def parse_liquidation_request(doc: object) -> LiquidationQuery:
    """Validate a ``calc liquidation`` request (see README: CLI reference) into a query."""
    d = check_fields(doc, REQUEST_FIELDS, REQUIRED_REQUEST_FIELDS, "")
    family = get_family(d["family"])
    mode = MarginMode.parse(d["margin_mode"])
    wallet = to_decimal(d["wallet_balance"], "wallet_balance", non_negative=True)
    fee = to_decimal(d.get("taker_fee", 0), "taker_fee")
    if not (ZERO <= fee < 1):
        raise ValidationError("taker_fee", f"must lie in [0, 1), got {fee}")
    raw_positions = d["positions"]
    if not isinstance(raw_positions, list) or not raw_positions:
        raise ValidationError("positions", "must be a non-empty list of positions")
    legs = tuple(parse_position(p, f"positions[{i}]") for i, p in enumerate(raw_positions))
    target = d.get("target")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise ValidationError("target", "must be a symbol string")
    side = Side.parse(d["target_side"], "target_side") if d.get("target_side") is not None else None
    return LiquidationQuery(family, mode, wallet, legs, fee, target.strip() if target else None, side)


def solve_liquidation(query: LiquidationQuery) -> LiquidationResult:
    return liquidation_price(
        query.family,
        query.margin_mode,
        query.wallet_balance,
        query.positions,
        target=query.target,
        target_side=query.target_side,
        taker_fee=query.taker_fee,
    )


def _text(x: Fraction | Decimal | None) -> str | None:
    return None if x is None else format_decimal(x)


def liquidation_response(query: LiquidationQuery, result: LiquidationResult) -> dict[str, Any]:
    """The ``calc liquidation --json`` response object (numbers as full-precision decimal strings)."""
    ratio = margin_ratio(result.maintenance_margin, result.equity)
    return {
        "symbol": result.symbol,
        "liquidation_price": _text(result.liquidation_price),
        "bankruptcy_price": _text(result.bankruptcy_price),
        "distance_pct": _text(result.distance_pct),
        "mmr": _text(result.mmr),
        "maintenance_amount": _text(result.maintenance_amount),
        "tier": result.tier.tier,
        "side": result.side.label if result.side is not None else None,
        "family": query.family.name,
        "margin_mode": query.margin_mode.value,
        "mark_price": _text(result.mark_price),
        "margin_balance": _text(result.equity),
        "maintenance_margin": _text(result.maintenance_margin),
        "margin_ratio_pct": None if ratio is None else _text(ratio * 100),
        "already_liquidatable": result.already_liquidatable,
        "notes": list(result.notes),
    }


def tier_response(table: TierTable, notional: object) -> dict[str, Any]:
    """The ``calc tiers --json`` response for one notional."""
    n = to_decimal(notional, "notional", non_negative=True)
    tier = table.tier_for_notional(n)
    return {
        "tier": tier.tier,
        "mmr": format_decimal(tier.mmr),
        "maintenance_amount": format_decimal(tier.maintenance_amount),
        "max_leverage": format_decimal(tier.max_leverage),
        "floor": format_decimal(tier.floor),
        "cap": None if tier.cap is None else format_decimal(tier.cap),
        "symbol": table.symbol,
    }
