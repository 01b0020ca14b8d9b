"""The pre-trade check of seed 003 (SPEC §2.4): three rules a trade must meet before it is entered.

Seed 003, "チェック:この3つが満たせないトレードはやらない":

1. the liquidation distance must exceed the instrument's ordinary daily move
   ("清算距離がその銘柄の普段の値動き(1日で普通に出る変動)より狭いなら、その建玉は大きすぎます")
   — here: exceed ``k`` × the ordinary daily move (default ``k = 2``), the ordinary move being a quantile
   (default the median) of the daily ``(high − low) / open`` over a lookback, measured from a real candle
   file;
2. the carry cost (funding and fees over the holding period) must be accounted for
   ("ファンディングやスワップを加味した“持ち越しコスト”") — the distance of rule 1 is taken *after* the
   carry (:mod:`perprisk.tools.drift`), and a position the carry alone would liquidate fails;
3. an invalidation level must be named
   ("シナリオが壊れた価格帯…を言語化できないなら、エントリーはギャンブル") and
   lie before the liquidation price ("そのラインよりさらに下に清算価格が来るように").

Plus the exchange's own gate: opening leverage within the tier's maximum (SPEC §2).

The daily-move statistic is computed in float64 (SPEC: floats for screening and statistics only) and
converted to a Decimal explicitly, rounded with a named mode, before it meets the exact distance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perprisk.errors import ValidationError
from perprisk.formulas import Side
from perprisk.money import Fraction, Rounding, quantize
from perprisk.tools.drift import (
    DEFAULT_FUNDING_INTERVAL_HOURS,
    DEFAULT_FUNDING_RATE,
    DEFAULT_HOLDING_HOURS,
    FundingDrift,
    constant_rates,
    funding_drift,
)
from perprisk.tools.venue import (
    DEFAULT_ENTRY_FEE_RATE,
    Venue,
    adverse,
    brief,
    parse_side,
    positive,
    rate_fraction,
    require_adverse,
    text,
    venue_json,
)

if TYPE_CHECKING:  # pragma: no cover
    from perprisk.candles import Candles

DEFAULT_K = Decimal(2)
DEFAULT_QUANTILE = Decimal("0.5")
DEFAULT_LOOKBACK_DAYS = 365
DAY_MS = 86_400_000
#: The float statistic becomes a Decimal percentage with this many places (1e-8 of a percentage point).
MOVE_PCT_EXPONENT = Decimal("1e-8")

CHECK_LEVERAGE = "max_leverage"
CHECK_DISTANCE = "liquidation_distance"
CHECK_CARRY = "carry_cost"
CHECK_INVALIDATION = "invalidation_level"


# ---------------------------------------------------------------------------------- ordinary daily move


@dataclass(frozen=True)
class OrdinaryDailyMove:
    """A quantile of the daily range ``(high − low) / open`` over the last ``lookback_days`` of candles."""

    source: str
    quantile: Decimal
    lookback_days: int
    days: int  # days with a range in the window
    first_day_ms: int
    last_day_ms: int
    move_pct: Decimal  # the statistic in percent, converted from float64 and rounded (HALF_EVEN, 1e-8)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "quantile": text(self.quantile),
            "lookback_days": self.lookback_days,
            "days": self.days,
            "first_day": utc_day(self.first_day_ms),
            "last_day": utc_day(self.last_day_ms),
            "move_pct": text(self.move_pct),
        }


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%d")


def float_to_decimal(x: float, exponent: Decimal = MOVE_PCT_EXPONENT) -> Decimal:
    """The explicit float → Decimal step: the float's shortest round-trip text, then rounded half-even."""
    if not math.isfinite(x):
        raise ValidationError("candles", f"the daily-move statistic is not finite ({x!r})")
    return quantize(Decimal(repr(float(x))), exponent, Rounding.HALF_EVEN)


