"""Position sizing (SPEC §2.4; seeds 003 and 000).

* **Reverse sizing** (seed 003, "具体例1"): decide the worst price you want to survive and the margin you
  allot, then take the largest position (on the lot grid) whose liquidation price lies beyond that worst
  price — and which the exchange accepts (opening leverage ``q·E / margin`` within the tier's maximum).
* **Margin for a target liquidation price** (seed 003: "証拠金を厚くする"): given size and entry, the position
  margin that puts the liquidation price exactly at a target.
* **Risk-per-trade sizing** (seed 000 §3.3: 1–2 % of the account per trade): ``size = account × risk% /
  |entry − stop|``, and whether that stop lies before the liquidation price.

Every liquidation price here comes from :func:`perprisk.formulas.liquidation_price` (through
:class:`~perprisk.tools.venue.Venue`); the margin for a target comes from
:func:`perprisk.formulas.margin_balance` and is checked by recomputing the liquidation price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perprisk.errors import PerpriskError, ValidationError
from perprisk.formulas import LiquidationResult, Side
from perprisk.money import MONEY_CONTEXT, Fraction, Number, Rounding, round_quantity, round_to_step
from perprisk.tools.venue import (
    DEFAULT_LOT,
    Venue,
    adverse,
    brief,
    liquidation_json,
    parse_side,
    positive,
    rate_fraction,
    require_adverse,
    text,
    venue_json,
)

#: Seed 000 §3.3: the maximum loss per trade should ideally be 1–2 % of the account.
DEFAULT_RISK_PCT = Decimal(1)
MAX_RECOMMENDED_RISK_PCT = Decimal(2)

LIMITED_BY_LIQUIDATION = "liquidation_price"
LIMITED_BY_LEVERAGE = "max_leverage"


def largest_true(predicate: Callable[[int], bool], upper: int) -> int:
    """The largest ``n`` in ``[0, upper]`` with ``predicate(n)``, for a predicate true at 0 and monotone
    (true up to some ``n``, false after): a binary search with ``O(log upper)`` exact evaluations."""
    lo, hi = 0, max(upper, 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if predicate(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _lots(n: int, lot: Decimal) -> Decimal:
    return MONEY_CONTEXT.multiply(Decimal(n), lot)


# -------------------------------------------------------------------------------------- reverse sizing


@dataclass(frozen=True)
class ReverseSizing:
    """The largest position that survives ``worst`` with ``margin`` of isolated position margin."""

    venue: Venue
    side: Side
    entry: Decimal
    worst: Decimal
    margin: Decimal
    lot: Decimal
    size: Decimal  # on the lot grid; 0 when not even one lot fits
    lots: int
    limited_by: str  # LIMITED_BY_LIQUIDATION or LIMITED_BY_LEVERAGE
    size_by_liquidation: Decimal  # the largest size the worst-price rule alone allows
    size_by_leverage: Decimal  # the largest size the tiers' maximum leverage alone allows
    liquidation: LiquidationResult | None  # of ``size`` (None when size is 0)
    next_lot_liquidation_price: Fraction | None  # LP with one lot more: at or before ``worst`` unless capped
    notes: tuple[str, ...]

    @property
    def notional(self) -> Fraction:
        return Fraction(self.size) * Fraction(self.entry)

    @property
    def leverage(self) -> Fraction:
        return self.notional / Fraction(self.margin)

    @property
    def worst_distance_pct(self) -> Fraction:
        return abs(Fraction(self.entry) - Fraction(self.worst)) / Fraction(self.entry) * 100

    def to_json(self) -> dict[str, Any]:
        tier = self.venue.tier_for_notional(self.notional) if self.size > 0 else None
        return {
            **venue_json(self.venue),
            "side": self.side.label,
            "entry": text(self.entry),
            "worst": text(self.worst),
            "worst_distance_pct": text(self.worst_distance_pct),
            "margin": text(self.margin),
            "lot": text(self.lot),
            "size": text(self.size),
            "lots": self.lots,
            "notional": text(self.notional),
            "leverage": text(self.leverage),
            "max_leverage": None if tier is None else text(tier.max_leverage),
            "limited_by": self.limited_by,
            "size_by_liquidation": text(self.size_by_liquidation),
            "size_by_leverage": text(self.size_by_leverage),
            "liquidation": liquidation_json(self.liquidation),
            "next_lot_liquidation_price": text(self.next_lot_liquidation_price),
            "notes": list(self.notes),
        }


def survives(venue: Venue, side: Side, size: Decimal, entry: Decimal, margin: Number, worst: Decimal) -> bool:
    """True when the isolated position's liquidation price lies strictly beyond ``worst`` (or there is none).

    At exactly the liquidation price the trigger fires (equity ≤ maintenance, SPEC §2), so equality fails.
    """
    result = venue.isolated(side, size, entry, margin)
    if result.already_liquidatable:
        return False
    lp = result.liquidation_price
    return lp is None or adverse(side, lp, worst)


def leverage_allowed(venue: Venue, size: Decimal, entry: Decimal, margin: Decimal) -> bool:
    """Opening leverage ``q·E / margin`` within the maximum of the tier of the notional ``q·E`` (SPEC §2)."""
    notional = Fraction(size) * Fraction(entry)
    tier = venue.tier_for_notional(notional)
    return tier is not None and notional <= Fraction(tier.max_leverage) * Fraction(margin)


def reverse_size(
    venue: Venue, side: object, entry: object, worst: object, margin: object, lot: object = DEFAULT_LOT
) -> ReverseSizing:
    """The largest size on the ``lot`` grid whose isolated liquidation price lies beyond ``worst``.

    Both rules are monotone in the size (a bigger position has less margin per unit and a maintenance
    requirement that never falls), so each is found by a binary search over the number of lots with the exact
    liquidation price.  Upper bounds that no feasible size can exceed:

    * worst price: survival needs ``margin − q·|E − W| − MM(W) > 0`` with ``MM ≥ −max maintenance amount``,
      so ``q < (margin + max amount) / |E − W|``;
    * leverage: ``q ≤ max leverage (of any tier) × margin / E``.
    """
    s = parse_side(side)
    e = positive(entry, "entry")
    w = positive(worst, "worst")
    m = positive(margin, "margin")
    step = positive(lot, "lot")
    require_adverse(s, w, e, "worst", "the worst price")

    gap = abs(Fraction(e) - Fraction(w))
    bound_lp = int((Fraction(m) + Fraction(venue.largest_maintenance_amount)) / gap / Fraction(step))
    bound_lev = int(Fraction(venue.highest_max_leverage) * Fraction(m) / Fraction(e) / Fraction(step))

    n_lp = largest_true(lambda n: survives(venue, s, _lots(n, step), e, m, w), bound_lp)
    n_lev = largest_true(lambda n: leverage_allowed(venue, _lots(n, step), e, m), bound_lev)
    n = min(n_lp, n_lev)
    limited_by = LIMITED_BY_LIQUIDATION if n_lp <= n_lev else LIMITED_BY_LEVERAGE
    size = _lots(n, step)
    notes: list[str] = []
    result = venue.isolated(s, size, e, m) if n > 0 else None
    next_lp = venue.liquidation_price(s, _lots(n + 1, step), e, m)
    if n == 0:
        notes.append(
            f"not even one lot ({step}) fits: with margin {brief(m)} its liquidation price would lie at or "
            f"before the worst price {w}"
            if n_lp == 0
            else f"not even one lot ({step}) fits within the tier's maximum leverage with margin {brief(m)}"
        )
    elif limited_by == LIMITED_BY_LEVERAGE:
        notes.append(
            f"capped by the tier's maximum leverage: the worst-price rule alone would allow a size of "
            f"{brief(_lots(n_lp, step))}"
        )
    # Self-check of the search against the exact rule (screen fast, confirm exactly).
    if n > 0 and not survives(venue, s, size, e, m, w):
        raise PerpriskError(f"reverse sizing: size {size} does not survive {w}")  # pragma: no cover
    if limited_by == LIMITED_BY_LIQUIDATION and survives(venue, s, _lots(n + 1, step), e, m, w):
        raise PerpriskError(f"reverse sizing: size {size} is not the largest")  # pragma: no cover
    return ReverseSizing(
        venue,
        s,
        e,
        w,
        m,
        step,
        size,
        n,
        limited_by,
        _lots(n_lp, step),
        _lots(n_lev, step),
        result,
        next_lp,
        tuple(notes),
    )


# --------------------------------------------------------------------------- margin for a target LP


@dataclass(frozen=True)
class MarginForTarget:
    """The isolated position margin that puts the liquidation price exactly at ``target``."""

    venue: Venue
    side: Side
    size: Decimal
    entry: Decimal
    target: Decimal
    margin: Fraction  # exact
    margin_step: Decimal
    margin_rounded: Decimal  # rounded up to the step: the LP lies at or beyond the target
    liquidation: LiquidationResult  # with the exact margin: its LP equals the target (checked)
    liquidation_rounded: LiquidationResult  # with the rounded margin
    max_leverage: Decimal
    min_margin: Fraction  # q·E / max leverage: the least margin the exchange accepts
    notes: tuple[str, ...]

    @property
    def leverage(self) -> Fraction:
        return Fraction(self.size) * Fraction(self.entry) / self.margin

    @property
    def within_max_leverage(self) -> bool:
        return self.margin >= self.min_margin

    def to_json(self) -> dict[str, Any]:
        return {
            **venue_json(self.venue),
            "side": self.side.label,
            "size": text(self.size),
            "entry": text(self.entry),
            "target_liquidation_price": text(self.target),
            "margin": text(self.margin),
            "margin_step": text(self.margin_step),
            "margin_rounded": text(self.margin_rounded),
            "liquidation_price": text(self.liquidation.liquidation_price),
            "liquidation_price_rounded": text(self.liquidation_rounded.liquidation_price),
            "bankruptcy_price": text(self.liquidation.bankruptcy_price),
            "distance_pct": text(self.liquidation.distance_pct),
            "tier": self.liquidation.tier.tier,
            "leverage": text(self.leverage),
            "max_leverage": text(self.max_leverage),
            "min_margin": text(self.min_margin),
            "within_max_leverage": self.within_max_leverage,
            "notes": list(self.notes),
        }


def margin_for_liquidation_price(
    venue: Venue, side: object, size: object, entry: object, target: object, margin_step: object = "0.01"
) -> MarginForTarget:
    """Position margin ``PM`` with the isolated liquidation price exactly at ``target``.

    The liquidation price is where margin balance equals maintenance (SPEC §2).  The margin balance is
    ``PM + U(T)``, so ``PM = maintenance(T) − U(T)``: both read from
    :func:`perprisk.formulas.margin_balance` with a zero margin, then checked by recomputing the liquidation
    price with :func:`perprisk.formulas.liquidation_price`.
    """
    s = parse_side(side)
    q = positive(size, "size")
    e = positive(entry, "entry")
    t = positive(target, "target")
    step = positive(margin_step, "margin_step")
    require_adverse(s, t, e, "target", "the target liquidation price")
    pnl_at_target, maintenance_at_target = venue.balance_at(s, q, e, 0, t)
    margin = maintenance_at_target - pnl_at_target
    if margin <= 0:  # pragma: no cover - impossible for a target on the losing side with MM ≥ 0
        raise ValidationError("target", f"no positive margin puts the liquidation price at {t}")
    exact = venue.isolated(s, q, e, margin)
    if exact.liquidation_price != Fraction(t):
        raise PerpriskError(  # pragma: no cover - the solver and margin_balance are one formula
            f"margin for target: recomputed LP {exact.liquidation_price} differs from the target {t}"
        )
    rounded = round_to_step(margin, step, Rounding.CEILING)
    notional = Fraction(q) * Fraction(e)
    tier = venue.tier_for_notional(notional)
    if tier is None:
        raise ValidationError("size", f"a notional of {brief(notional)} is beyond the last risk tier's cap")
    min_margin = notional / Fraction(tier.max_leverage)
    notes: list[str] = []
    if margin < min_margin:
        lp_min = venue.liquidation_price(s, q, e, min_margin)
        notes.append(
            f"leverage {brief(notional / margin)}× exceeds the tier's maximum {brief(tier.max_leverage)}×: "
            f"the exchange needs at least {brief(min_margin)} of margin, which puts the liquidation price "
            f"at {brief(lp_min)}"
        )
    return MarginForTarget(
        venue,
        s,
        q,
        e,
        t,
        margin,
        step,
        rounded,
        exact,
        venue.isolated(s, q, e, rounded),
        tier.max_leverage,
        min_margin,
        tuple(notes),
    )


# ---------------------------------------------------------------------------------- risk per trade


@dataclass(frozen=True)
class RiskSizing:
    """``size = account × risk% / |entry − stop|`` (seed 000 §3.3), on the lot grid (rounded down)."""

    venue: Venue | None
    side: Side
    account: Decimal
    risk_pct: Decimal
    entry: Decimal
    stop: Decimal
    lot: Decimal | None
    size_exact: Fraction
    size: Decimal | Fraction
    margin: Fraction | None
    liquidation: LiquidationResult | None
    warnings: tuple[str, ...]

    @property
    def risk_amount(self) -> Fraction:
        return Fraction(self.account) * Fraction(self.risk_pct) / 100

    @property
    def stop_distance(self) -> Fraction:
        return abs(Fraction(self.entry) - Fraction(self.stop))

    @property
    def risk_at_size(self) -> Fraction:
        """The loss if the stop fills exactly (fees and slippage excluded)."""
        return Fraction(self.size) * self.stop_distance

    @property
    def notional(self) -> Fraction:
        return Fraction(self.size) * Fraction(self.entry)

    @property
    def stop_before_liquidation(self) -> bool | None:
        """True when the stop is hit before the liquidation price (``None`` without a margin)."""
        if self.liquidation is None:
            return None
        lp = self.liquidation.liquidation_price
        return lp is None or adverse(self.side, lp, self.stop)

    def to_json(self) -> dict[str, Any]:
        lev = None if self.margin is None or self.margin == 0 else self.notional / self.margin
        return {
            **(venue_json(self.venue) if self.venue is not None else {}),
            "side": self.side.label,
            "account": text(self.account),
            "risk_pct": text(self.risk_pct),
            "risk_amount": text(self.risk_amount),
            "entry": text(self.entry),
            "stop": text(self.stop),
            "stop_distance": text(self.stop_distance),
            "stop_distance_pct": text(self.stop_distance / Fraction(self.entry) * 100),
            "lot": text(self.lot),
            "size_exact": text(self.size_exact),
            "size": text(self.size),
            "risk_at_size": text(self.risk_at_size),
            "notional": text(self.notional),
            "margin": text(self.margin),
            "leverage": text(lev),
            "liquidation": liquidation_json(self.liquidation),
            "stop_before_liquidation": self.stop_before_liquidation,
            "warnings": list(self.warnings),
        }


def risk_size(
    account: object,
    entry: object,
    stop: object,
    *,
    risk_pct: object = DEFAULT_RISK_PCT,
    side: object = None,
    lot: object = DEFAULT_LOT,
    venue: Venue | None = None,
    margin: object = None,
    leverage: object = None,
) -> RiskSizing:
    """Size a trade so that a stop-out loses ``risk_pct`` % of ``account``.

    The side follows from the stop (below the entry: long); when ``side`` is given it must agree.  With a
    ``venue`` and ``margin`` (or ``leverage``: margin = notional / leverage) the isolated liquidation price is
    solved and the stop is checked to lie before it.  ``lot=None`` keeps the exact size.
    """
    acct = positive(account, "account")
    e = positive(entry, "entry")
    st = positive(stop, "stop")
    pct = rate_fraction(risk_pct, "risk_pct", high=Decimal(100), high_open=False)
    if st == e:
        raise ValidationError("stop", "must differ from the entry")
    implied = Side.LONG if st < e else Side.SHORT
    s = implied if side is None else parse_side(side)
    require_adverse(s, st, e, "stop", "the stop")
    step = None if lot is None else positive(lot, "lot")
    if margin is not None and leverage is not None:
        raise ValidationError("leverage", "give margin or leverage, not both")
    m = None if margin is None else positive(margin, "margin")
    lev = None if leverage is None else positive(leverage, "leverage")
    if lev is not None and lev < 1:
        raise ValidationError("leverage", f"must be at least 1, got {lev}")

    exact = Fraction(acct) * Fraction(pct) / 100 / abs(Fraction(e) - Fraction(st))
    size: Decimal | Fraction = exact if step is None else round_quantity(exact, step, Rounding.DOWN)
    warnings: list[str] = []
    if pct > MAX_RECOMMENDED_RISK_PCT:
        warnings.append(f"risking {pct} % per trade: seed 000 §3.3 recommends 1–2 % of the account")
    position_margin: Fraction | None = None
    if m is not None:
        position_margin = Fraction(m)
    elif lev is not None:
        position_margin = Fraction(size) * Fraction(e) / Fraction(lev)
    result = None
    if size == 0:
        warnings.append(f"the exact size {brief(exact)} rounds down to zero lots of {step}")
    elif venue is not None and position_margin is not None:
        result = venue.isolated(s, size, e, position_margin)
        lp = result.liquidation_price
        if lp is not None and not adverse(s, lp, st):
            warnings.append(
                f"the stop {st} lies at or beyond the liquidation price {brief(lp)}: the exchange liquidates "
                "the position before the stop (seed 003: place the stop before the liquidation price)"
            )
        tier = venue.tier_for_notional(Fraction(size) * Fraction(e))
        if tier is None or Fraction(size) * Fraction(e) > Fraction(tier.max_leverage) * position_margin:
            cap = (
                "beyond the last tier"
                if tier is None
                else f"above the tier's maximum {brief(tier.max_leverage)}×"
            )
            warnings.append(f"the opening leverage is {cap}: the exchange would refuse the order")
    if position_margin is not None and position_margin > Fraction(acct):
        warnings.append(f"the margin {brief(position_margin)} exceeds the account {acct}")
    return RiskSizing(venue, s, acct, pct, e, st, step, exact, size, position_margin, result, tuple(warnings))
