"""Liquidation price for every family, isolated and cross, one-way and hedge — solved exactly.

The trigger ``f(P) = C + Σ_t s_t·q_t·(P − E_t) − Σ_t [MM_t(P) + fee_t(P)]`` is piecewise linear in ``P``:
linear between the prices where a target leg's notional crosses a tier floor.  Each piece is solved exactly
in rationals and a root is kept only if it lies in its own piece (the tier re-check).  Of the roots, the one
nearest the mark is where the position is liquidated.  Non-positive roots mean "no liquidation price".

Two implementations, one answer: :func:`solve_trigger_roots` sweeps the pieces left to right in integer
arithmetic, updating ``f``'s two coefficients only where a leg changes tier (for one leg, it looks the answer
up in intervals precomputed per tier table); :func:`solve_trigger_roots_reference`
(and :func:`liquidation_price_reference`) rebuild every piece from scratch in Fractions — the plain, obviously
correct version the tests compare the fast one with (same roots, same results, for every family).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple, Sequence

from perprisk.errors import ValidationError
from perprisk.formulas.bankruptcy import bankruptcy_price
from perprisk.formulas.families import LiquidationFamily
from perprisk.formulas.margin import distance_pct, exact_ratio, unrealized_pnl, unrealized_pnl_ratio
from perprisk.formulas.positions import MarginMode, PositionLeg, Side
from perprisk.instrument import RiskTier, TierIndex, tier_index
from perprisk.money import Fraction, Number


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
        pnl, requirement = _other_legs(family, others, taker_fee)
        balance += pnl - requirement
    return balance


def _other_legs(family: LiquidationFamily, others: Sequence[PositionLeg], taker_fee: Fraction) -> tuple[Fraction, Fraction]:
    """(Σ PnL, Σ maintenance + closing fee) of the other cross legs, each at its own mark."""
    pnl = requirement = Fraction(0)
    for leg in others:
        mark = leg.mark_price
        pnl += unrealized_pnl(leg.sign, leg.size, leg.entry_price, mark)
        requirement += family.maintenance(leg, mark) + family.closing_fee(leg, mark, taker_fee)
    return pnl, requirement


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
    equity_n, equity_d = exact_ratio(c)
    mm_n, mm_d = 0, 1
    for leg in targets:  # summed as integer pairs: one Fraction (one normalization) per result
        n, d = unrealized_pnl_ratio(leg.sign, leg.size, leg.entry_price, price)
        equity_n, equity_d = equity_n * d + n * equity_d, equity_d * d
        n, d = family.maintenance_ratio(leg, price)
        fee_n, fee_d = family.closing_fee_ratio(leg, price, fee)
        mm_n, mm_d = (mm_n * d + n * mm_d) * fee_d + fee_n * mm_d * d, mm_d * d * fee_d
    return Fraction(equity_n, equity_d), Fraction(mm_n, mm_d)


def _trigger_at_reference(
    family: LiquidationFamily, c: Fraction, targets: Sequence[PositionLeg], price: Fraction, fee: Fraction
) -> tuple[Fraction, Fraction]:
    """:func:`_trigger_at` summed in Fractions (for the reference)."""
    equity = c
    maintenance = Fraction(0)
    for leg in targets:
        equity += unrealized_pnl(leg.sign, leg.size, leg.entry_price, price)
        maintenance += family.maintenance(leg, price) + family.closing_fee(leg, price, fee)
    return equity, maintenance


def solve_trigger_roots(
    family: LiquidationFamily, c: Fraction, targets: Sequence[PositionLeg], fee: Fraction
) -> list[Fraction]:
    """Every positive price where margin balance equals maintenance margin (exact), in increasing order.

    Same roots as :func:`solve_trigger_roots_reference`, computed as one left-to-right sweep over the pieces:

    - ``f(P) = α + β·P`` on a piece, with ``α = A/DA`` and ``β = B/DB`` for integers ``A``, ``B`` over common
      denominators fixed for the call (every input is an exact rational);
    - each leg contributes ``α_k, β_k`` for its tier ``k``; at a piece boundary ``P = floor_t / q`` only that
      leg's contribution changes (from tier ``t − 1`` to ``t``), so ``A`` and ``B`` are updated, not rebuilt;
    - a piece's root ``−α/β = u/v`` (``v > 0``) is tested against the piece's ends by cross-multiplication,
      and only a kept root becomes a Fraction.

    One leg with MM at price and the tier re-checked (binance, generic: the common case) goes through
    :func:`_one_leg_roots`, which needs no sweep.  Re-checking relies on tables of the validated shape
    (``TierIndex.contiguous``): the tier of a notional in ``[floor_t, floor_{t+1})`` is tier ``t``.  Other
    tables (built by hand) go through the reference.
    """
    recheck = family.tier_recheck
    indexes = [tier_index(leg.tiers) for leg in targets]
    if not all(ix.contiguous if recheck else ix.exact for ix in indexes):
        return solve_trigger_roots_reference(family, c, targets, fee)
    at_price = family.mm_at_price
    if recheck and at_price and len(targets) == 1:
        return _one_leg_roots(family, c, targets[0], indexes[0], fee)
    with_amount = family.uses_maintenance_amount
    fn, fd = exact_ratio(fee) if family.uses_taker_fee else (0, 1)
    cn, cd = exact_ratio(c)
    legs = [(leg.sign, *exact_ratio(leg.size), *exact_ratio(leg.entry_price), ix) for leg, ix in zip(targets, indexes)]

    # Common denominators: α's terms are c, s·q·E, maintenance amounts (and q·E·mmr when MM is on the entry
    # value); β's terms are q·(s − mmr − fee) (MM at price) or q·(s − fee); piece boundaries floor_t/q_j.
    da = math.lcm(cd, *[qd * ed * (1 if at_price else ix.mmr_den) for _, _, qd, _, ed, ix in legs])
    if with_amount:
        da = math.lcm(da, *[ix.amount_den for *_, ix in legs])
    db = math.lcm(*[qd * fd * (ix.mmr_den if at_price else 1) for _, _, qd, _, _, ix in legs])
    sd = math.lcm(*[ix.floor_den * qn for _, qn, _, _, _, ix in legs]) if recheck else 1
    # The root of a piece is u/v with u = −A·db·sd, v = B·da (scaled so that both ends of the piece, over sd,
    # compare by one multiplication each): keep A' = A·db·sd and B' = B·da.
    scale_a, scale_b = db * sd, da

    # Leg j in the k-th tier of its table adds  a_k = a0 + amount_k·ua − mmr_k·ua_m  to A' and
    # b_k = b0 − mmr_k·ub_m  to B'  (amount_k, mmr_k: the table's integer numerators).
    big_a, big_b = cn * (da // cd) * scale_a, 0
    events: list[tuple[int, int, int]] = []  # (piece boundary over sd, change of A', change of B')
    for leg, (s, qn, qd, en, ed, ix) in zip(targets, legs):
        md = ix.mmr_den
        a0 = -s * qn * en * (da // (qd * ed)) * scale_a
        ua = da // ix.amount_den * scale_a if with_amount else 0
        if at_price:
            ua_m = 0
            ub_m = qn * fd * (db // (qd * fd * md)) * scale_b
            b0 = qn * (s * md * fd - fn * md) * (db // (qd * fd * md)) * scale_b
        else:
            ua_m = qn * en * (da // (qd * ed * md)) * scale_a
            ub_m = 0
            b0 = qn * (s * fd - fn) * (db // (qd * fd)) * scale_b
        amounts, mmrs = ix.amount_nums, ix.mmr_nums
        if recheck:
            k = ix.clamped_position_of_ratio(0, 1)  # the tier of notional 0 on the first piece [0, …)
            floors, position = ix.floor_nums, qd * (sd // (ix.floor_den * qn))
            for t in range(k + 1, len(floors)):
                d_mmr = mmrs[t] - mmrs[t - 1]
                events.append((floors[t] * position, (amounts[t] - amounts[t - 1]) * ua - d_mmr * ua_m, -d_mmr * ub_m))
        else:
            bn, bd = exact_ratio(leg.mark_price if at_price else leg.entry_price)
            k = ix.clamped_position_of_ratio(qn * bn, qd * bd)  # the family's fixed tier
        big_a += a0 + amounts[k] * ua - mmrs[k] * ua_m
        big_b += b0 - mmrs[k] * ub_m
    if len(legs) > 1:
        events.sort(key=lambda e: e[0])

    roots: list[Fraction] = []
    start = 0
    i, n_events = 0, len(events)
    while True:
        end = events[i][0] if i < n_events else None
        if big_b:
            u, v = -big_a, big_b  # root·sd = u/v
            if v < 0:
                u, v = big_a, -big_b
            if u > 0 and u >= start * v and (end is None or u < end * v):
                roots.append(Fraction(u, v * sd))
        if end is None:
            return roots
        while i < n_events and events[i][0] == end:
            _, d_a, d_b = events[i]
            big_a += d_a
            big_b += d_b
            i += 1
        start = end


def _one_leg_roots(family: LiquidationFamily, c: Fraction, leg: PositionLeg, ix: TierIndex, fee: Fraction) -> list[Fraction]:
    """:func:`solve_trigger_roots` for one leg whose MM is on the notional at price, tier re-checked.

    In the leg's notional ``N = q·P`` the trigger on tier ``k`` is ``K + a_k + β_k·N`` with ``K = c − s·q·E``
    (all that depends on the position) and ``a_k`` (maintenance amount), ``β_k = s − mmr_k − fee`` (the table,
    side and fee only).  So the root ``N* = −(K + a_k)/β_k`` lies in tier ``k``'s ``[floor_k, floor_{k+1})``
    exactly when ``K`` lies in an interval fixed by the table, side and fee: those intervals are computed once
    (memoized on the table's index) and a call only compares its ``K`` with them.
    """
    fn, fd = exact_ratio(fee) if family.uses_taker_fee else (0, 1)
    with_amount = family.uses_maintenance_amount
    s = leg.sign
    key = ("one-leg", s, fn, fd, with_amount)
    pieces = ix.memo.get(key)
    if pieces is None:
        if len(ix.memo) >= 64:  # a handful of fees in practice; never let odd callers grow it without bound
            ix.memo.clear()
        pieces = ix.memo[key] = _one_leg_pieces(ix, s, fn, fd, with_amount)
    scale_k, piece_list = pieces
    qn, qd = exact_ratio(leg.size)
    en, ed = exact_ratio(leg.entry_price)
    cn, cd = exact_ratio(c)
    kn, kd = cn * qd * ed - s * qn * en * cd, cd * qd * ed  # K = kn/kd, kd > 0
    x = kn * scale_k  # K over the pieces' denominator, times kd
    roots: list[Fraction] = []
    for lower, lower_closed, upper, upper_closed, amount, slope in piece_list:
        if lower is not None and not (x >= lower * kd if lower_closed else x > lower * kd):
            continue
        if upper is not None and not (x <= upper * kd if upper_closed else x < upper * kd):
            continue
        # P = N*/q = −(K + a_k) / (β_k·q), with a_k = amount/ad and β_k = slope/(md·fd)
        roots.append(Fraction(-(kn * ix.amount_den + amount * kd) * ix.mmr_den * fd * qd, kd * ix.amount_den * slope * qn))
    return roots


def _one_leg_pieces(ix: TierIndex, s: int, fn: int, fd: int, with_amount: bool) -> tuple[int, list[tuple]]:
    """For :func:`_one_leg_roots`: per tier with ``β_k ≠ 0``, the interval of ``K`` whose root is in that tier.

    ``K = −a_k − N·β_k`` maps the tier's notionals onto that interval (reversed when ``β_k > 0``); ends are
    integers over ``ad·fl·md·fd`` (``None`` for ±∞), each marked closed or open; the first tier excludes
    ``N = 0`` (roots must be positive prices).  Returns ``(denominator, [(lower, lower_closed, upper,
    upper_closed, amount_k, slope_k)])`` with ``a_k = amount_k/ad`` and ``β_k = slope_k/(md·fd)``.
    """
    ad, md, fl = ix.amount_den, ix.mmr_den, ix.floor_den
    scale = ad * fl * md * fd
    n = len(ix.mmr_nums)
    pieces = []
    for k in range(n):
        slope = s * md * fd - ix.mmr_nums[k] * fd - fn * md
        if slope == 0:
            continue  # flat: no crossing (as the reference)
        amount = ix.amount_nums[k] if with_amount else 0
        # K = −a_k − N·β_k at N = floor_num/fl, over `scale`
        at_low = -amount * fl * md * fd - (0 if k == 0 else ix.floor_nums[k]) * slope * ad
        at_high = -amount * fl * md * fd - ix.floor_nums[k + 1] * slope * ad if k + 1 < n else None
        low_closed = k > 0  # N ≥ floor_k, but N > 0 on the first tier
        if slope > 0:  # K decreases with N: (K at the high end, K at the low end]
            pieces.append((at_high, False, at_low, low_closed, amount, slope))
        else:  # [K at the low end, K at the high end)
            pieces.append((at_low, low_closed, at_high, False, amount, slope))
    return scale, pieces


def solve_trigger_roots_reference(
    family: LiquidationFamily, c: Fraction, targets: Sequence[PositionLeg], fee: Fraction
) -> list[Fraction]:
    """Every positive price where margin balance equals maintenance margin (exact), in increasing order.

    The plain version: every piece's coefficients rebuilt from scratch in Fractions (the reference the tests
    hold :func:`solve_trigger_roots` to; also its fallback for tier tables not of the validated shape).
    """
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


def _family_fee(family: LiquidationFamily, taker_fee: Number) -> tuple[Fraction, list[str]]:
    """The taker fee the family's formula uses (0 when it has none) and the note saying a given one was not used."""
    given = Fraction(taker_fee)
    if family.uses_taker_fee:
        return given, []
    notes = [f"taker_fee is not part of the {family.name} formula and was not used"] if given != 0 else []
    return Fraction(0), notes


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
    targets, others, fee, notes, c, mark, lp, other_mm = _solve(
        family, margin_mode, wallet_balance, positions, target, target_side, taker_fee
    )
    if lp is None:
        notes.append("no liquidation price: the margin covers the position at every positive price")
    equity, maintenance = _trigger_at(family, c, targets, mark, fee)
    return _result(family, margin_mode, wallet_balance, targets, others, target_side, mark, lp,
                   equity, maintenance, other_mm, notes)