def ordinary_daily_move(
    candles: Candles,
    *,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    quantile: object = DEFAULT_QUANTILE,
    source: str = "",
) -> OrdinaryDailyMove:
    """The ``quantile`` of the daily ``(high − low) / open`` over the last ``lookback_days`` calendar days up
    to the last day in ``candles`` (intraday candles are aggregated to complete UTC days by the loader)."""
    from perprisk.candles import daily_candles

    if isinstance(lookback_days, bool) or not isinstance(lookback_days, int) or lookback_days < 1:
        raise ValidationError("lookback_days", f"must be a positive integer, got {lookback_days!r}")
    qt = rate_fraction(quantile, "quantile", low=Decimal(0), high=Decimal(1), low_open=False, high_open=False)
    days = daily_candles(candles, complete_only=True)
    if len(days) == 0:
        raise ValidationError("candles", f"{source or 'the candle file'}: no complete UTC day of candles")
    ts = np.asarray(days.timestamps_ms, dtype=np.int64)
    last = int(ts[-1])
    in_window = ts >= last - (lookback_days - 1) * DAY_MS
    opens, highs, lows = days.open[in_window], days.high[in_window], days.low[in_window]
    usable = np.isfinite(opens) & np.isfinite(highs) & np.isfinite(lows) & (opens > 0)
    ranges = (highs[usable] - lows[usable]) / opens[usable]
    if ranges.size == 0:
        raise ValidationError(
            "candles", f"{source or 'the candle file'}: no usable day in the lookback window"
        )
    stat = float(np.quantile(ranges, float(qt)))  # float64 statistic (screening only)
    window_ts = ts[in_window][usable]
    return OrdinaryDailyMove(
        source,
        qt,
        lookback_days,
        int(ranges.size),
        int(window_ts[0]),
        int(window_ts[-1]),
        float_to_decimal(stat * 100),
    )


def daily_move_from_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    quantile: object = DEFAULT_QUANTILE,
) -> OrdinaryDailyMove:
    """:func:`ordinary_daily_move` of a candle file read by :func:`perprisk.candles.load_candles`."""
    from perprisk.candles import load_candles

    p = Path(path)
    if not p.exists():
        raise ValidationError("candles", f"no such file: {p}")
    return ordinary_daily_move(
        load_candles(p, fmt), lookback_days=lookback_days, quantile=quantile, source=str(p)
    )


# ------------------------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Check:
    """One named rule: passed or not, why, and the numbers compared."""

    name: str
    passed: bool
    message: str
    value: Fraction | Decimal | None = None
    threshold: Fraction | Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "message": self.message,
            "value": text(self.value),
            "threshold": text(self.threshold),
        }


