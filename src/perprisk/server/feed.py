"""Price feeds: ``SetMarkPrice`` commands through the single writer, like any other command.

* :class:`ReplayFeed` replays a real candle file (any format :func:`perprisk.candles.load_candles` reads) at
  ``speed`` times real time: four marks per candle, open → low → high → close for a rising candle and
  open → high → low → close for a falling one (the path the candle allows with the least travel).
* :class:`SyntheticFeed` walks every market by a seeded random walk (``speed`` ticks per second).
* :class:`FundingClock` samples funding premiums and settles funding on a wall-clock schedule.

Marks are stamped with the server's clock (never earlier than the market's time), so feed ticks, admin marks
and funding share one timeline; a replayed candle's own time is reported in :meth:`status`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from perprisk import commands as cmd
from perprisk.candles import load_candles
from perprisk.errors import ValidationError
from perprisk.money import Rounding, round_to_step
from perprisk.server.service import EngineService, now_ms

log = logging.getLogger("perprisk.server.feed")

SYNTHETIC_START = {"BTCUSDT": Decimal("100000"), "ETHUSDT": Decimal("4000")}
MAX_BACKLOG = 2000  # skip feed ticks while the writer has more than this queued


def stamp(engine: Any, symbol: str) -> int:
    return max(now_ms(), engine.markets[symbol].timestamp_ms)


def mark_command(symbol: str, price: Decimal) -> Any:
    """A command factory: the mark at the server's time, built in the writer against the current state."""
    return lambda engine: cmd.SetMarkPrice(symbol, price, stamp(engine, symbol))