def liquidation_price_value(
    family: LiquidationFamily,
    margin_mode: MarginMode,
    wallet_balance: Number,
    positions: Sequence[PositionLeg],
    *,
    target: str | None = None,
    target_side: Side | None = None,
    taker_fee: Number = 0,
) -> Fraction | None:
    """:func:`liquidation_price`'s ``liquidation_price`` alone (None: none), without the rest of the result
    (the bankruptcy price, the figures at the mark): for callers that need only the price, many times over."""
    return _solve(family, margin_mode, wallet_balance, positions, target, target_side, taker_fee).price


class _Solved(NamedTuple):
    """What the fast solver found, and what :func:`liquidation_price` builds its result from."""

    targets: Sequence[PositionLeg]
    others: Sequence[PositionLeg]
    fee: Fraction  # the taker fee the family uses (0 when none)
    notes: list[str]
    c: Fraction  # the fixed balance: wallet (or position margin) + the other legs' PnL − their requirement
    mark: Fraction
    price: Fraction | None  # the liquidation price (the root nearest the mark), None when there is none
    other_mm: Fraction  # the other legs' maintenance requirement


def _solve(
    family: LiquidationFamily,
    margin_mode: MarginMode,
    wallet_balance: Number,
    positions: Sequence[PositionLeg],
    target: str | None,
    target_side: Side | None,
    taker_fee: Number,
) -> _Solved:
    """The fast solver's liquidation price, and the pieces it was found from."""
    targets, others = select_targets(margin_mode, positions, target, target_side)
    fee, notes = _family_fee(family, taker_fee)
    c = Fraction(wallet_balance)
    other_mm = Fraction(0)
    if others:  # the other cross legs (isolated has none): their PnL and requirement, computed once
        other_pnl, other_mm = _other_legs(family, others, fee)
        c += other_pnl - other_mm
    mark = Fraction(targets[0].mark_price)
    roots = solve_trigger_roots(family, c, targets, fee)
    if len(roots) == 1:
        lp: Fraction | None = roots[0]
    else:
        lp = min(roots, key=lambda r: (abs(r - mark), r)) if roots else None
    return _Solved(targets, others, fee, notes, c, mark, lp, other_mm)


