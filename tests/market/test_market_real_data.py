"""Real data (data/MANIFEST.md): Binance USDⓈ-M BTCUSDT 8-hour funding rates and mark prices 2025-09/10,
a Binance futures BTCUSDT book snapshot (2020-09-01) and the Binance leverage brackets.

What the published rates show about the rules implemented in perprisk.market.funding:
- every rate lies within the default cap/floor (±3 %, Instrument/FundingRateRule default);
- every rate has at most 8 decimal places (Binance publishes "0.00010000"), so rounding to 8 places is
  the identity on them;
- in 2025-10 twelve rates equal 0.0001 exactly: the clamp plateau, F = I whenever |I − P̄| ≤ 0.05 %;
- every published rate is reproduced by the formula from some average premium (the formula's range covers
  the data: F > I ⇔ P̄ = F + 0.0005, F < I ⇔ P̄ = F − 0.0005);
- funding times are on the 8-hour grid anchored at 00:00 UTC (timestamps carry a few ms of jitter).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from perprisk.instrument import load_tier_table
from perprisk.market.funding import FundingRateRule, funding_payment, funding_rate
from perprisk.market.impact import impact_margin_notional, impact_price, impact_prices
from perprisk.market.schedule import FundingSchedule
from perprisk.money import Rounding, quantize, round_price
from perprisk.paths import BINANCE_TIERS_FILE, DATA_DIR

FUNDING_FILE = DATA_DIR / "binance_um" / "BTC_USDT_USDT-8h-funding_rate.json"
MARK_FILE = DATA_DIR / "binance_um" / "BTC_USDT_USDT-8h-mark.json"
BOOK_FILE = DATA_DIR / "orderbook" / "binance-futures_book_snapshot_25_BTCUSDT.csv"
I = Decimal("0.0001")


def _rows(path):
    if not path.exists():
        pytest.skip(f"{path} not shipped")
    return json.loads(path.read_text(), parse_float=Decimal)


@pytest.fixture(scope="module")
def rates() -> list[tuple[int, Decimal]]:
    return [(int(r[0]), r[1]) for r in _rows(FUNDING_FILE)]


@pytest.fixture(scope="module")
def marks() -> dict[int, Decimal]:
    # freqtrade mark candles [ms, open, high, low, close, volume]: the open is the mark at the funding time
    return {int(r[0]): r[1] for r in _rows(MARK_FILE)}


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def test_file_shape(rates):
    assert len(rates) == 115
    assert all(isinstance(v, Decimal) for _, v in rates)


def test_every_rate_within_default_cap_and_floor(rates):
    rule = FundingRateRule()  # ±3 %, the Instrument default and Binance's adjustedFundingRateCap for many symbols
    assert all(rule.floor <= v <= rule.cap for _, v in rates)
    lo, hi = min(v for _, v in rates), max(v for _, v in rates)
    assert (lo, hi) == (Decimal("-0.00010915"), Decimal("0.0001"))  # 2025-10-12 16:00 and the plateau


def test_every_rate_has_at_most_8_decimals(rates):
    step = FundingRateRule().step
    assert all(quantize(v, step, Rounding.HALF_EVEN) == v for _, v in rates)


def test_october_2025_rates_at_the_clamp_plateau(rates):
    october = [(t, v) for t, v in rates if _utc(t).strftime("%Y-%m") == "2025-10"]
    plateau = [_utc(t).strftime("%m-%d %H:%M") for t, v in october if v == I]
    assert len(plateau) == 12
    assert "10-11 00:00" in plateau and "10-11 08:00" in plateau  # the two fundings after the 10-10 crash
    # any average premium within ±0.05 % of I gives exactly I:
    for premium in ("-0.0004", "0", "0.0001", "0.00059999", "0.0006"):
        assert funding_rate(premium).value == I


def test_every_published_rate_is_reproduced_by_the_formula(rates):
    band = Decimal("0.0005")
    for t, v in rates:
        implied_premium = v if v == I else (v + band if v > I else v - band)
        assert funding_rate(implied_premium).value == v, _utc(t)


def test_funding_times_on_the_8h_grid(rates):
    schedule = FundingSchedule(8)  # 00:00, 08:00, 16:00 UTC
    times = [schedule.previous_funding_ms(t) for t, _ in rates]
    assert all(0 <= t - f < 1000 for (t, _), f in zip(rates, times))  # a few ms of publication jitter
    assert all(b - a == schedule.interval_ms for a, b in zip(times, times[1:]))  # none missing


def test_real_funding_payment_after_the_crash(rates, marks):
    # 2025-10-11 00:00 UTC: F = 0.0001, mark 112,716.8 → 1 BTC long pays 112,716.8 · 0.0001 = 11.27168
    t = 1_760_140_800_000
    rate = dict((FundingSchedule(8).previous_funding_ms(ms), v) for ms, v in rates)[t]
    assert rate == I and marks[t] == Decimal("112716.8")
    assert funding_payment(+1, "1", marks[t], rate) == Decimal("-11.27168")
    assert funding_payment(-1, "1", marks[t], rate) == Decimal("11.27168")


def test_real_series_payments_cancel_between_long_and_short(rates, marks):
    schedule = FundingSchedule(8)
    long_total = short_total = Decimal(0)
    matched = 0
    for ms, rate in rates:
        mark = marks.get(schedule.previous_funding_ms(ms))
        if mark is None:
            continue
        matched += 1
        long_total += funding_payment(+1, "0.5", mark, rate)
        short_total += funding_payment(-1, "0.5", mark, rate)
    assert matched == len(rates)
    assert long_total + short_total == 0
    assert long_total < 0  # over 2025-09-19 → 10-27 BTCUSDT longs paid on balance


def _first_book():
    if not BOOK_FILE.exists():
        pytest.skip(f"{BOOK_FILE} not shipped")
    with BOOK_FILE.open(newline="") as f:
        row = next(csv.DictReader(f))
    asks = [(row[f"asks[{i}].price"], row[f"asks[{i}].amount"]) for i in range(25)]
    bids = [(row[f"bids[{i}].price"], row[f"bids[{i}].amount"]) for i in range(25)]
    return bids, asks


def test_impact_prices_on_a_real_book():
    # IMN for BTCUSDT from the shipped Binance brackets: 200 USDT / (1/150) = 30,000 USDT
    # (current brackets applied to a 2020 book: an illustration of the walk, not a historical figure)
    max_leverage = load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT").tiers[0].max_leverage
    imn = impact_margin_notional(Fraction(1) / Fraction(max_leverage))
    assert imn == Decimal(30_000)
    bids, asks = _first_book()
    assert bids[0] == ("11657.07", "10.896") and asks[0] == ("11657.08", "1.714")
    prices = impact_prices(bids, asks, imn)
    # bid side: the best level holds 10.896 · 11,657.07 ≈ 127,016 USDT ≥ 30,000 → impact bid = best bid
    assert prices.bid == Fraction(Decimal("11657.07"))
    # ask side: 1.714 · 11,657.08 = 19,980.23512 at the best ask; the remaining 10,019.76488 USDT buys
    # 10,019.76488 / 11,657.54 BTC at the second level; impact ask = 30,000 / (1.714 + 10,019.76488 / 11,657.54)
    D = lambda s: Fraction(Decimal(s))  # noqa: E731
    expected = D("30000") / (D("1.714") + D("10019.76488") / D("11657.54"))
    assert prices.ask == expected
    assert D("11657.08") < prices.ask < D("11657.54")
    assert round_price(prices.ask, Decimal("0.0001"), Rounding.HALF_EVEN) == Decimal("11657.2336")
    # a notional the 25 ask levels cannot fill → no impact price
    depth = sum(Decimal(p) * Decimal(q) for p, q in asks)
    assert impact_price(asks, depth, "ask") is not None
    assert impact_price(asks, depth + Decimal("0.01"), "ask") is None
