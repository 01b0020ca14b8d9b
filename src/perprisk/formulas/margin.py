"""Notional, PnL, initial and maintenance margin, margin ratio, distance — SPEC §2 (one source each)."""

from __future__ import annotations

from fractions import Fraction

from perprisk.errors import ValidationError
from perprisk.instrument import RiskTier, TierTable
from perprisk.money import Number


def notional(size: Number, price: Number) -> Fraction:
    """``N = q·P``."""
    return Fraction(size) * Fraction(price)


def unrealized_pnl(sign: int, size: Number, entry_price: Number, mark_price: Number) -> Fraction:
    """``U = s·q·(M − E)``."""
    return sign * Fraction(size) * (Fraction(mark_price) - Fraction(entry_price))


def initial_margin(size: Number, entry_price: Number, leverage: Number) -> Fraction:
    """``IM = q·E / L``."""
    return Fraction(size) * Fraction(entry_price) / Fraction(leverage)


def maintenance_margin_in_tier(notional_value: Number, tier: RiskTier, with_amount: bool = True) -> Fraction:
    """``MM = N·mmr − maintenance_amount`` for a known tier (the amount is dropped for families without one)."""
    mm = Fraction(notional_value) * Fraction(tier.mmr)
    return mm - Fraction(tier.maintenance_amount) if with_amount else mm


def maintenance_margin(notional_value: Number, tiers: TierTable) -> Fraction:
    """Tiered ``MM = N·mmr − cum`` with the tier of ``N`` (the last tier beyond the table's cap)."""
    return maintenance_margin_in_tier(notional_value, tiers.tier_for_notional_clamped(notional_value))


def is_liquidatable(equity: Number, maintenance: Number) -> bool:
    """The trigger of SPEC §2: liquidate when ``equity ≤ MM`` (margin ratio ≥ 100 %)."""
    return Fraction(equity) <= Fraction(maintenance)


def margin_ratio(maintenance: Number, equity: Number) -> Fraction | None:
    """``MM / equity``; ``None`` when equity ≤ 0 (unbounded: the position is past bankruptcy)."""
    eq = Fraction(equity)
    if eq <= 0:
        return None
    return Fraction(maintenance) / eq


def distance_pct(mark_price: Number, liquidation_price: Number | None) -> Fraction | None:
    """Liquidation distance ``|M − LP| / M`` in percent (SPEC §2, seed 003); ``None`` without an LP."""
    if liquidation_price is None:
        return None
    mark = Fraction(mark_price)
    if mark <= 0:
        raise ValidationError("mark_price", f"must be greater than zero, got {mark_price}")
    return abs(mark - Fraction(liquidation_price)) / mark * 100
