"""Liquidation price for every family, isolated and cross, one-way and hedge — solved exactly.

The trigger ``f(P) = C + Σ_t s_t·q_t·(P − E_t) − Σ_t [MM_t(P) + fee_t(P)]`` is piecewise linear in ``P``:
linear between the prices where a target leg's notional crosses a tier floor.  Each piece is solved exactly
in rationals and a root is kept only if it lies in its own piece (the tier re-check).  Of the roots, the one
nearest the mark is where the position is liquidated.  Non-positive roots mean "no liquidation price".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Sequence

from perprisk.errors import ValidationError
from perprisk.formulas.bankruptcy import bankruptcy_price
from perprisk.formulas.families import LiquidationFamily
from perprisk.formulas.margin import distance_pct, unrealized_pnl
from perprisk.formulas.positions import MarginMode, PositionLeg, Side
from perprisk.instrument import RiskTier
from perprisk.money import Number


@dataclass(frozen=True)
class LiquidationResult:
    symbol: str
    side: Side | None  # None when both legs of a hedged market are solved together
    mark_price: Fraction
    liquidation_price: Fraction | None
    bankruptcy_price: Fraction | None
    distance_pct: Fraction | None
    tier: RiskTier
    mmr: Decimal
    maintenance_amount: Decimal
    equity: Fraction  # margin balance at the mark (position margin + PnL, or cross account equity)
    maintenance_margin: Fraction  # maintenance requirement at the mark (closing fee included where used)
    already_liquidatable: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def select_targets(
    margin_mode: MarginMode, positions: Sequence[PositionLeg], target: str | None, target_side: Side | None
) -> tuple[list[PositionLeg], list[PositionLeg]]:
    """Split positions into the legs solved for and the others (cross: the rest of the account)."""
    if not positions:
        raise ValidationError("positions", "at least one position is required")
    symbols = list(dict.fromkeys(p.symbol for p in positions))
    if target is None:
        if len(symbols) != 1:
            raise ValidationError("target", f"several symbols given ({', '.join(symbols)}): name the target")
        target = symbols[0]
    targets = [p for p in positions if p.symbol == target]
    if not targets:
        raise ValidationError("target", f"no position with symbol {target!r}")
    sides = [p.side for p in targets]
    if len(set(sides)) != len(sides):
        raise ValidationError("positions", f"{target}: two positions on the same side; merge them into one")
    if margin_mode is MarginMode.ISOLATED:
        if target_side is not None:
            targets = [p for p in targets if p.side is target_side]
            if not targets:
                raise ValidationError("target_side", f"no {target_side.label} position in {target}")
        elif len(targets) > 1:
            raise ValidationError("target_side", f"{target} has a long and a short leg: say which one (isolated)")
        return targets, []
    if target_side is not None and target_side not in sides:
        raise ValidationError("target_side", f"no {target_side.label} position in {target}")
    others = [p for p in positions if p.symbol != target]
    return targets, others


def fixed_balance(
    family: LiquidationFamily,
    margin_mode: MarginMode,
    wallet_balance: Number,
    others: Sequence[PositionLeg],
    taker_fee: Fraction,
) -> Fraction:
    """``C``: wallet (or position margin) plus the other cross positions' PnL less their maintenance and fees."""
    balance = Fraction(wallet_balance)
    if margin_mode is MarginMode.CROSS:
        for leg in others:
            mark = Fraction(leg.mark_price)
            balance += unrealized_pnl(leg.sign, leg.size, leg.entry_price, mark)
            balance -= family.maintenance(leg, mark) + family.closing_fee(leg, mark, taker_fee)
    return balance


def _pieces(family: LiquidationFamily, targets: Sequence[PositionLeg]) -> list[Fraction]:
    """Left ends of the price intervals on which every target leg stays in one tier."""
    points = {Fraction(0)}
    if family.tier_recheck:
        for leg in targets:
            size = Fraction(leg.size)
            points.update(Fraction(t.floor) / size for t in leg.tiers.tiers[1:])
    return sorted(points)


def _trigger_at(
    family: LiquidationFamily, c: Fraction, targets: Sequence[PositionLeg], price: Fraction, fee: Fraction
) -> tuple[Fraction, Fraction]:
    """Margin balance and maintenance requirement of the target legs' account at ``price``."""
    equity = c
    maintenance = Fraction(0)
    for leg in targets:
        equity += unrealized_pnl(leg.sign, leg.size, leg.entry_price, price)
        maintenance += family.maintenance(leg, price) + family.closing_fee(leg, price, fee)
    return equity, maintenance


