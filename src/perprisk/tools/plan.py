"""Staged margin plan (seed 003, "階段式の証拠金設計"; SPEC §2.4).

Decide the total budget for the trade up front, post part of it as initial margin, and allow adding the rest
only at a few pre-set price levels — never an open-ended "add on every dip".  The seed:
"最初に「このトレードに割り当てる総額」を決め、そのうち一部だけを最初から証拠金に入れ、
残りは“追加するならこの水準だけ”とルール化" and
"無限ナンピンを禁止し、追加の回数・量・条件を最初に固定".

The plan: at most ``max_adds`` levels between the entry and the liquidation price in force at that stage
(default: evenly spaced from the entry toward the initial liquidation price, or toward the invalidation level
when that is nearer — seed 003 limits adds to prices where the scenario is still alive); the remaining budget
split into equal adds; the exact liquidation price after each add.  A level at or beyond the liquidation price
of its stage is refused: the position would be liquidated before the add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perprisk.errors import ValidationError
from perprisk.formulas import LiquidationResult, Side
from perprisk.money import Fraction, Rounding, round_price, round_to_step, to_decimal
from perprisk.tools.venue import (
    Venue,
    adverse,
    brief,
    liquidation_json,
    parse_side,
    positive,
    require_adverse,
    text,
    venue_json,
)

DEFAULT_MAX_ADDS = 3
#: A hard ceiling on the number of add levels: the plan exists to forbid averaging down without end.
MAX_ADD_LEVELS = 10


@dataclass(frozen=True)
class PlanStage:
    """The position after stage ``index`` (0: at entry with the initial margin; k: after the k-th add)."""

    index: int
    price: Decimal | Fraction  # the entry, then the add level where the price stands when adding
    margin_added: Decimal
    margin_total: Decimal
    liquidation: LiquidationResult

    @property
    def liquidation_price(self) -> Fraction | None:
        return self.liquidation.liquidation_price

    @property
    def distance_pct(self) -> Fraction | None:
        """Room from this stage's price to its liquidation price."""
        lp = self.liquidation_price
        return None if lp is None else abs(Fraction(self.price) - lp) / Fraction(self.price) * 100

    def to_json(self, size: Decimal, entry: Decimal) -> dict[str, Any]:
        return {
            "stage": self.index,
            "price": text(self.price),
            "margin_added": text(self.margin_added),
            "margin_total": text(self.margin_total),
            "liquidation_price": text(self.liquidation_price),
            "bankruptcy_price": text(self.liquidation.bankruptcy_price),
            "distance_pct": text(self.distance_pct),
            "leverage": text(Fraction(size) * Fraction(entry) / Fraction(self.margin_total)),
            "tier": self.liquidation.tier.tier,
        }


@dataclass(frozen=True)
class MarginPlan:
    venue: Venue
    side: Side
    size: Decimal
    entry: Decimal
    budget: Decimal
    initial_margin: Decimal
    add_amount: Decimal
    invalidation: Decimal | None
    levels_default: bool  # True when the levels were spaced by the plan, not given
    stages: tuple[PlanStage, ...]
    warnings: tuple[str, ...]

    @property
    def levels(self) -> tuple[Decimal | Fraction, ...]:
        return tuple(s.price for s in self.stages[1:])

    @property
    def unallocated(self) -> Decimal:
        """Budget left over by rounding the equal adds down to the margin step."""
        return self.budget - self.stages[-1].margin_total

    @property
    def final_liquidation_price(self) -> Fraction | None:
        return self.stages[-1].liquidation_price

    def to_json(self) -> dict[str, Any]:
        return {
            **venue_json(self.venue),
            "side": self.side.label,
            "size": text(self.size),
            "entry": text(self.entry),
            "budget": text(self.budget),
            "initial_margin": text(self.initial_margin),
            "adds": len(self.stages) - 1,
            "add_amount": text(self.add_amount),
            "unallocated": text(self.unallocated),
            "levels": [text(x) for x in self.levels],
            "levels_default": self.levels_default,
            "invalidation": text(self.invalidation),
            "final_liquidation_price": text(self.final_liquidation_price),
            "stages": [s.to_json(self.size, self.entry) for s in self.stages],
            "initial": liquidation_json(self.stages[0].liquidation),
            "warnings": list(self.warnings),
        }


