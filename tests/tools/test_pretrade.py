"""The pre-trade check of seed 003 ("チェック:この3つが満たせないトレードはやらない"; SPEC §2.4).

1. liquidation distance beyond k × the ordinary daily move (measured from real candles),
2. carry cost (funding + fees) included,
3. an invalidation level that lies before the liquidation price.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.paths import BTC_DAILY_FILE, DATA_DIR
from perprisk.tools.pretrade import (
    CHECK_CARRY,
    CHECK_DISTANCE,
    CHECK_INVALIDATION,
    CHECK_LEVERAGE,
    OrdinaryDailyMove,
    daily_move_from_file,
    float_to_decimal,
    pretrade_check,
)
from perprisk.tools.venue import make_venue

BINANCE = make_venue("binance")
# A fixed 3 % ordinary move for the rule tests (k = 2 → threshold 6 %); the real statistic is tested below.
MOVE_3 = OrdinaryDailyMove("test", Decimal("0.5"), 365, 365, 0, 0, Decimal(3))


def checks_by_name(result):
    return {c.name: c for c in result.checks}


# ------------------------------------------------------------------------------- ordinary daily move


def test_ordinary_daily_move_matches_an_independent_exact_median():
    # The shipped BTC/USD daily file (Coinbase), last 365 days up to 2025-09-24: the median of
    # (high − low)/open,
    # recomputed here in Decimal straight from the CSV text (365 values: the 183rd in order).
    with open(BTC_DAILY_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))[-365:]
    ranges = sorted((Decimal(r["high"]) - Decimal(r["low"])) / Decimal(r["open"]) for r in rows)
    exact_median_pct = ranges[182] * 100
    move = daily_move_from_file(BTC_DAILY_FILE)
    assert move.days == 365
    assert move.to_json()["first_day"] == "2024-09-25" and move.to_json()["last_day"] == "2025-09-24"
    assert abs(move.move_pct - exact_median_pct) < Decimal("1e-8")
    assert Decimal("2") < move.move_pct < Decimal("4")  # ≈ 2.97 %: BTC's ordinary day in 2024–25


def test_ordinary_daily_move_quantile_and_lookback():
    median = daily_move_from_file(BTC_DAILY_FILE, lookback_days=90)
    p90 = daily_move_from_file(BTC_DAILY_FILE, lookback_days=90, quantile="0.9")
    assert median.days == 90 and p90.move_pct > median.move_pct


def test_ordinary_daily_move_from_intraday_futures_candles():
    # Binance USDⓈ-M BTCUSDT 1 h candles (freqtrade JSON, 2025-09-19 → 2025-10-27) aggregate to UTC days;
    # the window includes the 2025-10-10 crash day (high ~122.5k, low ~102k: a ~17 % range).
    move = daily_move_from_file(DATA_DIR / "binance_um" / "BTC_USDT_USDT-1h-futures.json", quantile="1")
    assert move.move_pct > Decimal(15)
    assert 30 <= move.days <= 40


def test_float_statistic_becomes_an_explicit_decimal():
    assert float_to_decimal(2.9717767276255823) == Decimal("2.97177673")
    with pytest.raises(ValidationError):
        float_to_decimal(float("nan"))


def test_daily_move_refusals(tmp_path):
    with pytest.raises(ValidationError) as err:
        daily_move_from_file(tmp_path / "missing.csv")
    assert err.value.field == "candles"
    with pytest.raises(ValidationError) as err:
        daily_move_from_file(BTC_DAILY_FILE, quantile="1.5")
    assert err.value.field == "quantile"
    with pytest.raises(ValidationError) as err:
        daily_move_from_file(BTC_DAILY_FILE, lookback_days=0)
    assert err.value.field == "lookback_days"


# --------------------------------------------------------------------------------------------- the check


def test_pass_10x_with_a_stop():
    # 0.1 BTC @ 100,000, 10× (PM 1000).  Carry: fee 5 + 9 × 1 funding (72 h at 0.01 %) = 14 → PM 986,
    # LP after carry = 9014/0.0996 ≈ 90502.0, distance 9.498 % > 2 × 3 % = 6 %;
    # stop 95,000 lies before the LP.
    r = pretrade_check(BINANCE, "long", "0.1", "100000", "1000", stop="95000", daily_move=MOVE_3)
    assert r.passed and r.reasons == ()
    c = checks_by_name(r)
    assert c[CHECK_DISTANCE].value == (100000 - Fraction(9014) / Fraction("0.0996")) / 100000 * 100
    assert c[CHECK_DISTANCE].threshold == 6
    assert c[CHECK_CARRY].value == 14
    assert r.drift.final.liquidation_price == Fraction(9014) / Fraction("0.0996")


def test_fail_too_big_and_stop_beyond_lp():
    # PM 300 (33.3×): LP after carry = (10000 − 286)/0.0996 ≈ 97530.1, distance 2.47 % < 6 %; the stop 95,000
    # lies beyond it.  Seed 003: the position is too big for the instrument's ordinary swings.
    r = pretrade_check(BINANCE, "long", "0.1", "100000", "300", stop="95000", daily_move=MOVE_3)
    assert not r.passed
    assert r.reasons == (CHECK_DISTANCE, CHECK_INVALIDATION)


def test_carry_alone_can_fail_the_distance():
    # PM 650: at the open LP = 9350/0.0996 ≈ 93875.5 (6.12 % > 6 %: passes without carry);
    # the carry of 14 makes
    # PM 636, LP = 9364/0.0996 ≈ 94016.1 (5.98 % < 6 %): the carry cost decides.
    r = pretrade_check(BINANCE, "long", "0.1", "100000", "650", stop="97000", daily_move=MOVE_3)
    assert r.drift.initial.distance_pct > 6
    assert r.reasons == (CHECK_DISTANCE,)
    # without the carry (no funding, no fee) the same trade passes
    assert pretrade_check(
        BINANCE, "long", "0.1", "100000", "650", stop="97000", daily_move=MOVE_3, rates=[], entry_fee_rate="0"
    ).passed


def test_fail_without_an_invalidation_level():
    r = pretrade_check(BINANCE, "long", "0.1", "100000", "1000", stop=None, daily_move=MOVE_3)
    assert r.reasons == (CHECK_INVALIDATION,)


def test_fail_when_the_carry_liquidates():
    # PM 100 (100×) with 0.3 % funding: 95 → 65 → 35 ≤ MM 40 at funding time 2 (price standing still).
    # 100× is within tier 1's 150×, but the carry and the distance fail.
    r = pretrade_check(
        BINANCE,
        "long",
        "0.1",
        "100000",
        "100",
        stop="99900",
        daily_move=MOVE_3,
        funding_rate="0.003",
        hours="24",
    )
    assert r.drift.liquidated_at == 2
    assert set(r.reasons) == {CHECK_DISTANCE, CHECK_CARRY, CHECK_INVALIDATION}


def test_fail_above_the_tier_max_leverage():
    r = pretrade_check(
        BINANCE, "long", "0.1", "100000", "50", stop="99990", daily_move=MOVE_3, rates=[], entry_fee_rate="0"
    )
    assert CHECK_LEVERAGE in r.reasons  # 200× > 150×


def test_short_passes_with_receiving_funding():
    r = pretrade_check(BINANCE, "short", "0.1", "100000", "1000", stop="104000", daily_move=MOVE_3)
    assert r.passed and r.drift.carry_cost == -4  # fee 5, funding received 9


def test_pretrade_refusals():
    with pytest.raises(ValidationError) as err:
        pretrade_check(BINANCE, "long", "0.1", "100000", "1000", stop="101000", daily_move=MOVE_3)
    assert err.value.field == "stop"
    with pytest.raises(ValidationError) as err:
        pretrade_check(BINANCE, "long", "0.1", "100000", "1000", stop="95000", daily_move=MOVE_3, k="0")
    assert err.value.field == "k"
