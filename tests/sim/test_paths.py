"""Price paths visit every bar's high and low; synthetic paths are seeded."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from perprisk.errors import ValidationError
from perprisk.sim.data import (
    DEFAULT_CANDLES_FILE,
    DEFAULT_FUNDING_FILE,
    load_funding_rates,
    load_price_candles,
)
from perprisk.sim.paths import candles_to_path, funding_events, synthetic_candles

TICK = Decimal("0.1")


@pytest.fixture(scope="module")
def crash():
    return load_price_candles(DEFAULT_CANDLES_FILE, start="2025-10-10T20:00Z", end="2025-10-10T23:00Z")


def _bar_points(path, i):
    sel = path.bar == i
    return [p for p, s in zip(path.prices, sel) if s]


@pytest.mark.parametrize("order", ["auto", "high-first", "low-first", "random"])
def test_every_bar_visits_its_high_and_low(crash, order):
    path = candles_to_path(crash, TICK, order=order, seed=3)
    assert np.all(np.diff(path.timestamps_ms) >= 0)
    assert all(p % TICK == 0 for p in path.prices)
    for i in range(len(crash)):
        row = crash.decimal_row(i)
        visited = set(_bar_points(path, i))
        previous = path.prices[int(np.flatnonzero(path.bar == i)[0]) - 1] if i else None
        for extreme in (row.high, row.low):  # dropped only when the tick before already stood there
            assert extreme in visited or extreme == previous
        assert all(row.low <= p <= row.high for p in visited)
        assert np.all(
            (path.timestamps_ms[path.bar == i] >= crash.timestamps_ms[i])
            & (path.timestamps_ms[path.bar == i] < crash.timestamps_ms[i] + 60_000)
        )


def test_order_decides_which_extreme_comes_first(crash):
    i = 20  # 21:20, the low of the crash
    row = crash.decimal_row(i)
    hf = _bar_points(candles_to_path(crash, TICK, order="high-first"), i)
    lf = _bar_points(candles_to_path(crash, TICK, order="low-first"), i)
    assert hf.index(row.high) < hf.index(row.low)
    assert lf.index(row.low) < lf.index(row.high)
    auto = _bar_points(candles_to_path(crash, TICK, order="auto"), i)
    assert (auto.index(row.low) < auto.index(row.high)) == (row.close >= row.open)


def test_random_order_is_seeded(crash):
    a = candles_to_path(crash, TICK, order="random", seed=5)
    b = candles_to_path(crash, TICK, order="random", seed=5)
    c = candles_to_path(crash, TICK, order="random", seed=6)
    assert a.prices == b.prices and a.prices != c.prices


def test_substeps_interpolate_on_the_tick_grid(crash):
    base = candles_to_path(crash, TICK)
    fine = candles_to_path(crash, TICK, substeps=3)
    assert len(fine) > 3 * len(base) * 0.9
    assert all(p % TICK == 0 for p in fine.prices)
    assert set(base.prices) <= set(fine.prices)
    with pytest.raises(ValidationError) as err:
        candles_to_path(crash, TICK, substeps=-1)
    assert err.value.field == "substeps"
    with pytest.raises(ValidationError) as err:
        candles_to_path(crash, TICK, order="sideways")
    assert err.value.field == "order"


def test_real_funding_lands_on_the_first_tick_after_its_time():
    candles = load_price_candles(DEFAULT_CANDLES_FILE)
    path = candles_to_path(candles, TICK)
    events = funding_events(path, load_funding_rates(DEFAULT_FUNDING_FILE))
    assert len(events) == 6  # 00:00, 08:00, 16:00 on both days
    for e in events:
        assert path.timestamps_ms[e.tick] >= e.timestamp_ms
        assert e.tick == 0 or path.timestamps_ms[e.tick - 1] < e.timestamp_ms


@pytest.mark.parametrize("kind", ["gbm", "garch"])
def test_synthetic_paths_are_seeded_and_valid(kind):
    a = synthetic_candles(kind, 600, seed=11)
    b = synthetic_candles(kind, 600, seed=11)
    c = synthetic_candles(kind, 600, seed=12)
    assert np.array_equal(a.close, b.close) and not np.array_equal(a.close, c.close)
    assert np.all(a.high >= np.maximum(a.open, a.close)) and np.all(a.low <= np.minimum(a.open, a.close))
    path = candles_to_path(a, TICK)
    assert len(path) > 600 and min(path.prices) == min(Decimal(t) for t in a.text[:, 2])


def test_garch_clusters_volatility_and_jumps_fatten_tails():
    g = synthetic_candles("garch", 4000, seed=1, jump_intensity=0.0, garch_alpha=0.15, garch_beta=0.8)
    r = np.abs(np.diff(np.log(g.close)))
    lag1 = np.corrcoef(r[:-1], r[1:])[0, 1]
    assert lag1 > 0.05  # |returns| are autocorrelated: volatility clusters
    jumpy = synthetic_candles("gbm", 4000, seed=1, jump_intensity=0.02, jump_mean=0.0, jump_std=0.01)
    x = np.diff(np.log(jumpy.close))
    kurtosis = np.mean((x - x.mean()) ** 4) / np.var(x) ** 2
    assert kurtosis > 5  # a normal distribution has 3
    with pytest.raises(ValidationError):
        synthetic_candles("levy", 10)
