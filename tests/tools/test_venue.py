"""The venue (family, tiers, fee) the toolkit plans on, and its shared helpers."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.errors import ValidationError
from perprisk.formulas import MarginMode, Side, get_family, liquidation_price
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.tools.requests import parse_liquidation_request, solve_liquidation
from perprisk.tools.venue import adverse, make_venue, position_margin


def test_default_venue_is_binance_btcusdt_with_the_shipped_tiers():
    v = make_venue()
    assert v.family.name == "binance" and v.symbol == "BTCUSDT" and len(v.tiers.tiers) == 12
    assert v.highest_max_leverage == 150
    assert v.tier_for_notional(299_999).tier == 1 and v.tier_for_notional(300_000).tier == 2
    assert v.tier_for_notional(2_000_000_000) is None  # beyond the last cap: the exchange refuses


def test_venue_agrees_with_the_calc_liquidation_request_path():
    # one source of truth: Venue.isolated is liquidation_price() with the same inputs as `calc liquidation`
    v = make_venue("okx", taker_fee="0.0005")
    query = parse_liquidation_request(
        {
            "family": "okx",
            "margin_mode": "isolated",
            "wallet_balance": "9120",
            "taker_fee": "0.0005",
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "size": "1.5",
                    "entry_price": "121600",
                    "mark_price": "121600",
                    "tiers_file": str(BINANCE_TIERS_FILE),
                }
            ],
        }
    )
    assert (
        v.isolated(Side.LONG, "1.5", "121600", "9120").liquidation_price
        == solve_liquidation(query).liquidation_price
    )
    direct = liquidation_price(
        get_family("okx"),
        MarginMode.ISOLATED,
        Decimal(9120),
        [v.leg(Side.LONG, Decimal("1.5"), Decimal(121600))],
        taker_fee=Decimal("0.0005"),
    )
    assert direct.liquidation_price == v.liquidation_price(Side.LONG, "1.5", "121600", "9120")


def test_position_margin_exact():
    assert position_margin("0.1", "100000", leverage="3") == Fraction(10000, 3)  # IM = q·E/L, kept exact
    assert position_margin("0.1", "100000", margin="500") == 500
    for kwargs, field in [
        (dict(), "margin"),
        (dict(margin="1", leverage="2"), "leverage"),
        (dict(leverage="0.5"), "leverage"),
    ]:
        with pytest.raises(ValidationError) as err:
            position_margin("0.1", "100000", **kwargs)
        assert err.value.field == field


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(family="ftx"), "family"),
        (dict(symbol="NOPEUSDT"), "symbol"),
        (dict(tiers_file="/no/such/file.json"), "tiers_file"),
        (dict(mmr="0.004", tiers_file="x.json"), "mmr"),
        (dict(maintenance_amount="10"), "maintenance_amount"),
        (dict(mmr="2"), "mmr"),
        (dict(taker_fee="1"), "taker_fee"),
    ],
)
def test_make_venue_refusals(kwargs, field):
    with pytest.raises(ValidationError) as err:
        make_venue(**kwargs)
    assert err.value.field == field


def test_adverse():
    assert adverse(Side.LONG, 90, 100) and not adverse(Side.LONG, 100, 100)
    assert adverse(Side.SHORT, 110, 100) and not adverse(Side.SHORT, 90, 100)
