"""Funding and fee drift of the liquidation price (SPEC §2 "Funding", §2.4; seed 003 "じわ削り").

Binance BTCUSDT tier 1 (mmr 0.4 %, cum 0) throughout: isolated long LP = (q·E − PM) / (q·(1 − mmr)),
short LP = (PM + q·E) / (q·(1 + mmr)).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from perprisk.errors import ValidationError
from perprisk.paths import DATA_DIR
from perprisk.tools.drift import (
    constant_rates,
    funding_drift,
    funding_times,
    load_funding_rates,
)
from perprisk.tools.venue import make_venue

BINANCE = make_venue("binance")
FUNDING_FILE = DATA_DIR / "binance_um" / "BTC_USDT_USDT-8h-funding_rate.json"


def long_lp(margin: Fraction, size: str = "0.1", entry: int = 100000) -> Fraction:
    q = Fraction(size)
    return (q * entry - margin) / (q * Fraction("0.996"))


def test_funding_times_are_counted_conservatively():
    assert funding_times("72") == 9
    assert funding_times("24") == 3
    assert funding_times("12") == 2  # 12 h can cross two 8-hourly funding times
    assert funding_times("0") == 0
    assert len(constant_rates("0.0001", "72")) == 9


def test_constant_drift_long_pays():
    # 0.1 BTC @ 100,000, PM 1000, entry fee 0.05 % of 10,000 = 5, funding 0.01 % of 10,000 = 1 per 8 h,
    # 72 h = 9 funding times.
    # margin 1000 − 5 − 9 = 986;  LP = (10000 − 986) / 0.0996 = 9014 / 0.0996 ≈ 90502.0
    d = funding_drift(BINANCE, "long", "0.1", "100000", "1000", constant_rates("0.0001", "72"))
    assert d.entry_fee == 5 and d.funding_total == 9 and d.carry_cost == 14
    assert d.exit_fee == 5
    assert d.initial.liquidation_price == long_lp(Fraction(1000))
    assert [s.margin for s in d.steps] == [995, 994, 993, 992, 991, 990, 989, 988, 987, 986]
    assert d.final.liquidation_price == long_lp(Fraction(986)) == Fraction(9014) / Fraction("0.0996")
    # seed 003: the LP moves toward the (standing) price: 14 / 0.0996 ≈ 140.56
    assert d.liquidation_shift == Fraction(14) / Fraction("0.0996")
    assert d.liquidated_at is None


def test_constant_drift_short_receives():
    # The short receives 1 per funding time (SPEC §2: longs pay shorts when F > 0): 1000 − 5 + 9 = 1004.
    # short LP = (1004 + 10000) / (0.1·1.004) = 11004 / 0.1004 ≈ 109601.6, further away than at the open.
    d = funding_drift(BINANCE, "short", "0.1", "100000", "1000", constant_rates("0.0001", "72"))
    assert d.final.margin == 1004 and d.carry_cost == -4
    assert d.final.liquidation_price == Fraction(11004) / Fraction("0.1004")
    assert d.liquidation_shift < 0  # moved away from the price


def test_drift_until_liquidation():
    # 100×: PM 100, MM at the mark = 0.1·100000·0.004 = 40.  Fee 5 → 95; funding 0.3 % = 30 per interval:
    # 65 (still above 40), then 35 ≤ 40 → liquidated at funding time 2 with the price standing still.
    d = funding_drift(BINANCE, "long", "0.1", "100000", "100", ["0.003"] * 5)
    assert d.liquidated_at == 2 and len(d.steps) == 3 and d.scheduled == 5
    assert d.final.margin == 35 and d.final.liquidated


def test_drift_with_real_binance_funding_rates():
    # The first three 8-hour BTCUSDT funding rates in the shipped file (2025-09-19): −0.00000231, 0.00002109,
    # 0.00005264.  1 BTC long at a standing mark of 100,000 pays −0.231, 2.109, 5.264 (total 7.142);
    # no entry fee.
    series = load_funding_rates(FUNDING_FILE).window(periods=3)
    assert series.rates == (Decimal("-0.00000231"), Decimal("0.00002109"), Decimal("0.00005264"))
    assert series.timestamps_ms[0] == 1758240000000  # 2025-09-19 00:00 UTC
    d = funding_drift(
        BINANCE,
        "long",
        "1",
        "100000",
        "10000",
        series.rates,
        timestamps_ms=series.timestamps_ms,
        entry_fee_rate="0",
    )
    assert [s.payment for s in d.steps[1:]] == [Fraction("-0.231"), Fraction("2.109"), Fraction("5.264")]
    assert d.funding_total == Fraction("7.142")
    assert d.final.margin == Fraction("9992.858")
    assert d.final.liquidation_price == long_lp(Fraction("9992.858"), "1")
    assert d.steps[1].timestamp_ms == 1758240000000


def test_real_series_window_and_marks():
    full = load_funding_rates(FUNDING_FILE)
    assert len(full.rates) == 115
    window = full.window(since_ms=1760054400000, periods=2)  # from 2025-10-10 00:00 UTC, the crash day
    assert window.timestamps_ms[0] >= 1760054400000 and len(window.rates) == 2
    # a moving mark: the payment uses each funding time's mark (SPEC §2: q·M·F)
    d = funding_drift(
        BINANCE,
        "long",
        "1",
        "100000",
        "10000",
        ["0.0001", "0.0001"],
        marks=["120000", "110000"],
        entry_fee_rate="0",
    )
    assert [s.payment for s in d.steps[1:]] == [12, 11]


def test_drift_refusals(tmp_path: Path):
    with pytest.raises(ValidationError) as err:
        funding_drift(BINANCE, "long", "0.1", "100000", "1000", ["0.5", "2"])
    assert err.value.field == "rates[1]"
    with pytest.raises(ValidationError) as err:
        funding_drift(BINANCE, "long", "0.1", "100000", "30", ["0.0001"])  # 30 < MM 40 at the open
    assert err.value.field == "margin"
    with pytest.raises(ValidationError) as err:
        funding_drift(BINANCE, "long", "0.1", "100000", "1000", ["0.0001"], marks=["1", "2"])
    assert err.value.field == "marks"
    bad = tmp_path / "bad.json"
    bad.write_text("[[1, 0.1], [1, 0.2]]")
    with pytest.raises(ValidationError) as err:
        load_funding_rates(bad)
    assert err.value.field == "funding_file[1].timestamp_ms"
    bad.write_text("{not json")
    with pytest.raises(ValidationError) as err:
        load_funding_rates(bad)
    assert err.value.field == "funding_file"
    with pytest.raises(ValidationError) as err:
        load_funding_rates(tmp_path / "missing.json")
    assert err.value.field == "funding_file"
