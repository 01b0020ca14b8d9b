"""Auto-deleveraging: who is closed first when the insurance fund cannot pay (SPEC §2.1 step 6).

Ranking (BitMEX/MEXC): ``score = PnL% × effective_leverage`` when ``PnL% > 0``, else ``PnL% / effective_leverage``,
with ``PnL% = U / |entry value|`` and ``effective_leverage = |mark value| / |mark value − bankruptcy value|``.
Longs and shorts are ranked separately; the highest score is deleveraged first.  Each position's queue
quintile (1 = safest … 5 = first in line) is published so users see their ADL risk.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence


@dataclass(frozen=True)
class AdlCandidate:
    """One open position as the ADL ranking sees it (``sign`` +1 long, −1 short)."""

    account_id: int
    slot: str
    sign: int
    size: Fraction  # > 0
    entry_price: Fraction
    mark_price: Fraction
    bankruptcy_price: Fraction | None  # None: no bankruptcy price (fully collateralized)


def adl_score(c: AdlCandidate) -> Fraction:
    """The ranking score: higher means deleveraged earlier."""
    entry_value = c.size * c.entry_price
    pnl_pct = c.sign * c.size * (c.mark_price - c.entry_price) / entry_value
    mark_value = c.size * c.mark_price
    if c.bankruptcy_price is None:
        leverage = Fraction(1)  # fully collateralized: no more than 1× effective leverage
    else:
        distance = abs(mark_value - c.size * c.bankruptcy_price)
        leverage = mark_value / distance if distance > 0 else Fraction(10**9)
    return pnl_pct * leverage if pnl_pct > 0 else pnl_pct / leverage


def adl_score_screen(sign: int, entry_price: float, mark_price: float, bankruptcy_price: float | None) -> float:
    """:func:`adl_score` in floats (size cancels out), to screen a large queue; the exact score decides."""
    pnl_pct = sign * (mark_price - entry_price) / entry_price
    if bankruptcy_price is None:
        leverage = 1.0
    else:
        distance = abs(mark_price - bankruptcy_price)
        leverage = mark_price / distance if distance > 0 else 1e9
    return pnl_pct * leverage if pnl_pct > 0 else pnl_pct / leverage


#: Relative margin around the screening boundary: far above float error, so the exact order is never missed.
SCREEN_TOLERANCE = 1e-9


def adl_ranking(candidates: Iterable[AdlCandidate]) -> list[AdlCandidate]:
    """Candidates of one side of one market, first to be deleveraged first (ties: lower account id first)."""
    return sorted(candidates, key=lambda c: (-adl_score(c), c.account_id, c.slot))


def adl_quintiles(ranked: Sequence[AdlCandidate]) -> dict[tuple[int, str], int]:
    """Queue quintile per (account, slot): the first 20 % of the queue are 5, the last 20 % are 1."""
    n = len(ranked)
    out: dict[tuple[int, str], int] = {}
    for i, c in enumerate(ranked):
        out[(c.account_id, c.slot)] = 5 - (i * 5) // n
    return out
