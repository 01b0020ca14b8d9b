"""Population statistics: heavy-tailed leverage capped by the tiers, Pareto sizes, skew, margin modes, stops;
liquidity calibrated on the real depth snapshots and thinning with volatility."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perprisk.errors import ValidationError
from perprisk.instrument import load_tier_table
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.sim.data import DEFAULT_CANDLES_FILE, load_price_candles
from perprisk.sim.liquidity import LiquidityConfig, default_depth_curve, ladder, volatility_ratio
from perprisk.sim.paths import candles_to_path
from perprisk.sim.population import (
    PopulationConfig,
    generate_population,
    hill_tail_index,
    population_stats,
    tier_arrays,
)

TIERS = load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT")
TIMES = np.arange(0, 2880 * 60_000, 20_000, dtype=np.int64)


@pytest.fixture(scope="module")
def pop():
    return generate_population(50_000, PopulationConfig(notional_max=5e8), TIERS, 121_600.0, TIMES, seed=7)


def test_seeded(pop):
    again = generate_population(50_000, PopulationConfig(notional_max=5e8), TIERS, 121_600.0, TIMES, seed=7)
    assert np.array_equal(pop.leverage, again.leverage) and np.array_equal(pop.notional, again.notional)
    other = generate_population(50_000, PopulationConfig(notional_max=5e8), TIERS, 121_600.0, TIMES, seed=8)
    assert not np.array_equal(pop.notional, other.notional)


def test_leverage_is_heavy_tailed_and_capped_by_the_tiers(pop):
    floors, _, _, max_lev = tier_arrays(TIERS)
    tier = np.searchsorted(floors, pop.notional, side="right") - 1
    assert np.all(pop.leverage <= max_lev[tier]) and np.all(pop.leverage >= 1)
    assert pop.leverage.max() == 125  # the configured cap
    assert np.median(pop.leverage) <= 8 and np.mean(pop.leverage >= 50) > 0.03  # a long right tail
    # whales who all want 100×+: the tier of their notional caps them (Binance: 100× from 300k, 75× from 800k)
    big = generate_population(
        2000,
        PopulationConfig(notional_min=250_000, notional_max=5e7, leverage_min=100),
        TIERS,
        121_600.0,
        TIMES,
        seed=1,
    )
    for floor, cap in ((300_000, 100), (800_000, 75), (3_000_000, 50), (12_000_000, 25)):
        sel = big.notional >= floor
        assert sel.any() and big.leverage[sel].max() <= cap
    assert big.leverage[big.notional < 300_000].min() >= 100


def test_sizes_are_pareto_with_the_configured_tail(pop):
    assert pop.notional.min() >= 200
    alpha = hill_tail_index(pop.notional, k=2000)
    assert 1.0 < alpha < 1.45  # configured 1.2
    top = np.sort(pop.notional)[::-1]
    assert top[: len(top) // 100].sum() / top.sum() > 0.2  # the top 1 % hold over a fifth of the notional


def test_skew_margin_modes_and_stops(pop):
    s = population_stats(pop)
    assert s["long_share"] == pytest.approx(0.62, abs=0.01)
    assert s["isolated_share"] == pytest.approx(0.4, abs=0.01)
    assert s["auto_add_share"] == pytest.approx(0.15, abs=0.015)
    assert s["stop_loss_share"] == pytest.approx(0.3, abs=0.01)
    assert s["initial_share"] == pytest.approx(0.5, abs=0.01)
    assert not np.any(pop.auto_add & ~pop.isolated)
    assert np.all((pop.stop_fraction >= 0.3) & (pop.stop_fraction <= 0.8))
    held = pop.exit_tick >= 0
    assert np.all(pop.exit_tick[held] > pop.entry_tick[held])


def test_bad_population_settings_are_refused():
    with pytest.raises(ValidationError) as err:
        PopulationConfig(long_share=1.5)
    assert err.value.field == "population.long_share"
    with pytest.raises(ValidationError) as err:
        PopulationConfig.from_mapping({"leverage_tail": "x"})
    assert err.value.field == "population.leverage_tail"
    with pytest.raises(ValidationError) as err:
        PopulationConfig.from_mapping({"levrage_min": 2})
    assert err.value.field == "population.levrage_min"


def test_depth_curve_from_real_snapshots_and_ladder():
    curve = default_depth_curve()
    assert 0.5 < curve.beta < 2.0 and curve.a > 0
    assert len(curve.sources) == 2
    price = Decimal("114000.0")
    quotes = ladder(
        price, 1.0, curve, 0.01, LiquidityConfig(), Decimal("0.1"), Decimal("0.001"), Decimal("0.001")
    )
    bids = [q for q in quotes if q.side == "buy"]
    asks = [q for q in quotes if q.side == "sell"]
    assert bids and asks and all(q.price < price for q in bids) and all(q.price > price for q in asks)
    assert all(q.price % Decimal("0.1") == 0 and q.quantity % Decimal("0.001") == 0 for q in quotes)
    near = price * Decimal("0.98")  # depth within 2 % of the price
    calm = sum(q.quantity for q in bids if q.price >= near)
    stormy = sum(
        q.quantity
        for q in ladder(
            price, 10.0, curve, 0.01, LiquidityConfig(), Decimal("0.1"), Decimal("0.001"), Decimal("0.001")
        )
        if q.side == "buy" and q.price >= near
    )
    assert stormy < calm / 5  # the book thins (and widens) as volatility rises


def test_volatility_peaks_in_the_crash_minutes():
    candles = load_price_candles(DEFAULT_CANDLES_FILE, start="2025-10-10T18:00Z", end="2025-10-11T00:00Z")
    path = candles_to_path(candles, Decimal("0.1"))
    r = volatility_ratio(path.timestamps_ms, path.values, 20.0)
    peak = int(path.timestamps_ms[int(np.argmax(r))])
    assert 1760130000000 <= peak < 1760131800000  # 21:00–21:30 UTC
    assert r.max() > 10


@settings(max_examples=200, deadline=None)
@given(
    ticks=st.integers(1, 10**8),
    step=st.sampled_from([("0.1", "0.001"), ("0.01", "0.001"), ("0.0001", "1"), ("1", "0.01")]),
    vol=st.floats(0.01, 1000.0),
    scale=st.floats(1e-6, 10.0),
    off_grid=st.booleans(),
)
def test_ladder_quotes_lie_on_the_grid_strictly_on_their_side(ticks, step, vol, scale, off_grid):
    tick, lot = Decimal(step[0]), Decimal(step[1])
    price = Decimal(ticks) * tick + (tick / 3 if off_grid else 0)  # the mark path may be off the grid
    quotes = ladder(price, vol, default_depth_curve(), scale, LiquidityConfig(), tick, lot, lot)
    for side in ("buy", "sell"):
        levels = [q.price for q in quotes if q.side == side]
        assert len(levels) == len(set(levels))
        assert levels == sorted(levels, reverse=(side == "buy"))  # from the price outward
    for q in quotes:
        assert q.price > 0 and q.price % tick == 0 and q.quantity % lot == 0 and q.quantity >= lot
        assert (q.price < price) if q.side == "buy" else (q.price > price)
