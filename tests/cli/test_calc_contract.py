"""The ``calc liquidation`` / ``calc tiers`` JSON contract (issue: foundation), exactly as written."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from perprisk.cli import app
from perprisk.paths import BINANCE_TIERS_FILE

runner = CliRunner()
TIERS = str(BINANCE_TIERS_FILE)


def call(args: list[str], stdin: str | None = None):
    result = runner.invoke(app, args, input=stdin)
    return result.exit_code, result.stdout


def bybit_request(**overrides):
    position = {"symbol": "BTCUSDT", "side": "long", "size": "1", "entry_price": "20000",
                "mark_price": "20000", "leverage": "50", "mmr": "0.005"}
    position.update(overrides.pop("position", {}))
    request = {"family": "bybit", "margin_mode": "isolated", "wallet_balance": "400", "positions": [position]}
    request.update(overrides)
    return request


def test_spec_bybit_example_through_the_cli():
    # SPEC §2 bybit: 1 BTC long @ 20,000, 50×, mmr 0.5 % → IM 400, MM 100, LP 19,700
    code, out = call(["calc", "liquidation", "--json"], json.dumps(bybit_request()))
    assert code == 0
    body = json.loads(out)
    assert body["symbol"] == "BTCUSDT"
    assert Decimal(body["liquidation_price"]) == Decimal("19700")
    assert Decimal(body["bankruptcy_price"]) == Decimal("19600")
    assert Decimal(body["distance_pct"]) == Decimal("1.5")
    assert Decimal(body["mmr"]) == Decimal("0.005")
    assert Decimal(body["maintenance_amount"]) == 0
    assert body["tier"] == 1


def test_numbers_may_be_json_numbers():
    request = bybit_request(wallet_balance=400, position={"size": 1, "entry_price": 20000, "mark_price": 20000.0,
                                                          "mmr": 0.005})
    code, out = call(["calc", "liquidation", "--json"], json.dumps(request))
    assert code == 0, out
    assert Decimal(json.loads(out)["liquidation_price"]) == Decimal("19700")


def test_input_file(tmp_path):
    path = tmp_path / "req.json"
    path.write_text(json.dumps(bybit_request()))
    code, out = call(["calc", "liquidation", "--json", "--input", str(path)])
    assert code == 0
    assert json.loads(out)["liquidation_price"] == "19700"


def test_tiers_file_supplies_mmr_and_amount_binance_isolated():
    # 1 BTC @ 100,000 → notional 100,000: tier 1 (mmr 0.4 %, cum 0); LP = (1000 − 100000)/(0.004 − 1)
    request = {"family": "binance", "margin_mode": "isolated", "wallet_balance": "1000",
               "positions": [{"symbol": "BTCUSDT", "side": "long", "size": "1", "entry_price": "100000",
                              "mark_price": "100000", "tiers_file": TIERS}]}
    code, out = call(["calc", "liquidation", "--json"], json.dumps(request))
    body = json.loads(out)
    assert code == 0
    expected = (Fraction(1000) - Fraction(100000)) / (Fraction("0.004") - 1)  # 99397.5903614457...
    assert abs(Fraction(Decimal(body["liquidation_price"])) - expected) < Fraction(1, 10**30)
    assert body["tier"] == 1 and body["mmr"] == "0.004" and body["maintenance_amount"] == "0"


def test_no_liquidation_price_is_null():
    # a long backed by more than its entry value is never liquidated
    request = bybit_request(wallet_balance="30000", family="binance")
    code, out = call(["calc", "liquidation", "--json"], json.dumps(request))
    assert code == 0
    body = json.loads(out)
    assert body["liquidation_price"] is None and body["distance_pct"] is None and body["bankruptcy_price"] is None


def test_tiers_lookup_contract():
    code, out = call(["calc", "tiers", "--tiers-file", TIERS, "--symbol", "BTCUSDT", "--notional", "300000", "--json"])
    assert code == 0
    body = json.loads(out)
    assert (body["tier"], body["mmr"], body["maintenance_amount"], body["max_leverage"]) == (2, "0.005", "300", "100")
    code, out = call(["calc", "tiers", "--tiers-file", TIERS, "--symbol", "BTCUSDT", "--notional", "299999.99", "--json"])
    assert json.loads(out)["tier"] == 1


BAD_REQUESTS = [
    ("malformed JSON", '{"family": "bybit",', "request"),
    ("not an object", "[1, 2]", "request"),
    ("missing field", json.dumps({k: v for k, v in bybit_request().items() if k != "wallet_balance"}), "wallet_balance"),
    ("unknown field", json.dumps(bybit_request(colour="red")), "colour"),
    ("unknown position field", json.dumps(bybit_request(position={"price": "1"})), "positions[0].price"),
    ("zero size", json.dumps(bybit_request(position={"size": "0"})), "positions[0].size"),
    ("negative size", json.dumps(bybit_request(position={"size": "-1"})), "positions[0].size"),
    ("NaN", json.dumps(bybit_request(position={"entry_price": "NaN"})), "positions[0].entry_price"),
    ("infinity", json.dumps(bybit_request(position={"mark_price": "Infinity"})), "positions[0].mark_price"),
    ("mmr zero", json.dumps(bybit_request(position={"mmr": "0"})), "positions[0].mmr"),
    ("mmr above one", json.dumps(bybit_request(position={"mmr": "1.5"})), "positions[0].mmr"),
    ("unknown family", json.dumps(bybit_request(family="kraken")), "family"),
    ("unknown side", json.dumps(bybit_request(position={"side": "up"})), "positions[0].side"),
    ("unknown mode", json.dumps(bybit_request(margin_mode="portfolio")), "margin_mode"),
    ("negative wallet", json.dumps(bybit_request(wallet_balance="-5")), "wallet_balance"),
    ("no mmr source", json.dumps(bybit_request(position={"mmr": None})), "positions[0].mmr"),
    ("leverage below one", json.dumps(bybit_request(position={"leverage": "0.5"})), "positions[0].leverage"),
    ("empty positions", json.dumps(bybit_request(positions=[])), "positions"),
    ("unknown target", json.dumps(bybit_request(target="ETHUSDT")), "target"),
]


@pytest.mark.parametrize("name,stdin,field", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests_exit_2_with_field(name, stdin, field):
    code, out = call(["calc", "liquidation", "--json"], stdin)
    assert code == 2
    body = json.loads(out)  # stdout is exactly one JSON object
    assert set(body) == {"error"}
    assert body["error"]["field"] == field
    assert body["error"]["message"]


def _write_tiers(tmp_path, rows):
    path = tmp_path / "tiers.json"
    path.write_text(json.dumps({"markets": [{"symbol": "XUSDT", "tiers": rows}]}))
    return str(path)


def test_inconsistent_tier_table_is_refused(tmp_path):
    rows = [{"floor": "0", "cap": "1000", "mmr": "0.01", "max_leverage": "50"},
            {"floor": "2000", "cap": "5000", "mmr": "0.02", "max_leverage": "25"}]  # gap 1000..2000
    path = _write_tiers(tmp_path, rows)
    request = bybit_request(position={"symbol": "XUSDT", "mmr": None, "tiers_file": path})
    code, out = call(["calc", "liquidation", "--json"], json.dumps(request))
    assert code == 2
    err = json.loads(out)["error"]
    assert err["field"] == "positions[0].tiers_file"
    assert "tiers[2].floor" in err["message"]


def test_disagreeing_cum_is_refused(tmp_path):
    rows = [{"floor": "0", "cap": "1000", "mmr": "0.01", "max_leverage": "50", "maintenance_amount": "0"},
            {"floor": "1000", "cap": "5000", "mmr": "0.02", "max_leverage": "25", "maintenance_amount": "11"}]
    path = _write_tiers(tmp_path, rows)
    code, out = call(["calc", "tiers", "--tiers-file", path, "--symbol", "XUSDT", "--notional", "5", "--json"])
    assert code == 2
    err = json.loads(out)["error"]
    assert "tiers[2].maintenance_amount" in err["field"]
    assert "10" in err["message"]  # the derived amount: 1000 × (0.02 − 0.01)


def test_leverage_above_tier_max_is_refused():
    # 10 BTC @ 100,000 = 1,000,000 notional → tier 3 (max 75×)
    request = {"family": "binance", "margin_mode": "isolated", "wallet_balance": "10000",
               "positions": [{"symbol": "BTCUSDT", "side": "long", "size": "10", "entry_price": "100000",
                              "mark_price": "100000", "leverage": "100", "tiers_file": TIERS}]}
    code, out = call(["calc", "liquidation", "--json"], json.dumps(request))
    assert code == 2
    assert json.loads(out)["error"]["field"] == "positions[0].leverage"


def test_real_console_command_subprocess():
    """The installed ``perprisk`` entry point honours the contract (stdin in, one JSON object out)."""
    proc = subprocess.run(
        [sys.executable, "-m", "perprisk", "calc", "liquidation", "--json"],
        input=json.dumps(bybit_request()), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["liquidation_price"] == "19700"
    bad = subprocess.run(
        [sys.executable, "-m", "perprisk", "calc", "liquidation", "--json"],
        input="not json", capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 2
    assert json.loads(bad.stdout)["error"]["field"] == "request"


def test_table_output_is_readable():
    code, out = call(["calc", "liquidation", "--family", "bybit", "--side", "long", "--size", "1",
                      "--entry", "20000", "--leverage", "50", "--mmr", "0.005"])
    assert code == 0
    assert "19700" in out and "bybit" in out


def test_extreme_exponents_are_refused_not_crashed():
    code, out = call(["calc", "liquidation", "--json"], json.dumps(bybit_request(wallet_balance="1e999999")))
    assert code == 2
    assert json.loads(out)["error"]["field"] == "wallet_balance"
