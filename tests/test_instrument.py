"""perprisk.instrument: risk-tier tables, the maintenance-amount recurrence, loaders, refusals, lookups.

Real data: ``data/binance_um/leverage_tiers_ccxt.json`` (Binance USDⓈ-M leverage brackets in ccxt shape,
``info.cum`` = Binance's published maintenance amount; provenance in data/MANIFEST.md).
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from perprisk.errors import ValidationError
from perprisk.instrument import (
    Instrument,
    TierSpec,
    TierTable,
    derive_maintenance_amounts,
    load_tier_table,
    load_tier_tables,
    normalize_symbol,
    parse_tier_document,
    select_tier_table,
)
from perprisk.paths import BINANCE_TIERS_FILE

D = Decimal

REAL_SYMBOLS = [
    "BTC/USDT:USDT",
    "ETH/USDT:USDT",
    "SOL/USDT:USDT",
    "XRP/USDT:USDT",
    "DOGE/USDT:USDT",
    "BNB/USDT:USDT",
    "ADA/USDT:USDT",
    "LINK/USDT:USDT",
    "BTC/USDC:USDC",
    "ETH/USDC:USDC",
]


@pytest.fixture(scope="module")
def raw_doc() -> dict:
    """The real ccxt document, numbers parsed exactly."""
    return json.loads(BINANCE_TIERS_FILE.read_text(encoding="utf-8"), parse_float=Decimal)


@pytest.fixture(scope="module")
def real_tables() -> dict[str, TierTable]:
    return load_tier_tables(BINANCE_TIERS_FILE)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ the cum recurrence


def _own_recurrence(rows) -> list[Decimal]:
    """cum_1 = 0, cum_n = cum_{n-1} + floor_n·(mmr_n − mmr_{n-1}) — written out here independently."""
    cums = [D(0)]
    for prev, row in zip(rows, rows[1:]):
        cums.append(cums[-1] + D(row["minNotional"]) * (D(row["maintenanceMarginRate"]) - D(prev["maintenanceMarginRate"])))
    return cums


@pytest.mark.parametrize("symbol", REAL_SYMBOLS)
def test_binance_published_cum_equals_the_recurrence(raw_doc, real_tables, symbol):
    rows = raw_doc[symbol]
    published = [D(row["info"]["cum"]) for row in rows]
    assert published == _own_recurrence(rows)
    assert [t.maintenance_amount for t in real_tables[symbol].tiers] == published
    assert (
        derive_maintenance_amounts([D(r["minNotional"]) for r in rows], [D(r["maintenanceMarginRate"]) for r in rows])
        == published
    )


def test_derive_maintenance_amounts_hand_values():
    # Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts" (faq b3c689c1...):
    # "Maintenance Amount on Level 3 = 250,000 * (1% - 0.5%) + 50 USDT = 1,300 USDT" (2021 BTCUSDT table)
    floors = [D("0"), D("50000"), D("250000"), D("1000000")]
    mmrs = [D("0.004"), D("0.005"), D("0.01"), D("0.025")]
    assert derive_maintenance_amounts(floors, mmrs) == [D(0), D(50), D(1300), D(16300)]


def test_binance_faq_2021_btcusdt_table_lookups():
    # Binance FAQ b3c689c1...: "if the position size of a USDT-margined BTCUSDT contract is 264,000 USDT, then the
    # maintenance margin rate would be 1%"; "if ... 500,000 USDT, then the maintenance amount would be 1,300 USDT".
    # Table (2021, as reproduced in gist highfestiva/b71e76f5...): 0/0.4%, 50k/0.5%, 250k/1%, 1M/2.5%, 10M/5%, ...
    table = TierTable.from_brackets(
        "BTCUSDT",
        [("0", "0.004", 125), ("50000", "0.005", 100), ("250000", "0.01", 50), ("1000000", "0.025", 20),
         ("10000000", "0.05", 10), ("20000000", "0.1", 5), ("50000000", "0.125", 4), ("100000000", "0.15", 3),
         ("200000000", "0.25", 2), ("300000000", "0.5", 1)],
        last_cap="500000000",
    )
    assert table.tier_for_notional(D("264000")).mmr == D("0.01")
    assert table.tier_for_notional(D("500000")).maintenance_amount == D("1300")
    assert [t.maintenance_amount for t in table.tiers] == [
        D(x) for x in ("0", "50", "1300", "16300", "266300", "1266300", "2516300", "5016300", "25016300", "100016300")
    ]


def test_pionex_published_deductions_agree():
    # pionex.com/blog/maintenance-margin: BTCUSDT 0–150k 0.5% / 0, 150k–500k 1% / 750, 500k–2M 2.5% / 8250,
    # 2M–5M 5% / 58250, 5M–10M 10% / 308250, 10M–20M 25% / 1808250, 20M–100M 50% / 6808250.
    rows = [("0", "150000", "0.005", "100", "0"), ("150000", "500000", "0.01", "25", "750"),
            ("500000", "2000000", "0.025", "15", "8250"), ("2000000", "5000000", "0.05", "10", "58250"),
            ("5000000", "10000000", "0.1", "5", "308250"), ("10000000", "20000000", "0.25", "2", "1808250"),
            ("20000000", "100000000", "0.5", "1", "6808250")]
    table = TierTable.from_specs("BTCUSDT", [TierSpec(*r) for r in rows])
    assert [t.maintenance_amount for t in table.tiers] == [D(r[4]) for r in rows]


# ------------------------------------------------------------------------------------- real loader


def test_load_real_ccxt_file_all_symbols(real_tables):
    assert sorted(real_tables) == sorted(REAL_SYMBOLS)
    assert {s: len(t.tiers) for s, t in real_tables.items()} == {
        "BTC/USDT:USDT": 12, "ETH/USDT:USDT": 12, "SOL/USDT:USDT": 10, "XRP/USDT:USDT": 11,
        "DOGE/USDT:USDT": 10, "BNB/USDT:USDT": 10, "ADA/USDT:USDT": 10, "LINK/USDT:USDT": 10,
        "BTC/USDC:USDC": 10, "ETH/USDC:USDC": 11,
    }


def test_real_btcusdt_table_values(real_tables):
    btc = real_tables["BTC/USDT:USDT"]
    assert btc.symbol == "BTC/USDT:USDT"
    first, second, third = btc.tiers[:3]
    assert (first.tier, first.floor, first.cap, first.mmr, first.max_leverage, first.maintenance_amount) == (
        1, D(0), D(300000), D("0.004"), D(150), D(0))
    assert (second.floor, second.cap, second.mmr, second.max_leverage, second.maintenance_amount) == (
        D(300000), D(800000), D("0.005"), D(100), D(300))
    assert (third.floor, third.cap, third.mmr, third.maintenance_amount) == (D(800000), D(3000000), D("0.0065"), D(1500))
    last = btc.tiers[-1]
    assert (last.tier, last.floor, last.cap, last.mmr, last.max_leverage, last.maintenance_amount) == (
        12, D(1200000000), D(1800000000), D("0.5"), D(1), D(421482000))
    assert btc.max_notional == D(1800000000)


@pytest.mark.parametrize("symbol", REAL_SYMBOLS)
def test_real_tables_are_contiguous_and_ordered(real_tables, symbol):
    tiers = real_tables[symbol].tiers
    assert tiers[0].floor == 0 and tiers[0].maintenance_amount == 0
    assert [t.tier for t in tiers] == list(range(1, len(tiers) + 1))
    for prev, cur in zip(tiers, tiers[1:]):
        assert prev.cap == cur.floor
        assert cur.floor > prev.floor
        assert cur.mmr >= prev.mmr
        assert cur.max_leverage <= prev.max_leverage


def test_load_ccxt_without_cum_derives_the_same_amounts(raw_doc, real_tables, tmp_path):
    doc = copy.deepcopy(json.loads(BINANCE_TIERS_FILE.read_text(encoding="utf-8")))
    for rows in doc.values():
        for row in rows:
            del row["info"]["cum"]
    loaded = load_tier_tables(_write(tmp_path, "nocum.json", json.dumps(doc)))
    assert sorted(loaded) == sorted(REAL_SYMBOLS)
    for symbol in REAL_SYMBOLS:
        assert loaded[symbol].tiers == real_tables[symbol].tiers


def test_load_ccxt_without_info_at_all_derives(tmp_path):
    doc = {"XYZ/USDT:USDT": [
        {"tier": 1, "minNotional": 0, "maxNotional": 5000, "maintenanceMarginRate": 0.01, "maxLeverage": 50},
        {"tier": 2, "minNotional": 5000, "maxNotional": 25000, "maintenanceMarginRate": 0.025, "maxLeverage": 20},
    ]}
    table = load_tier_table(_write(tmp_path, "x.json", json.dumps(doc)), "XYZUSDT")
    # cum_2 = 0 + 5000·(0.025 − 0.01) = 75
    assert [t.maintenance_amount for t in table.tiers] == [D(0), D(75)]


# ------------------------------------------------------------------------------------ simple shapes

SIMPLE_TOML = """
[[markets]]
symbol = "BTCUSDT"
tiers = [
  { floor = "0", cap = "300000", mmr = "0.004", max_leverage = "150" },
  { floor = "300000", cap = "800000", mmr = "0.005", max_leverage = "100", maintenance_amount = "300" },
  { floor = "800000", mmr = 0.0065, max_leverage = 75 },
]

