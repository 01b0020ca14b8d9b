"""Data loaders of the stress simulator: candles, funding rates, mark prices, order-book depth, time windows.

Candles go through :mod:`perprisk.candles` (validated loaders for ``binance-csv``, ``freqtrade-json``,
``cdd-csv``, ``csv`` and ``parquet``, with gap reports); this module adds what the simulator needs beside them:

* :func:`load_funding_rates` — funding-rate history: freqtrade's ``*-funding_rate.json`` (``[ms, rate, 0, 0, 0,
  0]`` rows, the rate in the second field) or a CSV with a time column and a ``funding_rate`` /
  ``last_funding_rate`` / ``rate`` column (Binance data-vision ``fundingRate`` files have ``calc_time`` and
  ``last_funding_rate``).  Rates are exact Decimals parsed from the file's own text.
* :func:`load_mark_prices` — mark-price candles (freqtrade ``*-mark.json`` or any candle format).
* :func:`load_depth_snapshot` — an order-book depth snapshot: Tardis ``book_snapshot_25`` CSV (one row per
  snapshot, ``asks[i].price, asks[i].amount, bids[i]...``) or a Binance depth-snapshot CSV (one row per level:
  ``side, price, qty``).  Used to calibrate the market makers' depth (:mod:`perprisk.sim.liquidity`).
* :func:`parse_time` and :func:`select_window` — UTC times given as ISO text or epoch milliseconds.

Every refusal is a :class:`~perprisk.errors.ValidationError` naming the file, the row and the field
(``"funding.json:row 7:rate"``), as the candle loaders do.  Nothing is silently filled or reordered.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from perprisk.candles import FORMATS, Candles, Gap, JsonNumber, json_rows, load_candles
from perprisk.errors import ValidationError
from perprisk.paths import DATA_DIR

__all__ = [
    "DEFAULT_CANDLES_FILE",
    "DEFAULT_DEPTH_FILES",
    "DEFAULT_FUNDING_FILE",
    "DEFAULT_MARK_FILE",
    "FORMATS",
    "DepthSnapshot",
    "FundingRates",
    "iso",
    "load_depth_snapshot",
    "load_funding_rates",
    "load_mark_prices",
    "load_price_candles",
    "parse_time",
    "select_window",
]

#: The default scenario: Binance USDⓈ-M BTCUSDT 1-minute klines of the 2025-10-10/11 crash (data/MANIFEST.md).
DEFAULT_CANDLES_FILE = DATA_DIR / "binance_um" / "BTCUSDT-1m-2025-10-10_11.csv"
#: Binance 8-hour BTCUSDT funding rates, 2025-09-19 → 2025-10-27 (freqtrade JSON).
DEFAULT_FUNDING_FILE = DATA_DIR / "binance_um" / "BTC_USDT_USDT-8h-funding_rate.json"
#: Binance 8-hour BTCUSDT mark-price candles over the same span (freqtrade JSON).
DEFAULT_MARK_FILE = DATA_DIR / "binance_um" / "BTC_USDT_USDT-8h-mark.json"
#: Real Binance BTCUSDT depth snapshots the liquidity model is calibrated on.
DEFAULT_DEPTH_FILES = (
    DATA_DIR / "orderbook" / "binance-futures_book_snapshot_25_BTCUSDT.csv",
    DATA_DIR / "orderbook" / "btcusdt-depth-snap.csv",
)

#: A funding rate whose magnitude reaches this is refused as not a rate (a percentage or a price by mistake).
MAX_ABS_FUNDING_RATE = Decimal("0.5")


# ------------------------------------------------------------------------------------------------ times


def parse_time(value: object, field: str = "time") -> int:
    """UTC milliseconds from ISO-8601 text (``2025-10-10T21:00``, ``2025-10-10 21:00:00Z``; no offset = UTC),
    a date (``2025-10-10``) or an integer of epoch milliseconds."""
    if isinstance(value, bool):
        raise ValidationError(field, f"expected a time, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValidationError(field, f"must not be negative, got {value}")
        return value
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(round(dt.timestamp() * 1000))
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, f"expected an ISO-8601 time such as 2025-10-10T21:00Z, got {value!r}")
    text = value.strip()
    if text.isdigit():
        return int(text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, f"not an ISO-8601 time: {value!r} (e.g. 2025-10-10T21:00:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(round(dt.timestamp() * 1000))


def iso(ms: int) -> str:
    """``2025-10-10T21:20:00Z`` for a time in UTC milliseconds."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def select_window(candles: Candles, start: object = None, end: object = None) -> Candles:
    """The candles whose open time lies in ``[start, end)``; refuses an empty or inverted window."""
    if start is None and end is None:
        return candles
    first = int(candles.timestamps_ms[0]) if len(candles) else 0
    last = int(candles.timestamps_ms[-1]) + 1 if len(candles) else 0
    lo = parse_time(start, "start") if start is not None else first
    hi = parse_time(end, "end") if end is not None else last
    if hi <= lo:
        raise ValidationError("end", f"the window ends ({iso(hi)}) at or before it starts ({iso(lo)})")
    out = candles.slice_time(lo, hi)
    if len(out) < 2:
        span = f"{iso(first)} .. {iso(last - 1)}" if len(candles) else "nothing"
        raise ValidationError(
            "start",
            f"the window {iso(lo)} .. {iso(hi)} holds {len(out)} candle(s) of {candles.source} "
            f"(which covers {span}); at least 2 are needed",
        )
    return out


