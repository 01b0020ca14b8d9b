"""Funding schedule: when funding happens and how long until the next one (for the fair price).

Funding happens at ``anchor_ms + k·interval`` for every integer ``k`` (Binance and MEXC 8-hour contracts:
00:00, 08:00 and 16:00 UTC, i.e. anchor 0 = 1970-01-01T00:00Z; 4-hour and 1-hour contracts exist too,
Binance ``GET /fapi/v1/fundingInfo`` ``fundingIntervalHours``).  At a funding instant the funding of that
instant is due (:meth:`FundingSchedule.is_funding_time`) and the *next* funding is one interval later, so
the time to funding runs from ``interval`` down to (but never reaching) zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from perprisk.errors import ValidationError
from perprisk.market._exact import milliseconds

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class FundingSchedule:
    """Funding every ``interval_hours`` hours, at times congruent to ``anchor_ms`` (epoch milliseconds)."""

    interval_hours: int = 8
    anchor_ms: int = 0

    def __post_init__(self) -> None:
        hours = self.interval_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or hours <= 0:
            raise ValidationError("interval_hours", f"a positive integer number of hours, got {hours!r}")
        milliseconds(self.anchor_ms, "anchor_ms")

    @classmethod
    def for_instrument(cls, instrument: object, anchor_ms: int = 0) -> "FundingSchedule":
        """The schedule of an :class:`~perprisk.instrument.Instrument` (its ``funding_interval_hours``)."""
        return cls(getattr(instrument, "funding_interval_hours"), anchor_ms)

    @property
    def interval_ms(self) -> int:
        return self.interval_hours * HOUR_MS

    def previous_funding_ms(self, now_ms: int) -> int:
        """The latest funding time at or before ``now_ms``."""
        milliseconds(now_ms, "now_ms")
        return now_ms - (now_ms - self.anchor_ms) % self.interval_ms

    def next_funding_ms(self, now_ms: int) -> int:
        """The earliest funding time strictly after ``now_ms``."""
        return self.previous_funding_ms(now_ms) + self.interval_ms

    def time_to_funding_ms(self, now_ms: int) -> int:
        """Milliseconds until the next funding, in ``(0, interval_ms]``."""
        return self.next_funding_ms(now_ms) - now_ms

    def is_funding_time(self, now_ms: int) -> bool:
        return self.previous_funding_ms(now_ms) == now_ms

    def funding_times(self, start_ms: int, end_ms: int) -> Iterator[int]:
        """Funding times ``t`` with ``start_ms < t ≤ end_ms`` (the fundings a clock moving over it crosses)."""
        milliseconds(start_ms, "start_ms")
        milliseconds(end_ms, "end_ms")
        if end_ms < start_ms:
            raise ValidationError("end_ms", f"must not precede start_ms ({end_ms} < {start_ms})")
        t = self.next_funding_ms(start_ms)
        while t <= end_ms:
            yield t
            t += self.interval_ms
