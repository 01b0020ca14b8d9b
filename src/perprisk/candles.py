"""Validated candle (OHLCV) loading: the data layer the stress simulator and the pre-trade check share.

:func:`load_candles` reads one file of candles, checks every row and returns :class:`Candles`:

* ``timestamps_ms`` -- int64 open times in milliseconds UTC, strictly increasing;
* ``open``/``high``/``low``/``close``/``volume`` -- float64 arrays, **for statistics and screening only**;
* the original text of every price and volume, so :meth:`Candles.decimal_row` gives exact
  :class:`~decimal.Decimal` values without a binary-float round trip (parsed lazily: loading stays fast);
* ``interval_ms`` (the modal spacing) and ``gaps`` (missing intervals, reported and never filled).

Formats (``fmt``; ``None`` detects it from the file's first bytes and lines, Parquet also by extension):

``binance-csv``
    Binance data-vision kline CSV, 12 columns ``open_time, open, high, low, close, volume, close_time,
    quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore``, with or without a header row;
    ``open_time`` in milliseconds or, in newer files, microseconds (detected per value).
``freqtrade-json``
    freqtrade's JSON list of ``[ms, open, high, low, close, volume]`` (``.json`` or ``.json.gz``).
    The numbers are kept as the text the file wrote.
``cdd-csv``
    CryptoDataDownload CSV: an optional banner line (``https://www.CryptoDataDownload.com``), a header
    ``unix,date,symbol,open,high,low,close,Volume <base>,Volume <quote>[,tradecount]``, newest row first
    (the rows are put in ascending order).  ``unix`` is seconds (``1502949600.0``) in older rows and
    milliseconds in newer ones; each value is normalized.  The base-asset volume (the first ``Volume ...``
    column) is the volume.  The shipped files hold a stretch of time (2020-08-01 .. 2020-11-20 hourly,
    2017-12-18 daily) once in each of the two series; for such a pair the millisecond-series row (full
    precision, with trade count) is kept and the seconds-series row is dropped *and reported* in
    :attr:`Candles.dropped`.  Any other repeated time is refused.
``csv``
    Generic CSV with a header naming ``timestamp`` (or ``time``/``datetime``/``date``/``open_time``/``unix``),
    ``open, high, low, close`` and optionally ``volume``, in any order, extra columns ignored; comma,
    semicolon or tab separated.  Timestamps are epoch seconds/milliseconds/microseconds/nanoseconds (told
    apart by magnitude) or ISO-8601 (``2011-08-18 00:00:00``, ``2025-10-10T21:20:00Z``; no offset means UTC).
    The shipped ``coinbase/BTCUSD_1d_candles_full.csv`` (``timestamp,open,close,volume,unix_timestamp,high,
    low``) loads through this format.
``parquet``
    The same columns as ``csv`` (``date`` as in freqtrade's Parquet files is accepted too) in a Parquet
    file; needs the optional ``pyarrow`` package.  Float columns keep their shortest round-trip text.

``.zip`` (one member, as Binance data-vision ships) and ``.gz`` files are opened transparently.

Every refusal is a :class:`~perprisk.errors.ValidationError` whose field names the file, the row and the
column, ``"BTCUSDT-1m.csv:row 17:high"`` with message ``"high 100 is below low 101"``.  Rows are numbered as
a person counts them in the file: the line number in a CSV file (the header is row 1), the position in the
list (from 1) in a JSON file, the row number (from 1) in a Parquet file.  Columns are named as the file's
header names them, else by their canonical names.  The loader stops at the first kind of problem it finds
(cells that are not numbers or times, then inconsistent rows, then time order), naming the earliest row of
that kind.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Sequence

import numpy as np

from perprisk.errors import ValidationError
from perprisk.money import MONEY_CONTEXT

__all__ = [
    "FORMATS",
    "DAY_MS",
    "Gap",
    "DroppedRow",
    "CandleRow",
    "Candles",
    "load_candles",
    "detect_format",
    "daily_candles",
    "daily_ranges",
    "daily_returns",
]

#: The formats :func:`load_candles` reads.
FORMATS: tuple[str, ...] = ("binance-csv", "freqtrade-json", "cdd-csv", "csv", "parquet")

#: One UTC day in milliseconds.
DAY_MS = 86_400_000

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
_BINANCE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_FREQTRADE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_TIME_ALIASES = ("timestamp", "time", "datetime", "date", "open_time", "open_time_ms", "unix", "ts")

_NUMBER = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
_EPOCH = re.compile(r"\s*(\d+)(?:\.(\d*))?\s*", re.ASCII)
_CDD_DATE = re.compile(r"\s*(\d{4}-\d\d-\d\d)(?: (\d\d)-(AM|PM))?\s*", re.IGNORECASE | re.ASCII)
_EPOCH0 = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)

# Units of a timestamp value (kept per row: the CryptoDataDownload overlap is resolved by it).
_UNIT_S, _UNIT_MS, _UNIT_US, _UNIT_NS, _UNIT_TEXT = 0, 1, 2, 3, 4


# ------------------------------------------------------------------------------------------------------------
# Result types
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """Missing candles between two consecutive ones: ``missing`` interval slots lie strictly between them."""

    after_ms: int  # open time of the candle before the hole
    before_ms: int  # open time of the candle after the hole
    missing: int


@dataclass(frozen=True)
class DroppedRow:
    """A row of the file that was not loaded, and why (only the documented CryptoDataDownload overlap)."""

    row: int
    timestamp_ms: int
    reason: str


@dataclass(frozen=True)
class CandleRow:
    """One candle with exact prices parsed from the file's own text (``volume`` None: the file has none)."""

    timestamp_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None


