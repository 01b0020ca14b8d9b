"""Server configuration: a TOML file and/or flags; the admin key from ``PERPRISK_ADMIN_KEY`` or the file.

No secret has a default here: without an admin key the admin API answers 401 to every request.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from perprisk.engine import EngineConfig
from perprisk.errors import ValidationError
from perprisk.instrument import Instrument, load_tier_table
from perprisk.paths import BINANCE_TIERS_FILE

ADMIN_KEY_ENV = "PERPRISK_ADMIN_KEY"
DEFAULT_DB = "sqlite:///perprisk.db"


def default_markets() -> tuple[Instrument, ...]:
    """BTCUSDT and ETHUSDT settled in USDT, with the shipped Binance USDⓈ-M risk tiers and Binance's
    regular (VIP 0) fees, tick and lot sizes."""
    common = dict(settle="USDT", maker_fee="0.0002", taker_fee="0.0005")
    return (
        Instrument.create(symbol="BTCUSDT", base="BTC", tick_size="0.1", lot_size="0.001", min_size="0.001",
                          tiers=load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT"), **common),
        Instrument.create(symbol="ETHUSDT", base="ETH", tick_size="0.01", lot_size="0.001", min_size="0.001",
                          tiers=load_tier_table(BINANCE_TIERS_FILE, "ETHUSDT"), **common),
    )


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``rate`` requests per second sustained, ``burst`` at once."""

    rate: float
    burst: int


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    db: str = DEFAULT_DB
    admin_key: str | None = None
    #: none | synthetic | a candle file path (replayed as marks of ``feed_symbol``)
    feed: str = "none"
    feed_symbol: str = "BTCUSDT"
    #: replay: how many times faster than real time (60: one 1-minute candle per second);
    #: synthetic: ticks per second
    feed_speed: float = 60.0
    #: replay: start at the first candle at or after this time (ms since the epoch or ISO 8601 date/time)
    feed_start: str | None = None
    feed_paused: bool = False
    feed_loop: bool = False
    synthetic_seed: int = 7
    synthetic_volatility: float = 0.0005  # per tick, log-return standard deviation
    #: sample funding premiums every ``funding_sample_seconds`` and settle every ``funding_interval_seconds``
    #: (0: no automatic funding; the admin API can settle at a given rate)
    funding_interval_seconds: float = 0.0
    funding_sample_seconds: float = 60.0
    #: seed the insurance fund with this much USDT when the journal is empty
    insurance_seed: Decimal | None = None
    snapshot_every: int = 10_000
    user_rate: RateLimit = RateLimit(200.0, 400)  # per API key
    public_rate: RateLimit = RateLimit(1000.0, 2000)  # per client address (public and admin endpoints)
    ws_queue: int = 2000  # messages buffered per WebSocket before a slow client is dropped
    max_body_bytes: int = 65_536
    max_pending_commands: int = 20_000
    access_log: bool = False
    log_level: str = "info"
    markets: tuple[Instrument, ...] = field(default_factory=default_markets)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(markets=self.markets)

    def with_overrides(self, **values: Any) -> "ServerConfig":
        return replace(self, **{k: v for k, v in values.items() if v is not None})


_SIMPLE = {f.name for f in fields(ServerConfig)} - {"markets", "user_rate", "public_rate", "insurance_seed"}


def load_config(path: str | Path | None = None, **overrides: Any) -> ServerConfig:
    """The configuration from a TOML file (optional), then the flags (``None`` = not given), then the
    admin key from the environment when set."""
    config = ServerConfig()
    if path is not None:
        config = _from_file(Path(path))
    config = config.with_overrides(**overrides)
    env_key = os.environ.get(ADMIN_KEY_ENV)
    if env_key:
        config = replace(config, admin_key=env_key)
    return validate(config)


def _from_file(path: Path) -> ServerConfig:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as err:
        raise ValidationError("config", f"cannot read {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValidationError("config", f"{path}: {err}") from None
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key in _SIMPLE:
            values[key] = float(value) if isinstance(value, Decimal) else value
        elif key == "insurance_seed":
            values[key] = Decimal(str(value))
        elif key in ("user_rate", "public_rate"):
            if not isinstance(value, dict) or set(value) - {"rate", "burst"}:
                raise ValidationError(f"config.{key}", "expected a table with rate and burst")
            values[key] = RateLimit(float(value.get("rate", 1)), int(value.get("burst", 1)))
        else:
            raise ValidationError(f"config.{key}", f"unknown setting (known: {', '.join(sorted(_SIMPLE | {'insurance_seed', 'user_rate', 'public_rate'}))})")
    return ServerConfig(**values)


def validate(config: ServerConfig) -> ServerConfig:
    if not isinstance(config.port, int) or not 0 <= config.port <= 65535:
        raise ValidationError("port", f"must be 0..65535, got {config.port!r}")
    if not isinstance(config.db, str) or not config.db.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ValidationError("db", f"expected sqlite:///PATH or postgresql://..., got {config.db!r}")
    if config.feed_speed <= 0:
        raise ValidationError("feed_speed", f"must be positive, got {config.feed_speed}")
    if config.snapshot_every < 1:
        raise ValidationError("snapshot_every", "must be at least 1")
    for name in ("user_rate", "public_rate"):
        limit = getattr(config, name)
        if limit.rate <= 0 or limit.burst < 1:
            raise ValidationError(name, "rate must be positive and burst at least 1")
    if config.feed_symbol not in {m.symbol for m in config.markets}:
        raise ValidationError("feed_symbol", f"unknown market {config.feed_symbol!r}")
    if config.admin_key is not None and not isinstance(config.admin_key, str):
        raise ValidationError("admin_key", "must be a string")
    return config