@dataclass(frozen=True)
class PretradeResult:
    venue: Venue
    side: Side
    size: Decimal
    entry: Decimal
    margin: Decimal
    stop: Decimal | None
    k: Decimal
    daily_move: OrdinaryDailyMove
    drift: FundingDrift
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Names of the failed checks (empty when the trade passes)."""
        return tuple(c.name for c in self.checks if not c.passed)

    @property
    def threshold_pct(self) -> Decimal:
        return self.k * self.daily_move.move_pct

    def to_json(self) -> dict[str, Any]:
        final = self.drift.final
        return {
            **venue_json(self.venue),
            "passed": self.passed,
            "reasons": list(self.reasons),
            "side": self.side.label,
            "size": text(self.size),
            "entry": text(self.entry),
            "margin": text(self.margin),
            "leverage": text(Fraction(self.size) * Fraction(self.entry) / Fraction(self.margin)),
            "stop": text(self.stop),
            "k": text(self.k),
            "daily_move": self.daily_move.to_json(),
            "threshold_pct": text(self.threshold_pct),
            "liquidation_price_at_open": text(self.drift.initial.liquidation_price),
            "liquidation_price_after_carry": text(final.liquidation_price),
            "distance_pct_after_carry": None
            if final.liquidation is None
            else text(final.liquidation.distance_pct),
            "funding_times": self.drift.scheduled,
            "carry_cost": text(self.drift.carry_cost),
            "entry_fee": text(self.drift.entry_fee),
            "funding_total": text(self.drift.funding_total),
            "checks": [c.to_json() for c in self.checks],
        }


def pretrade_check(
    venue: Venue,
    side: object,
    size: object,
    entry: object,
    margin: object,
    *,
    stop: object,
    daily_move: OrdinaryDailyMove,
    k: object = DEFAULT_K,
    rates: Sequence[object] | None = None,
    hours: object = DEFAULT_HOLDING_HOURS,
    funding_rate: object = DEFAULT_FUNDING_RATE,
    interval_hours: object = DEFAULT_FUNDING_INTERVAL_HOURS,
    entry_fee_rate: object = DEFAULT_ENTRY_FEE_RATE,
) -> PretradeResult:
    """Seed 003's three checks (plus the tier's leverage gate) for an isolated position; pass/fail with
    named reasons.

    The carry is the entry fee plus ``rates`` (default: ``funding_rate`` at each funding time of ``hours``)
    charged from the margin with the price standing at the entry; distances are from the entry to the
    liquidation price after that carry.  ``stop`` (the invalidation level) may be ``None``: the check then
    fails with the reason ``invalidation_level``.
    """
    s = parse_side(side)
    q = positive(size, "size")
    e = positive(entry, "entry")
    m = positive(margin, "margin")
    factor = positive(k, "k")
    st = None if stop is None else positive(stop, "stop")
    if st is not None:
        require_adverse(s, st, e, "stop", "the invalidation level (stop)")
    series = constant_rates(funding_rate, hours, interval_hours) if rates is None else list(rates)
    drift = funding_drift(venue, s, q, e, m, series, entry_fee_rate=entry_fee_rate)

    checks: list[Check] = []
    notional = Fraction(q) * Fraction(e)
    leverage = notional / Fraction(m)
    tier = venue.tier_for_notional(notional)
    if tier is None:
        checks.append(
            Check(
                CHECK_LEVERAGE,
                False,
                f"a notional of {brief(notional)} is beyond the last risk tier",
                leverage,
                None,
            )
        )
    else:
        ok = leverage <= Fraction(tier.max_leverage)
        checks.append(
            Check(
                CHECK_LEVERAGE,
                ok,
                f"opening leverage {_short(leverage)}× {'within' if ok else 'above'} the tier {tier.tier} "
                "maximum "
                f"{brief(tier.max_leverage)}×" + ("" if ok else ": the exchange refuses the order"),
                leverage,
                tier.max_leverage,
            )
        )

    final = drift.final
    threshold = factor * daily_move.move_pct
    lp_end = final.liquidation_price
    if final.liquidated:
        checks.append(
            Check(
                CHECK_DISTANCE,
                False,
                "the carry alone liquidates the position within the holding period",
                Fraction(0),
                threshold,
            )
        )
    elif lp_end is None:
        checks.append(
            Check(
                CHECK_DISTANCE, True, "no liquidation price: the margin covers every price", None, threshold
            )
        )
    else:
        dist = final.liquidation.distance_pct  # type: ignore[union-attr]
        ok = dist > Fraction(threshold)
        checks.append(
            Check(
                CHECK_DISTANCE,
                ok,
                f"liquidation distance after carry {_short(dist)} % {'exceeds' if ok else 'does not exceed'} "
                f"{factor} × the ordinary daily move {_short(daily_move.move_pct)} % = {_short(threshold)} %"
                + ("" if ok else " (seed 003: the position is too big for this instrument's normal swings)"),
                dist,
                threshold,
            )
        )

    cost = drift.carry_cost
    share = cost / Fraction(m) * 100
    if drift.liquidated_at is not None:
        checks.append(
            Check(
                CHECK_CARRY,
                False,
                f"fees and funding alone liquidate the position at funding time {drift.liquidated_at} of "
                f"{drift.scheduled}, with the price standing still",
                cost,
                Fraction(m),
            )
        )
    else:
        shift = drift.liquidation_shift
        moved = "" if shift is None else f"; the liquidation price moves {_short(shift)} toward the price"
        checks.append(
            Check(
                CHECK_CARRY,
                True,
                f"carry over {drift.scheduled} funding times: {_short(cost)} ({_short(share)} % of the "
                f"margin: entry fee {_short(drift.entry_fee)}, funding {_short(drift.funding_total)}){moved}",
                cost,
                Fraction(m),
            )
        )

    if st is None:
        checks.append(
            Check(
                CHECK_INVALIDATION,
                False,
                "no invalidation level given: name the price where the idea is wrong (seed 003)",
            )
        )
    elif lp_end is not None and not final.liquidated and not adverse(s, lp_end, st):
        checks.append(
            Check(
                CHECK_INVALIDATION,
                False,
                f"the invalidation level {st} lies at or beyond the liquidation price after carry "
                f"{_short(lp_end)}: "
                "the exchange liquidates the position before the idea is proven wrong",
                st,
                lp_end,
            )
        )
    elif final.liquidated:
        checks.append(
            Check(
                CHECK_INVALIDATION,
                False,
                "the position is liquidated by the carry before any invalidation level matters",
                st,
            )
        )
    else:
        where = (
            "no liquidation price"
            if lp_end is None
            else f"the liquidation price after carry {_short(lp_end)}"
        )
        checks.append(
            Check(CHECK_INVALIDATION, True, f"the invalidation level {st} lies before {where}", st, lp_end)
        )
    return PretradeResult(venue, s, q, e, m, st, factor, daily_move, drift, tuple(checks))


def _short(x: Fraction | Decimal) -> str:
    from perprisk.money import format_decimal

    return format_decimal(quantize(x, Decimal("0.01"), Rounding.HALF_EVEN))