@dataclass(frozen=True, eq=False)
class Candles:
    """Validated candles in ascending time order (see the module documentation).

    The float arrays are for statistics and screening; amounts of record come from :meth:`decimal_row`.
    ``text`` holds the original strings (shape ``(n, 5)``: open, high, low, close, volume; volume ``None``
    when the file has no volume column); ``rows`` the file row number of each candle; ``dropped`` the rows
    not loaded.
    """

    timestamps_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    source: str
    format: str
    interval_ms: int
    gaps: tuple[Gap, ...]
    text: np.ndarray | None = None
    rows: np.ndarray | None = None
    dropped: tuple[DroppedRow, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.timestamps_ms)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValidationError(name, f"has {len(getattr(self, name))} values for {n} timestamps")
        if self.text is not None and self.text.shape != (n, 5):
            raise ValidationError("text", f"must have shape ({n}, 5), got {self.text.shape}")
        if self.rows is not None and len(self.rows) != n:
            raise ValidationError("rows", f"has {len(self.rows)} values for {n} timestamps")

    def __len__(self) -> int:
        return len(self.timestamps_ms)

    @property
    def has_volume(self) -> bool:
        """False when the file had no volume column (``volume`` is then all NaN)."""
        if self.text is not None:
            return len(self) == 0 or self.text[0, 4] is not None
        return not bool(np.isnan(self.volume).any())

    def text_row(self, i: int) -> tuple[str | None, ...]:
        """The file's own text of candle ``i``: (open, high, low, close, volume)."""
        i = self._index(i)
        if self.text is not None:
            return tuple(self.text[i])
        return tuple(repr(float(a[i])) for a in (self.open, self.high, self.low, self.close, self.volume))

    def decimal_row(self, i: int) -> CandleRow:
        """Candle ``i`` (negative counts from the end) with exact Decimal prices parsed from its text."""
        i = self._index(i)
        texts = self.text_row(i)
        values = [None if t is None or t == "nan" else Decimal(t.strip()) for t in texts]
        return CandleRow(int(self.timestamps_ms[i]), values[0], values[1], values[2], values[3], values[4])

    def slice_time(self, start_ms: int, end_ms: int) -> "Candles":
        """The candles whose open time lies in ``[start_ms, end_ms)`` (same interval; the gaps inside)."""
        start_ms, end_ms = int(start_ms), int(end_ms)
        if end_ms < start_ms:
            raise ValidationError("end_ms", f"end {end_ms} is before start {start_ms}")
        lo = int(np.searchsorted(self.timestamps_ms, start_ms, side="left"))
        hi = int(np.searchsorted(self.timestamps_ms, end_ms, side="left"))
        gaps = tuple(g for g in self.gaps if g.after_ms >= start_ms and g.before_ms < end_ms)
        return Candles(
            timestamps_ms=self.timestamps_ms[lo:hi],
            open=self.open[lo:hi],
            high=self.high[lo:hi],
            low=self.low[lo:hi],
            close=self.close[lo:hi],
            volume=self.volume[lo:hi],
            source=self.source,
            format=self.format,
            interval_ms=self.interval_ms,
            gaps=gaps,
            text=None if self.text is None else self.text[lo:hi],
            rows=None if self.rows is None else self.rows[lo:hi],
            dropped=tuple(d for d in self.dropped if start_ms <= d.timestamp_ms < end_ms),
        )

    def _index(self, i: int) -> int:
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"candle index {i} out of range for {n} candles")
        return j

    def __repr__(self) -> str:
        span = ""
        if len(self):
            span = f", {_iso(int(self.timestamps_ms[0]))} .. {_iso(int(self.timestamps_ms[-1]))}"
        return (
            f"Candles({len(self)} rows{span}, interval_ms={self.interval_ms}, gaps={len(self.gaps)}, "
            f"format={self.format!r}, source={self.source!r})"
        )


# ------------------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------------------


