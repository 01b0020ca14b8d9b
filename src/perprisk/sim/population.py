"""The trader population of a stress run: who holds which position, with how much margin, since when.

:func:`generate_population` draws ``n`` accounts with numpy's PCG64 generator (the same seed gives the same
population, bit for bit):

* **side** — long with probability ``long_share`` (a long/short skew; the market makers hold the net);
* **size** — notional Pareto(``notional_min``, tail index ``notional_tail``), capped at ``notional_max``:
  many small accounts and a few whales;
* **leverage** — Pareto(``leverage_min``, tail ``leverage_tail``) rounded down to a whole number, capped at
  ``leverage_cap`` *and at the maximum leverage of the risk tier the position's notional falls in* (a
  whale cannot hold 125×);
* **margin mode** — isolated with probability ``isolated_share`` (of which ``auto_add_share`` turn auto-add
  margin on), else cross; cross accounts hold extra collateral beyond the initial margin, a log-normal
  multiple of it (``cross_buffer_median``, ``cross_buffer_sigma``), isolated ones a free wallet balance of
  ``isolated_free_share`` × the initial margin;
* **stop-loss** — with probability ``stop_loss_share`` a reduce-only stop-market order placed a uniform
  fraction in ``stop_fraction`` of the way from the entry to the estimated liquidation price (seed 003: the
  stop goes before the liquidation price);
* **timing** — ``initial_share`` of the accounts hold their position when the run starts, the others open at
  a uniformly drawn tick; every position is held for an exponential time of mean ``holding_hours`` and
  closed then if still open (so the book of positions stays a mix of recent entries, as on a real venue).

Floats are used here only to *draw* the population; the runner turns every figure into exact Decimals on
the instrument's lot and tick grid before it reaches the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from perprisk.errors import ValidationError
from perprisk.instrument import TierTable
from perprisk.sim.settings import check_known

__all__ = [
    "Population",
    "PopulationConfig",
    "generate_population",
    "hill_tail_index",
    "population_stats",
    "tier_arrays",
]


@dataclass(frozen=True)
class PopulationConfig:
    long_share: float = 0.62
    notional_min: float = 200.0
    notional_tail: float = 1.2
    notional_max: float = 3_000_000.0
    leverage_min: float = 3.0
    leverage_tail: float = 1.0
    leverage_cap: float = 125.0
    isolated_share: float = 0.4
    auto_add_share: float = 0.15
    cross_buffer_median: float = 0.6
    cross_buffer_sigma: float = 0.9
    isolated_free_share: float = 0.25
    stop_loss_share: float = 0.3
    stop_fraction: tuple[float, float] = (0.3, 0.8)
    initial_share: float = 0.5
    holding_hours: float = 24.0

    def __post_init__(self) -> None:
        for name in ("long_share", "isolated_share", "auto_add_share", "stop_loss_share", "initial_share"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValidationError(f"population.{name}", f"a share in [0, 1], got {v!r}")
        for name in (
            "notional_min",
            "notional_tail",
            "notional_max",
            "leverage_min",
            "leverage_tail",
            "leverage_cap",
            "cross_buffer_sigma",
            "holding_hours",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValidationError(f"population.{name}", f"must be a positive number, got {v!r}")
        if self.cross_buffer_median < 0 or self.isolated_free_share < 0:
            raise ValidationError("population.cross_buffer_median", "buffers must not be negative")
        if self.notional_max < self.notional_min:
            raise ValidationError("population.notional_max", "must be at least notional_min")
        if self.leverage_min < 1 or self.leverage_cap < self.leverage_min:
            raise ValidationError("population.leverage_min", "need 1 ≤ leverage_min ≤ leverage_cap")
        lo, hi = self.stop_fraction
        if not 0 < lo <= hi < 1:
            raise ValidationError(
                "population.stop_fraction", f"need 0 < low ≤ high < 1, got {self.stop_fraction}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "population") -> PopulationConfig:
        check_known(cls, values, prefix)
        clean: dict[str, Any] = {}
        for k, v in values.items():
            if k == "stop_fraction":
                if not (isinstance(v, (list, tuple)) and len(v) == 2):
                    raise ValidationError(f"{prefix}.stop_fraction", "a pair [low, high]")
                clean[k] = (float(v[0]), float(v[1]))
            else:
                try:
                    clean[k] = float(v)
                except (TypeError, ValueError):
                    raise ValidationError(f"{prefix}.{k}", f"expected a number, got {v!r}") from None
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop_fraction"] = list(self.stop_fraction)
        return d


@dataclass(frozen=True, eq=False)
class Population:
    """One row per account (arrays of length ``n``); see the module documentation for each column."""

    side: np.ndarray  # int8: +1 long, -1 short
    notional: np.ndarray  # float64, quote units at the reference price
    leverage: np.ndarray  # int64
    isolated: np.ndarray  # bool
    auto_add: np.ndarray  # bool
    buffer: np.ndarray  # float64: extra collateral as a multiple of the initial margin
    stop: np.ndarray  # bool
    stop_fraction: np.ndarray  # float64
    entry_tick: np.ndarray  # int64
    exit_tick: np.ndarray  # int64, -1: held to the end
    reference_price: float
    seed: int

    def __len__(self) -> int:
        return len(self.side)

    @property
    def gross_notional(self) -> float:
        return float(self.notional.sum())


def tier_arrays(tiers: TierTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(floors, mmrs, maintenance amounts, max leverages) of a tier table as float arrays."""
    return (
        np.array([float(t.floor) for t in tiers.tiers]),
        np.array([float(t.mmr) for t in tiers.tiers]),
        np.array([float(t.maintenance_amount) for t in tiers.tiers]),
        np.array([float(t.max_leverage) for t in tiers.tiers]),
    )