def liquidation_price_reference(
    family: LiquidationFamily,
    margin_mode: MarginMode,
    wallet_balance: Number,
    positions: Sequence[PositionLeg],
    *,
    target: str | None = None,
    target_side: Side | None = None,
    taker_fee: Number = 0,
) -> LiquidationResult:
    """:func:`liquidation_price` the plain way (every piece rebuilt in Fractions): for tests and benchmarks."""
    targets, others = select_targets(margin_mode, positions, target, target_side)
    fee, notes = _family_fee(family, taker_fee)
    c = fixed_balance(family, margin_mode, wallet_balance, others, fee)
    mark = Fraction(targets[0].mark_price)
    roots = solve_trigger_roots_reference(family, c, targets, fee)
    lp = min(roots, key=lambda r: (abs(r - mark), r)) if roots else None
    if lp is None:
        notes.append("no liquidation price: the margin covers the position at every positive price")
    equity, maintenance = _trigger_at_reference(family, c, targets, mark, fee)
    other_mm = _other_legs(family, others, fee)[1]
    return _result(family, margin_mode, wallet_balance, targets, others, target_side, mark, lp,
                   equity, maintenance, other_mm, notes)


def _result(
    family: LiquidationFamily,
    margin_mode: MarginMode,
    wallet_balance: Number,
    targets: Sequence[PositionLeg],
    others: Sequence[PositionLeg],
    target_side: Side | None,
    mark: Fraction,
    lp: Fraction | None,
    equity: Fraction,
    maintenance: Fraction,
    other_mm: Fraction,
    notes: list[str],
) -> LiquidationResult:
    """The result both solvers report.  ``equity``/``maintenance`` are the target legs' (the other legs'
    maintenance is inside the fixed balance): ``other_mm`` is added back to report the account's figures."""
    primary = next((t for t in targets if t.side is target_side), targets[0])
    tier = family.tier_at(primary, lp if lp is not None else mark)
    return LiquidationResult(
        symbol=primary.symbol,
        side=primary.side if len(targets) == 1 else target_side,
        mark_price=mark,
        liquidation_price=lp,
        bankruptcy_price=bankruptcy_price(margin_mode, wallet_balance, targets, others),
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