def load_candles(path: str | Path, fmt: str | None = None) -> Candles:
    """Read, validate and return the candles of ``path`` (the module documentation lists formats, checks)."""
    path = Path(path)
    name = path.name
    if fmt is not None and fmt not in FORMATS:
        raise ValidationError(
            f"{name}:format", f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}"
        )
    if not path.exists():
        raise ValidationError(name, f"file not found: {path}")
    if not path.is_file():
        raise ValidationError(name, f"not a file: {path}")
    if fmt == "parquet" or (fmt is None and _is_parquet(path)):
        table = _read_parquet(path, name)
        return _assemble(table, source=str(path), fmt="parquet")
    text = _read_text(path, name)
    if fmt is None:
        fmt = _detect_from_text(text, path)
    if fmt == "freqtrade-json":
        table = _read_freqtrade(text, name)
    elif fmt == "binance-csv":
        table = _read_binance(text, name)
    elif fmt == "cdd-csv":
        table = _read_cdd(text, name)
    elif fmt == "csv":
        table = _read_generic_csv(text, name)
    else:  # pragma: no cover - parquet handled above
        raise ValidationError(f"{name}:format", f"parquet data cannot be read from text: {path}")
    return _assemble(table, source=str(path), fmt=fmt)


def detect_format(path: str | Path) -> str:
    """The format :func:`load_candles` would read ``path`` as (refuses when it cannot tell)."""
    path = Path(path)
    if _is_parquet(path):
        return "parquet"
    return _detect_from_text(_read_text(path, path.name), path)


