"""Margin usage, reward:risk, leverage warnings, stop suggestion (SPEC §2.4; seed 000 §3.1–3.3, seed 003)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.formulas import Side
from perprisk.tools.checks import (
    Level,
    leverage_check,
    margin_usage,
    reward_risk,
    suggest_stop,
    suggest_stop_for_position,
)
from perprisk.tools.venue import make_venue

BINANCE = make_venue("binance")


# ------------------------------------------------------------------------------------------ margin usage
# Seed 000 §3.3 "証拠金使用率:ポジションに充てる資金は総資金の80%を超えないように".


@pytest.mark.parametrize(
    "used, equity, usage, level",
    [
        ("800", "1000", 80, Level.OK),  # exactly the limit is still within it
        ("850", "1000", 85, Level.CAUTION),
        ("1000", "1000", 100, Level.DANGER),
        ("0", "1000", 0, Level.OK),
        ("1", "3", Fraction(100, 3), Level.OK),  # exact, not 33.333…
    ],
)
def test_margin_usage_levels(used, equity, usage, level):
    r = margin_usage(used, equity)
    assert r.usage_pct == usage and r.level is level
    assert r.free_margin == Fraction(equity) - Fraction(used)


def test_margin_usage_custom_limit_and_refusals():
    assert margin_usage("700", "1000", limit_pct="60").level is Level.CAUTION
    for kwargs, field in [
        (dict(used_margin="-1", equity="1"), "used_margin"),
        (dict(used_margin="1", equity="0"), "equity"),
        (dict(used_margin="1", equity="10", limit_pct="0"), "limit_pct"),
    ]:
        with pytest.raises(ValidationError) as err:
            margin_usage(**kwargs)
        assert err.value.field == field


# ----------------------------------------------------------------------------------------- reward : risk
# Seed 000 §3.2: "リスクリワード比1:2以上が推奨されます(例:最大損失$500なら、目標利益は$1,000以上)".


def test_reward_risk_seed000_example():
    # max loss 500, target profit 1000: long 1 unit @ 100,000, stop 99,500 (risk 500), target 101,000
    r = reward_risk("100000", "99500", "101000", size="1")
    assert r.side is Side.LONG and r.ratio == 2 and r.level is Level.OK
    assert r.breakeven_win_rate_pct == Fraction(100, 3)  # 500 / (500 + 1000)
    assert r.to_json()["risk_amount"] == "500" and r.to_json()["reward_amount"] == "1000"


@pytest.mark.parametrize(
    "entry, stop, target, ratio, level",
    [
        ("100000", "98000", "103000", Fraction(3, 2), Level.CAUTION),  # 3000 / 2000
        ("100000", "98000", "101000", Fraction(1, 2), Level.DANGER),  # reward smaller than risk
        ("100000", "102000", "94000", 3, Level.OK),  # short: risk 2000 above, reward 6000 below
    ],
)
def test_reward_risk_levels(entry, stop, target, ratio, level):
    r = reward_risk(entry, stop, target)
    assert r.ratio == ratio and r.level is level


def test_reward_risk_refuses_inconsistent_levels():
    with pytest.raises(ValidationError) as err:
        reward_risk("100000", "98000", "97000")  # long (stop below) with the target below too
    assert err.value.field == "target"
    with pytest.raises(ValidationError) as err:
        reward_risk("100000", "98000", "103000", side="short")
    assert err.value.field == "stop"


# ---------------------------------------------------------------------------------------------- leverage
# Seed 000 §3.1: "初心者は5倍以下、経験者でも20倍以下が理想です" and
# "10倍レバレッジは10%の逆行で強制決済に至ります".


@pytest.mark.parametrize(
    "leverage, experience, level, within",
    [
        ("3", "beginner", Level.OK, True),
        ("5", "beginner", Level.OK, True),
        ("10", "beginner", Level.CAUTION, False),
        ("20", "beginner", Level.CAUTION, False),
        ("25", "beginner", Level.DANGER, False),
        ("20", "expert", Level.OK, True),
        ("21", "expert", Level.DANGER, False),
    ],
)
def test_leverage_levels(leverage, experience, level, within):
    r = leverage_check(leverage, experience)
    assert r.level is level and r.within_limit is within


def test_leverage_margin_wiping_move_seed000():
    assert leverage_check("10").margin_wiping_move_pct == 10  # 10× → a 10 % adverse move
    assert leverage_check("100", "expert").margin_wiping_move_pct == 1  # seed 000 §2.1: 100× → 1 %


def test_leverage_against_the_tier_maximum():
    # a 5,000,000 notional is in Binance BTCUSDT tier 4 (3M–12M), max 50×
    assert leverage_check("10", "expert", venue=BINANCE, notional="5000000").tier_max_leverage == 50
    r = leverage_check("75", "expert", venue=BINANCE, notional="5000000")
    assert r.level is Level.DANGER and "refuses" in r.message
    beyond = leverage_check("2", "expert", venue=BINANCE, notional="2000000000")  # beyond the last cap 1.8e9
    assert beyond.level is Level.DANGER


def test_leverage_refusals():
    for args, field in [(("0.5",), "leverage"), (("10", "pro"), "experience"), (("x",), "leverage")]:
        with pytest.raises(ValidationError) as err:
            leverage_check(*args)
        assert err.value.field == field


# ------------------------------------------------------------------------------------------ stop suggestion
# Seed 003: "「清算距離の半分で撤退」をルールにすると…たとえば清算まで10%なら、5%で撤退です".


def test_stop_half_way_seed003():
    r = suggest_stop("long", "100", "90")
    assert r.stop == 95 and r.stop_distance_pct == 5 and r.liquidation_distance_pct == 10


def test_stop_seed000_example_short_side_too():
    # Seed 000 §3.2: long LP $115,000 → stop near $117,000 (half-way from an entry of 119,000).
    assert suggest_stop("long", "119000", "115000").stop == 117000
    # short mirror: entry 100, LP 110, 0.25 of the way → 102.5
    r = suggest_stop("short", "100", "110", fraction="0.25")
    assert r.stop == Fraction("102.5") and r.stop_distance_pct == Fraction("2.5")


def test_stop_rounds_toward_the_entry():
    # LP = 4500/0.0498 = 90361.445…; half-way stop 95180.722… → tick 0.1, ceiling (toward entry) → 95180.8
    r = suggest_stop_for_position(BINANCE, "long", "0.05", "100000", "500", tick="0.1")
    assert r.liquidation_price == Fraction(4500) / Fraction("0.0498")
    assert r.stop_exact == (Fraction(100000) + r.liquidation_price) / 2
    assert r.stop == Decimal("95180.8")
    short = suggest_stop("short", "100000", "110000.35", tick="1")  # 105000.175 → floor → 105000
    assert short.stop == Decimal("105000")


def test_stop_refusals():
    cases = [
        (lambda: suggest_stop("long", "100", "110"), "liquidation_price"),  # a long's LP lies below entry
        (lambda: suggest_stop("long", "100", "90", fraction="1"), "fraction"),
        (lambda: suggest_stop("long", "100", "90", fraction="0"), "fraction"),
        (lambda: suggest_stop("long", "100", "99", tick="5"), "tick"),  # 99.5 ceil → 100 = entry
        (
            lambda: suggest_stop_for_position(BINANCE, "long", "0.1", "100000", "20000"),
            "margin",
        ),  # no LP at all
    ]
    for call, field in cases:
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field == field
