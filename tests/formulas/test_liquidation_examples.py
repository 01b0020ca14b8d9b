"""Liquidation and bankruptcy prices: table-driven worked examples, each row citing its source.

Sources:
  * SPEC §2 (bybit and mexc worked examples).
  * Binance FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
    (https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93): the example account
    WB 1,535,443.01 with BTCUSDT long 109.488 @ 32,481.98 (mark 31,967.27, MMR 2.5 %, cum 16,300) and ETHUSDT long
    3,683.979 @ 1,456.84 (mark 1,335.18, MMR 10 %, cum 135,365); published TMM1 71,200.81144, UPNL1 −56,354.57.
    The liquidation prices 1,114.78 / 18,778.73 (isolated) and 1,153.26 / 26,316.89 (cross) are as reproduced in
    freqtrade tests/exchange/test_binance.py::test_liquidation_price_binance ("From calc example"); the inputs are
    also quoted, with the FAQ link, in ysdede/jesse_strategies.  The 2021 Binance bracket tables those numbers
    used (BTCUSDT 0/50k/250k/1M/10M…, ETHUSDT 0/10k/100k/500k/1M/2M/5M…) are from gist highfestiva/b71e76f5… and
    gist crackcomm/e2958203… (its BTC 1M–10M row reads 2 %; 2.5 % is the value consistent with cum 16,300).
  * pionex.com/blog/maintenance-margin: BTCUSDT tier 2 (150k–500k, 1 %, amount 750): 10 BTC @ 20,000 → MM 1,250.
  * Hand derivations: the arithmetic is in the comment of every row; expected values are exact Fractions written
    from decimal strings (never floats), and every LP is re-checked by the trigger equation (equity == MM).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.formulas import (
    MarginMode,
    PositionLeg,
    Side,
    distance_pct,
    get_family,
    initial_margin,
    is_liquidatable,
    liquidation_price,
    maintenance_margin,
    margin_balance,
    margin_ratio,
    notional,
    unrealized_pnl,
)
from perprisk.formulas.liquidation import fixed_balance
from perprisk.errors import ValidationError
from perprisk.instrument import TierTable, load_tier_tables, select_tier_table
from perprisk.money import Rounding, round_price
from perprisk.paths import BINANCE_TIERS_FILE

D = Decimal
Q = Fraction  # Q("0.004") is exactly 4/1000
LONG, SHORT = Side.LONG, Side.SHORT
ISO, CROSS = MarginMode.ISOLATED, MarginMode.CROSS

_REAL = load_tier_tables(BINANCE_TIERS_FILE)
BTC_REAL = select_tier_table(_REAL, "BTCUSDT")  # 0/300k/800k/3M…: mmr 0.4 %, 0.5 % (cum 300), 0.65 % (cum 1,500)
ETH_REAL = select_tier_table(_REAL, "ETHUSDT")  # tier 1: 0–300k, mmr 0.4 %
SOL_REAL = select_tier_table(_REAL, "SOLUSDT")  # tier 1: 0–50k, mmr 0.5 %

BTC_2021 = TierTable.from_brackets(
    "BTCUSDT",
    [("0", "0.004", 125), ("50000", "0.005", 100), ("250000", "0.01", 50), ("1000000", "0.025", 20),
     ("10000000", "0.05", 10), ("20000000", "0.1", 5), ("50000000", "0.125", 4), ("100000000", "0.15", 3),
     ("200000000", "0.25", 2), ("300000000", "0.5", 1)],
    last_cap="500000000",
)
ETH_2021 = TierTable.from_brackets(
    "ETHUSDT",
    [("0", "0.005", 100), ("10000", "0.0065", 75), ("100000", "0.01", 50), ("500000", "0.02", 25),
     ("1000000", "0.05", 10), ("2000000", "0.1", 5), ("5000000", "0.125", 4), ("10000000", "0.15", 3),
     ("20000000", "0.25", 2)],
    last_cap="5000000000",
)
# pionex.com/blog/maintenance-margin BTCUSDT table (MM deduction = Bybit-style "maintenance amount")
BTC_PIONEX = TierTable.from_brackets(
    "BTCUSDT",
    [("0", "0.005", 100), ("150000", "0.01", 25), ("500000", "0.025", 15), ("2000000", "0.05", 10),
     ("5000000", "0.1", 5), ("10000000", "0.25", 2), ("20000000", "0.5", 1)],
    last_cap="100000000",
)


def single(symbol: str, mmr: str) -> TierTable:
    return TierTable.single(symbol, mmr)


def leg(symbol, side, size, entry, mark, tiers) -> PositionLeg:
    return PositionLeg(symbol, side, D(size), D(entry), D(mark), tiers)


@dataclass(frozen=True)
class Example:
    id: str
    source: str
    family: str
    mode: MarginMode
    wallet: str  # position margin when isolated, wallet balance when cross
    legs: tuple[PositionLeg, ...]
    lp: Fraction | None
    bp: Fraction | None
    tier: int | None = None  # reported tier (at the LP for binance/generic)
    mmr: str | None = None
    amount: str | None = None
    target: str | None = None
    target_side: Side | None = None
    taker_fee: str = "0"
    published_lp: str | None = None  # the source's number, rounded to 0.01


HAND = "hand derivation (arithmetic in the row's comment)"
BN_FAQ = (
    "Binance FAQ b3c689c1f50a44cabb3a84e663b81d93 'How to Calculate Liquidation Price of USDⓈ-M Futures Contracts' "
    "example account (inputs quoted in ysdede/jesse_strategies; results as reproduced in freqtrade "
    "tests/exchange/test_binance.py::test_liquidation_price_binance)"
)

# the Binance FAQ account
BN_BTC = leg("BTCUSDT", LONG, "109.488", "32481.98", "31967.27", BTC_2021)
BN_ETH = leg("ETHUSDT", LONG, "3683.979", "1456.84", "1335.18", ETH_2021)
BN_WB = "1535443.01"
# TMM1 (other = BTC): 109.488·31,967.27·0.025 − 16,300 ; UPNL1: 109.488·(31,967.27 − 32,481.98)
_TMM_BTC = Q("109.488") * Q("31967.27") * Q("0.025") - 16300
_UPNL_BTC = Q("109.488") * (Q("31967.27") - Q("32481.98"))
# TMM1 (other = ETH): 3,683.979·1,335.18·0.1 − 135,365 ; UPNL1: 3,683.979·(1,335.18 − 1,456.84)
_TMM_ETH = Q("3683.979") * Q("1335.18") * Q("0.1") - 135365
_UPNL_ETH = Q("3683.979") * (Q("1335.18") - Q("1456.84"))

# the common cross account of the family × side rows: target BTC 1 @ 20,000 (mark 20,000), wallet 3,000, and
# an other position ETH long 10 @ 2,000 marked at 1,900 → its PnL U_eth = 10·(1,900 − 2,000) = −1,000.
def _eth_other(tiers):
    return leg("ETHUSDT", LONG, "10", "2000", "1900", tiers)


EXAMPLES: list[Example] = [
    # ------------------------------------------------------------------------------ SPEC worked examples
    Example(
        "spec-bybit-long", "SPEC §2 bybit example: 1 BTC long @ 20,000, 50×, mmr 0.5 % → IM 400, MM 100, LP 19,700, BP 19,600",
        "bybit", ISO, "400", (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.005")),),
        lp=Q(19700), bp=Q(19600), tier=1, mmr="0.005", amount="0",
    ),
    Example(
        "spec-mexc-long", "SPEC §2 mexc example (seed 004): 0.1 BTC long @ 50,000, 25×, mmr 0.4 % → MM 20, PM 200, LP 48,200",
        # BP = 50,000 − 200/0.1 = 48,000
        "mexc", ISO, "200", (leg("BTCUSDT", LONG, "0.1", "50000", "50000", single("BTCUSDT", "0.004")),),
        lp=Q(48200), bp=Q(48000), tier=1, mmr="0.004", amount="0",
    ),
    # --------------------------------------------------------------------------- Binance FAQ example
    Example(
        "binance-faq-eth-isolated", BN_FAQ + " → 1,114.78",
        # (1,535,443.01 + 135,365 − 3,683.979·1,456.84) / (3,683.979·0.1 − 3,683.979); LP notional ≈ 4.1M → 2M–5M tier
        "binance", ISO, BN_WB, (BN_ETH,),
        lp=(Q(BN_WB) + 135365 - Q("3683.979") * Q("1456.84")) / (Q("3683.979") * Q("0.1") - Q("3683.979")),
        bp=Q("1456.84") - Q(BN_WB) / Q("3683.979"), tier=6, mmr="0.1", amount="135365", published_lp="1114.78",
    ),
    Example(
        "binance-faq-btc-isolated", BN_FAQ + " → 18,778.73",
        # (1,535,443.01 + 16,300 − 109.488·32,481.98) / (109.488·0.025 − 109.488); LP notional ≈ 2.06M → 1M–10M tier
        "binance", ISO, BN_WB, (BN_BTC,),
        lp=(Q(BN_WB) + 16300 - Q("109.488") * Q("32481.98")) / (Q("109.488") * Q("0.025") - Q("109.488")),
        bp=Q("32481.98") - Q(BN_WB) / Q("109.488"), tier=4, mmr="0.025", amount="16300", published_lp="18778.73",
    ),
    Example(
        "binance-faq-eth-cross", BN_FAQ + " → 1,153.26",
        # (WB − TMM1 + UPNL1 + cumB − 1·3,683.979·1,456.84) / (3,683.979·0.1 − 1·3,683.979), TMM1/UPNL1 of the BTC leg.
        # The ETH notional at entry (5.37M) is in the 5M–10M tier (12.5 %); at the LP (≈4.25M) it is 2M–5M (10 %).
        "binance", CROSS, BN_WB, (BN_BTC, BN_ETH),
        lp=(Q(BN_WB) - _TMM_BTC + _UPNL_BTC + 135365 - Q("3683.979") * Q("1456.84"))
        / (Q("3683.979") * Q("0.1") - Q("3683.979")),
        bp=(Q("3683.979") * Q("1456.84") - (Q(BN_WB) + _UPNL_BTC)) / Q("3683.979"),
        tier=6, mmr="0.1", amount="135365", target="ETHUSDT", published_lp="1153.26",
    ),
    Example(
        "binance-faq-btc-cross", BN_FAQ + " → 26,316.89",
        "binance", CROSS, BN_WB, (BN_BTC, BN_ETH),
        lp=(Q(BN_WB) - _TMM_ETH + _UPNL_ETH + 16300 - Q("109.488") * Q("32481.98"))
        / (Q("109.488") * Q("0.025") - Q("109.488")),
        bp=(Q("109.488") * Q("32481.98") - (Q(BN_WB) + _UPNL_ETH)) / Q("109.488"),
        tier=4, mmr="0.025", amount="16300", target="BTCUSDT", published_lp="26316.89",
    ),
    # ------------------------------------------------------------------------ family × side, isolated
    Example(
        "binance-isolated-long", HAND + ": real BTCUSDT tiers, 2 BTC @ 30,000, PM 6,000 (10×); "
        "LP = (6,000 + 0 − 60,000)/(2·0.004 − 2) = 54,000/1.992 ≈ 27,108.43 (notional ≈ 54k, tier 1); BP = 30,000 − 6,000/2",
        "binance", ISO, "6000", (leg("BTCUSDT", LONG, "2", "30000", "30000", BTC_REAL),),
        lp=Q(54000) / Q("1.992"), bp=Q(27000), tier=1, mmr="0.004", amount="0",
    ),
    Example(
        "binance-isolated-short", HAND + ": LP = (6,000 + 0 + 60,000)/(2·0.004 + 2) = 66,000/2.008 ≈ 32,868.53; BP = 33,000",
        "binance", ISO, "6000", (leg("BTCUSDT", SHORT, "2", "30000", "30000", BTC_REAL),),
        lp=Q(66000) / Q("2.008"), bp=Q(33000), tier=1, mmr="0.004", amount="0",
    ),
    Example(
        "bybit-isolated-short", HAND + " (SPEC §2 bybit short formula): 1 BTC short @ 20,000, 50× → IM 400, MM 100; "
        "LP = 20,000 + (400 − 100)/1 = 20,300; BP = 20,000·(1 + 1/50) = 20,400",
        "bybit", ISO, "400", (leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.005")),),
        lp=Q(20300), bp=Q(20400), tier=1, mmr="0.005", amount="0",
    ),
    Example(
        "bybit-isolated-long-deduction", "pionex.com/blog/maintenance-margin (MM = 200,000·1 % − 750 = 1,250) + " + HAND
        + ": 10 BTC @ 20,000, 20× → PM 10,000; LP = 20,000 − (10,000 − 1,250)/10 = 19,125; BP = 19,000",
        "bybit", ISO, "10000", (leg("BTCUSDT", LONG, "10", "20000", "20000", BTC_PIONEX),),
        lp=Q(19125), bp=Q(19000), tier=2, mmr="0.01", amount="750",
    ),
    Example(
        "bybit-isolated-short-deduction", HAND + ": LP = 20,000 + (10,000 − 1,250)/10 = 20,875; BP = 21,000",
        "bybit", ISO, "10000", (leg("BTCUSDT", SHORT, "10", "20000", "20000", BTC_PIONEX),),
        lp=Q(20875), bp=Q(21000), tier=2, mmr="0.01", amount="750",
    ),
    Example(
        "mexc-isolated-short", HAND + " (SPEC §2 mexc short formula): 0.1 BTC short @ 50,000, 25×, mmr 0.4 %: "
        "LP = (50,000·0.1 − 20 + 200)/0.1 = 51,800; BP = 50,000 + 200/0.1 = 52,000",
        "mexc", ISO, "200", (leg("BTCUSDT", SHORT, "0.1", "50000", "50000", single("BTCUSDT", "0.004")),),
        lp=Q(51800), bp=Q(52000), tier=1, mmr="0.004", amount="0",
    ),
    Example(
        "okx-isolated-long", HAND + " (SPEC §2 okx): 1 BTC @ 20,000, PM 1,000, mmr 0.4 %, taker 0.05 %: "
        "LP = (20,000 − 1,000/1)/(1 − 0.004 − 0.0005) = 19,000/0.9955 ≈ 19,085.89; BP = 19,000",
        "okx", ISO, "1000", (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.004")),),
        lp=Q(19000) / Q("0.9955"), bp=Q(19000), tier=1, mmr="0.004", amount="0", taker_fee="0.0005",
    ),
    Example(
        "okx-isolated-short", HAND + ": LP = (20,000 + 1,000)/(1 + 0.004 + 0.0005) = 21,000/1.0045 ≈ 20,905.92; BP = 21,000",
        "okx", ISO, "1000", (leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.004")),),
        lp=Q(21000) / Q("1.0045"), bp=Q(21000), tier=1, mmr="0.004", amount="0", taker_fee="0.0005",
    ),
    Example(
        "gate-isolated-long", HAND + " (SPEC §2 gate): 10 ETH @ 2,000, PM 2,000, mmr 0.5 %, taker 0.075 %: "
        "LP = (2,000 − 2,000/10)/(1 − 0.005 − 0.00075) = 1,800/0.99425 ≈ 1,810.41; BP = 1,800",
        "gate", ISO, "2000", (leg("ETHUSDT", LONG, "10", "2000", "2000", single("ETHUSDT", "0.005")),),
        lp=Q(1800) / Q("0.99425"), bp=Q(1800), tier=1, mmr="0.005", amount="0", taker_fee="0.00075",
    ),
    Example(
        "gate-isolated-short", HAND + ": LP = (2,000 + 200)/(1 + 0.005 + 0.00075) = 2,200/1.00575 ≈ 2,187.42; BP = 2,200",
        "gate", ISO, "2000", (leg("ETHUSDT", SHORT, "10", "2000", "2000", single("ETHUSDT", "0.005")),),
        lp=Q(2200) / Q("1.00575"), bp=Q(2200), tier=1, mmr="0.005", amount="0", taker_fee="0.00075",
    ),
    Example(
        "generic-isolated-long", HAND + ": real BTCUSDT tiers, 5 BTC @ 100,000 (tier 2: 0.5 %, cum 300), PM 25,000, "
        "taker 0.05 %: PM + 5(P − 100,000) = 5P(0.005 + 0.0005) − 300 → P = (25,000 + 300 − 500,000)/(5·0.0055 − 5) "
        "= 474,700/4.9725 ≈ 95,465.06 (notional ≈ 477k, still tier 2); BP = 95,000",
        "generic", ISO, "25000", (leg("BTCUSDT", LONG, "5", "100000", "100000", BTC_REAL),),
        lp=Q(474700) / Q("4.9725"), bp=Q(95000), tier=2, mmr="0.005", amount="300", taker_fee="0.0005",
    ),
    Example(
        "generic-isolated-short", HAND + ": PM − 5(P − 100,000) = 5P·0.0055 − 300 → P = 525,300/5.0275 ≈ 104,485.33 "
        "(notional ≈ 522k, tier 2); BP = 105,000",
        "generic", ISO, "25000", (leg("BTCUSDT", SHORT, "5", "100000", "100000", BTC_REAL),),
        lp=Q(525300) / Q("5.0275"), bp=Q(105000), tier=2, mmr="0.005", amount="300", taker_fee="0.0005",
    ),
    # --------------------------------------------------------------------------- family × side, cross
    Example(
        "binance-cross-long", HAND + ": real tiers; ETH other MM at mark = 19,000·0.004 = 76 → "
        "C = 3,000 − 1,000 − 76 = 1,924; LP = (1,924 + 0 − 20,000)/(0.004 − 1) = 18,076/0.996 ≈ 18,148.59; "
        "BP = 20,000 − (3,000 − 1,000) = 18,000",
        "binance", CROSS, "3000", (leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL), _eth_other(ETH_REAL)),
        lp=Q(18076) / Q("0.996"), bp=Q(18000), tier=1, mmr="0.004", amount="0", target="BTCUSDT",
    ),
    Example(
        "binance-cross-short", HAND + ": LP = (1,924 + 20,000)/(0.004 + 1) = 21,924/1.004 ≈ 21,836.65; BP = 22,000",
        "binance", CROSS, "3000", (leg("BTCUSDT", SHORT, "1", "20000", "20000", BTC_REAL), _eth_other(ETH_REAL)),
        lp=Q(21924) / Q("1.004"), bp=Q(22000), tier=1, mmr="0.004", amount="0", target="BTCUSDT",
    ),
    Example(
        "bybit-cross-long", HAND + ": MM at entry; ETH other MM = 20,000·0.01 = 200 → C = 3,000 − 1,000 − 200 = 1,800; "
        "1,800 + (P − 20,000) − 20,000·0.005 = 0 → P = 18,300; BP = 18,000",
        "bybit", CROSS, "3000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.005")), _eth_other(single("ETHUSDT", "0.01"))),
        lp=Q(18300), bp=Q(18000), tier=1, mmr="0.005", amount="0", target="BTCUSDT",
    ),
    Example(
        "bybit-cross-short", HAND + ": 1,800 − (P − 20,000) − 100 = 0 → P = 21,700; BP = 22,000",
        "bybit", CROSS, "3000",
        (leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.005")), _eth_other(single("ETHUSDT", "0.01"))),
        lp=Q(21700), bp=Q(22000), tier=1, mmr="0.005", amount="0", target="BTCUSDT",
    ),
    Example(
        "mexc-cross-long", HAND + ": ETH other MM = 20,000·0.005 = 100 → C = 1,900; target MM = 20,000·0.004 = 80; "
        "1,900 + (P − 20,000) − 80 = 0 → P = 18,180; BP = 18,000",
        "mexc", CROSS, "3000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.004")), _eth_other(single("ETHUSDT", "0.005"))),
        lp=Q(18180), bp=Q(18000), tier=1, mmr="0.004", amount="0", target="BTCUSDT",
    ),
    Example(
        "mexc-cross-short", HAND + ": 1,900 − (P − 20,000) − 80 = 0 → P = 21,820; BP = 22,000",
        "mexc", CROSS, "3000",
        (leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.004")), _eth_other(single("ETHUSDT", "0.005"))),
        lp=Q(21820), bp=Q(22000), tier=1, mmr="0.004", amount="0", target="BTCUSDT",
    ),
    Example(
        "okx-cross-long", HAND + ": ETH other at mark: MM 19,000·0.005 = 95, close fee 19,000·0.0005 = 9.5 → "
        "C = 3,000 − 1,000 − 104.5 = 1,895.5; 1,895.5 + (P − 20,000) − P·(0.004 + 0.0005) = 0 → "
        "P = 18,104.5/0.9955 ≈ 18,186.34; BP = 18,000",
        "okx", CROSS, "3000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.004")), _eth_other(single("ETHUSDT", "0.005"))),
        lp=Q("18104.5") / Q("0.9955"), bp=Q(18000), tier=1, mmr="0.004", amount="0", target="BTCUSDT", taker_fee="0.0005",
    ),
    Example(
        "okx-cross-short", HAND + ": 1,895.5 − (P − 20,000) − 0.0045P = 0 → P = 21,895.5/1.0045 ≈ 21,797.41; BP = 22,000",
        "okx", CROSS, "3000",
        (leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.004")), _eth_other(single("ETHUSDT", "0.005"))),
        lp=Q("21895.5") / Q("1.0045"), bp=Q(22000), tier=1, mmr="0.004", amount="0", target="BTCUSDT", taker_fee="0.0005",
    ),
    Example(
        "gate-cross-long", HAND + ": ETH other: 19,000·(0.01 + 0.00075) = 204.25 → C = 1,795.75; "
        "1,795.75 + (P − 20,000) − P·(0.005 + 0.00075) = 0 → P = 18,204.25/0.99425 ≈ 18,309.53; BP = 18,000",
        "gate", CROSS, "3000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.005")), _eth_other(single("ETHUSDT", "0.01"))),
        lp=Q("18204.25") / Q("0.99425"), bp=Q(18000), tier=1, mmr="0.005", amount="0", target="BTCUSDT",
        taker_fee="0.00075",
    ),
    Example(
        "gate-cross-short", HAND + ": 1,795.75 − (P − 20,000) − 0.00575P = 0 → P = 21,795.75/1.00575 ≈ 21,671.14; BP = 22,000",
        "gate", CROSS, "3000",
        (leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.005")), _eth_other(single("ETHUSDT", "0.01"))),
        lp=Q("21795.75") / Q("1.00575"), bp=Q(22000), tier=1, mmr="0.005", amount="0", target="BTCUSDT",
        taker_fee="0.00075",
    ),
    Example(
        "generic-cross-long", HAND + ": real tiers; ETH other: 19,000·0.004 + 19,000·0.0005 = 85.5 → C = 1,914.5; "
        "1,914.5 + (P − 20,000) − 0.0045P = 0 → P = 18,085.5/0.9955 ≈ 18,167.25; BP = 18,000",
        "generic", CROSS, "3000", (leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL), _eth_other(ETH_REAL)),
        lp=Q("18085.5") / Q("0.9955"), bp=Q(18000), tier=1, mmr="0.004", amount="0", target="BTCUSDT", taker_fee="0.0005",
    ),
    Example(
        "generic-cross-short", HAND + ": 1,914.5 − (P − 20,000) − 0.0045P = 0 → P = 21,914.5/1.0045 ≈ 21,816.33; BP = 22,000",
        "generic", CROSS, "3000", (leg("BTCUSDT", SHORT, "1", "20000", "20000", BTC_REAL), _eth_other(ETH_REAL)),
        lp=Q("21914.5") / Q("1.0045"), bp=Q(22000), tier=1, mmr="0.004", amount="0", target="BTCUSDT", taker_fee="0.0005",
    ),
    # ---------------------------------------------------------------------- cross with several symbols
    Example(
        "binance-cross-three-symbols", HAND + ": real tiers; others ETH long 10 @ 2,000 (mark 1,900: U −1,000, MM 76) and "
        "SOL short 100 @ 150 (mark 160: U = −100·10 = −1,000, MM = 16,000·0.005 = 80); WB 5,000 → "
        "C = 5,000 − 2,000 − 156 = 2,844; LP = (2,844 − 20,000)/(0.004 − 1) = 17,156/0.996 ≈ 17,224.90; "
        "BP = 20,000 − (5,000 − 2,000) = 17,000",
        "binance", CROSS, "5000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL), _eth_other(ETH_REAL),
         leg("SOLUSDT", SHORT, "100", "150", "160", SOL_REAL)),
        lp=Q(17156) / Q("0.996"), bp=Q(17000), tier=1, mmr="0.004", amount="0", target="BTCUSDT",
    ),
    # ------------------------------------------------------------------------------------ hedge mode
    Example(
        "binance-hedge-cross", HAND + " (Binance hedge-mode formula): BTC long 2 @ 20,000 + short 1 @ 21,000, WB 2,000: "
        "LP = (2,000 + 0 + 0 − 2·20,000 + 1·21,000)/(2·0.004 + 1·0.004 − 2 + 1) = −17,000/−0.988 ≈ 17,206.48 "
        "(leg notionals ≈ 34k and 17k: tier 1); BP = (40,000 − 21,000 − 2,000)/(2 − 1) = 17,000",
        "binance", CROSS, "2000",
        (leg("BTCUSDT", LONG, "2", "20000", "20500", BTC_REAL), leg("BTCUSDT", SHORT, "1", "21000", "20500", BTC_REAL)),
        lp=Q(17000) / Q("0.988"), bp=Q(17000), tier=1, mmr="0.004", amount="0",
    ),
    Example(
        "mexc-hedge-cross", HAND + ": MM at entry 40,000·0.004 + 21,000·0.004 = 244; "
        "2,000 + 2(P − 20,000) − (P − 21,000) − 244 = P − 17,244 = 0 → LP 17,244; BP 17,000",
        "mexc", CROSS, "2000",
        (leg("BTCUSDT", LONG, "2", "20000", "20500", single("BTCUSDT", "0.004")),
         leg("BTCUSDT", SHORT, "1", "21000", "20500", single("BTCUSDT", "0.004"))),
        lp=Q(17244), bp=Q(17000), tier=1, mmr="0.004", amount="0",
    ),
    Example(
        "binance-hedge-isolated-short-leg", HAND + ": isolated, the short leg of a hedged pair alone: 1 BTC short @ 21,000, "
        "PM 2,100: LP = (2,100 + 21,000)/(1.004) ≈ 23,007.97; BP = 23,100",
        "binance", ISO, "2100",
        (leg("BTCUSDT", LONG, "2", "20000", "20500", BTC_REAL), leg("BTCUSDT", SHORT, "1", "21000", "20500", BTC_REAL)),
        lp=Q(23100) / Q("1.004"), bp=Q(23100), tier=1, mmr="0.004", amount="0", target_side=SHORT,
    ),
    # --------------------------------------------------------------------------- no liquidation price
    Example(
        "binance-isolated-long-fully-margined", HAND + ": 1 BTC @ 20,000 with PM 20,000: LP = (20,000 − 20,000)/(0.004 − 1) "
        "= 0 → none; BP = 0 → none",
        "binance", ISO, "20000", (leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL),),
        lp=None, bp=None, tier=1, mmr="0.004", amount="0",
    ),
    Example(
        "binance-isolated-long-over-collateralized", HAND + ": PM 25,000: LP = −5,000/−0.996 < 0 → none; BP −5,000 → none",
        "binance", ISO, "25000", (leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL),),
        lp=None, bp=None,
    ),
    Example(
        "binance-cross-long-over-collateralized", HAND + ": WB 25,000, ETH other (U −1,000, MM 76): C = 23,924 > 20,000 → "
        "LP = (23,924 − 20,000)/(−0.996) < 0 → none; BP = 20,000 − 24,000 < 0 → none",
        "binance", CROSS, "25000", (leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL), _eth_other(ETH_REAL)),
        lp=None, bp=None, target="BTCUSDT",
    ),
    Example(
        "okx-isolated-long-over-collateralized", HAND + ": PM 21,000 > q·E → E − PM/q = −1,000 → LP < 0 → none",
        "okx", ISO, "21000", (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.004")),),
        lp=None, bp=None, taker_fee="0.0005",
    ),
    Example(
        "mexc-fully-hedged", HAND + ": long 1 + short 1 @ 20,000, MM at entry is constant: f(P) = 1,000 − 160 ≠ 0 for every P "
        "→ none; net size 0 → no BP",
        "mexc", CROSS, "1000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.004")),
         leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.004"))),
        lp=None, bp=None,
    ),
    Example(
        "bybit-fully-hedged", HAND + ": as mexc, MM at entry is constant → no LP, no BP",
        "bybit", CROSS, "1000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.005")),
         leg("BTCUSDT", SHORT, "1", "20000", "20000", single("BTCUSDT", "0.005"))),
        lp=None, bp=None,
    ),
    Example(
        "binance-fully-hedged-mm-grows-with-price", HAND + " (Binance hedge formula): long 1 + short 1 @ 20,000, WB 1,000: "
        "PnL cancels but MM at price grows: LP = (1,000 + 0 + 0 − 20,000 + 20,000)/(0.004 + 0.004 − 1 + 1) = 125,000 "
        "(notional 125k: tier 1); net size 0 → no BP",
        "binance", CROSS, "1000",
        (leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL), leg("BTCUSDT", SHORT, "1", "20000", "20000", BTC_REAL)),
        lp=Q(125000), bp=None, tier=1, mmr="0.004", amount="0",
    ),
    # ---------------------------------------------------------- tier re-check on the real BTCUSDT tiers
    Example(
        "binance-recheck-long-tier3-to-tier2", HAND + ": 10 BTC @ 100,000: notional 1,000,000 at mark = tier 3 "
        "(0.65 %, cum 1,500). Tier 3 candidate (253,450 + 1,500 − 1,000,000)/(0.065 − 10) = 745,050/9.935 ≈ 74,992.45 → "
        "notional ≈ 749,924 < 800k: not in tier 3. Tier 2 (0.5 %, cum 300): (253,450 + 300 − 1,000,000)/(0.05 − 10) = "
        "746,250/9.95 = 75,000 → notional 750,000 ∈ [300k, 800k): consistent. BP = 100,000 − 25,345 = 74,655",
        "binance", ISO, "253450", (leg("BTCUSDT", LONG, "10", "100000", "100000", BTC_REAL),),
        lp=Q(75000), bp=Q(74655), tier=2, mmr="0.005", amount="300",
    ),
    Example(
        "binance-recheck-short-tier1-to-tier2", HAND + ": 3 BTC short @ 95,000: notional 285,000 = tier 1. Tier 1 candidate "
        "(46,350 + 285,000)/(3·1.004) ≈ 110,009.96 → notional ≈ 330,030 ≥ 300k: not tier 1. Tier 2: "
        "(46,350 + 300 + 285,000)/(3·1.005) = 331,650/3.015 = 110,000 → notional 330,000: consistent. BP = 95,000 + 15,450",
        "binance", ISO, "46350", (leg("BTCUSDT", SHORT, "3", "95000", "95000", BTC_REAL),),
        lp=Q(110000), bp=Q(110450), tier=2, mmr="0.005", amount="300",
    ),
    Example(
        "binance-recheck-lp-exactly-on-a-floor", HAND + ": 10 BTC @ 100,000, PM 203,700: at P = 80,000 notional is exactly "
        "800,000 (tier 3 floor, inclusive); equity 203,700 − 200,000 = 3,700 = 800,000·0.0065 − 1,500 = 800,000·0.005 − 300 "
        "(continuity) → LP 80,000 reported in tier 3; BP = 100,000 − 20,370 = 79,630",
        "binance", ISO, "203700", (leg("BTCUSDT", LONG, "10", "100000", "100000", BTC_REAL),),
        lp=Q(80000), bp=Q(79630), tier=3, mmr="0.0065", amount="1500",
    ),
    Example(
        "binance-recheck-cross", HAND + ": the tier-3→2 long in cross with the ETH other (C = WB − 1,000 − 76): "
        "WB 254,526 → C = 253,450 → LP 75,000 in tier 2; BP = 100,000 − (254,526 − 1,000)/10 = 74,647.4",
        "binance", CROSS, "254526", (leg("BTCUSDT", LONG, "10", "100000", "100000", BTC_REAL), _eth_other(ETH_REAL)),
        lp=Q(75000), bp=Q("74647.4"), tier=2, mmr="0.005", amount="300", target="BTCUSDT",
    ),
    Example(
        "generic-recheck-long", HAND + ": 10 BTC @ 100,000, taker 0.05 %: at P = 75,000 (tier 2) "
        "PM = 750,000·0.0055 − 300 − 10·(75,000 − 100,000) = 253,825 → LP 75,000, tier 2; BP = 100,000 − 25,382.5",
        "generic", ISO, "253825", (leg("BTCUSDT", LONG, "10", "100000", "100000", BTC_REAL),),
        lp=Q(75000), bp=Q("74617.5"), tier=2, mmr="0.005", amount="300", taker_fee="0.0005",
    ),
]


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_liquidation_example(ex: Example):
    assert ex.source, "every row cites its source"
    family = get_family(ex.family)
    result = liquidation_price(
        family, ex.mode, D(ex.wallet), list(ex.legs),
        target=ex.target, target_side=ex.target_side, taker_fee=D(ex.taker_fee),
    )
    assert result.liquidation_price == ex.lp
    assert result.bankruptcy_price == ex.bp
    if ex.tier is not None:
        assert result.tier.tier == ex.tier
        assert result.mmr == D(ex.mmr)
        assert result.maintenance_amount == D(ex.amount)
    if ex.published_lp is not None:
        assert round_price(result.liquidation_price, D("0.01"), Rounding.HALF_UP) == D(ex.published_lp)
    mark = Fraction(result.mark_price)
    if ex.lp is None:
        assert result.distance_pct is None
        assert any("no liquidation price" in note for note in result.notes)
    else:
        assert result.distance_pct == abs(mark - ex.lp) / mark * 100
        # the trigger holds exactly at the LP: margin balance == maintenance requirement
        equity, maintenance = margin_balance(
            family, ex.mode, D(ex.wallet), list(ex.legs), ex.lp,
            target=ex.target, target_side=ex.target_side, taker_fee=D(ex.taker_fee),
        )
        assert equity == maintenance
        if family.tier_recheck:
            # tier reported is the one of the notional at the LP
            targets = [p for p in ex.legs if p.symbol == result.symbol]
            primary = next((t for t in targets if t.side is ex.target_side), targets[0])
            assert result.tier == primary.tiers.tier_for_notional_clamped(Fraction(primary.size) * ex.lp)


def test_examples_cover_every_family_side_and_mode():
    seen = set()
    for ex in EXAMPLES:
        targets = [p for p in ex.legs if p.symbol == (ex.target or ex.legs[0].symbol)]
        if len(targets) == 1 and ex.lp is not None:
            seen.add((ex.family, targets[0].side, ex.mode))
    for family in ("binance", "bybit", "okx", "gate", "mexc", "generic"):
        for side in (LONG, SHORT):
            for mode in (ISO, CROSS):
                assert (family, side, mode) in seen, (family, side, mode)


# -------------------------------------------------------------------- the pieces of the worked examples


def test_spec_bybit_example_margins():
    # SPEC §2: 1 BTC long @ 20,000, 50×, mmr 0.5 % → IM 400, MM 100
    assert initial_margin(D(1), D(20000), D(50)) == 400
    assert maintenance_margin(notional(D(1), D(20000)), TierTable.single("BTCUSDT", "0.005")) == 100


def test_spec_mexc_example_margins():
    # SPEC §2: 0.1 BTC long @ 50,000, 25×, mmr 0.4 % → MM 20, PM 200
    assert initial_margin(D("0.1"), D(50000), D(25)) == 200
    assert maintenance_margin(notional(D("0.1"), D(50000)), TierTable.single("BTCUSDT", "0.004")) == 20


def test_pionex_maintenance_margin_with_deduction():
    # pionex.com/blog/maintenance-margin: 10 BTC @ 20,000 → 200,000 in tier 2 → MM = 200,000·1 % − 750 = 1,250
    assert maintenance_margin(Fraction(200000), BTC_PIONEX) == 1250


def test_binance_faq_other_position_terms():
    # Binance FAQ example: TMM1 = 71,200.81144 and UPNL1 = −56,354.57 for the BTC leg (published, rounded)
    assert round_price(_TMM_BTC, D("0.00001"), Rounding.HALF_UP) == D("71200.81144")
    assert round_price(_UPNL_BTC, D("0.01"), Rounding.HALF_UP) == D("-56354.57")
    binance = get_family("binance")
    assert binance.maintenance(BN_BTC, Fraction(BN_BTC.mark_price)) == _TMM_BTC
    assert unrealized_pnl(1, BN_BTC.size, BN_BTC.entry_price, BN_BTC.mark_price) == _UPNL_BTC
    # C = WB − TMM1 + UPNL1
    assert fixed_balance(binance, CROSS, D(BN_WB), [BN_BTC], Fraction(0)) == Q(BN_WB) - _TMM_BTC + _UPNL_BTC
    # the isolated C ignores the other positions
    assert fixed_balance(binance, ISO, D(BN_WB), [BN_BTC], Fraction(0)) == Q(BN_WB)


def test_binance_faq_eth_entry_tier_differs_from_lp_tier():
    # the re-check matters in the FAQ example: at entry the ETH notional is in the 12.5 % tier, at the LP in 10 %
    assert ETH_2021.tier_for_notional(D("3683.979") * D("1456.84")).mmr == D("0.125")
    result = liquidation_price(get_family("binance"), CROSS, D(BN_WB), [BN_BTC, BN_ETH], target="ETHUSDT")
    assert result.mmr == D("0.1")


def test_recheck_naive_mark_tier_would_be_inconsistent():
    # binance-recheck-long-tier3-to-tier2: the candidate from the tier at mark lies outside that tier
    t3 = BTC_REAL.tiers[2]
    candidate = (Q(253450) + Fraction(t3.maintenance_amount) - 10 * Q(100000)) / (10 * Fraction(t3.mmr) - 10)
    assert candidate == Q(745050) / Q("9.935")
    assert 10 * candidate < Fraction(t3.floor)  # its notional ≈ 749,924 lies below tier 3's floor of 800,000
    assert BTC_REAL.tier_for_notional(D(1000000)).tier == 3


def test_reported_figures_at_mark_bybit_spec():
    result = liquidation_price(
        get_family("bybit"), ISO, D(400), [leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.005"))]
    )
    assert result.equity == 400 and result.maintenance_margin == 100
    assert not result.already_liquidatable
    assert result.side is LONG and result.symbol == "BTCUSDT"
    assert result.distance_pct == Q("1.5")  # |20,000 − 19,700| / 20,000 · 100
    assert margin_ratio(result.maintenance_margin, result.equity) == Q(1, 4)


def test_reported_cross_figures_include_the_other_positions():
    # binance-cross-long: equity = 3,000 + 0 − 1,000 = 2,000; MM = 20,000·0.004 + 76 = 156
    result = liquidation_price(
        get_family("binance"), CROSS, D(3000),
        [leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL), _eth_other(ETH_REAL)], target="BTCUSDT",
    )
    assert result.equity == 2000
    assert result.maintenance_margin == 156
    assert not result.already_liquidatable


def test_already_liquidatable_when_margin_below_mm():
    # 1 BTC long @ 20,000 marked at 19,750 with PM 300 (bybit MM 100): equity 300 − 250 = 50 ≤ 100
    result = liquidation_price(
        get_family("bybit"), ISO, D(300), [leg("BTCUSDT", LONG, "1", "20000", "19750", single("BTCUSDT", "0.005"))]
    )
    assert result.already_liquidatable
    assert result.liquidation_price == 19800  # 20,000 − (300 − 100)
    assert result.equity == 50
    assert is_liquidatable(result.equity, result.maintenance_margin)
    assert not is_liquidatable(101, 100) and is_liquidatable(100, 100)


def test_taker_fee_ignored_by_families_without_it_is_noted():
    result = liquidation_price(
        get_family("bybit"), ISO, D(400), [leg("BTCUSDT", LONG, "1", "20000", "20000", single("BTCUSDT", "0.005"))],
        taker_fee=D("0.0005"),
    )
    assert result.liquidation_price == 19700
    assert any("taker_fee" in note for note in result.notes)


def test_distance_and_margin_ratio_edges():
    assert distance_pct(D(20000), None) is None
    assert distance_pct(D(20000), D(20000)) == 0
    assert distance_pct(D(20000), D(21000)) == 5
    assert margin_ratio(100, 0) is None
    assert margin_ratio(100, -5) is None


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("tiers", [single("BTCUSDT", "0.005"), BTC_REAL], ids=["one-tier", "real-tiers"])
def test_zero_size_refused(tiers):
    with pytest.raises(ValidationError) as info:
        position = leg("BTCUSDT", LONG, "0", "20000", "20000", tiers)
        liquidation_price(get_family("binance"), ISO, D(400), [position])
    assert "size" in info.value.field


def test_zero_mark_price_refused():
    with pytest.raises(ValidationError) as info:
        position = leg("BTCUSDT", LONG, "1", "20000", "0", single("BTCUSDT", "0.005"))
        liquidation_price(get_family("bybit"), ISO, D(400), [position])
    assert "mark" in info.value.field


def test_selection_refusals():
    btc_long = leg("BTCUSDT", LONG, "1", "20000", "20000", BTC_REAL)
    btc_short = leg("BTCUSDT", SHORT, "1", "20000", "20000", BTC_REAL)
    eth = _eth_other(ETH_REAL)
    binance = get_family("binance")
    cases = [
        (dict(margin_mode=CROSS, positions=[]), "positions"),
        (dict(margin_mode=CROSS, positions=[btc_long, eth]), "target"),  # several symbols, no target
        (dict(margin_mode=CROSS, positions=[btc_long], target="ETHUSDT"), "target"),
        (dict(margin_mode=CROSS, positions=[btc_long, btc_long]), "positions"),  # same side twice
        (dict(margin_mode=ISO, positions=[btc_long, btc_short]), "target_side"),  # hedged, isolated, no side
        (dict(margin_mode=ISO, positions=[btc_long], target_side=SHORT), "target_side"),
        (dict(margin_mode=CROSS, positions=[btc_long], target_side=SHORT), "target_side"),
    ]
    for kwargs, field in cases:
        mode = kwargs.pop("margin_mode")
        positions = kwargs.pop("positions")
        with pytest.raises(ValidationError) as info:
            liquidation_price(binance, mode, D(1000), positions, **kwargs)
        assert info.value.field == field, (mode, kwargs)
    with pytest.raises(ValidationError) as info:
        get_family("ftx")
    assert info.value.field == "family"
    assert get_family(" Binance ") is get_family("binance")
