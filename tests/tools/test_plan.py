"""Staged margin plan (seed 003 "階段式の証拠金設計"; SPEC §2.4).

Binance tier 1 (mmr 0.4 %): for 0.1 BTC long @ 100,000, LP(PM) = (10000 − PM) / 0.0996.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.tools.plan import staged_margin_plan
from perprisk.tools.venue import make_venue

BINANCE = make_venue("binance")
ONE_TIER = make_venue("binance", mmr="0.004")  # for JPY notionals, where USDT brackets do not apply


def lp(margin: int) -> Fraction:
    return (10000 - Fraction(margin)) / Fraction("0.0996")


def test_default_levels_evenly_spaced_toward_the_initial_lp():
    # budget 3000, initial 1000, 2 adds of (3000 − 1000)/2 = 1000.  LP0 = 9000/0.0996 = 22,500,000/249.
    # levels = E + k/3·(LP0 − E), LP0 − E = −2,400,000/249
    #        → 24,100,000/249 ≈ 96787.1, 23,300,000/249 ≈ 93574.3
    p = staged_margin_plan(BINANCE, "long", "0.1", "100000", "3000", "1000", max_adds=2)
    assert p.stages[0].liquidation_price == lp(1000) == Fraction(22_500_000, 249)
    assert p.levels == (Fraction(24_100_000, 249), Fraction(23_300_000, 249))
    assert p.add_amount == 1000 and p.unallocated == 0
    assert [s.margin_total for s in p.stages] == [1000, 2000, 3000]
    assert [s.liquidation_price for s in p.stages] == [
        lp(1000),
        lp(2000),
        lp(3000),
    ]  # 90361.4, 80321.3, 70281.1
    assert p.levels_default and p.warnings == ()


def test_levels_round_toward_entry_on_the_tick_and_adds_round_down():
    # 3 adds of 2000/3 = 666.666… → 666.66 each (0.02 unallocated); levels rounded up to 0.1 for a long
    p = staged_margin_plan(BINANCE, "long", "0.1", "100000", "3000", "1000", max_adds=3, tick="0.1")
    assert p.add_amount == Decimal("666.66") and p.unallocated == Decimal("0.02")
    # E + k/4·(LP0 − E) = 100000 − k·600000/249: 97590.36… → 97590.4; 95180.72… → 95180.8; 92771.08… → 92771.1
    assert p.levels == (Decimal("97590.4"), Decimal("95180.8"), Decimal("92771.1"))


def test_seed003_one_add_near_9_5m_with_invalidation_at_9_2m():
    # Seed 003: BTC long @ 10,000,000 JPY; "9,500,000円まではノイズ、9,200,000円を割ったらシナリオ破綻 …
    # 追加は9,500,000円近辺で一回まで".  0.3 BTC, budget 600,000, initial 300,000, one add at 9,500,000.
    # LP0 = (3,000,000 − 300,000) / (0.3·0.996) = 2,700,000 / 0.2988 ≈ 9,036,144.6
    #       (below 9.5M: the add is reachable)
    # after the add PM 600,000: LP = 2,400,000 / 0.2988 ≈ 8,032,128.5 — beyond the invalidation 9.2M.
    p = staged_margin_plan(
        ONE_TIER,
        "long",
        "0.3",
        "10000000",
        "600000",
        "300000",
        max_adds=1,
        levels=["9500000"],
        invalidation="9200000",
    )
    assert p.stages[0].liquidation_price == Fraction(2_700_000) / Fraction("0.2988")
    assert p.final_liquidation_price == Fraction(2_400_000) / Fraction("0.2988")
    assert p.add_amount == 300000 and p.warnings == ()


def test_warns_when_the_final_lp_lies_before_the_invalidation():
    # initial 150,000: LP0 = 2,850,000/0.2988 ≈ 9,538,152.6; add at 9.7M → PM 200,000: LP ≈ 9,370,816.6,
    # still above an invalidation level of 9.3M: liquidated before the idea is proven wrong.
    p = staged_margin_plan(
        ONE_TIER,
        "long",
        "0.3",
        "10000000",
        "200000",
        "150000",
        max_adds=1,
        levels=["9700000"],
        invalidation="9300000",
    )
    assert p.final_liquidation_price == Fraction(2_800_000) / Fraction("0.2988")
    assert p.warnings and "invalidation" in p.warnings[0]


def test_default_levels_stop_at_a_nearer_invalidation():
    # invalidation 92,000 lies before LP0 ≈ 90,361: levels are spaced toward 92,000: 100000 − k·8000/3
    p = staged_margin_plan(BINANCE, "long", "0.1", "100000", "3000", "1000", max_adds=2, invalidation="92000")
    assert p.levels == (Fraction(292000, 3), Fraction(284000, 3))


def test_short_plan():
    # short 0.1 @ 100,000, LP = (PM + 10000)/(0.1·1.004): PM 1000 → 109561.75…; one add of 1000 at 105,000 →
    # PM 2000 → 12000/0.1004 ≈ 119521.9
    p = staged_margin_plan(BINANCE, "short", "0.1", "100000", "2000", "1000", max_adds=1, levels=["105000"])
    assert p.stages[0].liquidation_price == Fraction(11000) / Fraction("0.1004")
    assert p.final_liquidation_price == Fraction(12000) / Fraction("0.1004")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(levels=["89000"]), "levels[0]"),  # beyond LP0 ≈ 90,361: liquidated before the add
        (dict(levels=["95000", "80000"]), "levels[1]"),  # beyond the stage-1 LP ≈ 80,321
        (dict(levels=["95000", "97000"]), "levels[1]"),  # moving back toward the entry
        (dict(levels=["101000"]), "levels[0]"),  # a long adds below its entry
        (dict(levels=["95000", "94000", "93000", "92000"]), "levels"),  # more than max_adds (3)
        (dict(levels=["95000"], invalidation="96000"), "levels[0]"),  # beyond the invalidation level
        (dict(max_adds=11), "max_adds"),
    ],
)
def test_refused_plans(kwargs, field):
    with pytest.raises(ValidationError) as err:
        staged_margin_plan(BINANCE, "long", "0.1", "100000", "3000", "1000", **kwargs)
    assert err.value.field == field


def test_refused_budgets():
    with pytest.raises(ValidationError) as err:
        staged_margin_plan(BINANCE, "long", "0.1", "100000", "900", "1000")
    assert err.value.field == "initial_margin"  # more than the budget
    with pytest.raises(ValidationError) as err:
        staged_margin_plan(BINANCE, "long", "0.1", "100000", "1000", "1000")
    assert err.value.field == "initial_margin"  # nothing left to add
    with pytest.raises(ValidationError) as err:
        staged_margin_plan(BINANCE, "long", "1", "100000", "3000", "500")  # 200× > tier 1's 150×
    assert err.value.field == "initial_margin" and "150×" in err.value.message
    assert (
        staged_margin_plan(BINANCE, "long", "0.1", "100000", "1000", "1000", max_adds=0).stages[-1].index == 0
    )