class _Table:
    """Raw columns of a file before validation (all cells as text)."""

    __slots__ = ("name", "rows", "times", "time_col", "cols", "names", "descending_ok")

    def __init__(
        self,
        name: str,
        rows: Sequence[int],
        times: Sequence,
        time_col: str,
        cols: dict[str, Sequence | None],
        names: dict[str, str],
        descending_ok: bool = False,
    ) -> None:
        self.name = name
        self.rows = rows
        self.times = times
        self.time_col = time_col
        self.cols = cols
        self.names = names
        self.descending_ok = descending_ok

    def field(self, row: int, column: str | None = None) -> str:
        return f"{self.name}:row {row}" + (f":{column}" if column else "")


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _read_text(path: Path, name: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(name, f"cannot read file: {exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValidationError(name, f"broken gzip file: {exc}") from None
    elif raw[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise ValidationError(
                        name, f"a zip file must hold exactly one file, found {len(members)}"
                    )
                raw = zf.read(members[0])
        except zipfile.BadZipFile as exc:
            raise ValidationError(name, f"broken zip file: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(name, f"not UTF-8 text (byte {exc.start}): is this a candle file?") from None
    if not text.strip():
        raise ValidationError(name, "empty file: no candles")
    return text


def _first_lines(text: str, k: int = 3) -> list[str]:
    """The first ``k`` non-blank lines, stripped (without copying the whole text)."""
    out: list[str] = []
    start = 0
    while len(out) < k and start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        line = text[start:end].strip()
        if line:
            out.append(line)
        start = end + 1
    return out


def _split(line: str) -> list[str]:
    return next(csv.reader([line], delimiter=_delimiter(line)))


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    if ";" in header_line:
        return ";"
    if "\t" in header_line:
        return "\t"
    return ","


def _detect_from_text(text: str, path: Path) -> str:
    name = path.name
    lines = _first_lines(text)
    first = lines[0]
    if first.startswith("[") or first.startswith("{"):
        return "freqtrade-json"
    if "cryptodatadownload" in first.lower():
        return "cdd-csv"
    cells = [c.strip().lower() for c in _split(first)]
    if "unix" in cells and "symbol" in cells:
        return "cdd-csv"
    if len(cells) == 12 and (_is_int(cells[0]) or cells[0].startswith("open_time")):
        return "binance-csv"
    if {"open", "high", "low", "close"} <= set(cells):
        return "csv"
    raise ValidationError(
        f"{name}:format",
        f"cannot tell the format from the first line {first[:80]!r}; pass fmt= one of {', '.join(FORMATS)}",
    )


def _is_int(s: str) -> bool:
    s = s.strip()
    return s.isascii() and s.isdigit()


def _csv_rows(text: str, name: str, delimiter: str = ",") -> tuple[Sequence[int], list[list[str]]]:
    """The non-blank rows of a CSV text and their row (line) numbers."""
    if '"' not in text:
        # No quoting, so one record per physical line: row numbers are positions (blank lines give []).
        try:
            rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
        except csv.Error as exc:  # pragma: no cover - unquoted text does not fail
            raise ValidationError(name, f"unreadable CSV: {exc}") from None
        if all(rows) and not any(len(r) == 1 and not r[0].strip() for r in rows):
            return range(1, len(rows) + 1), rows
        keep = [i for i, r in enumerate(rows) if r and not (len(r) == 1 and not r[0].strip())]
        return [i + 1 for i in keep], [rows[i] for i in keep]
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    lines: list[int] = []
    rows = []
    try:
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            lines.append(reader.line_num)
            rows.append(cells)
    except csv.Error as exc:
        raise ValidationError(f"{name}:row {reader.line_num}", f"unreadable CSV: {exc}") from None
    return lines, rows


def _collect(
    lines: Sequence[int], rows: list[list[str]], ncols: int, name: str
) -> tuple[Sequence[int], list[tuple[str, ...]]]:
    """Columns (transposed) of CSV rows that must all have ``ncols`` cells."""
    if not rows:
        raise ValidationError(name, "no candle rows (the file has no data below its header)")
    if any(len(r) != ncols for r in rows):
        pos = next(i for i, r in enumerate(rows) if len(r) != ncols)
        raise ValidationError(
            f"{name}:row {lines[pos]}:columns", f"expected {ncols} columns, found {len(rows[pos])}"
        )
    return lines, list(zip(*rows))


def _read_binance(text: str, name: str) -> _Table:
    lines, rows = _csv_rows(text, name)
    if not rows:
        raise ValidationError(name, "empty file: no candles")
    cells = rows[0]
    if _is_int(cells[0]):
        names = _BINANCE_COLUMNS
    else:
        if len(cells) != 12:
            raise ValidationError(
                f"{name}:row {lines[0]}:columns", f"expected 12 columns, found {len(cells)}"
            )
        names = tuple(c.strip() for c in cells)
        expect = ("open", "high", "low", "close", "volume")
        got = tuple(n.lower() for n in names[1:6])
        if got != expect or not names[0].lower().startswith("open_time"):
            raise ValidationError(
                f"{name}:row {lines[0]}:header",
                f"not a Binance kline header: expected open_time, open, high, low, close, volume, ..., "
                f"found {', '.join(names[:6])}, ...",
            )
        lines, rows = lines[1:], rows[1:]
    lines, cols = _collect(lines, rows, 12, name)
    return _Table(
        name,
        lines,
        cols[0],
        names[0],
        {k: cols[i + 1] for i, k in enumerate(_PRICE_COLUMNS)},
        {k: names[i + 1] for i, k in enumerate(_PRICE_COLUMNS)},
    )


def _header_index(
    header: list[str], name: str, line: int, aliases: dict[str, tuple[str, ...]]
) -> dict[str, int]:
    """Column positions by (case-insensitive) name; keys ending in ``?`` are optional; a volume column may be
    named ``Volume <asset>`` (the first such column is taken)."""
    lower = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for key, names in aliases.items():
        hit = next((lower.index(a) for a in names if a in lower), None)
        if hit is None and key.rstrip("?") == "volume":
            hit = next((i for i, h in enumerate(lower) if h.startswith("volume")), None)
        if hit is not None:
            found[key] = hit
        elif not key.endswith("?"):
            raise ValidationError(
                f"{name}:row {line}:header",
                f"no {names[0]!r} column (looked for {', '.join(names)}); found: {', '.join(header)}",
            )
    return found


def _read_cdd(text: str, name: str) -> _Table:
    lines, rows = _csv_rows(text, name)
    if not rows:
        raise ValidationError(name, "empty file: no candles")
    if "cryptodatadownload" in ",".join(rows[0]).lower() or len(rows[0]) == 1:
        lines, rows = lines[1:], rows[1:]  # the banner line
        if not rows:
            raise ValidationError(name, "no header line after the CryptoDataDownload banner")
    hline, header = lines[0], rows[0]
    lower = [h.strip().lower() for h in header]
    time_key = "unix" if "unix" in lower else ("date" if "date" in lower else None)
    if time_key is None:
        raise ValidationError(
            f"{name}:row {hline}:header", f"no 'unix' (or 'date') column; found: {', '.join(header)}"
        )
    idx = _header_index(
        header,
        name,
        hline,
        {"open": ("open",), "high": ("high",), "low": ("low",), "close": ("close",), "volume": ("volume",)},
    )
    lines, cols = _collect(lines[1:], rows[1:], len(header), name)
    tcol = lower.index(time_key)
    times = cols[tcol] if time_key == "unix" else [_CddDate(s) for s in cols[tcol]]
    return _Table(
        name,
        lines,
        times,
        header[tcol].strip(),
        {k: cols[idx[k]] for k in _PRICE_COLUMNS},
        {k: header[idx[k]].strip() for k in _PRICE_COLUMNS},
        descending_ok=True,
    )


class _CddDate(str):
    """A CryptoDataDownload ``date`` cell (``2017-08-17 06-AM``), used when a file has no ``unix`` column."""


_GENERIC_ALIASES = {
    "time": _TIME_ALIASES,
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume?": ("volume", "vol"),
}


def _read_generic_csv(text: str, name: str) -> _Table:
    lines0 = _first_lines(text, 1)
    delim = _delimiter(lines0[0])
    lines, rows = _csv_rows(text, name, delimiter=delim)
    if not rows:
        raise ValidationError(name, "empty file: no candles")
    hline, header = lines[0], rows[0]
    idx = _header_index(header, name, hline, _GENERIC_ALIASES)
    lines, cols = _collect(lines[1:], rows[1:], len(header), name)
    vol = idx.get("volume?")
    return _Table(
        name,
        lines,
        cols[idx["time"]],
        header[idx["time"]].strip(),
        {
            "open": cols[idx["open"]],
            "high": cols[idx["high"]],
            "low": cols[idx["low"]],
            "close": cols[idx["close"]],
            "volume": None if vol is None else cols[vol],
        },
        {
            "open": header[idx["open"]].strip(),
            "high": header[idx["high"]].strip(),
            "low": header[idx["low"]].strip(),
            "close": header[idx["close"]].strip(),
            "volume": "volume" if vol is None else header[vol].strip(),
        },
    )


class JsonNumber(str):
    """A JSON number's own text (as opposed to a JSON string)."""


def json_rows(text: str, name: str, shape: str) -> list:
    """A JSON document that must be a list of rows; numbers kept as their own text (:class:`JsonNumber`).

    ``shape`` describes a row for the error message, e.g. ``"[ms, open, high, low, close, volume]"``.
    """
    try:
        data = json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=JsonNumber)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{name}:row {exc.lineno}", f"not valid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    if not isinstance(data, list):
        raise ValidationError(name, f"expected a JSON list of {shape} rows, got {type(data).__name__}")
    return data



def _read_freqtrade(text: str, name: str) -> _Table:
    data = json_rows(text, name, "[ms, open, high, low, close, volume]")
    if not data:
        raise ValidationError(name, "empty file: no candles")
    cols: list[list[str]] = [[] for _ in range(6)]
    for i, item in enumerate(data, start=1):
        if not isinstance(item, list) or len(item) != 6:
            found = f"{len(item)} values" if isinstance(item, list) else f"a {type(item).__name__}"
            raise ValidationError(
                f"{name}:row {i}:columns",
                f"expected [ms, open, high, low, close, volume] (6 values), found {found}",
            )
        for k, v in enumerate(item):
            if not isinstance(v, JsonNumber):
                what = "empty value (null)" if v is None else f"not a number: {json.dumps(v)}"
                raise ValidationError(f"{name}:row {i}:{_FREQTRADE_COLUMNS[k]}", what)
            cols[k].append(str(v))  # the number's own text, as a plain str
    return _Table(
        name,
        range(1, len(data) + 1),
        cols[0],
        "timestamp",
        {k: cols[i + 1] for i, k in enumerate(_PRICE_COLUMNS)},
        {k: k for k in _PRICE_COLUMNS},
    )


def _read_parquet(path: Path, name: str) -> _Table:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        import pyarrow.types as pat
    except ImportError:
        raise ValidationError(
            f"{name}:format", "reading Parquet needs the optional pyarrow package: pip install pyarrow"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError family
        raise ValidationError(name, f"cannot read Parquet file: {exc}") from None
    header = list(table.column_names)
    idx = _header_index(header, name, 1, {**_GENERIC_ALIASES, "time": _TIME_ALIASES})
    n = table.num_rows
    if n == 0:
        raise ValidationError(name, "empty file: no candles")

    def texts(i: int) -> list:
        col = table.column(i)
        t = col.type
        values = col.to_pylist()
        if pat.is_floating(t):
            return [None if v is None else repr(float(v)) for v in values]
        if pat.is_integer(t) or pat.is_decimal(t) or pat.is_string(t) or pat.is_large_string(t):
            return [None if v is None else str(v) for v in values]
        if pat.is_date(t):
            return [None if v is None else v.isoformat() for v in values]
        raise ValidationError(f"{name}:row 1:{header[i]}", f"unsupported Parquet column type {t}")

    ti = idx["time"]
    tcol = table.column(ti)
    if pat.is_timestamp(tcol.type):
        scale = {"s": 1000, "ms": 1, "us": -1000, "ns": -1_000_000}[tcol.type.unit]
        raw = tcol.cast(pa.int64()).to_pylist()
        times: list = []
        for r, v in enumerate(raw, start=1):
            if v is None:
                raise ValidationError(f"{name}:row {r}:{header[ti]}", "empty value")
            if scale > 0:
                times.append(_MsInt(v * scale))
            elif v % -scale:
                raise ValidationError(
                    f"{name}:row {r}:{header[ti]}", "timestamp has sub-millisecond precision"
                )
            else:
                times.append(_MsInt(v // -scale))
    else:
        times = texts(ti)
    vol = idx.get("volume?")
    cols = {k: texts(idx[k]) for k in ("open", "high", "low", "close")}
    cols["volume"] = None if vol is None else texts(vol)
    names = {k: header[idx[k]] for k in ("open", "high", "low", "close")}
    names["volume"] = "volume" if vol is None else header[vol]
    return _Table(name, range(1, n + 1), times, header[ti], cols, names)


class _MsInt(int):
    """A timestamp already in milliseconds (from a typed Parquet column)."""


# ------------------------------------------------------------------------------------------------------------
# Validation and assembly
# ------------------------------------------------------------------------------------------------------------


def _cell_problem(value: object) -> str:
    if value is None:
        return "empty value"
    s = str(value).strip()
    if not s:
        return "empty value"
    low = s.lower().lstrip("+-")
    if low in ("nan", "snan"):
        return "NaN is not a number"
    if low in ("inf", "infinity"):
        return "infinity is not allowed"
    if _NUMBER.fullmatch(s):
        return f"{s} is too large to be a price or volume"
    return f"not a number: {s!r}"


def _cell_ok(v: object) -> bool:
    return isinstance(v, str) and _NUMBER.fullmatch(v) is not None and math.isfinite(float(v))


def _parse_numbers(table: _Table) -> dict[str, np.ndarray]:
    """Float arrays of the price and volume columns; refuses the earliest cell that is not a finite number.

    Fast path: numpy converts a whole column; the strict per-cell grammar (ASCII, no ``_``, no NaN/inf) runs
    only when that conversion or a cheap whole-column screen fails.
    """
    out: dict[str, np.ndarray] = {}
    first_bad: tuple[int, int, str, int] | None = None  # (row, column order, key, position)
    for order, key in enumerate(_PRICE_COLUMNS):
        col = table.cols[key]
        if col is None:
            out[key] = np.full(len(table.rows), np.nan)
            continue
        arr = None
        try:
            joined = "".join(col)
            if joined.isascii() and "_" not in joined:
                arr = np.array(col, dtype=np.float64)
                if not np.isfinite(arr).all():
                    arr = None
        except (TypeError, ValueError):  # a None cell (Parquet null) or a cell that is not a number
            arr = None
        if arr is not None:
            out[key] = arr
            continue
        pos = next(i for i, v in enumerate(col) if not _cell_ok(v))
        cand = (table.rows[pos], order, key, pos)
        if first_bad is None or cand[:2] < first_bad[:2]:
            first_bad = cand
    if first_bad is not None:
        row, _, key, pos = first_bad
        raise ValidationError(table.field(row, table.names[key]), _cell_problem(table.cols[key][pos]))
    return out


def _parse_time(value: object) -> tuple[int, int]:
    """(milliseconds, unit) of one timestamp cell; raises ValueError with the reason."""
    if isinstance(value, _MsInt):
        return int(value), _UNIT_MS
    if value is None:
        raise ValueError("empty value")
    s = str(value)
    if isinstance(value, _CddDate):
        m = _CDD_DATE.fullmatch(s)
        if not m:
            raise ValueError(f"not a CryptoDataDownload date: {s.strip()!r}")
        day = datetime.fromisoformat(m.group(1)).replace(tzinfo=timezone.utc)
        hour = 0
        if m.group(2):
            hour = int(m.group(2)) % 12 + (12 if m.group(3).upper() == "PM" else 0)
        return (day - _EPOCH0) // _ONE_MS + hour * 3_600_000, _UNIT_TEXT
    m = _EPOCH.fullmatch(s)
    if m:
        whole, frac = m.group(1), (m.group(2) or "").rstrip("0")
        v = int(whole)
        if v < 100_000_000_000:
            unit, per_ms = _UNIT_S, 1000  # seconds, up to year 5138
        elif v < 100_000_000_000_000:
            unit, per_ms = _UNIT_MS, 1
        elif v < 100_000_000_000_000_000:
            unit, per_ms = _UNIT_US, -1000
        else:
            unit, per_ms = _UNIT_NS, -1_000_000
        num = int(whole + frac) if frac else v  # value * 10**len(frac)
        den = 10 ** len(frac)
        if per_ms > 0:
            num *= per_ms
        else:
            den *= -per_ms
        if num % den:
            raise ValueError(f"timestamp {s.strip()} has sub-millisecond precision")
        if v == 0:
            raise ValueError("timestamp 0 (1970-01-01) is not a candle time")
        return num // den, unit
    t = s.strip()
    if not t:
        raise ValueError("empty value")
    if t[:1] == "-":
        raise ValueError(f"negative timestamp {t!r}")
    try:
        dt = datetime.fromisoformat(t[:-1] + "+00:00" if t[-1:] in "Zz" else t)
    except ValueError:
        raise ValueError(f"not a timestamp (epoch s/ms/us/ns or ISO-8601): {t!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH0
    if delta % _ONE_MS:
        raise ValueError(f"timestamp {t} has sub-millisecond precision")
    return delta // _ONE_MS, _UNIT_TEXT


def _parse_times(table: _Table) -> tuple[np.ndarray, np.ndarray]:
    n = len(table.rows)
    ms = np.empty(n, dtype=np.int64)
    units = np.empty(n, dtype=np.int8)
    times = table.times
    fast = all(isinstance(v, str) and not isinstance(v, _CddDate) for v in times[:1])
    for pos, v in enumerate(times):
        if fast and isinstance(v, str) and v.isascii():
            if v.isdigit() and 11 < len(v) < 15 and v[0] != "0":  # plain milliseconds, the common case
                ms[pos] = int(v)
                units[pos] = _UNIT_MS
                continue
            if v[-2:] == ".0" and 7 < len(v) < 14 and v[:-2].isdigit():  # seconds written as a float
                ms[pos] = int(v[:-2]) * 1000
                units[pos] = _UNIT_S
                continue
        try:
            ms[pos], units[pos] = _parse_time(v)
        except ValueError as exc:
            raise ValidationError(table.field(table.rows[pos], table.time_col), str(exc)) from None
        except OverflowError:
            raise ValidationError(
                table.field(table.rows[pos], table.time_col), f"timestamp {str(v).strip()} is out of range"
            ) from None
    return ms, units


def _exact_less(
    a: np.ndarray, b: np.ndarray, ta: np.ndarray | None, tb: np.ndarray | None
) -> np.ndarray:
    """Exact ``a < b`` for decimal texts: the floats decide unless they are equal and the texts differ."""
    mask = a < b
    if ta is None or tb is None:
        return mask
    eq = np.flatnonzero(a == b)
    if len(eq):
        differ = eq[ta[eq] != tb[eq]]
        for i in differ:
            if Decimal(ta[i].strip()) < Decimal(tb[i].strip()):
                mask[i] = True
    return mask


def _check_rows(table: _Table, v: dict[str, np.ndarray], text: np.ndarray) -> None:
    """Refuse the earliest row whose prices are inconsistent (exact comparisons; see :func:`_exact_less`)."""
    n = len(table.rows)
    t = {k: text[:, j] for j, k in enumerate(_PRICE_COLUMNS)}
    t["zero"] = np.full(n, "0", dtype=object)
    v = {**v, "zero": np.zeros(n)}

    def lt(a: str, b: str) -> np.ndarray:
        return _exact_less(v[a], v[b], t[a], t[b])

    checks = [
        ("low", ~lt("zero", "low"), "low {low} must be greater than zero"),
        ("high", lt("high", "low"), "high {high} is below low {low}"),
        ("open", lt("open", "low"), "open {open} is below low {low}"),
        ("open", lt("high", "open"), "open {open} is above high {high}"),
        ("close", lt("close", "low"), "close {close} is below low {low}"),
        ("close", lt("high", "close"), "close {close} is above high {high}"),
    ]
    if table.cols["volume"] is not None:
        checks.append(("volume", lt("volume", "zero"), "volume {volume} is negative"))
    rows = np.asarray(table.rows)
    worst: tuple[int, int, str, str] | None = None
    for order, (key, mask, template) in enumerate(checks):
        bad = np.flatnonzero(mask)
        if len(bad):
            pos = int(bad[np.argmin(rows[bad])])
            cells = {k: t[k][pos].strip() for k in _PRICE_COLUMNS if t[k][pos] is not None}
            message = template.format(**cells)
            cand = (int(rows[pos]), order, key, message)
            if worst is None or cand[:2] < worst[:2]:
                worst = cand
    if worst is not None:
        row, _, key, message = worst
        raise ValidationError(table.field(row, table.names[key]), message)


def _assemble(table: _Table, source: str, fmt: str) -> Candles:
    values = _parse_numbers(table)
    n = len(table.rows)
    text = np.empty((n, 5), dtype=object)
    for j, key in enumerate(_PRICE_COLUMNS):
        col = table.cols[key]
        text[:, j] = None if col is None else col
    ms, units = _parse_times(table)
    _check_rows(table, values, text)
    rows = np.asarray(table.rows, dtype=np.int64)

    order = None
    if table.descending_ok and n > 1 and ms[0] > ms[-1]:
        order = np.arange(n - 1, -1, -1)
    dropped: list[DroppedRow] = []
    if order is not None:
        ms, units, rows, text = ms[order], units[order], rows[order], text[order]
        values = {k: a[order] for k, a in values.items()}
    if table.descending_ok and n > 1:
        # CryptoDataDownload: its seconds and milliseconds series overlap; keep the milliseconds row.
        same = np.flatnonzero(np.diff(ms) == 0)
        if len(same):
            drop = []
            isos = np.datetime_as_string(ms[same].astype("datetime64[ms]"), unit="s")
            for i, iso in zip(same.tolist(), isos.tolist()):
                ua, ub = int(units[i]), int(units[i + 1])
                if {ua, ub} == {_UNIT_S, _UNIT_MS}:
                    lose, keep = (i, i + 1) if ua == _UNIT_S else (i + 1, i)
                    drop.append(lose)
                    kept = int(rows[keep])
                    dropped.append(
                        DroppedRow(
                            int(rows[lose]),
                            int(ms[lose]),
                            f"same time as row {kept} ({iso}Z): the CryptoDataDownload seconds and "
                            f"milliseconds series overlap; row {kept} (milliseconds, full precision) kept",
                        )
                    )
            if drop:
                keep_mask = np.ones(n, dtype=bool)
                keep_mask[drop] = False
                ms, units, rows, text = ms[keep_mask], units[keep_mask], rows[keep_mask], text[keep_mask]
                values = {k: a[keep_mask] for k, a in values.items()}
                dropped.sort(key=lambda d: d.row)

    diffs = np.diff(ms)
    bad = np.flatnonzero(diffs <= 0)
    if len(bad):
        blame = np.maximum(rows[bad], rows[bad + 1])
        k = int(np.argmin(blame))
        i = int(bad[k])
        later, earlier = (i + 1, i) if rows[i + 1] > rows[i] else (i, i + 1)
        t_later, t_earlier = int(ms[later]), int(ms[earlier])
        if t_later == t_earlier:
            message = (
                f"timestamp {_iso(t_later)} repeats row {int(rows[earlier])}: "
                f"timestamps must strictly increase"
            )
        else:
            message = (
                f"timestamp {_iso(t_later)} is out of order after row {int(rows[earlier])} "
                f"({_iso(t_earlier)}): timestamps must strictly increase"
            )
        if table.descending_ok:
            message = message.replace(
                "strictly increase", "be in strict time order (all ascending or all descending)"
            )
        raise ValidationError(table.field(int(rows[later]), table.time_col), message)

    interval = _modal_interval(diffs)
    gaps = _find_gaps(ms, diffs, interval)
    for a in (ms, rows, text, *values.values()):
        a.setflags(write=False)
    return Candles(
        timestamps_ms=ms,
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=values["volume"],
        source=source,
        format=fmt,
        interval_ms=interval,
        gaps=gaps,
        text=text,
        rows=rows,
        dropped=tuple(dropped),
    )


def _modal_interval(diffs: np.ndarray) -> int:
    """The most frequent spacing (the smallest of equally frequent ones); 0 for fewer than two candles."""
    if len(diffs) == 0:
        return 0
    vals, counts = np.unique(diffs, return_counts=True)
    return int(vals[np.argmax(counts)])


def _find_gaps(ms: np.ndarray, diffs: np.ndarray, interval: int) -> tuple[Gap, ...]:
    if interval <= 0:
        return ()
    idx = np.flatnonzero(diffs > interval)
    # slots strictly between the two candles on the grid after + k * interval
    return tuple(
        Gap(int(ms[i]), int(ms[i + 1]), int((int(diffs[i]) - 1) // interval)) for i in idx
    )


def _iso(ms: int) -> str:
    dt = _EPOCH0 + timedelta(milliseconds=ms)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


# ------------------------------------------------------------------------------------------------------------
# Daily aggregates
# ------------------------------------------------------------------------------------------------------------


def daily_candles(candles: Candles, complete_only: bool = False) -> Candles:
    """Candles per UTC day: intraday candles aggregated (open = first open, high = max, low = min,
    close = last close, volume = sum -- exact, on the texts); daily candles returned as they are.

    ``complete_only`` keeps only the days that have every intraday candle (86,400,000 / interval of them).
    Longer-than-daily candles are refused.
    """
    iv = candles.interval_ms
    if iv > DAY_MS:
        raise ValidationError("interval_ms", f"candles of {iv} ms are longer than a day: no daily series")
    n = len(candles)
    if iv == DAY_MS or n == 0:
        return candles
    days = candles.timestamps_ms // DAY_MS
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    ends = np.r_[starts[1:], n]
    high = np.maximum.reduceat(candles.high, starts)
    low = np.minimum.reduceat(candles.low, starts)
    volume = np.add.reduceat(candles.volume, starts)
    if complete_only and iv > 0:
        full = ends - starts == DAY_MS // iv
        starts, ends, high, low, volume = starts[full], ends[full], high[full], low[full], volume[full]
        if len(starts) == 0:
            return candles.slice_time(0, 0)
    open_ = candles.open[starts]
    close = candles.close[ends - 1]
    text = None
    if candles.text is not None:
        t = candles.text
        text = np.empty((len(starts), 5), dtype=object)
        text[:, 0] = t[starts, 0]
        text[:, 3] = t[ends - 1, 3]
        has_volume = t[0, 4] is not None
        for d, (s, e) in enumerate(zip(starts.tolist(), ends.tolist())):
            text[d, 1] = _exact_extreme(t[s:e, 1], candles.high[s:e], high[d], max)
            text[d, 2] = _exact_extreme(t[s:e, 2], candles.low[s:e], low[d], min)
            if has_volume:
                total = Decimal(0)
                for x in t[s:e, 4]:
                    total = MONEY_CONTEXT.add(total, Decimal(x.strip()))
                text[d, 4] = str(total)
    ts = (candles.timestamps_ms[starts] // DAY_MS) * DAY_MS
    diffs = np.diff(ts)
    return Candles(
        timestamps_ms=ts,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        source=candles.source,
        format=candles.format,
        interval_ms=DAY_MS,
        gaps=_find_gaps(ts, diffs, DAY_MS),
        text=text,
        rows=None if candles.rows is None else candles.rows[starts],
        dropped=(),
    )


def _exact_extreme(texts: np.ndarray, floats: np.ndarray, target: float, pick) -> str:
    cands = [x for x, f in zip(texts, floats) if f == target]
    if len(set(cands)) == 1:
        return cands[0]
    return pick(cands, key=lambda x: Decimal(x.strip()))


def daily_ranges(candles: Candles, complete_only: bool = False) -> np.ndarray:
    """(high - low) / open of each UTC day (float64, for statistics)."""
    d = daily_candles(candles, complete_only)
    return (d.high - d.low) / d.open


def daily_returns(candles: Candles, complete_only: bool = False) -> np.ndarray:
    """Close-to-close returns ``close[d] / close[d-1] - 1`` between consecutive UTC days (float64).

    Pairs of days with missing days between them are left out: a two-day move is not a daily return.
    """
    d = daily_candles(candles, complete_only)
    if len(d) < 2:
        return np.empty(0)
    consecutive = np.diff(d.timestamps_ms // DAY_MS) == 1
    r = d.close[1:] / d.close[:-1] - 1.0
    return r[consecutive]
