"""The toolkit commands of ``perprisk calc`` (SPEC §2.4): tables by default, one JSON object with --json, exit
code 2 with ``{"error": {"field", "message"}}`` on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from perprisk.cli import app
from perprisk.money import format_decimal
from perprisk.paths import DATA_DIR

runner = CliRunner()
FUNDING_FILE = str(DATA_DIR / "binance_um" / "BTC_USDT_USDT-8h-funding_rate.json")


def run(*args: str):
    result = runner.invoke(app, ["calc", *args])
    return result.exit_code, result.stdout


def run_json(*args: str) -> dict:
    code, out = run(*args, "--json")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 1  # one JSON object, nothing else on stdout
    return json.loads(lines[0])


def error_of(*args: str) -> dict:
    code, out = run(*args, "--json")
    assert code == 2, out
    return json.loads(out)["error"]


# ------------------------------------------------------------------------------------------------ size


def test_size_defaults_just_work():
    # the brief's example: binance family, shipped tiers, BTCUSDT, lot 0.001 → 0.096 (tests/tools/test_sizing)
    body = run_json("size", "--entry", "100000", "--worst", "90000", "--margin", "1000", "--side", "long")
    assert body["size"] == "0.096" and body["family"] == "binance" and body["symbol"] == "BTCUSDT"
    assert body["limited_by"] == "liquidation_price"
    assert (
        Fraction(body["liquidation"]["liquidation_price"])
        < 90000
        <= Fraction(body["next_lot_liquidation_price"])
    )
    code, out = run("size", "--entry", "100000", "--worst", "90000", "--margin", "1000", "--side", "long")
    assert code == 0 and "Reverse sizing" in out and "0.096" in out


def test_size_other_family_and_explicit_mmr():
    # mexc, mmr 0.4 %: q < 200 / (1800 + 200) = 0.1 → 0.099 (SPEC §2 mexc example, strict boundary)
    body = run_json(
        "size",
        "--family",
        "mexc",
        "--mmr",
        "0.004",
        "--side",
        "long",
        "--entry",
        "50000",
        "--worst",
        "48200",
        "--margin",
        "200",
    )
    assert body["size"] == "0.099"


@pytest.mark.parametrize(
    "args, field",
    [
        (["--entry", "100000", "--worst", "110000", "--margin", "1000", "--side", "long"], "worst"),
        (["--entry", "100000", "--worst", "90000", "--side", "long"], "margin"),
        (["--entry", "abc", "--worst", "90000", "--margin", "1000", "--side", "long"], "entry"),
        (
            [
                "--entry",
                "100000",
                "--worst",
                "90000",
                "--margin",
                "1000",
                "--side",
                "long",
                "--family",
                "ftx",
            ],
            "family",
        ),
        (
            [
                "--entry",
                "100000",
                "--worst",
                "90000",
                "--margin",
                "1000",
                "--side",
                "long",
                "--symbol",
                "NOPEUSDT",
            ],
            "symbol",
        ),
        (
            [
                "--entry",
                "100000",
                "--worst",
                "90000",
                "--margin",
                "1000",
                "--side",
                "long",
                "--tiers-file",
                "/nope",
            ],
            "tiers_file",
        ),
    ],
)
def test_size_errors(args, field):
    assert error_of("size", *args)["field"] == field


def test_size_error_without_json_goes_to_stderr():
    result = runner.invoke(
        app, ["calc", "size", "--entry", "100000", "--worst", "110000", "--margin", "1000", "--side", "long"]
    )
    assert result.exit_code == 2 and "worst" in result.stderr and result.stdout == ""


# ----------------------------------------------------------------------------------------------- margin


def test_margin_for_target_lp():
    # PM = 36 + 1000 = 1036 (tests/tools/test_sizing.py)
    body = run_json("margin", "--side", "long", "--entry", "100000", "--size", "0.1", "--target-lp", "90000")
    assert body["margin"] == "1036" and body["liquidation_price"] == "90000" and body["within_max_leverage"]
    code, out = run("margin", "--side", "long", "--entry", "100000", "--size", "0.1", "--target-lp", "90000")
    assert code == 0 and "1036" in out
    assert error_of("margin", "--side", "long", "--entry", "100000", "--size", "0.1")["field"] == "target_lp"


# -------------------------------------------------------------------------------------------- risk-size


def test_risk_size():
    body = run_json(
        "risk-size", "--account", "10000", "--entry", "100000", "--stop", "98000", "--leverage", "10"
    )
    assert body["size"] == "0.05" and body["risk_amount"] == "100" and body["stop_before_liquidation"] is True
    warned = run_json(
        "risk-size", "--account", "10000", "--entry", "100000", "--stop", "98000", "--risk-pct", "5"
    )
    assert warned["size"] == "0.25" and warned["warnings"]
    code, out = run(
        "risk-size", "--account", "10000", "--entry", "100000", "--stop", "98000", "--risk-pct", "5"
    )
    assert code == 0 and "warning" in out
    assert (
        error_of("risk-size", "--account", "10000", "--entry", "100000", "--stop", "100000")["field"]
        == "stop"
    )


# ---------------------------------------------------------------------------------- usage, reward-risk


def test_usage():
    body = run_json("usage", "--used-margin", "850", "--equity", "1000")
    assert body["usage_pct"] == "85" and body["level"] == "caution" and body["ok"] is False
    code, out = run("usage", "--used-margin", "500", "--equity", "1000")
    assert code == 0 and "within the 80 % limit" in out
    assert error_of("usage", "--used-margin", "1", "--equity", "-1")["field"] == "equity"


def test_reward_risk():
    body = run_json(
        "reward-risk", "--entry", "100000", "--stop", "99500", "--target", "101000", "--size", "1"
    )
    assert body["ratio"] == "2" and body["ok"] is True and body["risk_amount"] == "500"
    code, out = run("reward-risk", "--entry", "100000", "--stop", "98000", "--target", "103000")
    assert code == 0 and "below 1:2" in out
    assert (
        error_of("reward-risk", "--entry", "100000", "--stop", "98000", "--target", "90000")["field"]
        == "target"
    )


# ------------------------------------------------------------------------------------------- leverage


def test_leverage():
    assert run_json("leverage", "--leverage", "10")["level"] == "caution"
    assert run_json("leverage", "--leverage", "10", "--experience", "expert")["level"] == "ok"
    body = run_json("leverage", "--leverage", "75", "--experience", "expert", "--notional", "5000000")
    assert body["level"] == "danger" and body["tier_max_leverage"] == "50"
    code, out = run("leverage", "--leverage", "25")
    assert code == 0 and "danger" in out
    assert error_of("leverage", "--leverage", "10", "--experience", "guru")["field"] == "experience"


# ----------------------------------------------------------------------------------------------- stop


def test_stop_from_lp_and_from_position():
    assert run_json("stop", "--side", "long", "--entry", "119000", "--lp", "115000")["stop"] == "117000"
    body = run_json("stop", "--side", "long", "--entry", "100000", "--size", "0.05", "--leverage", "10")
    assert body["stop"] == "95180.8" and body["tick"] == "0.1"
    code, out = run(
        "stop", "--side", "long", "--entry", "100", "--lp", "90", "--fraction", "0.5", "--tick", "0.01"
    )
    assert code == 0 and "95" in out
    assert error_of("stop", "--side", "long", "--entry", "100000", "--size", "0.05")["field"] == "margin"
    assert error_of("stop", "--side", "long", "--entry", "100", "--lp", "90", "--size", "1")["field"] == "lp"


# ---------------------------------------------------------------------------------------------- drift


def test_drift_constant_rate():
    body = run_json("drift", "--side", "long", "--entry", "100000", "--size", "0.1", "--margin", "1000")
    assert body["funding_times"] == 9 and body["carry_cost"] == "14" and body["margin_final"] == "986"
    assert len(body["steps"]) == 10
    # non-terminating rationals are printed with 40 significant digits (perprisk.money.format_decimal)
    assert body["liquidation_price_final"] == format_decimal(Fraction(9014) / Fraction("0.0996"))
    code, out = run("drift", "--side", "long", "--entry", "100000", "--size", "0.1", "--margin", "1000")
    assert code == 0 and "Funding & fee drift" in out


def test_drift_rates_and_real_funding_file():
    body = run_json(
        "drift",
        "--side",
        "long",
        "--entry",
        "100000",
        "--size",
        "1",
        "--margin",
        "10000",
        "--rates",
        "-0.00000231,0.00002109,0.00005264",
        "--entry-fee-rate",
        "0",
    )
    assert body["funding_total"] == "7.142"
    real = run_json(
        "drift",
        "--side",
        "long",
        "--entry",
        "100000",
        "--size",
        "1",
        "--margin",
        "10000",
        "--funding-file",
        FUNDING_FILE,
        "--periods",
        "3",
        "--entry-fee-rate",
        "0",
    )
    assert real["funding_total"] == "7.142" and real["steps"][1]["timestamp_ms"] == 1758240000000
    code, out = run(
        "drift",
        "--side",
        "long",
        "--entry",
        "100000",
        "--size",
        "1",
        "--margin",
        "10000",
        "--funding-file",
        FUNDING_FILE,
        "--since",
        "2025-10-10",
        "--periods",
        "3",
    )
    assert code == 0 and "2025-10-10" in out
    assert (
        error_of(
            "drift",
            "--side",
            "long",
            "--entry",
            "100000",
            "--size",
            "1",
            "--margin",
            "10000",
            "--since",
            "2025-10-10",
        )["field"]
        == "since"
    )
    assert (
        error_of(
            "drift",
            "--side",
            "long",
            "--entry",
            "100000",
            "--size",
            "1",
            "--margin",
            "10000",
            "--rates",
            "0.1,,0.2",
        )["field"]
        == "rates"
    )


# ----------------------------------------------------------------------------------------------- plan


def test_plan():
    body = run_json(
        "plan",
        "--side",
        "long",
        "--entry",
        "100000",
        "--size",
        "0.1",
        "--budget",
        "3000",
        "--initial-margin",
        "1000",
        "--max-adds",
        "2",
        "--levels",
        "95000,85000",
    )
    assert [s["margin_total"] for s in body["stages"]] == ["1000", "2000", "3000"]
    assert body["final_liquidation_price"] == format_decimal(Fraction(7000) / Fraction("0.0996"))
    code, out = run(
        "plan",
        "--side",
        "long",
        "--entry",
        "100000",
        "--size",
        "0.1",
        "--budget",
        "3000",
        "--initial-margin",
        "1000",
    )
    assert code == 0 and "Staged margin plan" in out
    err = error_of(
        "plan",
        "--side",
        "long",
        "--entry",
        "100000",
        "--size",
        "0.1",
        "--budget",
        "3000",
        "--initial-margin",
        "1000",
        "--levels",
        "95000,80000",
    )
    assert err["field"] == "levels[1]" and "liquidation price" in err["message"]


# ------------------------------------------------------------------------------------------- pretrade


def test_pretrade_default_candles():
    body = run_json(
        "pretrade",
        "--side",
        "long",
        "--entry",
        "100000",
        "--size",
        "0.1",
        "--leverage",
        "10",
        "--stop",
        "95000",
    )
    assert body["passed"] is True and body["reasons"] == []
    assert body["daily_move"]["last_day"] == "2025-09-24" and body["daily_move"]["days"] == 365
    assert [c["name"] for c in body["checks"]] == [
        "max_leverage",
        "liquidation_distance",
        "carry_cost",
        "invalidation_level",
    ]
    failed = run_json("pretrade", "--side", "long", "--entry", "100000", "--size", "0.1", "--margin", "300")
    assert failed["passed"] is False and failed["reasons"] == ["liquidation_distance", "invalidation_level"]
    code, out = run("pretrade", "--side", "long", "--entry", "100000", "--size", "0.1", "--margin", "300")
    assert code == 0 and "FAIL" in out


def test_pretrade_intraday_candles_and_errors():
    hourly = str(DATA_DIR / "binance_um" / "BTC_USDT_USDT-1h-futures.json")
    body = run_json(
        "pretrade",
        "--side",
        "short",
        "--entry",
        "110000",
        "--size",
        "0.1",
        "--leverage",
        "5",
        "--stop",
        "115000",
        "--candles",
        hourly,
    )
    assert body["daily_move"]["source"].endswith("BTC_USDT_USDT-1h-futures.json")
    assert (
        error_of(
            "pretrade",
            "--side",
            "long",
            "--entry",
            "100000",
            "--size",
            "0.1",
            "--leverage",
            "10",
            "--candles",
            "/no/such.csv",
        )["field"]
        == "candles"
    )
    assert (
        error_of(
            "pretrade",
            "--side",
            "long",
            "--entry",
            "100000",
            "--size",
            "0.1",
            "--leverage",
            "10",
            "--lookback-days",
            "x",
        )["field"]
        == "lookback_days"
    )


def test_console_script_subprocess():
    # the installed entry point, end to end
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "perprisk",
            "calc",
            "size",
            "--entry",
            "100000",
            "--worst",
            "90000",
            "--margin",
            "1000",
            "--side",
            "long",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["size"] == "0.096"
