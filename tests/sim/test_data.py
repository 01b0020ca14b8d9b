"""Loaders of the stress simulator on the real shipped files, and their refusals (file, row, field named)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from perprisk.errors import ValidationError
from perprisk.paths import DATA_DIR
from perprisk.sim.data import (
    DEFAULT_CANDLES_FILE,
    DEFAULT_DEPTH_FILES,
    DEFAULT_FUNDING_FILE,
    DEFAULT_MARK_FILE,
    iso,
    load_depth_snapshot,
    load_funding_rates,
    load_mark_prices,
    load_price_candles,
    parse_time,
)

CRASH_LOW_MS = parse_time("2025-10-10T21:20:00Z")


def test_binance_klines_of_the_crash():
    c = load_price_candles(DEFAULT_CANDLES_FILE, "binance-csv")
    assert len(c) == 2880 and c.gaps == () and c.interval_ms == 60_000
    i = int(np.argmin(c.low))
    assert int(c.timestamps_ms[i]) == CRASH_LOW_MS
    assert c.decimal_row(i).low == Decimal("101516.5")  # exact text of the file (data/MANIFEST.md)


def test_window_cuts_and_refuses_outside_the_data():
    c = load_price_candles(DEFAULT_CANDLES_FILE, start="2025-10-10T21:00Z", end="2025-10-10T21:30Z")
    assert len(c) == 30 and iso(int(c.timestamps_ms[0])) == "2025-10-10T21:00:00Z"
    with pytest.raises(ValidationError) as err:
        load_price_candles(DEFAULT_CANDLES_FILE, start="2024-01-01", end="2024-01-02")
    assert err.value.field == "start" and "2025-10-10T00:00:00Z" in err.value.message
    with pytest.raises(ValidationError) as err:
        load_price_candles(DEFAULT_CANDLES_FILE, start="2025-10-10T22:00Z", end="2025-10-10T21:00Z")
    assert err.value.field == "end"
    with pytest.raises(ValidationError) as err:
        parse_time("yesterday", "start")
    assert err.value.field == "start"


@pytest.mark.parametrize(
    "name, fmt, rows",
    [
        ("binance_um/BTC_USDT_USDT-5m-futures.json", "freqtrade-json", None),
        ("binance_spot/Binance_BTCUSDT_1h.csv", "cdd-csv", None),
        ("coinbase/BTCUSD_1d_candles_full.csv", "csv", None),
    ],
)
def test_other_shipped_formats_load(name, fmt, rows):
    c = load_price_candles(DATA_DIR / name, fmt)
    assert len(c) > 100
    assert np.all(np.diff(c.timestamps_ms) > 0) and np.all(c.high >= c.low)


def test_parquet_round_trip(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = load_price_candles(DEFAULT_CANDLES_FILE, start="2025-10-10T21:00Z", end="2025-10-10T21:30Z")
    table = pa.table(
        {
            "timestamp": c.timestamps_ms,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
        }
    )
    pq.write_table(table, tmp_path / "crash.parquet")
    p = load_price_candles(tmp_path / "crash.parquet", "parquet")
    assert len(p) == 30 and p.decimal_row(20).low == Decimal("101516.5")


def test_bad_candles_are_refused_naming_file_row_and_field(tmp_path):
    lines = DEFAULT_CANDLES_FILE.read_text().splitlines()[:6]
    cells = lines[3].split(",")
    cells[2], cells[3] = cells[3], cells[2]  # high below low
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:3] + [",".join(cells)] + lines[4:]) + "\n")
    with pytest.raises(ValidationError) as err:
        load_price_candles(bad, "binance-csv")
    assert err.value.field.startswith("bad.csv:row 4") and "below" in err.value.message
    cells = lines[2].split(",")
    cells[4] = "NaN"
    bad.write_text("\n".join(lines[:2] + [",".join(cells)] + lines[3:]) + "\n")
    with pytest.raises(ValidationError) as err:
        load_price_candles(bad, "binance-csv")
    assert err.value.field == "bad.csv:row 3:close"
    bad.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")  # time goes back
    with pytest.raises(ValidationError) as err:
        load_price_candles(bad, "binance-csv")
    assert "row 3" in err.value.field


def test_funding_rates_from_the_shipped_file():
    f = load_funding_rates(DEFAULT_FUNDING_FILE)
    assert len(f) == 115 and f.interval_ms == 8 * 3_600_000 and f.gaps == ()
    assert f.rates[0] == Decimal("-0.00000231")  # the file's text, exactly
    crash_day = f.between(parse_time("2025-10-10"), parse_time("2025-10-11"))
    assert [iso(t)[:16] for t, _ in crash_day] == ["2025-10-10T00:00", "2025-10-10T08:00", "2025-10-10T16:00"]


@pytest.mark.parametrize(
    "content, field, words",
    [
        (
            "[[1758240000000, -0.00000231, 0, 0, 0, 0], [1758268800005, NaN, 0, 0, 0, 0]]",
            "f.json:row 2:rate",
            "not a number",
        ),
        ("[[1758240000000, 0.0001], [1758240000000, 0.0001]]", "f.json:row 2:timestamp", "must increase"),
        ("[[1758240000000, 0.0001], [1758268800000, 3]]", "f.json:row 2:rate", "plausible"),
        ("[[1758240000000, 0.0001], [1758268800000, null]]", "f.json:row 2:rate", "null"),
        ("[[1758240000000], [1758268800000, 0.0001]]", "f.json:row 1:columns", "2 values"),
        ('{"rate": 1}', "f.json", "list"),
    ],
)
def test_bad_funding_files_are_refused(tmp_path, content, field, words):
    path = tmp_path / "f.json"
    path.write_text(content)
    with pytest.raises(ValidationError) as err:
        load_funding_rates(path)
    assert err.value.field == field and words in err.value.message


def test_funding_csv_binance_layout(tmp_path):
    path = tmp_path / "BTCUSDT-fundingRate-2025-10.csv"
    path.write_text(
        "calc_time,funding_interval_hours,last_funding_rate\n"
        "1760054400000,8,0.00000785\n1760083200000,8,0.00003879\n"
    )
    f = load_funding_rates(path)
    assert f.rates == (Decimal("0.00000785"), Decimal("0.00003879"))
    path.write_text("calc_time,funding_interval_hours,last_funding_rate\n1760054400000,8,\n")
    with pytest.raises(ValidationError) as err:
        load_funding_rates(path)
    assert err.value.field == "BTCUSDT-fundingRate-2025-10.csv:row 2:last_funding_rate"
    path.write_text("when,what\n1,2\n")
    with pytest.raises(ValidationError) as err:
        load_funding_rates(path)
    assert err.value.field.endswith("row 1:header")


def test_mark_prices_from_the_shipped_file():
    m = load_mark_prices(DEFAULT_MARK_FILE)
    assert m.interval_ms == 8 * 3_600_000 and len(m) == 115


def test_depth_snapshots_from_the_shipped_files():
    tardis, binance = (load_depth_snapshot(p) for p in DEFAULT_DEPTH_FILES)
    assert tardis.bids.shape == (25, 2) and tardis.asks.shape == (25, 2)
    assert 11_650 < tardis.mid < 11_660
    assert np.all(tardis.bids[:, 0] >= 0) and np.all(np.diff(tardis.asks[:, 0]) >= 0)
    assert binance.bids.shape == (100, 2) and binance.asks.shape == (0, 2)
    d, n = binance.cumulative_notional()
    assert np.all(np.diff(n) >= 0) and n[-1] > 3e6  # ~177 BTC at ~20,370 within 5 bp


def test_bad_depth_file_is_refused(tmp_path):
    path = tmp_path / "depth.csv"
    path.write_text("symbol,timestamp,side,price,qty\nBTCUSDT,1,b,100,1\nBTCUSDT,1,x,99,1\n")
    with pytest.raises(ValidationError) as err:
        load_depth_snapshot(path)
    assert err.value.field == "depth.csv:row 3:side"
    path.write_text("symbol,timestamp,side,price,qty\nBTCUSDT,1,b,abc,1\n")
    with pytest.raises(ValidationError) as err:
        load_depth_snapshot(path)
    assert err.value.field == "depth.csv:row 2:price"