# ------------------------------------------------------------------------------------------------ candles


def load_price_candles(
    path: str | Path, fmt: str | None = None, start: object = None, end: object = None
) -> Candles:
    """Validated candles of ``path`` (any :data:`FORMATS`), cut to ``[start, end)`` when given.

    Gaps are kept in :attr:`Candles.gaps` (reported by the runner, never filled).
    """
    candles = load_candles(path, fmt)
    if len(candles) < 2:
        raise ValidationError(Path(path).name, f"{len(candles)} candle(s): a price path needs at least 2")
    return select_window(candles, start, end)


def load_mark_prices(path: str | Path, fmt: str | None = None) -> Candles:
    """Mark-price candles (freqtrade ``*-mark.json`` or any candle format), validated like any candles."""
    return load_candles(path, fmt)


# ------------------------------------------------------------------------------------------------ funding


@dataclass(frozen=True, eq=False)
class FundingRates:
    """Funding settlements in ascending time: ``timestamps_ms`` (int64) and exact ``rates`` (Decimal)."""

    timestamps_ms: np.ndarray
    rates: tuple[Decimal, ...]
    source: str
    interval_ms: int
    gaps: tuple[Gap, ...]

    def __len__(self) -> int:
        return len(self.rates)

    def between(self, start_ms: int, end_ms: int) -> list[tuple[int, Decimal]]:
        """The settlements with ``start_ms <= time < end_ms``."""
        lo = int(np.searchsorted(self.timestamps_ms, start_ms, side="left"))
        hi = int(np.searchsorted(self.timestamps_ms, end_ms, side="left"))
        return [(int(self.timestamps_ms[i]), self.rates[i]) for i in range(lo, hi)]


