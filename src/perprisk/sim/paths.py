"""Price paths: candles → mark-price ticks that visit every bar's high and low; seeded synthetic candles.

A one-minute candle says where the price went (open, high, low, close) but not in which order.  The path
visits the four in a plausible order, chosen per bar (``order``):

``auto`` (default)
    an up bar (close ≥ open) goes open → low → high → close, a down bar open → high → low → close — the
    extreme farther from the close comes first, the usual convention of bar-based backtesters;
``high-first`` / ``low-first``
    always that extreme first (the adverse order for shorts / longs);
``random``
    each bar's order drawn with the seed;
``close``
    one tick per bar, at its close — for throughput benchmarks only: it misses every bar's extremes.

``substeps`` inserts that many evenly spaced points between consecutive points of a bar (rounded to the tick).
Ticks sit at evenly spaced times inside the bar (open at the bar's open time).  A point equal to the one before
it is dropped (no tick that moves nothing); the high and the low are never dropped unless they equal the point
before them.  Prices are exact Decimals on the instrument's tick grid; the float copy is for statistics.

Synthetic candles (:func:`synthetic_candles`): geometric Brownian motion with Poisson jumps (Merton) or a
GARCH(1,1) return process, simulated on fine steps and aggregated into candles, so they go through the same
path builder as real data.  Seeded: the same seed gives the same candles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from perprisk.candles import Candles, Gap
from perprisk.errors import ValidationError
from perprisk.money import Rounding, format_decimal, round_to_step
from perprisk.sim.data import FundingRates

__all__ = [
    "ORDERS",
    "SYNTHETIC_KINDS",
    "FundingEvent",
    "PricePath",
    "candles_to_path",
    "funding_events",
    "synthetic_candles",
]

ORDERS = ("auto", "high-first", "low-first", "random", "close")
SYNTHETIC_KINDS = ("gbm", "garch")


@dataclass(frozen=True, eq=False)
class PricePath:
    """Mark-price ticks: ``timestamps_ms`` (int64, non-decreasing), exact ``prices``, float ``values`` and the
    candle each tick comes from (``bar``)."""

    timestamps_ms: np.ndarray
    prices: tuple[Decimal, ...]
    values: np.ndarray
    bar: np.ndarray
    bar_times_ms: np.ndarray  # open time of each candle
    interval_ms: int
    source: str
    gaps: tuple[Gap, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.prices)


@dataclass(frozen=True)
class FundingEvent:
    """Funding settled at ``tick`` (the first tick at or after ``timestamp_ms``) at ``rate``."""

    tick: int
    timestamp_ms: int
    rate: Decimal


def _bar_orders(candles: Candles, order: str, seed: int) -> np.ndarray:
    """True where a bar visits its low before its high."""
    if order not in ORDERS:
        raise ValidationError("order", f"unknown path order {order!r}; one of {', '.join(ORDERS)}")
    n = len(candles)
    if order in ("auto", "close"):
        return candles.close >= candles.open
    if order == "low-first":
        return np.ones(n, dtype=bool)
    if order == "high-first":
        return np.zeros(n, dtype=bool)
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.random(n) < 0.5


def candles_to_path(
    candles: Candles, tick_size: Decimal, order: str = "auto", substeps: int = 0, seed: int = 0
) -> PricePath:
    """The mark ticks of ``candles`` (see the module documentation)."""
    if len(candles) == 0:
        raise ValidationError("candles", "no candles: nothing to replay")
    if isinstance(substeps, bool) or not isinstance(substeps, int) or not 0 <= substeps <= 100:
        raise ValidationError("substeps", f"an integer in [0, 100], got {substeps!r}")
    tick_size = Decimal(tick_size)
    low_first = _bar_orders(candles, order, seed)
    iv = int(candles.interval_ms) or 60_000
    per_bar = 1 if order == "close" else 1 + 3 * (substeps + 1)
    times: list[int] = []
    prices: list[Decimal] = []
    bars: list[int] = []
    last: Decimal | None = None
    for i in range(len(candles)):
        row = candles.decimal_row(i)
        o, h, lo, c = (
            round_to_step(x, tick_size, Rounding.HALF_EVEN) for x in (row.open, row.high, row.low, row.close)
        )
        anchors = (o, lo, h, c) if low_first[i] else (o, h, lo, c)
        if order == "close":
            anchors = (c,)
        points = [anchors[0]]
        for a, b in zip(anchors, anchors[1:]):
            for k in range(1, substeps + 1):
                points.append(
                    round_to_step(
                        a + (b - a) * Decimal(k) / Decimal(substeps + 1), tick_size, Rounding.HALF_EVEN
                    )
                )
            points.append(b)
        t0 = int(candles.timestamps_ms[i])
        for j, p in enumerate(points):
            if p == last:
                continue
            if p <= 0:
                raise ValidationError(
                    f"candles:row {i + 1}", f"price {p} is not positive after rounding to the tick"
                )
            times.append(t0 + (j * iv) // per_bar)
            prices.append(p)
            bars.append(i)
            last = p
    return PricePath(
        timestamps_ms=np.asarray(times, dtype=np.int64),
        prices=tuple(prices),
        values=np.asarray([float(p) for p in prices], dtype=float),
        bar=np.asarray(bars, dtype=np.int64),
        bar_times_ms=np.asarray(candles.timestamps_ms, dtype=np.int64),
        interval_ms=iv,
        source=candles.source,
        gaps=tuple(candles.gaps),
    )


def funding_events(path: PricePath, rates: FundingRates | None) -> list[FundingEvent]:
    """The settlements of ``rates`` that fall inside the path, each at the first tick at or after its time."""
    if rates is None or len(path) == 0:
        return []
    start, end = int(path.timestamps_ms[0]), int(path.timestamps_ms[-1])
    out = []
    for ts, rate in rates.between(start, end + 1):
        tick = int(np.searchsorted(path.timestamps_ms, ts, side="left"))
        if tick < len(path):
            out.append(FundingEvent(tick, ts, rate))
    return out


# ------------------------------------------------------------------------------------------------ synthetic


def synthetic_candles(
    kind: str = "gbm",
    bars: int = 1440,
    *,
    seed: int = 0,
    start_price: float = 100_000.0,
    start_ms: int = 1_760_054_400_000,
    interval_ms: int = 60_000,
    tick_size: Decimal = Decimal("0.1"),
    steps_per_bar: int = 12,
    sigma: float = 0.0008,
    drift: float = 0.0,
    jump_intensity: float = 0.002,
    jump_mean: float = -0.02,
    jump_std: float = 0.02,
    garch_omega: float = 2e-8,
    garch_alpha: float = 0.08,
    garch_beta: float = 0.9,
) -> Candles:
    """Seeded synthetic candles.

    ``gbm``: per-bar log-return volatility ``sigma`` and ``drift``, plus Poisson jumps (``jump_intensity`` per
    bar, log size normal(``jump_mean``, ``jump_std``)).  ``garch``: GARCH(1,1) per-bar variance
    ``σ²ₜ = ω + α·r²ₜ₋₁ + β·σ²ₜ₋₁`` (started at its long-run level ``ω/(1−α−β)``) with Student-t(4) shocks
    and the same jumps.  Each bar is simulated in ``steps_per_bar`` steps; OHLC are the steps' first, max,
    min and last prices, rounded to ``tick_size``.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValidationError("kind", f"unknown synthetic path {kind!r}; one of {', '.join(SYNTHETIC_KINDS)}")
    if bars < 2:
        raise ValidationError("bars", f"at least 2, got {bars}")
    if not (start_price > 0 and sigma >= 0 and steps_per_bar >= 1):
        raise ValidationError("start_price", "start_price > 0, sigma ≥ 0 and steps_per_bar ≥ 1 are required")
    if kind == "garch" and not (
        garch_omega > 0 and garch_alpha >= 0 and garch_beta >= 0 and garch_alpha + garch_beta < 1
    ):
        raise ValidationError("garch_alpha", "GARCH needs ω > 0, α, β ≥ 0 and α + β < 1")
    rng = np.random.Generator(np.random.PCG64(seed))
    n = bars * steps_per_bar
    if kind == "gbm":
        step_sigma = np.full(bars, sigma)
    else:
        var = garch_omega / (1 - garch_alpha - garch_beta)
        step_sigma = np.empty(bars)
        shocks = rng.standard_t(4, size=bars) / np.sqrt(2.0)  # unit variance
        for t in range(bars):
            step_sigma[t] = np.sqrt(var)
            r = step_sigma[t] * shocks[t]
            var = garch_omega + garch_alpha * r * r + garch_beta * var
    per_step = np.repeat(step_sigma / np.sqrt(steps_per_bar), steps_per_bar)
    returns = (drift / steps_per_bar - 0.5 * per_step**2) + per_step * rng.standard_normal(n)
    jumps = rng.random(n) < jump_intensity / steps_per_bar
    returns[jumps] += rng.normal(jump_mean, jump_std, size=int(jumps.sum()))
    log_price = np.log(start_price) + np.concatenate([[0.0], np.cumsum(returns)])
    prices = np.exp(log_price)
    opens, highs, lows, closes = [], [], [], []
    for b in range(bars):
        seg = prices[b * steps_per_bar : (b + 1) * steps_per_bar + 1]
        opens.append(seg[0])
        highs.append(seg.max())
        lows.append(seg.min())
        closes.append(seg[-1])

    def on_tick(xs: Sequence[float]) -> list[Decimal]:
        return [
            max(tick_size, round_to_step(Decimal(repr(float(x))), tick_size, Rounding.HALF_EVEN)) for x in xs
        ]

    o, h, lo, c = on_tick(opens), on_tick(highs), on_tick(lows), on_tick(closes)
    text = np.empty((bars, 5), dtype=object)
    for b in range(bars):
        text[b] = (
            format_decimal(o[b]),
            format_decimal(h[b]),
            format_decimal(lo[b]),
            format_decimal(c[b]),
            "0",
        )
    ts = start_ms + interval_ms * np.arange(bars, dtype=np.int64)
    return Candles(
        timestamps_ms=ts,
        open=np.array([float(x) for x in o]),
        high=np.array([float(x) for x in h]),
        low=np.array([float(x) for x in lo]),
        close=np.array([float(x) for x in c]),
        volume=np.zeros(bars),
        source=f"synthetic:{kind}:seed={seed}",
        format="synthetic",
        interval_ms=interval_ms,
        gaps=(),
        text=text,
    )
