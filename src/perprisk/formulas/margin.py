"""Notional, PnL, initial and maintenance margin, margin ratio, distance — SPEC §2 (one source each)."""

from __future__ import annotations

from decimal import Decimal

from perprisk.errors import ValidationError
from perprisk.instrument import RiskTier, TierTable
from perprisk.money import Fraction, Number


def exact_ratio(x: Number) -> tuple[int, int]:
    """``(n, d)`` with ``x == n / d`` exactly and ``d > 0`` — the integers the formulas compute with.

    Converting a Decimal to a Fraction and combining Fractions costs a normalization (gcd) per operation; the
    formulas below work on these integer pairs and build one Fraction per result instead.  Same values.
    """
    kind = type(x)
    if kind is int:
        return x, 1
    if kind is Fraction:
        return x.numerator, x.denominator
    if kind is Decimal:
        return x.as_integer_ratio()  # type: ignore[union-attr]
    f = Fraction(x)
    return f.numerator, f.denominator


def notional(size: Number, price: Number) -> Fraction:
    """``N = q·P``."""
    qn, qd = exact_ratio(size)
    pn, pd = exact_ratio(price)
    return Fraction(qn * pn, qd * pd)


def unrealized_pnl(sign: int, size: Number, entry_price: Number, mark_price: Number) -> Fraction:
    """``U = s·q·(M − E)``."""
    return Fraction(*unrealized_pnl_ratio(sign, size, entry_price, mark_price))


def unrealized_pnl_ratio(sign: int, size: Number, entry_price: Number, mark_price: Number) -> tuple[int, int]:
    """:func:`unrealized_pnl` as an integer pair ``(n, d)``, ``d > 0`` (for sums that build one Fraction)."""
    qn, qd = exact_ratio(size)
    en, ed = exact_ratio(entry_price)
    mn, md = exact_ratio(mark_price)
    return sign * qn * (mn * ed - en * md), qd * md * ed


def initial_margin(size: Number, entry_price: Number, leverage: Number) -> Fraction:
    """``IM = q·E / L``."""
    return Fraction(size) * Fraction(entry_price) / Fraction(leverage)


def maintenance_margin_in_tier(notional_value: Number, tier: RiskTier, with_amount: bool = True) -> Fraction:
    """``MM = N·mmr − maintenance_amount`` for a known tier (the amount is dropped for families without one)."""
    nn, nd = exact_ratio(notional_value)
    return Fraction(*maintenance_margin_ratio(nn, nd, tier, with_amount))


def maintenance_margin_ratio(numerator: int, denominator: int, tier: RiskTier, with_amount: bool = True) -> tuple[int, int]:
    """:func:`maintenance_margin_in_tier` of the notional ``numerator / denominator`` (``denominator > 0``), as an
    integer pair ``(n, d)``, ``d > 0``."""
    rn, rd = exact_ratio(tier.mmr)
    if not with_amount:
        return numerator * rn, denominator * rd
    an, ad = exact_ratio(tier.maintenance_amount)
    return numerator * rn * ad - an * denominator * rd, denominator * rd * ad


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
    mn, md = exact_ratio(mark_price)
    if mn <= 0:
        raise ValidationError("mark_price", f"must be greater than zero, got {mark_price}")
    ln, ld = exact_ratio(liquidation_price)
    # |M − LP| / M · 100 with M = mn/md, LP = ln/ld
    return Fraction(100 * abs(mn * ld - ln * md), ld * mn)