def load_funding_rates(path: str | Path, fmt: str | None = None) -> FundingRates:
    """Funding rates from freqtrade JSON (``fmt="freqtrade-json"``) or CSV (``fmt="csv"``); detected if None.

    Checks: every time an integer (ms; seconds are told apart by magnitude), strictly increasing; every rate a
    finite number with ``|rate| < 0.5``.  Irregular spacing is reported in ``gaps`` (more than 1.5 intervals).
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ValidationError(name, f"file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(name, f"cannot read funding file: {exc}") from None
    if not text.strip():
        raise ValidationError(name, "empty file: no funding rates")
    if fmt is None:
        fmt = "freqtrade-json" if text.lstrip()[:1] in "[{" else "csv"
    if fmt == "freqtrade-json":
        rows = _funding_json(text, name)
    elif fmt == "csv":
        rows = _funding_csv(text, name)
    else:
        raise ValidationError(f"{name}:format", f"funding files are freqtrade-json or csv, not {fmt!r}")
    times: list[int] = []
    rates: list[Decimal] = []
    for row, time_text, rate_text, time_col, rate_col in rows:
        where = f"{name}:row {row}"
        ms = _epoch_ms(time_text, f"{where}:{time_col}")
        try:
            rate = Decimal(rate_text.strip())
        except InvalidOperation:
            raise ValidationError(f"{where}:{rate_col}", f"not a number: {rate_text!r}") from None
        if not rate.is_finite():
            raise ValidationError(f"{where}:{rate_col}", f"{rate_text!r} is not a finite rate")
        if abs(rate) >= MAX_ABS_FUNDING_RATE:
            raise ValidationError(
                f"{where}:{rate_col}", f"{rate} is not a plausible funding rate (|rate| < 0.5)"
            )
        if times and ms <= times[-1]:
            raise ValidationError(
                f"{where}:{time_col}",
                f"time {iso(ms)} does not come after {iso(times[-1])} (times must increase)",
            )
        times.append(ms)
        rates.append(rate)
    if not rates:
        raise ValidationError(name, "no funding rates")
    ts = np.asarray(times, dtype=np.int64)
    diffs = np.diff(ts)
    interval = int(np.median(diffs)) if len(diffs) else 8 * 3_600_000
    gaps = tuple(
        Gap(int(ts[i]), int(ts[i + 1]), int(round(d / interval)) - 1)
        for i, d in enumerate(diffs.tolist())
        if d > 1.5 * interval
    )
    return FundingRates(ts, tuple(rates), str(path), interval, gaps)


def _epoch_ms(text: str, field: str) -> int:
    t = text.strip()
    if not t.replace(".", "", 1).isdigit():
        try:
            return parse_time(t, field)
        except ValidationError:
            raise ValidationError(field, f"not a time: {text!r}") from None
    value = Decimal(t)
    if value != value.to_integral_value() and value < 10**11:
        value = value * 1000  # seconds with a fraction
    elif value < 10**11:
        value = value * 1000  # whole seconds
    elif value >= 10**17:
        value = value / 1_000_000  # nanoseconds
    elif value >= 10**14:
        value = value / 1000  # microseconds
    return int(value)


def _funding_json(text: str, name: str) -> list[tuple[int, str, str, str, str]]:
    data = json_rows(text, name, "[ms, rate, ...]")
    out = []
    for i, item in enumerate(data, start=1):
        if not isinstance(item, list) or len(item) < 2:
            raise ValidationError(f"{name}:row {i}:columns", "expected [ms, rate, ...] (at least 2 values)")
        for k, col in ((0, "timestamp"), (1, "rate")):
            v = item[k]
            if not isinstance(v, JsonNumber):
                what = "empty value (null)" if v is None else f"not a number: {json.dumps(v)}"
                raise ValidationError(f"{name}:row {i}:{col}", what)
            if v.lower() in ("nan", "infinity", "-infinity"):
                raise ValidationError(f"{name}:row {i}:{col}", f"{v} is not a number")
        out.append((i, str(item[0]), str(item[1]), "timestamp", "rate"))
    return out


_TIME_COLUMNS = ("timestamp", "time", "calc_time", "funding_time", "fundingtime", "date", "datetime", "ts")
_RATE_COLUMNS = ("funding_rate", "last_funding_rate", "fundingrate", "rate")


def _funding_csv(text: str, name: str) -> list[tuple[int, str, str, str, str]]:
    reader = csv.reader(io.StringIO(text))
    rows = [(i, r) for i, r in enumerate(reader, start=1) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValidationError(name, "empty file: no funding rates")
    header = [c.strip().lower() for c in rows[0][1]]
    time_col = next((c for c in _TIME_COLUMNS if c in header), None)
    rate_col = next((c for c in _RATE_COLUMNS if c in header), None)
    if time_col is None or rate_col is None:
        missing = (
            "a time column (" + "/".join(_TIME_COLUMNS) + ")"
            if time_col is None
            else "a rate column (" + "/".join(_RATE_COLUMNS) + ")"
        )
        raise ValidationError(f"{name}:row 1:header", f"needs {missing}; found {', '.join(header)}")
    ti, ri = header.index(time_col), header.index(rate_col)
    out = []
    for i, r in rows[1:]:
        if len(r) <= max(ti, ri):
            raise ValidationError(f"{name}:row {i}:columns", f"expected {len(header)} values, found {len(r)}")
        for idx, col in ((ti, time_col), (ri, rate_col)):
            if not r[idx].strip() or r[idx].strip().lower() in ("nan", "inf", "-inf", "null"):
                raise ValidationError(f"{name}:row {i}:{col}", f"empty or not a number: {r[idx]!r}")
        out.append((i, r[ti], r[ri], time_col, rate_col))
    return out


# ------------------------------------------------------------------------------------------------ depth


@dataclass(frozen=True, eq=False)
class DepthSnapshot:
    """One order-book snapshot: levels as (distance from the mid in basis points, quantity, price) per side.

    ``mid`` is the mid price (or the best price when only one side is known); quantities in base units.
    """

    source: str
    timestamp_ms: int
    mid: float
    bids: np.ndarray  # shape (n, 2): distance_bps, quantity — best first
    asks: np.ndarray

    def cumulative_notional(self) -> tuple[np.ndarray, np.ndarray]:
        """(distance_bps, cumulative quote notional within that distance) of each side's levels, both sides
        concatenated (for fitting a depth curve); the notional is quantity × the level's price."""
        dist, cum = [], []
        for side, sign in ((self.bids, -1.0), (self.asks, 1.0)):
            if len(side):
                price = self.mid * (1.0 + sign * side[:, 0] / 1e4)
                dist.append(side[:, 0])
                cum.append(np.cumsum(side[:, 1] * price))
        return np.concatenate(dist), np.concatenate(cum)