def staged_margin_plan(
    venue: Venue,
    side: object,
    size: object,
    entry: object,
    budget: object,
    initial_margin: object,
    *,
    max_adds: int = DEFAULT_MAX_ADDS,
    levels: Sequence[object] | None = None,
    invalidation: object = None,
    tick: object = None,
    margin_step: object = "0.01",
) -> MarginPlan:
    """Plan the initial margin and up to ``max_adds`` equal margin adds at pre-set levels.

    ``levels`` given: at most ``max_adds`` prices, each moving further from the entry, each strictly before
    the liquidation price of its stage (and before ``invalidation`` when given) — else refused, naming the
    level.
    ``levels`` absent: ``max_adds`` levels evenly spaced from the entry toward the initial liquidation price
    (or the invalidation level when it lies before it), ``entry + k/(N+1)·(boundary − entry)``, rounded to the
    ``tick`` toward the entry.  The adds split ``budget − initial_margin`` equally, rounded down to
    ``margin_step`` (the plan never exceeds the budget).
    """
    s = parse_side(side)
    q = positive(size, "size")
    e = positive(entry, "entry")
    b = to_decimal(budget, "budget", positive=True)  # amounts of record: Decimals
    m0 = to_decimal(initial_margin, "initial_margin", positive=True)
    step = positive(margin_step, "margin_step")
    price_tick = None if tick is None else positive(tick, "tick")
    if isinstance(max_adds, bool) or not isinstance(max_adds, int) or not (0 <= max_adds <= MAX_ADD_LEVELS):
        raise ValidationError("max_adds", f"must be an integer in [0, {MAX_ADD_LEVELS}], got {max_adds!r}")
    if m0 > b:
        raise ValidationError("initial_margin", f"{m0} exceeds the budget {b}")
    inv = None if invalidation is None else positive(invalidation, "invalidation")
    if inv is not None:
        require_adverse(s, inv, e, "invalidation", "the invalidation level")

    notional = Fraction(q) * Fraction(e)
    tier = venue.tier_for_notional(notional)
    if tier is None:
        raise ValidationError("size", f"a notional of {brief(notional)} is beyond the last risk tier's cap")
    if notional > Fraction(tier.max_leverage) * Fraction(m0):
        raise ValidationError(
            "initial_margin",
            f"{m0} means {brief(notional / Fraction(m0))}× leverage, above the tier's maximum "
            f"{brief(tier.max_leverage)}× (at least {brief(notional / Fraction(tier.max_leverage))} is "
            "needed)",
        )
    first = venue.isolated(s, q, e, m0)
    if first.already_liquidatable:
        raise ValidationError("initial_margin", f"{m0} does not cover the maintenance margin at the entry")
    lp0 = first.liquidation_price

    warnings: list[str] = []
    if levels is not None:
        if len(levels) > max_adds:
            raise ValidationError(
                "levels", f"{len(levels)} levels given, at most {max_adds} allowed (max_adds)"
            )
        planned = [positive(x, f"levels[{i}]") for i, x in enumerate(levels)]
        default = False
    else:
        if lp0 is None:
            if max_adds and inv is None:
                raise ValidationError(
                    "levels", "the position has no liquidation price: give the add levels explicitly"
                )
            boundary = Fraction(inv) if inv is not None else None
        else:
            boundary = lp0 if inv is None or adverse(s, inv, lp0) else Fraction(inv)
        planned = []
        if max_adds and boundary is not None:
            for k in range(1, max_adds + 1):
                exact = Fraction(e) + Fraction(k, max_adds + 1) * (boundary - Fraction(e))
                planned.append(
                    exact
                    if price_tick is None
                    else round_price(
                        exact, price_tick, Rounding.CEILING if s is Side.LONG else Rounding.FLOOR
                    )
                )
        default = True

    remaining = b - m0
    if planned and remaining <= 0:
        raise ValidationError("initial_margin", "equals the budget: nothing is left for the add levels")
    add = round_to_step(Fraction(remaining) / len(planned), step, Rounding.DOWN) if planned else Decimal(0)
    if planned and add <= 0:
        raise ValidationError(
            "budget", f"the remaining {remaining} split over {len(planned)} adds rounds to zero"
        )

    stages = [PlanStage(0, e, m0, m0, first)]
    previous: Decimal | Fraction = e
    for k, level in enumerate(planned):
        field = f"levels[{k}]"
        if not adverse(s, level, previous):
            what = "the entry" if k == 0 else f"the previous level {brief(previous)}"
            where = "below" if s is Side.LONG else "above"
            raise ValidationError(field, f"{brief(level)} must lie {where} {what} for a {s.label}")
        if inv is not None and not adverse(s, inv, level):
            raise ValidationError(
                field,
                f"{brief(level)} lies at or beyond the invalidation level {inv}: the idea is already wrong "
                "there",
            )
        lp = stages[-1].liquidation_price
        if lp is not None and not adverse(s, lp, level):
            raise ValidationError(
                field,
                f"{brief(level)} lies at or beyond the liquidation price {brief(lp)} of stage {k}: the "
                "position "
                "would be liquidated before this add",
            )
        total = stages[-1].margin_total + add
        stages.append(PlanStage(k + 1, level, add, total, venue.isolated(s, q, e, total)))
        previous = level

    final_lp = stages[-1].liquidation_price
    if inv is not None and final_lp is not None and not adverse(s, final_lp, inv):
        warnings.append(
            f"even after every add the liquidation price {brief(final_lp)} lies before the invalidation "
            f"level {inv}: "
            "the exchange liquidates the position before the idea is proven wrong (seed 003)"
        )
    return MarginPlan(venue, s, q, e, b, m0, add, inv, default, tuple(stages), tuple(warnings))
