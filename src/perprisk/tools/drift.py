"""Funding and fee drift of the liquidation price over a holding period (SPEC §2 "Funding", §2.4; seed 003).

Seed 003 ("じわ削り"): fees and funding are taken from the margin, so the liquidation price creeps toward the
mark *while the price stands still*.  This module charges, for an isolated position:

* the entry fee ``q·E·fee_rate`` at the open, and
* at every funding time ``k`` the payment ``s·q·M_k·F_k`` (SPEC §2: longs pay shorts when ``F > 0``; a
  negative payment is received),

from the position margin, and re-solves the exact liquidation price after each step with
:func:`perprisk.formulas.liquidation_price`.  The rates are a constant per funding interval or a real series
(e.g. Binance 8-hour funding rates, freqtrade JSON).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from perprisk.errors import ValidationError
from perprisk.formulas import LiquidationResult, Side
from perprisk.money import ZERO, Fraction, to_decimal
from perprisk.tools.venue import (
    DEFAULT_ENTRY_FEE_RATE,
    Venue,
    brief,
    parse_side,
    positive,
    rate_fraction,
    text,
    venue_json,
)

#: SPEC §2 "Funding": the interest component ``I = 0.01 %`` per 8 h — the funding rate of a calm market.
DEFAULT_FUNDING_RATE = Decimal("0.0001")
DEFAULT_FUNDING_INTERVAL_HOURS = 8
DEFAULT_HOLDING_HOURS = 72
#: Refuse absurd series; real caps are a few percent per interval (SPEC: clamped to the market's cap/floor).
MAX_ABS_RATE = Decimal(1)


def funding_times(hours: object, interval_hours: object = DEFAULT_FUNDING_INTERVAL_HOURS) -> int:
    """Funding times a holding period can cross, counted conservatively: ``⌈hours / interval⌉``."""
    h = to_decimal(hours, "hours", non_negative=True)
    interval = positive(interval_hours, "interval_hours")
    return math.ceil(Fraction(h) / Fraction(interval))


def constant_rates(
    rate: object, hours: object, interval_hours: object = DEFAULT_FUNDING_INTERVAL_HOURS
) -> list[Decimal]:
    """The same ``rate`` at every funding time of the holding period."""
    r = _rate(rate, "rate")
    return [r] * funding_times(hours, interval_hours)


def _rate(value: object, field: str) -> Decimal:
    return rate_fraction(value, field, low=-MAX_ABS_RATE, high=MAX_ABS_RATE)


@dataclass(frozen=True)
class FundingSeries:
    """Funding rates per funding time, as published (exact decimals)."""

    timestamps_ms: tuple[int, ...]
    rates: tuple[Decimal, ...]
    source: str = ""

    def window(self, since_ms: int | None = None, periods: int | None = None) -> FundingSeries:
        """The rates from ``since_ms`` on (inclusive), at most ``periods`` of them."""
        pairs = [(t, r) for t, r in zip(self.timestamps_ms, self.rates) if since_ms is None or t >= since_ms]
        if periods is not None:
            if periods < 0:
                raise ValidationError("periods", f"must not be negative, got {periods}")
            pairs = pairs[:periods]
        if not pairs:
            raise ValidationError("funding_file", f"{self.source}: no funding rate in the requested window")
        return FundingSeries(tuple(t for t, _ in pairs), tuple(r for _, r in pairs), self.source)


def load_funding_rates(path: str | Path) -> FundingSeries:
    """Read a funding-rate series: freqtrade JSON ``[[ms, rate, ...], ...]`` (Binance 8 h funding, shipped in
    ``data/binance_um``) or a JSON list of ``{"timestamp_ms"|"fundingTime": ..., "rate"|"fundingRate": ...}``.

    Numbers are parsed as exact decimals (the published text, not a binary float).
    """
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ValidationError("funding_file", f"cannot read {p}: {err.strerror or err}") from None
    try:
        doc = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError as err:
        raise ValidationError(
            "funding_file", f"{p}: malformed JSON: {err.msg} at line {err.lineno}"
        ) from None
    if not isinstance(doc, list) or not doc:
        raise ValidationError("funding_file", f"{p}: expected a non-empty JSON list of funding rows")
    times: list[int] = []
    rates: list[Decimal] = []
    for i, row in enumerate(doc):
        where = f"funding_file[{i}]"
        if isinstance(row, list) and len(row) >= 2:
            ts, rate = row[0], row[1]
        elif isinstance(row, dict):
            ts = row.get("timestamp_ms", row.get("fundingTime"))
            rate = row.get("rate", row.get("fundingRate"))
        else:
            raise ValidationError(
                where, "expected [timestamp_ms, rate, ...] or an object with timestamp and rate"
            )
        if isinstance(ts, Decimal) and ts == ts.to_integral_value():
            ts = int(ts)
        if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
            raise ValidationError(f"{where}.timestamp_ms", f"expected a non-negative integer, got {ts!r}")
        if times and ts <= times[-1]:
            raise ValidationError(f"{where}.timestamp_ms", "timestamps must increase")
        times.append(ts)
        rates.append(_rate(rate, f"{where}.rate"))
    return FundingSeries(tuple(times), tuple(rates), str(p))


@dataclass(frozen=True)
class DriftStep:
    """The position after one funding time (index 0: right after the entry fee, before any funding)."""

    index: int
    timestamp_ms: int | None
    rate: Decimal | None
    mark: Decimal
    payment: Fraction  # paid by the position (negative: received); the entry fee at index 0
    margin: Fraction
    liquidation: LiquidationResult | None  # None once the margin is gone

    @property
    def liquidation_price(self) -> Fraction | None:
        return None if self.liquidation is None else self.liquidation.liquidation_price

    @property
    def liquidated(self) -> bool:
        return self.liquidation is None or self.liquidation.already_liquidatable

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "timestamp_ms": self.timestamp_ms,
            "rate": text(self.rate),
            "mark": text(self.mark),
            "payment": text(self.payment),
            "margin": text(self.margin),
            "liquidation_price": text(self.liquidation_price),
            "distance_pct": None if self.liquidation is None else text(self.liquidation.distance_pct),
            "liquidated": self.liquidated,
        }


@dataclass(frozen=True)
class FundingDrift:
    venue: Venue
    side: Side
    size: Decimal
    entry: Decimal
    margin: Decimal
    entry_fee_rate: Decimal
    initial: LiquidationResult  # before the entry fee
    steps: tuple[DriftStep, ...]  # the entry-fee step, then one per funding time (stops at liquidation)
    scheduled: int  # funding times asked for (steps may end earlier, at a liquidation)

    @property
    def entry_fee(self) -> Fraction:
        return Fraction(self.size) * Fraction(self.entry) * Fraction(self.entry_fee_rate)

    @property
    def funding_total(self) -> Fraction:
        """Funding paid over the steps taken (negative: received)."""
        return sum((s.payment for s in self.steps[1:]), Fraction(0))

    @property
    def carry_cost(self) -> Fraction:
        """Entry fee plus funding: what holding the position costs before any price move (seed 003)."""
        return self.entry_fee + self.funding_total

    @property
    def exit_fee(self) -> Fraction:
        """Closing at the last mark with the same fee rate (not taken from the margin before the close)."""
        return Fraction(self.size) * Fraction(self.steps[-1].mark) * Fraction(self.entry_fee_rate)

    @property
    def final(self) -> DriftStep:
        return self.steps[-1]

    @property
    def liquidated_at(self) -> int | None:
        """Index of the first step at which the position would be liquidated at its mark, if any."""
        return next((s.index for s in self.steps if s.liquidated), None)

    @property
    def liquidation_shift(self) -> Fraction | None:
        """How far the liquidation price moved toward the mark (positive: closer), open to end."""
        a, b = self.initial.liquidation_price, self.final.liquidation_price
        if a is None or b is None:
            return None
        return (b - a) * int(self.side)

    def to_json(self) -> dict[str, Any]:
        return {
            **venue_json(self.venue),
            "side": self.side.label,
            "size": text(self.size),
            "entry": text(self.entry),
            "margin": text(self.margin),
            "entry_fee_rate": text(self.entry_fee_rate),
            "funding_times": self.scheduled,
            "liquidation_price_at_open": text(self.initial.liquidation_price),
            "liquidation_price_final": text(self.final.liquidation_price),
            "liquidation_shift": text(self.liquidation_shift),
            "distance_pct_at_open": text(self.initial.distance_pct),
            "distance_pct_final": None
            if self.final.liquidation is None
            else text(self.final.liquidation.distance_pct),
            "entry_fee": text(self.entry_fee),
            "funding_total": text(self.funding_total),
            "carry_cost": text(self.carry_cost),
            "exit_fee": text(self.exit_fee),
            "round_trip_cost": text(self.carry_cost + self.exit_fee),
            "margin_final": text(self.final.margin),
            "liquidated_at": self.liquidated_at,
            "steps": [s.to_json() for s in self.steps],
        }


def funding_drift(
    venue: Venue,
    side: object,
    size: object,
    entry: object,
    margin: object,
    rates: Sequence[object],
    *,
    mark: object = None,
    marks: Sequence[object] | None = None,
    timestamps_ms: Sequence[int] | None = None,
    entry_fee_rate: object = DEFAULT_ENTRY_FEE_RATE,
) -> FundingDrift:
    """The isolated liquidation price after the entry fee and after each funding payment.

    ``rates[k]`` is the funding rate at funding time ``k``; the mark stands still at ``mark`` (default: the
    entry) unless a ``marks`` series of the same length is given (e.g. the real 8 h mark prices).  Stops early
    once the position would be liquidated at its mark.
    """
    s = parse_side(side)
    q = positive(size, "size")
    e = positive(entry, "entry")
    m = positive(margin, "margin")
    fee_rate = rate_fraction(entry_fee_rate, "entry_fee_rate", low=ZERO, low_open=False)
    parsed_rates = [_rate(r, f"rates[{i}]") for i, r in enumerate(rates)]
    standing = e if mark is None else positive(mark, "mark")
    if marks is not None:
        if mark is not None:
            raise ValidationError("marks", "give a constant mark or a marks series, not both")
        if len(marks) != len(parsed_rates):
            raise ValidationError("marks", f"{len(marks)} marks for {len(parsed_rates)} funding rates")
        mark_path = [positive(x, f"marks[{i}]") for i, x in enumerate(marks)]
    else:
        mark_path = [standing] * len(parsed_rates)
    if timestamps_ms is not None and len(timestamps_ms) != len(parsed_rates):
        raise ValidationError(
            "timestamps_ms", f"{len(timestamps_ms)} timestamps for {len(parsed_rates)} rates"
        )

    initial = venue.isolated(s, q, e, m, standing)
    if initial.already_liquidatable:
        raise ValidationError(
            "margin", f"{brief(m)} does not cover the maintenance margin at the mark {standing}"
        )
    fee = Fraction(q) * Fraction(e) * Fraction(fee_rate)
    balance = Fraction(m) - fee
    steps = [_step(venue, s, q, e, 0, None, None, standing, fee, balance)]
    for k, (rate, mk) in enumerate(zip(parsed_rates, mark_path), start=1):
        if steps[-1].liquidated:
            break
        payment = int(s) * Fraction(q) * Fraction(mk) * Fraction(rate)  # SPEC §2: longs pay when F > 0
        balance -= payment
        ts = None if timestamps_ms is None else int(timestamps_ms[k - 1])
        steps.append(_step(venue, s, q, e, k, ts, rate, mk, payment, balance))
    return FundingDrift(venue, s, q, e, m, fee_rate, initial, tuple(steps), len(parsed_rates))


def _step(
    venue: Venue,
    side: Side,
    size: Decimal,
    entry: Decimal,
    index: int,
    ts: int | None,
    rate: Decimal | None,
    mark: Decimal,
    payment: Fraction,
    balance: Fraction,
) -> DriftStep:
    result = venue.isolated(side, size, entry, balance, mark) if balance > 0 else None
    return DriftStep(index, ts, rate, mark, payment, balance, result)
