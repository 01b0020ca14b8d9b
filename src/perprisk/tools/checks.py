"""Quick risk checks of the trader's toolkit (SPEC §2.4, seed 000 §3.1–3.3, seed 003).

* margin usage ``used margin / equity`` — keep it at or below 80 % (seed 000 §3.3 "証拠金使用率");
* reward:risk — at least 1:2 (seed 000 §3.2 "リスクリワード比1:2以上");
* leverage — beginners ≤ 5×, experienced traders ≤ 20× (seed 000 §3.1);
* a stop placed before the liquidation price, by default half-way (seed 003: "清算距離の半分で撤退").

Each check returns a small frozen value with a :class:`Level` and a message a trader can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from perprisk.errors import ValidationError
from perprisk.formulas import LiquidationResult, Side
from perprisk.money import FRACTION_TYPES, Fraction, Rounding, round_price, to_decimal
from perprisk.tools.venue import (
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


class Level(str, Enum):
    OK = "ok"
    CAUTION = "caution"
    DANGER = "danger"


def _fmt(x: Fraction | Decimal, places: int = 2) -> str:
    """Short human text for messages (JSON fields keep full precision)."""
    from perprisk.money import format_decimal, quantize

    return format_decimal(quantize(x, Decimal(1).scaleb(-places), Rounding.HALF_EVEN))


# ------------------------------------------------------------------------------------------ margin usage

#: Seed 000 §3.3: the funds committed to positions should not exceed 80 % of the total.
DEFAULT_USAGE_LIMIT_PCT = Decimal(80)


@dataclass(frozen=True)
class MarginUsage:
    used_margin: Decimal
    equity: Decimal
    limit_pct: Decimal
    usage_pct: Fraction
    level: Level
    message: str

    @property
    def free_margin(self) -> Fraction:
        return Fraction(self.equity) - Fraction(self.used_margin)

    def to_json(self) -> dict[str, Any]:
        return {
            "used_margin": text(self.used_margin),
            "equity": text(self.equity),
            "free_margin": text(self.free_margin),
            "usage_pct": text(self.usage_pct),
            "limit_pct": text(self.limit_pct),
            "ok": self.level is Level.OK,
            "level": self.level.value,
            "message": self.message,
        }


def margin_usage(
    used_margin: object, equity: object, limit_pct: object = DEFAULT_USAGE_LIMIT_PCT
) -> MarginUsage:
    """``usage = used margin / equity``: ok up to ``limit_pct`` (80 %), caution above, danger from 100 %."""
    used = to_decimal(used_margin, "used_margin", non_negative=True)
    eq = positive(equity, "equity")
    limit = rate_fraction(limit_pct, "limit_pct", high=Decimal(100), high_open=False)
    usage = Fraction(used) / Fraction(eq) * 100
    if usage <= Fraction(limit):
        level = Level.OK
        message = f"margin usage {_fmt(usage)} % is within the {limit} % limit"
    elif usage < 100:
        level = Level.CAUTION
        message = (
            f"margin usage {_fmt(usage)} % exceeds {limit} %: keep a reserve to absorb adverse moves "
            "(seed 000 §3.3)"
        )
    else:
        level = Level.DANGER
        message = (
            f"margin usage {_fmt(usage)} %: no free margin left, any adverse move eats into the positions"
        )
    return MarginUsage(used, eq, limit, usage, level, message)


# ------------------------------------------------------------------------------------------ reward : risk

#: Seed 000 §3.2: reward at least twice the risk (1:2).
DEFAULT_MIN_REWARD_RISK = Decimal(2)


@dataclass(frozen=True)
class RewardRisk:
    side: Side
    entry: Decimal
    stop: Decimal
    target: Decimal
    min_ratio: Decimal
    size: Decimal | None
    level: Level
    message: str

    @property
    def risk(self) -> Fraction:
        return abs(Fraction(self.entry) - Fraction(self.stop))

    @property
    def reward(self) -> Fraction:
        return abs(Fraction(self.target) - Fraction(self.entry))

    @property
    def ratio(self) -> Fraction:
        return self.reward / self.risk

    @property
    def breakeven_win_rate_pct(self) -> Fraction:
        """The share of winning trades at which this setup breaks even: ``risk / (risk + reward)``."""
        return self.risk / (self.risk + self.reward) * 100

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side.label,
            "entry": text(self.entry),
            "stop": text(self.stop),
            "target": text(self.target),
            "risk_per_unit": text(self.risk),
            "reward_per_unit": text(self.reward),
            "ratio": text(self.ratio),
            "min_ratio": text(self.min_ratio),
            "breakeven_win_rate_pct": text(self.breakeven_win_rate_pct),
            "size": text(self.size),
            "risk_amount": None if self.size is None else text(self.risk * Fraction(self.size)),
            "reward_amount": None if self.size is None else text(self.reward * Fraction(self.size)),
            "ok": self.level is Level.OK,
            "level": self.level.value,
            "message": self.message,
        }


def reward_risk(
    entry: object,
    stop: object,
    target: object,
    *,
    side: object = None,
    min_ratio: object = DEFAULT_MIN_REWARD_RISK,
    size: object = None,
) -> RewardRisk:
    """Reward:risk of a trade: ok at ``min_ratio`` (2) or more, caution between 1 and it, danger below 1."""
    e = positive(entry, "entry")
    st = positive(stop, "stop")
    tg = positive(target, "target")
    floor = positive(min_ratio, "min_ratio")
    q = None if size is None else positive(size, "size")
    if st == e:
        raise ValidationError("stop", "must differ from the entry")
    s = (Side.LONG if st < e else Side.SHORT) if side is None else parse_side(side)
    require_adverse(s, st, e, "stop", "the stop")
    if not adverse(s, e, tg):
        where = "above" if s is Side.LONG else "below"
        raise ValidationError("target", f"the target {tg} must lie {where} the entry {e} for a {s.label}")
    ratio = abs(Fraction(tg) - Fraction(e)) / abs(Fraction(e) - Fraction(st))
    shown = f"1:{_fmt(ratio)}"
    if ratio >= Fraction(floor):
        level, message = Level.OK, f"reward:risk {shown} meets the 1:{floor} minimum"
    elif ratio >= 1:
        level, message = (
            Level.CAUTION,
            (
                f"reward:risk {shown} is below 1:{floor} (seed 000 §3.2): the target "
                "should be further, or the stop closer"
            ),
        )
    else:
        level, message = Level.DANGER, f"reward:risk {shown}: the reward is smaller than the risk"
    return RewardRisk(s, e, st, tg, floor, q, level, message)


# ------------------------------------------------------------------------------------------------ leverage

#: Seed 000 §3.1: "初心者は5倍以下、経験者でも20倍以下が理想です".
BEGINNER_MAX_LEVERAGE = Decimal(5)
EXPERT_MAX_LEVERAGE = Decimal(20)
EXPERIENCE_LIMITS = {"beginner": BEGINNER_MAX_LEVERAGE, "expert": EXPERT_MAX_LEVERAGE}


@dataclass(frozen=True)
class LeverageCheck:
    leverage: Decimal
    experience: str
    limit: Decimal
    level: Level
    message: str
    tier_max_leverage: Decimal | None  # of the notional's tier, when a venue and notional were given
    notional: Decimal | None

    @property
    def within_limit(self) -> bool:
        return self.leverage <= self.limit

    @property
    def margin_wiping_move_pct(self) -> Fraction:
        """The adverse move that takes the whole initial margin: ``1 / L`` (seed 000: 10× → 10 %)."""
        return Fraction(100) / Fraction(self.leverage)

    def to_json(self) -> dict[str, Any]:
        return {
            "leverage": text(self.leverage),
            "experience": self.experience,
            "limit": text(self.limit),
            "within_limit": self.within_limit,
            "beginner_limit": text(BEGINNER_MAX_LEVERAGE),
            "expert_limit": text(EXPERT_MAX_LEVERAGE),
            "margin_wiping_move_pct": text(self.margin_wiping_move_pct),
            "notional": text(self.notional),
            "tier_max_leverage": text(self.tier_max_leverage),
            "ok": self.level is Level.OK,
            "level": self.level.value,
            "message": self.message,
        }


def leverage_check(
    leverage: object, experience: str = "beginner", *, venue: Venue | None = None, notional: object = None
) -> LeverageCheck:
    """Leverage against the seed's limits for the trader's ``experience`` ("beginner" or "expert").

    Levels: ok within the trader's limit; caution above the beginner limit but within the expert limit (a
    beginner at 10×); danger above the expert limit (20×) — or above the tier's maximum, which the exchange
    refuses, when a venue and notional are given.
    """
    lev = positive(leverage, "leverage")
    if lev < 1:
        raise ValidationError("leverage", f"must be at least 1, got {lev}")
    key = experience.strip().lower() if isinstance(experience, str) else None
    if key not in EXPERIENCE_LIMITS:
        raise ValidationError("experience", f"must be 'beginner' or 'expert', got {experience!r}")
    limit = EXPERIENCE_LIMITS[key]
    n = None if notional is None else positive(notional, "notional")
    tier_max: Decimal | None = None
    beyond_table = False
    if n is not None:
        if venue is None:
            raise ValidationError("notional", "needs a venue (tiers) to look up the tier's maximum leverage")
        tier = venue.tier_for_notional(n)
        beyond_table = tier is None
        tier_max = None if tier is None else tier.max_leverage
    move = _fmt(Fraction(100) / Fraction(lev))
    if beyond_table:
        level = Level.DANGER
        message = f"a notional of {n} is beyond the last risk tier: the exchange refuses the order"
    elif tier_max is not None and lev > tier_max:
        level = Level.DANGER
        message = (
            f"{lev}× exceeds the tier's maximum {brief(tier_max)}× for a notional of {n}: "
            "the exchange refuses it"
        )
    elif lev <= limit:
        level = Level.OK
        message = (
            f"{lev}× is within the {key} limit of {limit}×; a {move} % adverse move takes the whole margin"
        )
    elif lev <= EXPERT_MAX_LEVERAGE:
        level = Level.CAUTION
        message = (
            f"{lev}× exceeds the beginner limit of {BEGINNER_MAX_LEVERAGE}× (seed 000 §3.1: beginners ≤ 5×, "
            f"experienced ≤ 20×); a {move} % adverse move takes the whole margin"
        )
    else:
        level = Level.DANGER
        message = (
            f"{lev}× exceeds even the experienced traders' limit of {EXPERT_MAX_LEVERAGE}×; a {move} % "
            "adverse move takes the whole margin"
        )
    return LeverageCheck(lev, key, limit, level, message, tier_max, n)


# ----------------------------------------------------------------------------------------- stop suggestion

#: Seed 003: "清算距離の半分で撤退" — exit at half the liquidation distance.
DEFAULT_STOP_FRACTION = Fraction(1, 2)


@dataclass(frozen=True)
class StopSuggestion:
    side: Side
    entry: Decimal
    liquidation_price: Fraction
    fraction: Decimal
    stop_exact: Fraction  # entry + fraction × (LP − entry)
    stop: Decimal | Fraction  # on the tick grid (rounded toward the entry) when a tick is given
    tick: Decimal | None
    liquidation: LiquidationResult | None  # when solved from a position
    venue: Venue | None = None  # the venue it was solved on

    @property
    def stop_distance_pct(self) -> Fraction:
        return abs(Fraction(self.entry) - Fraction(self.stop)) / Fraction(self.entry) * 100

    @property
    def liquidation_distance_pct(self) -> Fraction:
        return abs(Fraction(self.entry) - self.liquidation_price) / Fraction(self.entry) * 100

    @property
    def buffer_to_liquidation(self) -> Fraction:
        """Price room left between the stop and the liquidation price (for slippage)."""
        return abs(Fraction(self.stop) - self.liquidation_price)

    def to_json(self) -> dict[str, Any]:
        return {
            **(venue_json(self.venue) if self.venue is not None else {}),
            "side": self.side.label,
            "entry": text(self.entry),
            "liquidation_price": text(self.liquidation_price),
            "liquidation_distance_pct": text(self.liquidation_distance_pct),
            "fraction": text(self.fraction),
            "stop_exact": text(self.stop_exact),
            "stop": text(self.stop),
            "tick": text(self.tick),
            "stop_distance_pct": text(self.stop_distance_pct),
            "buffer_to_liquidation": text(self.buffer_to_liquidation),
            "liquidation": liquidation_json(self.liquidation),
        }


def suggest_stop(
    side: object,
    entry: object,
    liquidation_price: object,
    *,
    fraction: object = "0.5",
    tick: object = None,
    liquidation: LiquidationResult | None = None,
    venue: Venue | None = None,
) -> StopSuggestion:
    """A stop ``fraction`` of the way from the entry to the liquidation price (default half-way, seed 003).

    With a ``tick`` the stop is rounded toward the entry (ceiling for a long, floor for a short), so rounding
    never moves it closer to the liquidation price.
    """
    s = parse_side(side)
    e = positive(entry, "entry")
    lp = (
        Fraction(positive(liquidation_price, "liquidation_price"))
        if not isinstance(liquidation_price, FRACTION_TYPES)
        else liquidation_price
    )
    if lp <= 0:
        raise ValidationError("liquidation_price", f"must be greater than zero, got {lp}")
    if not adverse(s, lp, e):
        where = "below" if s is Side.LONG else "above"
        raise ValidationError(
            "liquidation_price",
            f"a {s.label}'s liquidation price must lie {where} its entry {e}, got {brief(lp)}",
        )
    f = rate_fraction(fraction, "fraction")
    step = None if tick is None else positive(tick, "tick")
    exact = Fraction(e) + Fraction(f) * (lp - Fraction(e))
    stop: Decimal | Fraction = exact
    if step is not None:
        stop = round_price(exact, step, Rounding.CEILING if s is Side.LONG else Rounding.FLOOR)
        if Fraction(stop) == Fraction(e):
            raise ValidationError(
                "tick", f"the tick {step} is too coarse: the stop rounds onto the entry {e}"
            )
    return StopSuggestion(s, e, lp, f, exact, stop, step, liquidation, venue)


def suggest_stop_for_position(
    venue: Venue,
    side: object,
    size: object,
    entry: object,
    margin: object,
    *,
    fraction: object = "0.5",
    tick: object = None,
) -> StopSuggestion:
    """:func:`suggest_stop` with the liquidation price solved for an isolated position on ``venue``."""
    s = parse_side(side)
    q = positive(size, "size")
    e = positive(entry, "entry")
    m = positive(margin, "margin")
    result = venue.isolated(s, q, e, m)
    if result.already_liquidatable:
        raise ValidationError("margin", f"{brief(m)} does not cover the maintenance margin at the entry")
    if result.liquidation_price is None:
        raise ValidationError(
            "margin",
            "the position has no liquidation price (margin covers every price): "
            "no stop is needed to stay ahead of liquidation",
        )
    return suggest_stop(
        s, e, result.liquidation_price, fraction=fraction, tick=tick, liquidation=result, venue=venue
    )