def load_depth_snapshot(path: str | Path, index: int = 0) -> DepthSnapshot:
    """The ``index``-th snapshot of a Tardis ``book_snapshot_*`` CSV, or the snapshot of a Binance
    depth-snapshot CSV (``side, price, qty`` per level; one-sided files are accepted)."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ValidationError(name, f"file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(name, f"cannot read depth file: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValidationError(name, "no depth rows")
    header = [c.strip() for c in rows[0]]
    if "asks[0].price" in header or "bids[0].price" in header:
        return _tardis_snapshot(name, str(path), header, rows[1:], index)
    low = [h.lower() for h in header]
    if {"side", "price", "qty"} <= set(low):
        return _level_snapshot(name, str(path), low, rows[1:])
    raise ValidationError(
        f"{name}:row 1:header",
        "not a depth snapshot: expected Tardis 'asks[0].price ...' columns or 'side, price, qty' levels",
    )


def _float_cell(text: str, field: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValidationError(field, f"not a number: {text!r}") from None
    if not math.isfinite(v):
        raise ValidationError(field, f"{text!r} is not a finite number")
    return v


def _tardis_snapshot(
    name: str, source: str, header: list[str], rows: list[list[str]], index: int
) -> DepthSnapshot:
    if not 0 <= index < len(rows):
        raise ValidationError(f"{name}:index", f"snapshot {index} out of range: the file holds {len(rows)}")
    row_no = index + 2
    r = rows[index]
    if len(r) != len(header):
        raise ValidationError(
            f"{name}:row {row_no}:columns", f"expected {len(header)} values, found {len(r)}"
        )
    cells = dict(zip(header, r))
    ts = int(_float_cell(cells.get("timestamp", "0"), f"{name}:row {row_no}:timestamp"))
    ts = ts // 1000 if ts > 10**14 else ts  # Tardis: microseconds
    sides: dict[str, list[tuple[float, float]]] = {"bids": [], "asks": []}
    for side in sides:
        i = 0
        while f"{side}[{i}].price" in cells:
            p_text, q_text = cells[f"{side}[{i}].price"], cells.get(f"{side}[{i}].amount", "")
            if p_text.strip() == "" and q_text.strip() == "":
                break
            p = _float_cell(p_text, f"{name}:row {row_no}:{side}[{i}].price")
            q = _float_cell(q_text, f"{name}:row {row_no}:{side}[{i}].amount")
            if p <= 0 or q < 0:
                raise ValidationError(
                    f"{name}:row {row_no}:{side}[{i}]", f"price {p_text} / amount {q_text} invalid"
                )
            sides[side].append((p, q))
            i += 1
    if not sides["bids"] or not sides["asks"]:
        raise ValidationError(f"{name}:row {row_no}", "a Tardis snapshot needs both bids and asks")
    best_bid, best_ask = sides["bids"][0][0], sides["asks"][0][0]
    if best_bid >= best_ask:
        raise ValidationError(
            f"{name}:row {row_no}:bids[0].price", f"crossed book: bid {best_bid} ≥ ask {best_ask}"
        )
    mid = (best_bid + best_ask) / 2
    return DepthSnapshot(
        source,
        ts,
        mid,
        _levels(sides["bids"], mid, -1, name, row_no, "bids"),
        _levels(sides["asks"], mid, 1, name, row_no, "asks"),
    )


def _levels(
    levels: Sequence[tuple[float, float]], mid: float, sign: int, name: str, row: int, side: str
) -> np.ndarray:
    out = np.array([[sign * (p - mid) / mid * 1e4, q] for p, q in levels], dtype=float)
    if len(out) > 1 and np.any(np.diff(out[:, 0]) < 0):
        raise ValidationError(f"{name}:row {row}:{side}", "levels are not ordered best first")
    return out


def _level_snapshot(name: str, source: str, header: list[str], rows: list[list[str]]) -> DepthSnapshot:
    si, pi, qi = header.index("side"), header.index("price"), header.index("qty")
    ti = header.index("timestamp") if "timestamp" in header else None
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []
    ts = 0
    for k, r in enumerate(rows, start=2):
        if len(r) != len(header):
            raise ValidationError(f"{name}:row {k}:columns", f"expected {len(header)} values, found {len(r)}")
        side = r[si].strip().lower()
        p = _float_cell(r[pi], f"{name}:row {k}:price")
        q = _float_cell(r[qi], f"{name}:row {k}:qty")
        if p <= 0 or q < 0:
            raise ValidationError(f"{name}:row {k}:price", f"price {r[pi]} / qty {r[qi]} invalid")
        if ti is not None and not ts:
            ts = int(_float_cell(r[ti], f"{name}:row {k}:timestamp"))
        if side in ("b", "bid", "bids", "buy"):
            bids.append((p, q))
        elif side in ("a", "ask", "asks", "sell"):
            asks.append((p, q))
        else:
            raise ValidationError(f"{name}:row {k}:side", f"expected b/a (bid/ask), got {r[si]!r}")
    bids.sort(key=lambda x: -x[0])
    asks.sort(key=lambda x: x[0])
    if not bids and not asks:
        raise ValidationError(name, "no levels")
    if bids and asks:
        if bids[0][0] >= asks[0][0]:
            raise ValidationError(f"{name}:price", f"crossed book: bid {bids[0][0]} ≥ ask {asks[0][0]}")
        mid = (bids[0][0] + asks[0][0]) / 2
    else:
        mid = bids[0][0] if bids else asks[0][0]
    return DepthSnapshot(
        source,
        ts,
        mid,
        np.array([[(mid - p) / mid * 1e4, q] for p, q in bids], dtype=float).reshape(-1, 2),
        np.array([[(p - mid) / mid * 1e4, q] for p, q in asks], dtype=float).reshape(-1, 2),
    )
