"""``perprisk stress`` contract: --data/--format/--accounts/--seed/--json on every candle format, the policy table,
refusals with exit code 2 naming file, row and field, and a self-contained HTML report."""

from __future__ import annotations

import json
import platform
import re
import sys
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from perprisk.cli import app
from perprisk.paths import DATA_DIR
from perprisk.sim.data import DEFAULT_CANDLES_FILE, load_price_candles
from perprisk.sim.runner import SUMMARY_KEYS

runner = CliRunner()


def stress(*args: str):
    return runner.invoke(app, ["stress", "--no-progress", *args])


def check_contract(path, accounts):
    summary = json.loads(path.read_text())
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert summary["accounts"] == accounts
    assert summary["conservation_error"] == "0" and summary["open_interest_imbalance"] == "0"
    for key in (
        "liquidated_notional",
        "insurance_fund_start",
        "insurance_fund_end",
        "insurance_fund_min",
        "bad_debt",
    ):
        Decimal(summary[key])
    assert isinstance(summary["ticks"], int) and summary["ticks"] > 0
    assert isinstance(summary["elapsed_s"], float)
    return summary


def test_binance_csv_contract_and_report(tmp_path):
    out, html = tmp_path / "out.json", tmp_path / "report.html"
    result = stress(
        "--data",
        str(DEFAULT_CANDLES_FILE),
        "--format",
        "binance-csv",
        "--accounts",
        "60",
        "--seed",
        "5",
        "--start",
        "2025-10-10T21:00Z",
        "--end",
        "2025-10-10T21:30Z",
        "--json",
        str(out),
        "--html",
        str(html),
    )
    assert result.exit_code == 0, result.output
    s = check_contract(out, 60)
    assert s["start"] == "2025-10-10T21:00:00Z" and s["price_low"] == "101516.5"
    assert "report:" in result.output and str(out) in result.output
    page = html.read_text()
    assert "Plotly" in page and len(page) > 1_000_000  # the plotly library itself, inlined
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched at view time
    for chart in ("chart-price", "chart-fund", "chart-adl", "chart-policies", "chart-distances"):
        assert chart in page
    again = tmp_path / "again.json"
    stress(
        "--data",
        str(DEFAULT_CANDLES_FILE),
        "--format",
        "binance-csv",
        "--accounts",
        "60",
        "--seed",
        "5",
        "--start",
        "2025-10-10T21:00Z",
        "--end",
        "2025-10-10T21:30Z",
        "--json",
        str(again),
        "--no-html",
    )
    a, b = json.loads(out.read_text()), json.loads(again.read_text())
    a.pop("elapsed_s"), b.pop("elapsed_s")
    assert a == b


@pytest.mark.parametrize(
    "name, fmt, start, end",
    [
        (
            "binance_um/BTC_USDT_USDT-5m-futures.json",
            "freqtrade-json",
            "2025-10-10T20:00Z",
            "2025-10-10T23:00Z",
        ),
        ("binance_spot/Binance_BTCUSDT_1h.csv", "cdd-csv", "2020-03-11", "2020-03-14"),
        ("coinbase/BTCUSD_1d_candles_full.csv", "csv", "2020-02-01", "2020-04-15"),
    ],
)
def test_other_formats(tmp_path, name, fmt, start, end):
    out = tmp_path / "out.json"
    result = stress(
        "--data",
        str(DATA_DIR / name),
        "--format",
        fmt,
        "--accounts",
        "40",
        "--seed",
        "1",
        "--start",
        start,
        "--end",
        end,
        "--json",
        str(out),
        "--no-html",
    )
    assert result.exit_code == 0, result.output
    s = check_contract(out, 40)
    if fmt != "csv":  # 2025-10-10 and 2020-03-12 (Black Thursday) liquidate even 40 accounts
        assert s["liquidations"] > 0


def test_parquet_format(tmp_path):
    c = load_price_candles(DEFAULT_CANDLES_FILE, start="2025-10-10T21:00Z", end="2025-10-10T21:30Z")
    data = tmp_path / "crash.parquet"
    pq.write_table(
        pa.table(
            {
                "timestamp": c.timestamps_ms,
                "open": c.open,
                "high": c.high,
                "low": c.low,
                "close": c.close,
                "volume": c.volume,
            }
        ),
        data,
    )
    out = tmp_path / "out.json"
    result = stress(
        "--data",
        str(data),
        "--format",
        "parquet",
        "--accounts",
        "40",
        "--seed",
        "2",
        "--json",
        str(out),
        "--no-html",
    )
    assert result.exit_code == 0, result.output
    check_contract(out, 40)