def _tier_index(floors: np.ndarray, notional: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(floors, notional, side="right") - 1, 0, len(floors) - 1)


def generate_population(
    n: int,
    config: PopulationConfig,
    tiers: TierTable,
    reference_price: float,
    timestamps_ms: np.ndarray,
    seed: int,
    taker_fee: float = 0.0005,
) -> Population:
    """Draw ``n`` accounts (see the module documentation).  ``timestamps_ms`` are the path's tick times."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValidationError("accounts", f"a positive integer, got {n!r}")
    if not reference_price > 0:
        raise ValidationError("reference_price", f"must be positive, got {reference_price}")
    ticks = len(timestamps_ms)
    if ticks < 1:
        raise ValidationError("ticks", "the path has no ticks")
    rng = np.random.Generator(np.random.PCG64(seed))
    c = config
    side = np.where(rng.random(n) < c.long_share, 1, -1).astype(np.int8)
    u = 1.0 - rng.random(n)  # (0, 1]
    notional = np.minimum(c.notional_min * u ** (-1.0 / c.notional_tail), c.notional_max)
    u = 1.0 - rng.random(n)
    leverage = np.floor(np.minimum(c.leverage_min * u ** (-1.0 / c.leverage_tail), c.leverage_cap))
    floors, _, _, max_lev = tier_arrays(tiers)
    leverage = np.maximum(1.0, np.minimum(leverage, max_lev[_tier_index(floors, notional)])).astype(np.int64)
    isolated = rng.random(n) < c.isolated_share
    auto_add = isolated & (rng.random(n) < c.auto_add_share)
    cross_buffer = c.cross_buffer_median * np.exp(c.cross_buffer_sigma * rng.standard_normal(n))
    buffer = np.where(isolated, c.isolated_free_share, cross_buffer)
    stop = rng.random(n) < c.stop_loss_share
    lo, hi = c.stop_fraction
    stop_fraction = lo + (hi - lo) * rng.random(n)
    initial = rng.random(n) < c.initial_share
    entry_tick = np.where(initial, 0, rng.integers(1, max(ticks, 2), size=n)).astype(np.int64)
    entry_tick = np.minimum(entry_tick, ticks - 1)
    hold_ms = rng.exponential(c.holding_hours * 3_600_000.0, size=n)
    exit_ms = timestamps_ms[entry_tick] + hold_ms
    exit_tick = np.searchsorted(timestamps_ms, exit_ms, side="left").astype(np.int64)
    exit_tick = np.where(exit_tick >= ticks, -1, np.maximum(exit_tick, entry_tick + 1))
    exit_tick = np.where(exit_tick >= ticks, -1, exit_tick)
    return Population(
        side,
        notional,
        leverage,
        isolated,
        auto_add,
        buffer,
        stop,
        stop_fraction,
        entry_tick,
        exit_tick,
        float(reference_price),
        int(seed),
    )


def hill_tail_index(x: np.ndarray, k: int | None = None) -> float:
    """Hill estimator of the Pareto tail index from the ``k`` largest values (statistics only)."""
    x = np.sort(np.asarray(x, dtype=float))[::-1]
    if k is None:
        k = max(10, len(x) // 20)
    k = min(k, len(x) - 1)
    if k < 2:
        return float("nan")
    return float(1.0 / np.mean(np.log(x[:k] / x[k])))


def population_stats(pop: Population) -> dict[str, float]:
    """Descriptive statistics of a population (for reports and tests)."""
    lev = pop.leverage.astype(float)
    return {
        "accounts": float(len(pop)),
        "long_share": float(np.mean(pop.side > 0)),
        "isolated_share": float(np.mean(pop.isolated)),
        "auto_add_share": float(np.mean(pop.auto_add[pop.isolated])) if pop.isolated.any() else 0.0,
        "stop_loss_share": float(np.mean(pop.stop)),
        "initial_share": float(np.mean(pop.entry_tick == 0)),
        "leverage_median": float(np.median(lev)),
        "leverage_p90": float(np.quantile(lev, 0.9)),
        "leverage_p99": float(np.quantile(lev, 0.99)),
        "leverage_max": float(lev.max()),
        "notional_median": float(np.median(pop.notional)),
        "notional_mean": float(np.mean(pop.notional)),
        "notional_max": float(pop.notional.max()),
        "notional_tail_index": hill_tail_index(pop.notional),
        "gross_notional": pop.gross_notional,
        "net_long_notional": float(np.sum(pop.side * pop.notional)),
    }