def parse_time(value: str | int | None) -> int | None:
    """ms since the epoch from an integer or an ISO 8601 date/time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("feed_start", f"expected ms since the epoch or an ISO 8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


class Feed:
    kind = "none"

    def __init__(self, service: EngineService, paused: bool = False) -> None:
        self.service = service
        self._running = asyncio.Event()
        if not paused:
            self._running.set()
        self._task: asyncio.Task | None = None
        self.ticks = 0
        self.finished = False

    @property
    def running(self) -> bool:
        return self._running.is_set() and not self.finished

    def start(self) -> None:
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def launch(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._guarded())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _guarded(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s feed stopped", self.kind)
        self.finished = True

    async def run(self) -> None:  # pragma: no cover - overridden
        return

    def emit(self, symbol: str, price: Decimal) -> None:
        if self.service.queue.qsize() > MAX_BACKLOG:
            return
        if self.service.submit_nowait(mark_command(symbol, price)):
            self.ticks += 1

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "running": self.running, "finished": self.finished, "ticks": self.ticks}


class NoFeed(Feed):
    kind = "none"

    @property
    def running(self) -> bool:
        return False


class ReplayFeed(Feed):
    kind = "replay"

    def __init__(self, service: EngineService, path: str | Path, symbol: str, speed: float, start: Any = None,
                 paused: bool = False, loop: bool = False) -> None:
        super().__init__(service, paused)
        if symbol not in service.engine.markets:
            raise ValidationError("feed_symbol", f"unknown market {symbol!r}")
        self.path = Path(path)
        self.symbol = symbol
        self.speed = float(speed)
        self.loop_forever = loop
        candles = load_candles(self.path)
        start_ms = parse_time(start)
        first = 0
        if start_ms is not None:
            import numpy as np

            first = int(np.searchsorted(candles.timestamps_ms, start_ms, side="left"))
            if first >= len(candles):
                raise ValidationError("feed_start", f"no candle at or after {start} in {self.path}")
        if len(candles) == 0:
            raise ValidationError("feed", f"{self.path} holds no candles")
        self.candles = candles
        self.first = first
        self.position = first
        self.candle_time_ms: int | None = None
        tick = service.engine.markets[symbol].instrument.tick_size
        self.tick = tick

    def path_of(self, i: int) -> list[Decimal]:
        row = self.candles.decimal_row(i)
        if row.close >= row.open:
            prices = [row.open, row.low, row.high, row.close]
        else:
            prices = [row.open, row.high, row.low, row.close]
        return [round_to_step(p, self.tick, Rounding.HALF_EVEN) for p in prices]

    async def run(self) -> None:
        interval = self.candles.interval_ms / 1000.0 / self.speed / 4
        while True:
            while self.position < len(self.candles):
                for price in self.path_of(self.position):
                    await self._running.wait()
                    self.candle_time_ms = int(self.candles.timestamps_ms[self.position])
                    self.emit(self.symbol, price)
                    await asyncio.sleep(interval)
                self.position += 1
            if not self.loop_forever:
                return
            self.position = self.first

    def status(self) -> dict[str, Any]:
        return {
            **super().status(), "symbol": self.symbol, "source": self.path.name, "speed": self.speed,
            "candle": self.position, "candles": len(self.candles), "candle_time_ms": self.candle_time_ms,
        }


class SyntheticFeed(Feed):
    kind = "synthetic"

    def __init__(self, service: EngineService, speed: float, seed: int = 7, volatility: float = 0.0005,
                 paused: bool = False) -> None:
        super().__init__(service, paused)
        self.speed = float(speed)
        self.random = random.Random(seed)
        self.volatility = float(volatility)
        self.prices: dict[str, Decimal] = {}
        for symbol, state in service.engine.markets.items():
            start = state.mark_price or state.last_price or SYNTHETIC_START.get(symbol, Decimal(100))
            self.prices[symbol] = start

    async def run(self) -> None:
        engine = self.service.engine
        while True:
            await self._running.wait()
            for symbol in sorted(self.prices):
                tick = engine.markets[symbol].instrument.tick_size
                step = math.exp(self.random.gauss(0.0, self.volatility))
                price = round_to_step(self.prices[symbol] * Decimal(repr(step)), tick, Rounding.HALF_EVEN)
                self.prices[symbol] = max(price, tick)
                self.emit(symbol, self.prices[symbol])
            await asyncio.sleep(1.0 / self.speed)

    def status(self) -> dict[str, Any]:
        return {**super().status(), "speed": self.speed, "volatility": self.volatility}


class FundingClock:
    """Sample every ``sample_seconds``; settle every ``interval_seconds`` at the rate from the samples."""

    def __init__(self, service: EngineService, interval_seconds: float, sample_seconds: float) -> None:
        self.service = service
        self.interval = interval_seconds
        self.sample = min(sample_seconds, interval_seconds)
        self._task: asyncio.Task | None = None

    def launch(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def run(self) -> None:
        elapsed = 0.0
        while True:
            await asyncio.sleep(self.sample)
            elapsed += self.sample
            for symbol in self.service.engine.markets:
                self.service.submit_nowait(self._sample(symbol))
                if elapsed >= self.interval:
                    self.service.submit_nowait(self._settle(symbol))
            if elapsed >= self.interval:
                elapsed = 0.0

    @staticmethod
    def _sample(symbol: str) -> Any:
        def build(engine: Any) -> Any:
            if engine.markets[symbol].index_price is None:
                return None
            return cmd.SampleFunding(symbol, stamp(engine, symbol))
        return build

    @staticmethod
    def _settle(symbol: str) -> Any:
        def build(engine: Any) -> Any:
            state = engine.markets[symbol]
            if state.mark_price is None or not len(state.premiums):
                return None
            return cmd.SettleFunding(symbol, stamp(engine, symbol))
        return build


def make_feed(service: EngineService) -> Feed:
    config = service.config
    kind = config.feed.strip()
    if kind in ("", "none"):
        return NoFeed(service)
    if kind == "synthetic":
        return SyntheticFeed(service, config.feed_speed, config.synthetic_seed, config.synthetic_volatility,
                             paused=config.feed_paused)
    return ReplayFeed(service, kind, config.feed_symbol, config.feed_speed, config.feed_start,
                      paused=config.feed_paused, loop=config.feed_loop)
