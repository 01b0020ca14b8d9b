from __future__ import annotations

from decimal import Decimal

import pytest

from perprisk.engine import Engine, EngineConfig
from perprisk.instrument import Instrument, load_tier_table
from perprisk.paths import BINANCE_TIERS_FILE


def btc_instrument(**overrides) -> Instrument:
    values = dict(
        symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001", min_size="0.001",
        maker_fee="0.0002", taker_fee="0.0005", tiers=load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT"),
    )
    values.update(overrides)
    return Instrument.create(**values)


def eth_instrument() -> Instrument:
    return Instrument.create(
        symbol="ETHUSDT", base="ETH", settle="USDT", tick_size="0.01", lot_size="0.001", min_size="0.001",
        maker_fee="0.0002", taker_fee="0.0005", tiers=load_tier_table(BINANCE_TIERS_FILE, "ETHUSDT"),
    )


@pytest.fixture
def engine_config() -> EngineConfig:
    return EngineConfig(markets=(btc_instrument(), eth_instrument()))


@pytest.fixture
def engine(engine_config) -> Engine:
    return Engine(engine_config)


D = Decimal
