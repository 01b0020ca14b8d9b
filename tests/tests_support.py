"""Shared builders for tests (real Binance tiers)."""

from __future__ import annotations

from perprisk.instrument import Instrument, load_tier_table
from perprisk.paths import BINANCE_TIERS_FILE


def btc_instrument(**overrides) -> Instrument:
    values = dict(
        symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001", min_size="0.001",
        maker_fee="0.0002", taker_fee="0.0005", tiers=load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT"),
    )
    values.update(overrides)
    return Instrument.create(**values)
