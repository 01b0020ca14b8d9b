"""Candle loading: the shipped real data files (data/MANIFEST.md), every refusal, and round trips."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perprisk.candles import (
    DAY_MS,
    FORMATS,
    Candles,
    Gap,
    daily_candles,
    daily_ranges,
    daily_returns,
    detect_format,
    load_candles,
)
from perprisk.errors import ValidationError

DATA = Path(__file__).resolve().parents[1] / "data"
KLINES_1M = DATA / "binance_um" / "BTCUSDT-1m-2025-10-10_11.csv"
FT_5M = DATA / "binance_um" / "BTC_USDT_USDT-5m-futures.json"
FT_15M = DATA / "binance_um" / "BTC_USDT_USDT-15m-futures.json"
FT_1H = DATA / "binance_um" / "BTC_USDT_USDT-1h-futures.json"
FT_ETH_5M = DATA / "binance_um" / "ETH_USDT_USDT-5m-futures.json"
CDD_1H = DATA / "binance_spot" / "Binance_BTCUSDT_1h.csv"
CDD_ETH_1H = DATA / "binance_spot" / "Binance_ETHUSDT_1h.csv"
CDD_D = DATA / "binance_spot" / "Binance_BTCUSDT_d.csv"
COINBASE_D = DATA / "coinbase" / "BTCUSD_1d_candles_full.csv"

HOUR_MS = 3_600_000


def ms(iso: str) -> int:
    """Milliseconds UTC of an ISO time (no offset = UTC)."""
    return int(np.datetime64(iso, "ms").astype(np.int64))


def at(c: Candles, iso: str) -> int:
    """Index of the candle opening at ``iso`` (asserts there is one)."""
    t = ms(iso)
    i = int(np.searchsorted(c.timestamps_ms, t))
    assert i < len(c) and c.timestamps_ms[i] == t, iso
    return i


def kline_lines() -> list[str]:
    return KLINES_1M.read_text().splitlines()


def refusal(path: Path, fmt: str | None = None) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        load_candles(path, fmt)
    return info.value


# ------------------------------------------------------------------------------------------------------------
# The shipped files
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def klines() -> Candles:
    return load_candles(KLINES_1M)


@pytest.fixture(scope="module")
def cdd_hourly() -> Candles:
    return load_candles(CDD_1H)


def test_binance_1m_crash_file(klines: Candles) -> None:
    c = klines
    assert c.format == "binance-csv" and c.source == str(KLINES_1M)
    assert len(c) == 2880
    assert c.interval_ms == 60_000 and c.gaps == () and c.dropped == ()
    assert c.timestamps_ms.dtype == np.int64 and c.open.dtype == np.float64
    assert c.timestamps_ms[0] == ms("2025-10-10T00:00") == 1760054400000
    assert c.timestamps_ms[-1] == ms("2025-10-11T23:59") == 1760227140000
    assert (np.diff(c.timestamps_ms) == 60_000).all()
    # the crash: low 101,516.5 at 21:20 UTC, from ~121,600 at the open
    i = int(np.argmin(c.low))
    assert c.timestamps_ms[i] == ms("2025-10-10T21:20")
    row = c.decimal_row(i)
    assert row.low == Decimal("101516.5") and str(row.low) == "101516.50"
    assert row == c.decimal_row(i - len(c))  # negative index
    assert (row.open, row.high, row.close, row.volume) == (
        Decimal("103441.30"),
        Decimal("106458.80"),
        Decimal("104311.20"),
        Decimal("8051.444"),
    )
    assert c.rows[i] == 1282  # line 1282 of the file (the header is line 1)
    assert c.decimal_row(0).open == Decimal("121579.40")
    assert c.has_volume


def test_binance_1m_exact_text_equals_file(klines: Candles) -> None:
    lines = kline_lines()[1:]
    for i, line in enumerate(lines):
        cells = line.split(",")
        assert int(cells[0]) == klines.timestamps_ms[i]
        assert klines.text_row(i) == tuple(cells[1:6])
    for i in (0, 1280, 2879):
        cells = lines[i].split(",")
        row = klines.decimal_row(i)
        assert [str(row.open), str(row.high), str(row.low), str(row.close), str(row.volume)] == cells[1:6]
        assert row.timestamp_ms == int(cells[0])


def test_binance_1m_daily_ranges_and_returns(klines: Candles) -> None:
    ranges = daily_ranges(klines)
    assert ranges.shape == (2,)
    assert ranges[0] >= 0.15  # 2025-10-10: (122497.0 - 101516.5) / 121579.4
    assert ranges[0] == pytest.approx((122497.0 - 101516.5) / 121579.4)
    assert ranges[1] < 0.05
    days = daily_candles(klines)
    assert days.interval_ms == DAY_MS
    assert list(days.timestamps_ms) == [ms("2025-10-10"), ms("2025-10-11")]
    assert days.text_row(0)[:4] == ("121579.40", "122497.00", "101516.50", "112714.90")
    # daily volume is the exact sum of the minute volumes as written in the file
    exact = sum(Decimal(line.split(",")[5]) for line in kline_lines()[1:1441])
    assert days.decimal_row(0).volume == exact
    returns = daily_returns(klines)
    assert returns == pytest.approx([110579.1 / 112714.9 - 1])
    assert daily_ranges(klines, complete_only=True) == pytest.approx(ranges)


def test_slice_time(klines: Candles) -> None:
    hour = klines.slice_time(ms("2025-10-10T21:00"), ms("2025-10-10T22:00"))
    assert len(hour) == 60
    assert hour.timestamps_ms[0] == ms("2025-10-10T21:00")
    assert hour.timestamps_ms[-1] == ms("2025-10-10T21:59")
    assert hour.decimal_row(20).low == Decimal("101516.50")
    assert hour.interval_ms == 60_000 and hour.format == "binance-csv"
    assert len(klines.slice_time(0, ms("2025-10-10"))) == 0
    with pytest.raises(ValidationError) as info:
        klines.slice_time(ms("2025-10-11"), ms("2025-10-10"))
    assert info.value.field == "end_ms"
    with pytest.raises(IndexError):
        hour.decimal_row(60)


@pytest.mark.parametrize(
    "path, rows, first, last, interval",
    [
        (FT_5M, 11123, "2025-09-19T00:00", "2025-10-27T14:50", 300_000),
        (FT_15M, 3355, "2025-09-19T00:00", "2025-10-23T22:30", 900_000),
        (FT_1H, 838, "2025-09-19T00:00", "2025-10-23T21:00", HOUR_MS),
    ],
)
def test_freqtrade_json_files(path: Path, rows: int, first: str, last: str, interval: int) -> None:
    c = load_candles(path)
    assert c.format == "freqtrade-json"
    assert len(c) == rows and c.interval_ms == interval and c.gaps == ()
    assert c.timestamps_ms[0] == ms(first) and c.timestamps_ms[-1] == ms(last)
    # the crash low is in every series
    i = int(np.argmin(c.low))
    assert c.decimal_row(i).low == Decimal("101516.5")
    assert ms("2025-10-10T21:00") <= c.timestamps_ms[i] <= ms("2025-10-10T21:20")
    # the numbers' own JSON text, not a float round trip
    raw = json.loads(path.read_text(), parse_float=str, parse_int=str)
    for k in (0, i, rows - 1):
        assert c.text_row(k) == tuple(raw[k][1:6])
        assert c.timestamps_ms[k] == int(raw[k][0])


def test_freqtrade_exact_first_candle() -> None:
    c = load_candles(FT_5M)
    row = c.decimal_row(0)
    assert row.timestamp_ms == 1758240000000
    assert c.text_row(0) == ("117017.1", "117100.0", "117010.8", "117043.4", "360.735")
    assert row.high == Decimal("117100.0") and str(row.high) == "117100.0"
    eth = load_candles(FT_ETH_5M)
    assert len(eth) == 8819 and eth.timestamps_ms[at(eth, "2025-10-10T21:20")] == ms("2025-10-10T21:20")
    assert eth.decimal_row(at(eth, "2025-10-10T21:20")).low == Decimal("3400.0")


def test_cdd_daily_mixed_units(tmp_path: Path) -> None:
    c = load_candles(CDD_D)
    assert c.format == "cdd-csv"
    assert len(c) == 1395 and c.interval_ms == DAY_MS and c.gaps == ()
    assert c.timestamps_ms[0] == ms("2017-08-17") and c.timestamps_ms[-1] == ms("2021-06-11")
    assert (np.diff(c.timestamps_ms) == DAY_MS).all()  # sorted ascending (the file is newest first)
    # old rows are in seconds ("1502928000.0"), new ones in milliseconds
    assert c.text_row(0) == ("4469.93", "4485.39", "4200.74", "4285.08", "647.86")
    assert c.rows[0] == 1397 and c.rows[-1] == 2  # file line numbers
    # Black Thursday: 2020-03-12 fell to 4,410, 2020-03-13 to 3,782.13
    assert c.decimal_row(at(c, "2020-03-12")).low == Decimal("4410.00000000")
    assert c.text_row(at(c, "2020-03-13"))[2] == "3782.13000000"
    # the one day both CDD series hold: the milliseconds row is kept, the seconds row reported
    assert len(c.dropped) == 1
    d = c.dropped[0]
    assert (d.row, d.timestamp_ms) == (1274, ms("2017-12-18"))
    assert "row 1273" in d.reason
    assert c.text_row(at(c, "2017-12-18"))[0] == "18860.04000000"
    assert daily_candles(c) is c  # daily candles are used as they are
    assert daily_ranges(c)[at(c, "2020-03-12")] == pytest.approx((7966.17 - 4410) / 7934.58)


def test_cdd_hourly(cdd_hourly: Candles) -> None:
    c = cdd_hourly
    assert c.format == "cdd-csv" and len(c) == 33413 and c.interval_ms == HOUR_MS
    assert c.timestamps_ms[0] == ms("2017-08-17T04:00") and c.timestamps_ms[-1] == ms("2021-06-10T00:00")
    assert c.text_row(0) == ("16199.91", "16199.91", "4261.32", "4308.83", "44.51")
    last = ("37388.05000000", "37600.00000000", "37254.05000000", "37584.76000000", "798.27649900")
    assert c.text_row(-1) == last
    # 2020-03-13 02:00 low 3,782.13; 2021-05-19 13:00 low 30,000
    assert c.decimal_row(at(c, "2020-03-13T02:00")).low == Decimal("3782.13")
    assert c.text_row(at(c, "2021-05-19T13:00"))[2] == "30000.00000000"
    # 2,649 hours appear in both CDD series (2020-08-01 .. 2020-11-20): one row each is kept
    assert len(c.dropped) == 2649
    assert min(d.timestamp_ms for d in c.dropped) >= ms("2020-08-01")
    assert max(d.timestamp_ms for d in c.dropped) <= ms("2020-11-21")
    assert not set(int(r) for r in c.rows) & {d.row for d in c.dropped}
    assert (np.diff(c.timestamps_ms) > 0).all()
    # exchange outages are reported as gaps, never filled
    assert len(c.gaps) == 8
    assert c.gaps[0] == Gap(ms("2017-09-22T19:00"), ms("2017-09-23T00:00"), 4)
    assert sum(g.missing for g in c.gaps) == 16
    span = (c.timestamps_ms[-1] - c.timestamps_ms[0]) // HOUR_MS + 1
    assert span == len(c) + 16


def test_cdd_hourly_black_thursday_day(cdd_hourly: Candles) -> None:
    two_days = cdd_hourly.slice_time(ms("2020-03-12"), ms("2020-03-14"))
    assert len(two_days) == 48
    days = daily_candles(two_days)
    assert days.text_row(0)[0] == "7934.52" and days.text_row(1)[2] == "3782.13"
    assert daily_ranges(two_days)[0] > 0.40
    partial = daily_candles(cdd_hourly, complete_only=True)
    assert partial.timestamps_ms[0] == ms("2017-08-18")  # 2017-08-17 starts at 04:00
    assert len(daily_returns(cdd_hourly)) > 1300


def test_cdd_eth_hourly_loads() -> None:
    c = load_candles(CDD_ETH_1H)
    assert len(c) == 33413 and c.decimal_row(0).low == Decimal("298")


def test_coinbase_daily() -> None:
    c = load_candles(COINBASE_D)
    assert c.format == "csv" and detect_format(COINBASE_D) == "csv"
    assert len(c) == 5152 and c.interval_ms == DAY_MS and c.gaps == ()
    assert c.timestamps_ms[0] == ms("2011-08-18") and c.timestamps_ms[-1] == ms("2025-09-24")
    # columns timestamp,open,close,volume,unix_timestamp,high,low: taken by name
    assert c.text_row(1) == ("10.9", "11.85", "10.9", "11.69", "1.9265781400000002")
    assert c.decimal_row(1).volume == Decimal("1.9265781400000002")
    assert c.text_row(at(c, "2020-03-12")) == ("7938.05", "7969.45", "4644.0", "4857.1", "113902.20332904")
    assert c.decimal_row(-1).close == Decimal("113700.11")
    assert len(daily_returns(c)) == 5151
    assert 0.02 < float(np.std(daily_returns(c))) < 0.08


def test_detect_format_of_shipped_files() -> None:
    assert detect_format(KLINES_1M) == "binance-csv"
    assert detect_format(FT_1H) == "freqtrade-json"
    assert detect_format(CDD_D) == "cdd-csv"
    assert set(FORMATS) == {"binance-csv", "freqtrade-json", "cdd-csv", "csv", "parquet"}


# ------------------------------------------------------------------------------------------------------------
# Other layouts of real rows
# ------------------------------------------------------------------------------------------------------------


def test_headerless_binance(tmp_path: Path, klines: Candles) -> None:
    path = tmp_path / "BTCUSDT-1m-2025-10-10.csv"
    path.write_text("\n".join(kline_lines()[1:1441]) + "\n")
    c = load_candles(path)
    assert c.format == "binance-csv" and len(c) == 1440
    assert (c.timestamps_ms == klines.timestamps_ms[:1440]).all()
    assert c.text_row(1280) == klines.text_row(1280)
    assert c.rows[0] == 1
    # columns get their Binance names
    lines = kline_lines()[1:4]
    lines[1] = lines[1].replace(",121594.80,", ",121700.00,", 1)  # low above high in the second row
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines))
    err = refusal(bad)
    assert (err.field, err.message) == ("bad.csv:row 2:high", "high 121633.60 is below low 121700.00")


def test_microsecond_binance(tmp_path: Path, klines: Candles) -> None:
    out = []
    for line in kline_lines()[1:61]:
        cells = line.split(",")
        cells[0] = str(int(cells[0]) * 1000)
        cells[6] = str(int(cells[6]) * 1000 + 999)
        out.append(",".join(cells))
    path = tmp_path / "BTCUSDT-1m-us.csv"
    path.write_text("\n".join(out) + "\n")
    c = load_candles(path)
    assert c.format == "binance-csv" and len(c) == 60 and c.interval_ms == 60_000
    assert (c.timestamps_ms == klines.timestamps_ms[:60]).all()
    # ...and a microsecond time that is not a whole millisecond is refused
    cells = out[1].split(",")
    cells[0] = str(int(cells[0]) + 1)
    out[1] = ",".join(cells)
    path.write_text("\n".join(out) + "\n")
    err = refusal(path)
    assert err.field == "BTCUSDT-1m-us.csv:row 2:open_time" and "sub-millisecond" in err.message


def test_zip_and_gzip(tmp_path: Path, klines: Candles) -> None:
    zpath = tmp_path / "BTCUSDT-1m-2025-10.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("BTCUSDT-1m-2025-10.csv", KLINES_1M.read_text())
    c = load_candles(zpath)
    assert len(c) == 2880 and c.text_row(5) == klines.text_row(5)
    gpath = tmp_path / "BTC_USDT_USDT-1h-futures.json.gz"
    gpath.write_bytes(gzip.compress(FT_1H.read_bytes()))
    assert len(load_candles(gpath)) == 838


def test_cdd_with_banner_and_seconds(tmp_path: Path) -> None:
    lines = CDD_D.read_text().splitlines()
    path = tmp_path / "Binance_BTCUSDT_d.csv"
    path.write_text("https://www.CryptoDataDownload.com\n" + "\n".join(lines[:1] + lines[-30:]) + "\n")
    c = load_candles(path)
    assert c.format == "cdd-csv" and len(c) == 30
    assert c.timestamps_ms[0] == ms("2017-08-17") and c.rows[0] == 32
    # a repeated time within one series is refused
    body = lines[-30:]
    body.insert(5, body[5])
    path.write_text("\n".join(lines[:1] + body) + "\n")
    err = refusal(path)
    assert err.field == "Binance_BTCUSDT_d.csv:row 8:unix" and "repeats row 7" in err.message
    # a row out of order is refused, not sorted away
    body = lines[-30:]
    body[3], body[4] = body[4], body[3]
    path.write_text("\n".join(lines[:1] + body) + "\n")
    err = refusal(path)
    assert err.field == "Binance_BTCUSDT_d.csv:row 6:unix" and "out of order" in err.message


def test_generic_csv_iso_semicolon_no_volume(tmp_path: Path) -> None:
    rows = [line.split(",") for line in kline_lines()[1:6]]
    text = "date;close;high;low;open\n" + "".join(
        f"{np.datetime_as_string(np.datetime64(int(r[0]), 'ms'), unit='s')}Z;{r[4]};{r[2]};{r[3]};{r[1]}\n"
        for r in rows
    )
    path = tmp_path / "iso.csv"
    path.write_text(text)
    c = load_candles(path)
    assert c.format == "csv" and len(c) == 5 and not c.has_volume
    assert c.timestamps_ms[0] == 1760054400000 and c.interval_ms == 60_000
    row = c.decimal_row(0)
    assert row.volume is None and row.open == Decimal("121579.40") and str(row.close) == "121601.40"
    assert np.isnan(c.volume).all()


def test_generic_csv_epoch_seconds_and_gap(tmp_path: Path) -> None:
    rows = [line.split(",") for line in kline_lines()[1:11]]
    del rows[4:7]
    path = tmp_path / "secs.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{int(r[0]) // 1000},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n" for r in rows)
    )
    c = load_candles(path)
    assert c.interval_ms == 60_000
    assert c.gaps == (Gap(ms("2025-10-10T00:03"), ms("2025-10-10T00:07"), 3),)
    assert len(c.slice_time(ms("2025-10-10T00:04"), ms("2025-10-10T01:00")).gaps) == 0
    assert len(c.slice_time(ms("2025-10-10T00:00"), ms("2025-10-10T01:00")).gaps) == 1


def test_parquet(tmp_path: Path, klines: Candles) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 100
    table = pa.table(
        {
            "date": pa.array(klines.timestamps_ms[:n].astype("datetime64[ms]")),
            "open": pa.array([klines.text_row(i)[0] for i in range(n)]),
            "high": pa.array(klines.high[:n]),
            "low": pa.array(klines.low[:n]),
            "close": pa.array(klines.close[:n]),
            "volume": pa.array(klines.volume[:n]),
        }
    )
    path = tmp_path / "BTC_USDT_USDT-1m-futures.parquet"
    pq.write_table(table, path)
    c = load_candles(path)
    assert c.format == "parquet" and len(c) == n
    assert (c.timestamps_ms == klines.timestamps_ms[:n]).all()
    assert c.text_row(0)[0] == "121579.40"
    assert c.decimal_row(0).high == Decimal("121658.3")


def test_parquet_without_pyarrow_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    err = refusal(path)
    assert err.field == "x.parquet:format" and "pip install pyarrow" in err.message


# ------------------------------------------------------------------------------------------------------------
# Refusals: each names file, row and column
# ------------------------------------------------------------------------------------------------------------

GENERIC_HEADER = "timestamp,open,high,low,close,volume"


def generic_file(tmp_path: Path, edit=None, name: str = "BTCUSDT-1m.csv") -> Path:
    """Five real 1-minute candles as a generic CSV; ``edit(rows)`` may change the cells first."""
    rows = [line.split(",")[:6] for line in kline_lines()[1:6]]
    if edit:
        edit(rows)
    path = tmp_path / name
    path.write_text(GENERIC_HEADER + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def setter(row: int, col: int, value: str):
    def edit(rows):
        rows[row][col] = value

    return edit


@pytest.mark.parametrize(
    "row, col, value, field, message",
    [
        (2, 2, "100", "row 4:high", "high 100 is below low 121633.50"),
        (0, 1, "121700", "row 2:open", "open 121700 is above high 121658.30"),
        (0, 1, "121500", "row 2:open", "open 121500 is below low 121579.40"),
        (1, 4, "121590", "row 3:close", "close 121590 is below low 121594.80"),
        (1, 4, "121640", "row 3:close", "close 121640 is above high 121633.60"),
        (4, 5, "-0.001", "row 6:volume", "volume -0.001 is negative"),
        (3, 5, "nan", "row 5:volume", "NaN is not a number"),
        (3, 2, "NaN", "row 5:high", "NaN is not a number"),
        (3, 3, "inf", "row 5:low", "infinity is not allowed"),
        (3, 4, "-Infinity", "row 5:close", "infinity is not allowed"),
        (0, 4, "", "row 2:close", "empty value"),
        (1, 1, "abc", "row 3:open", "not a number: 'abc'"),
        (1, 1, "121_601.40", "row 3:open", "not a number: '121_601.40'"),
        (1, 1, "１２１６０１", "row 3:open", "not a number: '１２１６０１'"),
        (1, 1, "1e999", "row 3:open", "1e999 is too large to be a price or volume"),
        (2, 0, "1760054460000", "row 4:timestamp", "repeats row 3"),
        (2, 0, "1760054400001", "row 4:timestamp", "out of order after row 3"),
        (2, 0, "yesterday", "row 4:timestamp", "not a timestamp"),
        (2, 0, "", "row 4:timestamp", "empty value"),
    ],
)
def test_refusals_name_file_row_column(
    tmp_path: Path, row: int, col: int, value: str, field: str, message: str
) -> None:
    err = refusal(generic_file(tmp_path, setter(row, col, value)))
    assert err.field == f"BTCUSDT-1m.csv:{field}"
    assert message in err.message
    assert str(err).startswith(err.field)


def test_low_must_be_positive(tmp_path: Path) -> None:
    def edit(rows):
        rows[1][1:5] = ["0", "0", "0", "0"]

    err = refusal(generic_file(tmp_path, edit))
    assert (err.field, err.message) == ("BTCUSDT-1m.csv:row 3:low", "low 0 must be greater than zero")


def test_earliest_bad_row_is_reported(tmp_path: Path) -> None:
    def edit(rows):
        rows[3][2] = "1"  # row 5: high below low
        rows[1][4] = "999999"  # row 3: close above high

    assert refusal(generic_file(tmp_path, edit)).field == "BTCUSDT-1m.csv:row 3:close"


def test_exact_comparison_beyond_float_precision(tmp_path: Path) -> None:
    # 1.00000000000000001 and 1.00000000000000002 are the same binary float; the loader compares the decimals
    def edit(rows):
        a, b = "1.00000000000000002", "1.00000000000000001"
        rows[0][1:5] = [a, b, b, b]

    err = refusal(generic_file(tmp_path, edit))
    assert err.field == "BTCUSDT-1m.csv:row 2:open"
    assert err.message == "open 1.00000000000000002 is above high 1.00000000000000001"


def test_wrong_column_counts(tmp_path: Path) -> None:
    lines = kline_lines()
    path = tmp_path / "klines.csv"
    path.write_text("\n".join(lines[:3] + [lines[3].rsplit(",", 1)[0]] + lines[4:6]))
    err = refusal(path)
    assert (err.field, err.message) == ("klines.csv:row 4:columns", "expected 12 columns, found 11")
    path.write_text("\n".join(lines[:5]).replace("\n", ",7\n", 1) + "\n")  # the header row is 13 wide
    assert refusal(path, "binance-csv").field == "klines.csv:row 1:columns"
    generic = generic_file(tmp_path)
    generic.write_text(generic.read_text().replace("\n", ",1\n", 3).replace(",1\n", "\n", 1))
    err = refusal(generic)
    assert err.field == "BTCUSDT-1m.csv:row 2:columns" and "expected 6 columns, found 7" in err.message


def test_binance_header_must_be_klines(tmp_path: Path) -> None:
    lines = kline_lines()
    path = tmp_path / "k.csv"
    path.write_text("\n".join([lines[0].replace(",high,low,", ",low,high,")] + lines[1:4]))
    err = refusal(path, "binance-csv")
    assert err.field == "k.csv:row 1:header"


def test_freqtrade_refusals(tmp_path: Path) -> None:
    raw = FT_1H.read_text()
    data = json.loads(raw, parse_float=str)
    path = tmp_path / "ft.json"

    def write(items) -> None:
        path.write_text("[" + ",".join("[" + ",".join(str(x) for x in it) + "]" for it in items) + "]")

    items = [list(it) for it in data[:5]]
    items[2] = items[2][:5]
    write(items)
    err = refusal(path)
    assert err.field == "ft.json:row 3:columns" and "found 5 values" in err.message
    items = [list(it) for it in data[:5]]
    items[3][2] = '"117406.8"'  # a JSON string is not a number
    write(items)
    err = refusal(path)
    assert (err.field, err.message) == ("ft.json:row 4:high", 'not a number: "117406.8"')
    items = [list(it) for it in data[:5]]
    items[1][4] = "NaN"
    write(items)
    assert (refusal(path).field, refusal(path).message) == ("ft.json:row 2:close", "NaN is not a number")
    items[1][4] = "null"
    write(items)
    assert refusal(path).message == "empty value (null)"
    path.write_text("[[1758240000000, 1, 2")
    assert refusal(path).field == "ft.json:row 1" and "not valid JSON" in refusal(path).message
    path.write_text("[]")
    assert refusal(path).message == "empty file: no candles"


def test_file_level_refusals(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert (refusal(empty).field, refusal(empty).message) == ("empty.csv", "empty file: no candles")
    empty.write_text("\n  \n")
    assert refusal(empty).field == "empty.csv"
    header_only = tmp_path / "header.csv"
    header_only.write_text(GENERIC_HEADER + "\n")
    assert "no candle rows" in refusal(header_only).message
    err = refusal(generic_file(tmp_path), "tradingview")
    assert err.field == "BTCUSDT-1m.csv:format" and "unknown format 'tradingview'" in err.message
    assert "binance-csv" in err.message
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n")
    err = refusal(odd)
    assert err.field == "odd.csv:format" and "cannot tell the format" in err.message
    missing = tmp_path / "missing.csv"
    assert "file not found" in refusal(missing).message
    no_high = tmp_path / "nohigh.csv"
    no_high.write_text("timestamp,open,low,close\n1760054400000,1,1,1\n")
    err = refusal(no_high, "csv")
    assert err.field == "nohigh.csv:row 1:header" and "no 'high' column" in err.message
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    assert "not UTF-8" in refusal(binary).message


def test_daily_refuses_longer_candles(tmp_path: Path) -> None:
    lines = CDD_D.read_text().splitlines()
    weekly = tmp_path / "weekly.csv"
    weekly.write_text("\n".join(lines[:1] + lines[-200::-7][:10][::-1]) + "\n")
    c = load_candles(weekly)
    assert c.interval_ms == 7 * DAY_MS
    with pytest.raises(ValidationError) as info:
        daily_ranges(c)
    assert info.value.field == "interval_ms"


# ------------------------------------------------------------------------------------------------------------
# Property: any valid candle table round-trips exactly
# ------------------------------------------------------------------------------------------------------------


@st.composite
def candle_tables(draw):
    n = draw(st.integers(min_value=1, max_value=30))
    start = draw(st.integers(min_value=ms("2017-01-01"), max_value=ms("2030-01-01")))
    steps = draw(st.lists(st.integers(min_value=1, max_value=10 * DAY_MS), min_size=n - 1, max_size=n - 1))
    times = [start]
    for s in steps:
        times.append(times[-1] + s)
    places = draw(st.integers(min_value=0, max_value=10))
    rows = []
    for _ in range(n):
        low = draw(st.integers(min_value=1, max_value=10**12))
        high = low + draw(st.integers(min_value=0, max_value=10**12))
        o = draw(st.integers(min_value=low, max_value=high))
        c = draw(st.integers(min_value=low, max_value=high))
        vol = draw(st.integers(min_value=0, max_value=10**15))
        rows.append([_fixed(x, places) for x in (o, high, low, c)] + [_fixed(vol, draw(st.integers(0, 8)))])
    return times, rows


def _fixed(units: int, places: int) -> str:
    """``units`` * 10**-places as plain decimal text (trailing zeros kept)."""
    return str(Decimal(units).scaleb(-places)) if places == 0 else f"{Decimal(units).scaleb(-places):f}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=candle_tables(), layout=st.sampled_from(["csv", "binance-csv", "freqtrade-json", "csv-seconds"]))
def test_round_trip(tmp_path: Path, table, layout: str) -> None:
    times, rows = table
    path = tmp_path / ("candles.json" if layout == "freqtrade-json" else "candles.csv")
    if layout == "freqtrade-json":
        path.write_text("[" + ",".join(f"[{t},{','.join(r)}]" for t, r in zip(times, rows)) + "]")
    elif layout == "binance-csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for t, r in zip(times, rows):
            w.writerow([t, *r, t + 59_999, "0", "1", "0", "0", "0"])
        path.write_text(buf.getvalue())
    else:
        seconds = layout == "csv-seconds"
        path.write_text(
            GENERIC_HEADER
            + "\n"
            + "".join(
                f"{Decimal(t).scaleb(-3) if seconds else t},{','.join(r)}\n" for t, r in zip(times, rows)
            )
        )
    c = load_candles(path)
    assert c.format == layout.replace("-seconds", "")
    assert list(c.timestamps_ms) == times
    assert len(c) == len(rows)
    for i, r in enumerate(rows):
        assert c.text_row(i) == tuple(r)
        d = c.decimal_row(i)
        assert (d.open, d.high, d.low, d.close, d.volume) == tuple(Decimal(x) for x in r)
    diffs = np.diff(times)
    if len(diffs):
        assert c.interval_ms in set(diffs.tolist())
        assert all(g.before_ms - g.after_ms > c.interval_ms for g in c.gaps)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(removed=st.sets(st.integers(min_value=1, max_value=118), max_size=30))
def test_gaps_count_the_missing_minutes(tmp_path: Path, removed: set[int]) -> None:
    """Delete minutes from the real 1-minute series: the gaps report exactly those, nothing is filled."""
    lines = kline_lines()
    kept = [lines[0]] + [lines[1 + i] for i in range(120) if i not in removed]
    path = tmp_path / "holes.csv"
    path.write_text("\n".join(kept) + "\n")
    c = load_candles(path)
    assert len(c) == 120 - len(removed) and c.interval_ms == 60_000
    assert sum(g.missing for g in c.gaps) == len(removed)
    for g in c.gaps:
        assert (g.before_ms - g.after_ms) // 60_000 - 1 == g.missing
