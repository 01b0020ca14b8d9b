"""Liquidity: market makers' depth calibrated on real order-book snapshots, thinning as volatility rises.

Depth curve
    The cumulative quote notional resting within ``d`` basis points of the mid follows a power law
    ``N(d) = a · d^β``, fitted by least squares in log-log space on the levels of real Binance BTCUSDT
    snapshots (``data/orderbook/``: a 25-level two-sided Tardis snapshot of 2020-09-01 and a 100-level bid
    snapshot of 2022-11-01).  The snapshots only reach a few basis points; farther levels are the power law
    extrapolated — a modelling choice stated here, not data.

Level
    A simulated market is smaller than Binance: the fitted curve is multiplied by ``depth_scale``.  By default
    ``depth_scale = population gross notional / reference_open_interest`` (how big the simulated open
    interest is next to the venue whose book was snapshotted; ``reference_open_interest`` is a parameter, 5
    billion USDT by default, the order of BTCUSDT open interest on the largest venue — set your own).

Thinning
    With ``r = σ_now / σ_normal`` (trailing EWMA of the squared log return per unit time over the path, and
    its median over the path), depth is multiplied by ``clip(r^−thinning, min_depth_factor, 1)`` and the
    ladder's distances are stretched by ``max(1, r^widening)``: in a crash the book is thinner and wider.

Capacity and latency of the liquidation engine (seed 000 §2.5, platform risk) are not book properties: they
are the engine's ``liquidation_capacity`` and the runner's ``latency_ticks``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from perprisk.errors import ValidationError
from perprisk.money import MONEY_CONTEXT, Fraction
from perprisk.sim.data import DEFAULT_DEPTH_FILES, load_depth_snapshot
from perprisk.sim.settings import check_known

__all__ = [
    "DepthCurve",
    "LiquidityConfig",
    "Quote",
    "default_depth_curve",
    "fit_depth_curve",
    "ladder",
    "volatility_ratio",
]


@dataclass(frozen=True)
class DepthCurve:
    """``N(d) = a · d^β``: cumulative quote notional within ``d`` basis points of the mid."""

    a: float
    beta: float
    sources: tuple[str, ...] = ()

    def notional_within(self, bps: np.ndarray | float) -> np.ndarray:
        return self.a * np.power(np.maximum(bps, 0.0), self.beta)


def fit_depth_curve(paths: Sequence[str | Path] = DEFAULT_DEPTH_FILES, min_bps: float = 0.05) -> DepthCurve:
    """Least-squares fit of ``log N = log a + β log d`` on the levels of the snapshots in ``paths``."""
    xs, ys = [], []
    for p in paths:
        snap = load_depth_snapshot(p)
        d, n = snap.cumulative_notional()
        keep = d >= min_bps
        xs.append(np.log(d[keep]))
        ys.append(np.log(n[keep]))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) < 3:
        raise ValidationError("depth", "too few depth levels beyond the best price to fit a curve")
    beta, log_a = np.polyfit(x, y, 1)
    if not beta > 0:
        raise ValidationError("depth", f"the fitted depth exponent {beta:.3f} is not positive")
    return DepthCurve(float(np.exp(log_a)), float(beta), tuple(str(Path(p).name) for p in paths))


_DEFAULT_CURVE: DepthCurve | None = None


def default_depth_curve() -> DepthCurve:
    """The curve fitted on the shipped Binance snapshots (cached)."""
    global _DEFAULT_CURVE
    if _DEFAULT_CURVE is None:
        _DEFAULT_CURVE = fit_depth_curve()
    return _DEFAULT_CURVE


@dataclass(frozen=True)
class LiquidityConfig:
    levels: int = 10
    min_distance_bps: float = 2.0
    max_distance_bps: float = 800.0
    depth_scale: float | None = None
    reference_open_interest: float = 5e9
    thinning: float = 0.75
    widening: float = 0.3
    min_depth_factor: float = 0.05
    volatility_halflife_ticks: float = 20.0

    def __post_init__(self) -> None:
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or not 1 <= self.levels <= 200:
            raise ValidationError("liquidity.levels", f"an integer in [1, 200], got {self.levels!r}")
        if not 0 < self.min_distance_bps < self.max_distance_bps:
            raise ValidationError(
                "liquidity.min_distance_bps", "need 0 < min_distance_bps < max_distance_bps"
            )
        if self.depth_scale is not None and not self.depth_scale > 0:
            raise ValidationError("liquidity.depth_scale", f"must be positive, got {self.depth_scale}")
        for name in ("reference_open_interest", "volatility_halflife_ticks"):
            if not getattr(self, name) > 0:
                raise ValidationError(f"liquidity.{name}", "must be positive")
        if self.thinning < 0 or self.widening < 0 or not 0 < self.min_depth_factor <= 1:
            raise ValidationError("liquidity.thinning", "thinning, widening ≥ 0 and 0 < min_depth_factor ≤ 1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "liquidity") -> LiquidityConfig:
        check_known(cls, values, prefix)
        clean: dict[str, Any] = {}
        for k, v in values.items():
            try:
                clean[k] = int(v) if k == "levels" else (None if v is None else float(v))
            except (TypeError, ValueError):
                raise ValidationError(f"{prefix}.{k}", f"expected a number, got {v!r}") from None
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def volatility_ratio(times_ms: np.ndarray, values: np.ndarray, halflife_ticks: float) -> np.ndarray:
    """``σ_now / σ_normal`` at every tick: trailing EWMA of the squared log return per millisecond (using
    only ticks up to now) over its median along the path.  1.0 where nothing is known yet."""
    n = len(values)
    out = np.ones(n)
    if n < 3:
        return out
    r = np.diff(np.log(values))
    dt = np.maximum(np.diff(times_ms).astype(float), 1.0)
    rate = r * r / dt
    alpha = 1.0 - 0.5 ** (1.0 / halflife_ticks)
    ewma = np.empty(n - 1)
    acc = rate[0]
    for i, x in enumerate(rate):
        acc = acc + alpha * (x - acc)
        ewma[i] = acc
    normal = float(np.median(ewma))
    if normal <= 0:
        positive = ewma[ewma > 0]
        normal = float(np.median(positive)) if len(positive) else 0.0
    if normal <= 0:
        return out
    out[1:] = np.sqrt(ewma / normal)
    return out


@dataclass(frozen=True)
class Quote:
    side: str  # buy | sell
    price: Decimal
    quantity: Decimal


def ladder(
    price: Decimal,
    vol_ratio: float,
    curve: DepthCurve,
    depth_scale: float,
    config: LiquidityConfig,
    tick_size: Decimal,
    lot_size: Decimal,
    min_size: Decimal,
) -> list[Quote]:
    """The market makers' quotes around ``price``: ``config.levels`` a side at geometrically spaced distances,
    each holding the curve's notional between it and the level before, thinned and widened by volatility.

    Bids lie strictly below ``price`` and asks strictly above, on the tick grid; quantities on the lot grid.
    """
    r = max(float(vol_ratio), 1e-9)
    factor = min(1.0, max(config.min_depth_factor, r ** (-config.thinning))) if r > 1 else 1.0
    widen = max(1.0, r**config.widening)
    dist = np.geomspace(config.min_distance_bps, config.max_distance_bps, config.levels) * widen
    cum = curve.notional_within(dist) * depth_scale * factor
    per_level = np.diff(np.concatenate([[0.0], cum]))
    # The maker's choice of levels is a simulation statistic (floats); each quote is then put on the exchange
    # grid exactly: an integer number of ticks and of lots, times the Decimal step.
    tick, lot = float(tick_size), float(lot_size)
    in_ticks = Fraction(price) / Fraction(tick_size)
    bid_cap, ask_floor = math.ceil(in_ticks) - 1, math.floor(in_ticks) + 1  # strictly below / above the price
    p = float(price)
    quotes: list[Quote] = []
    for side, sign in (("buy", -1.0), ("sell", 1.0)):
        raw = p * (1.0 + sign * dist / 1e4) / tick
        ticks = np.floor(raw) if sign < 0 else np.ceil(raw)
        last: int | None = None
        for t, notional in zip(ticks.tolist(), per_level.tolist()):
            t = min(int(t), bid_cap) if sign < 0 else max(int(t), ask_floor)
            if t <= 0 or t == last:
                continue
            lots = int(notional / (t * tick) / lot)
            level = MONEY_CONTEXT.multiply(Decimal(t), tick_size)
            qty = MONEY_CONTEXT.multiply(Decimal(lots), lot_size)
            if lots <= 0 or qty < min_size:
                continue
            quotes.append(Quote(side, level, qty))
            last = t
    return quotes