def test_compare_policies_table(tmp_path):
    out, html = tmp_path / "out.json", tmp_path / "report.html"
    result = runner.invoke(
        app,
        [
            "stress",
            "--no-progress",
            "--accounts",
            "50",
            "--seed",
            "2",
            "--start",
            "2025-10-10T21:00Z",
            "--end",
            "2025-10-10T21:30Z",
            "--compare-policies",
            "--json",
            str(out),
            "--html",
            str(html),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Policies (same seed, same path)" in result.output
    for p in ("insurance_", "negative_", "debt", "socialized_"):  # headers fold in an 80-column terminal
        assert p in result.output
    for figure in (
        "liquidations",
        "adl_events",
        "bad_debt",
        "platform_loss",
        "socialized_loss",
        "trader_debt",
    ):
        assert figure in result.output
    s = json.loads(out.read_text())
    assert set(s["policies"]) == {"insurance_fund", "negative_balance_protection", "debt", "socialized_loss"}
    for figures in s["policies"].values():
        assert figures["conservation_error"] == "0" and figures["open_interest_imbalance"] == "0"
    assert "Bad debt by policy" in html.read_text()


def test_bad_data_exits_2_naming_file_row_field(tmp_path):
    lines = DEFAULT_CANDLES_FILE.read_text().splitlines()[:5]
    cells = lines[2].split(",")
    cells[3] = "NaN"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:2] + [",".join(cells)] + lines[3:]) + "\n")
    result = stress("--data", str(bad), "--format", "binance-csv", "--accounts", "5", "--no-html")
    assert result.exit_code == 2
    assert "bad.csv:row 3:low" in result.output.replace("\n", "")
    result = runner.invoke(
        app, ["stress", "--data", str(bad), "--format", "binance-csv", "--accounts", "5", "--print-json"]
    )
    assert result.exit_code == 2 and json.loads(result.output)["error"]["field"] == "bad.csv:row 3:low"
    result = stress("--policy", "bailout", "--accounts", "5", "--no-html")
    assert result.exit_code == 2 and "policy" in result.output


def test_bench_stress_reports_wall_time_memory_and_the_baseline_ratio():
    result = runner.invoke(
        app, ["bench", "stress", "--accounts", "400", "--bars", "30", "--baseline-accounts", "200", "--json",
              "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["accounts"] == 400 and figures["baseline_accounts"] == 200
    assert figures["ticks"] >= 29 and figures["wall_s"] > 0 and figures["peak_rss_mib"] > 0
    # the interpreter is named: the figures depend on its build
    interpreter = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    assert figures["python"] == interpreter
    assert figures["conservation_error"] == "0" and figures["open_interest_imbalance"] == "0"
    per = figures["wall_s"] / (400 * figures["ticks"]) * 1e6
    assert abs(figures["us_per_account_tick"] - per) <= 0.01 * per + 1e-3
    phases = figures["phases_s"]
    assert set(phases) == {"funding", "quotes", "exits", "entries", "mark_update", "checks"}
    assert all(v >= 0 for v in phases.values()) and sum(phases.values()) <= figures["wall_s"]
    assert figures["dominant_phase"] == max(phases, key=phases.get)
    # the time outside the tick loop (path and population before it, summary after it) is accounted for too
    # (the collector's time is ~1 ms here, a rounding step from 0: its measurement is tested on the runner)
    assert figures["init_s"] > 0 and figures["summary_s"] > 0 and figures["garbage_collection_s"] >= 0
    assert figures["init_s"] + figures["setup_s"] + sum(phases.values()) + figures["summary_s"] <= figures["wall_s"]
    counts = figures["counts"]
    assert counts["liquidations"] == figures["liquidations"] and counts["adl_events"] == figures["adl_events"]
    assert counts["entries"] > 0 and counts["stop_losses_triggered"] >= 0
    assert figures["us_per_entry"] == pytest.approx(phases["entries"] / counts["entries"] * 1e6, abs=0.1)
    if counts["exits"]:
        assert figures["us_per_exit"] == pytest.approx(phases["exits"] / counts["exits"] * 1e6, abs=0.1)
    else:
        assert figures["us_per_exit"] is None
    assert figures["scaling_ratio"] == pytest.approx(
        figures["us_per_account_tick"] / figures["baseline_us_per_account_tick"], rel=0.01
    )