def solve_trigger_roots(
    family: LiquidationFamily, c: Fraction, targets: Sequence[PositionLeg], fee: Fraction
) -> list[Fraction]:
    """Every positive price where margin balance equals maintenance margin (exact)."""
    starts = _pieces(family, targets)
    roots: list[Fraction] = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else None
        # f is affine on [start, end): evaluate its two coefficients at a point inside the piece.
        alpha = c
        beta = Fraction(0)
        for leg in targets:
            size = Fraction(leg.size)
            tier = family.tier_at(leg, start)
            alpha -= leg.sign * size * Fraction(leg.entry_price)
            beta += leg.sign * size
            rate = Fraction(tier.mmr) + (fee if family.uses_taker_fee else 0)
            amount = Fraction(tier.maintenance_amount) if family.uses_maintenance_amount else Fraction(0)
            if family.mm_at_price:
                beta -= size * rate
                alpha += amount
            else:
                alpha -= size * Fraction(leg.entry_price) * Fraction(tier.mmr) - amount
                beta -= size * (fee if family.uses_taker_fee else 0)
        if beta == 0:
            continue  # flat piece: no crossing (or an identically-zero piece, which has no single price)
        root = -alpha / beta
        if root > 0 and root >= start and (end is None or root < end):
            roots.append(root)
    return roots


def liquidation_price(
    family: LiquidationFamily,
    margin_mode: MarginMode,
    wallet_balance: Number,
    positions: Sequence[PositionLeg],
    *,
    target: str | None = None,
    target_side: Side | None = None,
    taker_fee: Number = 0,
) -> LiquidationResult:
    """Liquidation price of the target market (``wallet_balance`` = position margin when isolated)."""
    targets, others = select_targets(margin_mode, positions, target, target_side)
    fee = Fraction(taker_fee) if family.uses_taker_fee else Fraction(0)
    notes: list[str] = []
    if Fraction(taker_fee) != 0 and not family.uses_taker_fee:
        notes.append(f"taker_fee is not part of the {family.name} formula and was not used")
    c = fixed_balance(family, margin_mode, wallet_balance, others, fee)
    mark = Fraction(targets[0].mark_price)
    roots = solve_trigger_roots(family, c, targets, fee)
    lp = min(roots, key=lambda r: (abs(r - mark), r)) if roots else None
    if lp is None:
        notes.append("no liquidation price: the margin covers the position at every positive price")
    equity, maintenance = _trigger_at(family, c, targets, mark, fee)
    # equity here excludes the other legs' maintenance: add it back to report the account's own figures
    other_mm = sum(
        (family.maintenance(o, Fraction(o.mark_price)) + family.closing_fee(o, Fraction(o.mark_price), fee) for o in others),
        Fraction(0),
    )
    primary = next((t for t in targets if t.side is target_side), targets[0])
    tier = family.tier_at(primary, lp if lp is not None else mark)
    bp = bankruptcy_price(margin_mode, wallet_balance, targets, others)
    return LiquidationResult(
        symbol=primary.symbol,
        side=primary.side if len(targets) == 1 else target_side,
        mark_price=mark,
        liquidation_price=lp,
        bankruptcy_price=bp,
        distance_pct=distance_pct(mark, lp),
        tier=tier,
        mmr=tier.mmr,
        maintenance_amount=tier.maintenance_amount if family.uses_maintenance_amount else Decimal(0),
        equity=equity + other_mm,
        maintenance_margin=maintenance + other_mm,
        already_liquidatable=equity <= maintenance,
        notes=tuple(notes),
    )


def margin_balance(
    family: LiquidationFamily,
    margin_mode: MarginMode,
    wallet_balance: Number,
    positions: Sequence[PositionLeg],
    price: Number,
    *,
    target: str | None = None,
    target_side: Side | None = None,
    taker_fee: Number = 0,
) -> tuple[Fraction, Fraction]:
    """(margin balance, maintenance requirement) with the target market at ``price``; the others at their marks.

    The liquidation price is exactly where the two are equal.
    """
    targets, others = select_targets(margin_mode, positions, target, target_side)
    fee = Fraction(taker_fee) if family.uses_taker_fee else Fraction(0)
    c = fixed_balance(family, margin_mode, wallet_balance, others, fee)
    return _trigger_at(family, c, targets, Fraction(price), fee)
