"""Where the repository's shipped data lives (real market data with provenance: see data/MANIFEST.md)."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository's ``data/`` folder; override with the PERPRISK_DATA environment variable.
DATA_DIR = Path(os.environ.get("PERPRISK_DATA", Path(__file__).resolve().parents[2] / "data"))

BINANCE_TIERS_FILE = DATA_DIR / "binance_um" / "leverage_tiers_ccxt.json"
BTC_DAILY_FILE = DATA_DIR / "coinbase" / "BTCUSD_1d_candles_full.csv"