[[markets]]
symbol = "ETHUSDT"
tiers = [
  { floor = 0, mmr = 0.005, max_leverage = 100 },
  { floor = 10000, mmr = 0.0065, max_leverage = 75 },
]
"""


def test_simple_toml_shape(tmp_path):
    tables = load_tier_tables(_write(tmp_path, "tiers.toml", SIMPLE_TOML))
    assert sorted(tables) == ["BTCUSDT", "ETHUSDT"]
    btc = tables["BTCUSDT"]
    assert [(t.floor, t.cap, t.mmr, t.max_leverage, t.maintenance_amount) for t in btc.tiers] == [
        (D(0), D(300000), D("0.004"), D(150), D(0)),
        (D(300000), D(800000), D("0.005"), D(100), D(300)),
        (D(800000), None, D("0.0065"), D(75), D(1500)),  # 300 + 800000·0.0015
    ]
    eth = tables["ETHUSDT"]
    # caps filled from the next floor; cum_2 = 10000·0.0015 = 15
    assert [(t.floor, t.cap, t.maintenance_amount) for t in eth.tiers] == [(D(0), D(10000), D(0)), (D(10000), None, D(15))]
    assert eth.tier_for_notional(D("10") ** 12).tier == 2  # unbounded last tier


def test_simple_json_shape(tmp_path):
    doc = {"markets": [{"symbol": "SOLUSDT", "tiers": [
        {"floor": "0", "cap": "50000", "mmr": "0.005", "max_leverage": "100"},
        {"floor": "50000", "cap": "400000", "mmr": "0.0065", "max_leverage": "75", "maintenance_amount": "75"},
    ]}]}
    table = load_tier_table(_write(tmp_path, "tiers.json", json.dumps(doc)), "SOLUSDT")
    assert [(t.floor, t.cap, t.mmr, t.maintenance_amount) for t in table.tiers] == [
        (D(0), D(50000), D("0.005"), D(0)), (D(50000), D(400000), D("0.0065"), D(75))]
    with pytest.raises(ValidationError) as info:
        table.tier_for_notional(D(400000))
    assert info.value.field == "notional"


def test_json_floats_are_read_exactly(tmp_path):
    # 0.0065 as a JSON number must not go through binary float
    doc = '{"markets": [{"symbol": "A", "tiers": [{"floor": 0, "mmr": 0.0065, "max_leverage": 75}]}]}'
    table = load_tier_table(_write(tmp_path, "a.json", doc), "A")
    assert str(table.tiers[0].mmr) == "0.0065"


def test_simple_shape_refuses_unknown_and_missing_fields():
    with pytest.raises(ValidationError) as info:
        parse_tier_document({"markets": [{"symbol": "A", "tiers": [{"floor": 0, "mmr": "0.01", "max_leverage": 10, "colour": 1}]}]})
    assert info.value.field == "A.tiers[1].colour"
    with pytest.raises(ValidationError) as info:
        parse_tier_document({"markets": [{"symbol": "A", "tiers": [{"floor": 0, "max_leverage": 10}]}]})
    assert info.value.field == "A.tiers[1].mmr"
    with pytest.raises(ValidationError) as info:
        parse_tier_document({"markets": [{"symbol": "A"}]})
    assert info.value.field == "markets[0]"
    with pytest.raises(ValidationError) as info:
        parse_tier_document({"something": "else"})
    assert info.value.field == "tiers_file"


# --------------------------------------------------------------------------------------- refusals


def _spec(floor, cap, mmr="0.01", lev="20", amount=None):
    return TierSpec(floor, cap, mmr, lev, amount)


GOOD = [_spec("0", "1000", "0.01", "50"), _spec("1000", "5000", "0.02", "25"), _spec("5000", None, "0.05", "10")]


@pytest.mark.parametrize(
    "specs, field, words",
    [
        # non-increasing floors
        ([GOOD[0], _spec("1000", "5000", "0.02"), _spec("1000", None, "0.05")], "tiers[3].floor", ["tier 3", "increase"]),
        ([GOOD[0], _spec("0", "5000", "0.02")], "tiers[2].floor", ["tier 2", "increase"]),
        # overlap: tier 2 starts inside tier 1
        ([GOOD[0], _spec("500", "5000", "0.02")], "tiers[2].floor", ["tier 2", "previous tier's cap"]),
        # gap between tier 1's cap and tier 2's floor
        ([GOOD[0], _spec("1500", "5000", "0.02")], "tiers[2].floor", ["tier 2", "gaps"]),
        # mmr 0, > 1, negative
        ([GOOD[0], _spec("1000", "5000", "0")], "tiers[2].mmr", ["tier 2", "(0, 1]"]),
        ([GOOD[0], _spec("1000", "5000", "1.5")], "tiers[2].mmr", ["tier 2", "(0, 1]"]),
        ([_spec("0", "1000", "-0.01")], "tiers[1].mmr", ["tier 1", "(0, 1]"]),
        # leverage below 1
        ([GOOD[0], GOOD[1], _spec("5000", None, "0.05", "0.5")], "tiers[3].max_leverage", ["tier 3", "at least 1"]),
        # first floor not 0
        ([_spec("100", "1000")], "tiers[1].floor", ["tier 1", "first floor must be 0"]),
        # negative floor
        ([_spec("-1", "1000")], "tiers[1].floor", ["negative"]),
        # cap not above floor
        ([_spec("0", "0")], "tiers[1].cap", []),
        ([_spec("0", "1000"), _spec("1000", "900")], "tiers[2].cap", ["tier 2"]),
        # unbounded tier that is not the last one
        ([_spec("0", None), _spec("1000", None)], "tiers[1].cap", ["tier 1", "only the last tier"]),
        # cum disagreeing with the recurrence (cum_2 must be 1000·(0.02 − 0.01) = 10)
        ([GOOD[0], _spec("1000", "5000", "0.02", "25", "11"), GOOD[2]], "tiers[2].maintenance_amount",
         ["tier 2", "disagrees", "10"]),
        ([_spec("0", "1000", "0.01", "50", "5")], "tiers[1].maintenance_amount", ["tier 1", "disagrees"]),
        # garbage in a number field
        ([GOOD[0], _spec("1000", "5000", "abc")], "tiers[2].mmr", []),
        ([GOOD[0], _spec("1000", "5000", 0.02)], "tiers[2].mmr", ["float"]),
        # empty table
        ([], "tiers", ["empty"]),
    ],
)
def test_tier_table_refusals_name_tier_and_field(specs, field, words):
    with pytest.raises(ValidationError) as info:
        TierTable.from_specs("XYZUSDT", specs)
    assert info.value.field == field
    for word in words:
        assert word in info.value.message


def test_good_specs_build():
    table = TierTable.from_specs("XYZUSDT", GOOD)
    # cum: 0; 1000·0.01 = 10; 10 + 5000·0.03 = 160
    assert [t.maintenance_amount for t in table.tiers] == [D(0), D(10), D(160)]
    assert TierTable.from_specs("XYZUSDT", [*GOOD[:2], _spec("5000", None, "0.05", "10", "160.000")]).tiers[2].maintenance_amount == D(160)


def _ccxt_rows(mutate=None) -> dict:
    rows = [
        {"minNotional": 0.0, "maxNotional": 50000.0, "maintenanceMarginRate": 0.005, "maxLeverage": 100.0, "info": {"cum": 0.0}},
        {"minNotional": 50000.0, "maxNotional": 400000.0, "maintenanceMarginRate": 0.0065, "maxLeverage": 75.0, "info": {"cum": 75.0}},
        {"minNotional": 400000.0, "maxNotional": 1000000.0, "maintenanceMarginRate": 0.01, "maxLeverage": 50.0, "info": {"cum": 1475.0}},
    ]
    if mutate:
        mutate(rows)
    return {"SOL/USDT:USDT": rows}


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r[2].update(minNotional=50000.0), "SOL/USDT:USDT.tiers[3].floor"),  # non-increasing
        (lambda r: r[2].update(minNotional=450000.0), "SOL/USDT:USDT.tiers[3].floor"),  # gap
        (lambda r: r[1].update(maintenanceMarginRate=0), "SOL/USDT:USDT.tiers[2].mmr"),
        (lambda r: r[1].update(maintenanceMarginRate=1.01), "SOL/USDT:USDT.tiers[2].mmr"),
        (lambda r: r[1].update(maintenanceMarginRate=-0.0065), "SOL/USDT:USDT.tiers[2].mmr"),
        (lambda r: r[2].update(maxLeverage=0.5), "SOL/USDT:USDT.tiers[3].max_leverage"),
        (lambda r: r[2]["info"].update(cum=1474.0), "SOL/USDT:USDT.tiers[3].maintenance_amount"),
        (lambda r: r[0].update(minNotional=5.0), "SOL/USDT:USDT.tiers[1].floor"),
        (lambda r: r[1].pop("maintenanceMarginRate"), "SOL/USDT:USDT.tiers[2].maintenanceMarginRate"),
        (lambda r: r[1].update(maxLeverage=None), "SOL/USDT:USDT.tiers[2].maxLeverage"),
    ],
)
def test_ccxt_file_refusals_name_symbol_tier_and_field(tmp_path, mutate, field):
    path = _write(tmp_path, "bad.json", json.dumps(_ccxt_rows(mutate)))
    with pytest.raises(ValidationError) as info:
        load_tier_tables(path)
    assert info.value.field == field


def test_ccxt_reference_rows_load(tmp_path):
    table = load_tier_table(_write(tmp_path, "ok.json", json.dumps(_ccxt_rows())), "SOLUSDT")
    assert [t.maintenance_amount for t in table.tiers] == [D(0), D(75), D(1475)]


@pytest.mark.parametrize(
    "name, text",
    [
        ("broken.json", '{"BTC/USDT:USDT": [ {"minNotional": 0, '),
        ("broken.json", "not json at all"),
        ("broken.toml", "[[markets]\nsymbol = "),
        ("empty.json", ""),
    ],
)
def test_malformed_file_refused(tmp_path, name, text):
    with pytest.raises(ValidationError) as info:
        load_tier_tables(_write(tmp_path, name, text))
    assert info.value.field == "tiers_file"
    assert name in info.value.message


def test_missing_file_refused(tmp_path):
    with pytest.raises(ValidationError) as info:
        load_tier_tables(tmp_path / "nope.json")
    assert info.value.field == "tiers_file"


def test_non_utf8_file_refused_as_validation_error(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValidationError) as info:
        load_tier_tables(path)
    assert info.value.field == "tiers_file"


@pytest.mark.parametrize("tiers", [5, None])
def test_simple_shape_non_list_tiers_refused(tiers):
    with pytest.raises(ValidationError):
        parse_tier_document({"markets": [{"symbol": "A", "tiers": tiers}]})


def test_unknown_symbol_refused(real_tables):
    with pytest.raises(ValidationError) as info:
        select_tier_table(real_tables, "FOOUSDT")
    assert info.value.field == "tiers_symbol"
    assert "FOOUSDT" in info.value.message and "BTC/USDT:USDT" in info.value.message
    with pytest.raises(ValidationError) as info:
        load_tier_table(BINANCE_TIERS_FILE, "PEPE/USDT:USDT")
    assert info.value.field == "tiers_symbol"


# ------------------------------------------------------------------------------- symbol selection


@pytest.mark.parametrize(
    "asked, key",
    [
        ("BTCUSDT", "BTC/USDT:USDT"),
        ("BTC/USDT:USDT", "BTC/USDT:USDT"),
        ("btcusdt", "BTC/USDT:USDT"),
        ("BTC-USDT", "BTC/USDT:USDT"),
        ("BTC_USDT", "BTC/USDT:USDT"),
        ("BTCUSDC", "BTC/USDC:USDC"),
        ("ETH/USDC:USDC", "ETH/USDC:USDC"),
        ("DOGEUSDT", "DOGE/USDT:USDT"),
    ],
)
def test_select_tier_table_by_either_name(real_tables, asked, key):
    assert select_tier_table(real_tables, asked) is real_tables[key]


def test_select_tier_table_ambiguous():
    t = TierTable.single("X", "0.01")
    with pytest.raises(ValidationError) as info:
        select_tier_table({"BTC/USDT:USDT": t, "BTCUSDT:X": t}, "BTC-USDT")
    assert info.value.field == "tiers_symbol"
    assert "ambiguous" in info.value.message


def test_normalize_symbol():
    assert normalize_symbol("BTC/USDT:USDT") == "BTCUSDT"
    assert normalize_symbol(" eth-usdc ") == "ETHUSDC"


# ---------------------------------------------------------------------------------- tier lookup


@pytest.mark.parametrize(
    "notional, tier",
    [
        ("0", 1),
        ("0.00000001", 1),
        ("299999.99999999", 1),
        ("300000", 2),  # floor inclusive
        ("799999.99", 2),
        ("800000", 3),
        ("2999999.999", 3),
        ("3000000", 4),
        ("12000000", 5),
        ("70000000", 6),
        ("1199999999.99", 11),
        ("1200000000", 12),
        ("1799999999.99999999", 12),
    ],
)
def test_tier_for_notional_boundaries_real_btcusdt(real_tables, notional, tier):
    assert real_tables["BTC/USDT:USDT"].tier_for_notional(D(notional)).tier == tier


def test_tier_for_notional_beyond_last_cap_and_negative_refused(real_tables):
    btc = real_tables["BTC/USDT:USDT"]
    for notional in ("1800000000", "1800000000.01", "1E+12"):
        with pytest.raises(ValidationError) as info:
            btc.tier_for_notional(D(notional))
        assert info.value.field == "notional"
        assert "1800000000" in info.value.message
    with pytest.raises(ValidationError) as info:
        btc.tier_for_notional(D("-0.01"))
    assert info.value.field == "notional"
    with pytest.raises(ValidationError):
        btc.tier_for_notional_clamped(D("-1"))
    # the clamped lookup gives the last tier beyond the cap
    assert btc.tier_for_notional_clamped(D("1800000000")).tier == 12
    assert btc.tier_for_notional_clamped(D("1E+15")).tier == 12
    assert btc.tier_for_notional_clamped(D("299999")).tier == 1


def test_contains_and_max_leverage(real_tables):
    btc = real_tables["BTC/USDT:USDT"]
    t2 = btc.tiers[1]
    assert t2.contains(D(300000)) and not t2.contains(D(800000)) and not t2.contains(D("299999.9"))
    assert btc.max_leverage_for_notional(D(100000)) == D(150)
    assert btc.max_leverage_for_notional(D(300000)) == D(100)


def test_single_table():
    t = TierTable.single("BTCUSDT", "0.005", "12.5", 50)
    (tier,) = t.tiers
    assert (tier.floor, tier.cap, tier.mmr, tier.maintenance_amount, tier.max_leverage) == (D(0), None, D("0.005"), D("12.5"), D(50))
    for bad, field in ((dict(mmr="0"), "mmr"), (dict(mmr="2"), "mmr"), (dict(mmr="0.01", maintenance_amount="-1"), "maintenance_amount"),
                       (dict(mmr="0.01", max_leverage="0.9"), "max_leverage")):
        with pytest.raises(ValidationError) as info:
            TierTable.single("BTCUSDT", **bad)
        assert info.value.field == field


# ----------------------------------------------------------------------------------- instruments


def test_instrument_create_validates_by_field(real_tables):
    tiers = real_tables["BTC/USDT:USDT"]
    inst = Instrument.create(symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001",
                             min_size="0.001", taker_fee="0.0005", tiers=tiers)
    assert (inst.tick_size, inst.lot_size, inst.taker_fee, inst.contract_size) == (D("0.1"), D("0.001"), D("0.0005"), D(1))
    cases = [
        (dict(tick_size=0.1), "tick_size"),
        (dict(tick_size="0"), "tick_size"),
        (dict(lot_size="NaN"), "lot_size"),
        (dict(min_size="0.0001"), "min_size"),  # below the lot
        (dict(taker_fee="1"), "taker_fee"),
        (dict(funding_interval_hours=0), "funding_interval_hours"),
        (dict(funding_interval_hours=True), "funding_interval_hours"),
        (dict(funding_rate_floor="0.05"), "funding_rate_floor"),
        (dict(symbol=""), "symbol"),
        (dict(tiers="BTCUSDT"), "tiers"),
    ]
    base = dict(symbol="BTCUSDT", base="BTC", settle="USDT", tick_size="0.1", lot_size="0.001", min_size="0.001", tiers=tiers)
    for override, field in cases:
        with pytest.raises(ValidationError) as info:
            Instrument.create(**{**base, **override})
        assert info.value.field == field, override


def test_real_file_with_one_altered_cum_is_refused(tmp_path):
    doc = json.loads(BINANCE_TIERS_FILE.read_text(encoding="utf-8"))
    doc["BTC/USDT:USDT"][4]["info"]["cum"] = 132001.0  # published 132,000 = 12,000 + 12,000,000·(0.02 − 0.01)
    with pytest.raises(ValidationError) as info:
        load_tier_tables(_write(tmp_path, "altered.json", json.dumps(doc)))
    assert info.value.field == "BTC/USDT:USDT.tiers[5].maintenance_amount"
    assert "tier 5" in info.value.message and "132000" in info.value.message
