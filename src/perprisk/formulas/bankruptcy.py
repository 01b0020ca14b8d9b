"""Bankruptcy price: where the margin backing a position is exactly zero (SPEC §2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from perprisk.formulas.margin import exact_ratio, unrealized_pnl
from perprisk.money import Fraction, Number

if TYPE_CHECKING:
    from perprisk.formulas.positions import MarginMode, PositionLeg


def isolated_bankruptcy_price(sign: int, size: Number, entry_price: Number, position_margin: Number) -> Fraction:
    """``BP = E − s·PM/q`` (may be ≤ 0 for an over-margined long: then it is never reached)."""
    en, ed = exact_ratio(entry_price)
    mn, md = exact_ratio(position_margin)
    qn, qd = exact_ratio(size)
    return Fraction(en * md * qn - sign * mn * qd * ed, ed * md * qn)


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
    if len(targets) == 1 and targets[0].size:
        # one leg: (s·q·E − c) / (s·q) is the isolated formula E − s·c/q
        leg = targets[0]
        price = isolated_bankruptcy_price(leg.sign, leg.size, leg.entry_price, c)
        return price if price > 0 else None
    # Σ s·q (net) and Σ s·q·E as integer ratios
    net_n, net_d, value_n, value_d = 0, 1, 0, 1
    for leg in targets:
        qn, qd = exact_ratio(leg.size)
        en, ed = exact_ratio(leg.entry_price)
        net_n, net_d = net_n * qd + leg.sign * qn * net_d, net_d * qd
        value_n, value_d = value_n * qd * ed + leg.sign * qn * en * value_d, value_d * qd * ed
    if net_n == 0:
        return None
    cn, cd = c.numerator, c.denominator
    # (Σ s·q·E − c) / net
    price = Fraction((value_n * cd - cn * value_d) * net_d, value_d * cd * net_n)
    return price if price > 0 else None
