"""Bankruptcy price: where the margin backing a position is exactly zero (SPEC §2)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

from perprisk.formulas.margin import unrealized_pnl
from perprisk.money import Number

if TYPE_CHECKING:
    from perprisk.formulas.positions import MarginMode, PositionLeg


def isolated_bankruptcy_price(sign: int, size: Number, entry_price: Number, position_margin: Number) -> Fraction:
    """``BP = E − s·PM/q`` (may be ≤ 0 for an over-margined long: then it is never reached)."""
    return Fraction(entry_price) - sign * Fraction(position_margin) / Fraction(size)


def bankruptcy_price(
    margin_mode: "MarginMode",
    wallet_balance: Number,
    targets: Sequence["PositionLeg"],
    others: Sequence["PositionLeg"] = (),
) -> Fraction | None:
    """Price of the target market where the (position or cross-account) equity is zero; ``None`` if never.

    Isolated: ``PM + s·q·(P − E) = 0``.  Cross: wallet + Σ other PnL at their marks + Σ target PnL at ``P`` = 0.
    """
    from perprisk.formulas.positions import MarginMode

    c = Fraction(wallet_balance)
    if margin_mode is MarginMode.CROSS:
        for leg in others:
            c += unrealized_pnl(leg.sign, leg.size, leg.entry_price, leg.mark_price)
    net = sum((leg.sign * Fraction(leg.size) for leg in targets), Fraction(0))
    if net == 0:
        return None
    if len(targets) == 1 and margin_mode is not MarginMode.CROSS:
        leg = targets[0]
        price = isolated_bankruptcy_price(leg.sign, leg.size, leg.entry_price, c)
    else:
        price = (sum((leg.sign * Fraction(leg.size) * Fraction(leg.entry_price) for leg in targets), Fraction(0)) - c) / net
    return price if price > 0 else None
