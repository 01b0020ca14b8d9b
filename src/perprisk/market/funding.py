"""Funding: premium index, its average over the interval, the funding rate, and funding payments (SPEC §2).

Formulas (Binance "Introduction to Binance Futures Funding Rates", binance.com/en/support/faq/360033525031,
as quoted by gate.io/futures/introduction/funding-rate-history and BitMEX; SPEC §2):

- premium ``P = [max(0, impact_bid − index) − max(0, index − impact_ask)] / index``
  (impact prices: :mod:`perprisk.market.impact`);
- the premium is sampled through the interval (Binance: every 5 s, 5,760 samples per 8 h) and averaged.
  Two named averages: :class:`SimpleAverage` (``"simple"``, **the default**: ``ΣPᵢ / n``) and
  :class:`LinearWeightedAverage` (``"linear_weighted"``, Binance: ``Σ i·Pᵢ / Σ i`` with weights ``1..n``, so
  the latest sample weighs most);
- 8-hour rate ``F₈ = P̄ + clamp(I − P̄, −0.05 %, +0.05 %)`` with interest ``I = 0.01 %`` per 8 h: when
  ``|I − P̄| ≤ 0.05 %`` the rate is exactly ``I``;
- other intervals of N hours scale the whole 8-hour rate: ``F = F₈ · N / 8`` (Binance formula in force since
  2025-09-18: ``F = [P + clamp(I − P, 0.05 %, −0.05 %)] / (8/N)``);
- then the market's cap/floor: ``F = clamp(F, floor, cap)`` (Binance ``adjustedFundingRateCap/Floor``,
  e.g. ±3 % = the Instrument default; historically ``±0.75 × maintenance margin rate``);
- then the published rate is rounded to ``decimals`` places with a named mode (Binance publishes 8 decimal
  places: ``"0.00010000"``; its rounding mode is not published, half-even is the default here).

Payment at a funding time: ``funding_payment(s, q, M, F) = −s·q·M·F`` is what the position is *credited*
(negative = it pays): longs pay shorts when ``F > 0``.  Exact Decimal; over a market with
``Σ long size = Σ short size`` the payments sum to exactly zero.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar, Iterable, Mapping, Protocol, Sequence

from perprisk.errors import ValidationError
from perprisk.market._exact import clamp, exact
from perprisk.money import (
    EXACT_CONTEXT,
    FRACTION_TYPES,
    ZERO,
    Fraction,
    Rounding,
    exact_product,
    fraction_to_decimal,
    is_multiple_of,
    quantize,
    to_decimal,
)

#: Binance/BitMEX defaults, per 8 hours.
DEFAULT_INTEREST_RATE_8H = Decimal("0.0001")  # 0.01 %
DEFAULT_CLAMP_BAND_8H = Decimal("0.0005")  # ±0.05 %
#: Binance publishes funding rates with 8 decimal places.
DEFAULT_RATE_DECIMALS = 8
REFERENCE_INTERVAL_HOURS = 8


# ------------------------------------------------------------------------------------------- premium


def premium_index(impact_bid: object, impact_ask: object, index: object) -> Fraction:
    """``[max(0, impact_bid − index) − max(0, index − impact_ask)] / index``, exact."""
    bid = exact(impact_bid, "impact_bid", positive=True)
    ask = exact(impact_ask, "impact_ask", positive=True)
    idx = exact(index, "index", positive=True)
    return (max(Fraction(0), bid - idx) - max(Fraction(0), idx - ask)) / idx


class PremiumAverage(Protocol):
    """How the premium samples of one funding interval are averaged."""

    name: ClassVar[str]

    def average(self, samples: Sequence[Fraction]) -> Fraction: ...


@dataclass(frozen=True)
class SimpleAverage:
    """``ΣPᵢ / n`` — every sample weighs the same (the default)."""

    name: ClassVar[str] = "simple"

    def average(self, samples: Sequence[Fraction]) -> Fraction:
        _require_samples(samples)
        return sum(samples, Fraction(0)) / len(samples)


@dataclass(frozen=True)
class LinearWeightedAverage:
    """Binance: ``(1·P₁ + 2·P₂ + … + n·Pₙ) / (1 + 2 + … + n)`` — later samples weigh more."""

    name: ClassVar[str] = "linear_weighted"

    def average(self, samples: Sequence[Fraction]) -> Fraction:
        _require_samples(samples)
        n = len(samples)
        return sum((i * p for i, p in enumerate(samples, start=1)), Fraction(0)) / Fraction(n * (n + 1), 2)


def _require_samples(samples: Sequence[Fraction]) -> None:
    if not samples:
        raise ValidationError("samples", "no premium samples in this funding interval")


PREMIUM_AVERAGES: Mapping[str, PremiumAverage] = MappingProxyType(
    {SimpleAverage.name: SimpleAverage(), LinearWeightedAverage.name: LinearWeightedAverage()}
)


def premium_average(method: str | PremiumAverage) -> PremiumAverage:
    """The averaging named ``method`` (``"simple"`` or ``"linear_weighted"``), or ``method`` itself."""
    if isinstance(method, str):
        try:
            return PREMIUM_AVERAGES[method]
        except KeyError:
            raise ValidationError(
                "averaging", f"unknown premium averaging {method!r} (known: {sorted(PREMIUM_AVERAGES)})"
            ) from None
    if not hasattr(method, "average"):
        raise ValidationError(
            "averaging", f"expected an averaging name or object, got {type(method).__name__}"
        )
    return method


class PremiumAccumulator:
    """The premium samples of the current funding interval (stateful; one per market).

    The caller samples on its own clock (Binance: every 5 s) and closes the interval at each funding time.
    """

    def __init__(self, averaging: str | PremiumAverage = "simple") -> None:
        self.averaging = premium_average(averaging)
        self._samples: list[Fraction] = []

    @property
    def samples(self) -> tuple[Fraction, ...]:
        return tuple(self._samples)

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, premium: object) -> Fraction:
        """Record one premium sample (a rate, e.g. ``"-0.0002"``)."""
        value = exact(premium, "premium")
        self._samples.append(value)
        return value

    def add_prices(self, impact_bid: object, impact_ask: object, index: object) -> Fraction:
        """Record the premium of these impact prices and index."""
        return self.add(premium_index(impact_bid, impact_ask, index))

    def average(self) -> Fraction:
        return self.averaging.average(self._samples)

    def reset(self) -> None:
        self._samples.clear()

    def close_interval(self, rule: "FundingRateRule") -> "FundingRate":
        """The funding rate of the samples so far under ``rule``; the samples are then cleared."""
        rate = funding_rate(self.average(), rule)
        self.reset()
        return rate


# ---------------------------------------------------------------------------------------------- rate


@dataclass(frozen=True)
class FundingRateRule:
    """Parameters of the funding-rate formula for one market.

    ``interest_rate_8h`` and ``clamp_band_8h`` are per 8 hours; ``interval_hours`` scales the 8-hour rate;
    ``cap``/``floor`` are per funding interval, as exchanges publish them, and must lie on the published
    grid (``decimals`` places).  ``rounding`` names how the published rate is rounded.
    """

    interval_hours: int = 8
    cap: Decimal = Decimal("0.03")
    floor: Decimal = Decimal("-0.03")
    interest_rate_8h: Decimal = DEFAULT_INTEREST_RATE_8H
    clamp_band_8h: Decimal = DEFAULT_CLAMP_BAND_8H
    decimals: int = DEFAULT_RATE_DECIMALS
    rounding: Rounding = Rounding.HALF_EVEN

    def __post_init__(self) -> None:
        hours = self.interval_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or hours <= 0:
            raise ValidationError("interval_hours", f"a positive integer number of hours, got {hours!r}")
        decimals = self.decimals
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 30:
            raise ValidationError(
                "decimals", f"an integer number of decimal places in [0, 30], got {decimals!r}"
            )
        if not isinstance(self.rounding, Rounding):
            raise ValidationError("rounding", f"expected a Rounding mode, got {self.rounding!r}")
        for name in ("cap", "floor", "interest_rate_8h", "clamp_band_8h"):
            raw = getattr(self, name)
            value = to_decimal(raw, name, non_negative=name == "clamp_band_8h")
            if isinstance(raw, FRACTION_TYPES) and Fraction(value) != raw:
                raise ValidationError(name, f"{raw} has no finite decimal expansion")
            object.__setattr__(self, name, value)
        if self.floor > self.cap:
            raise ValidationError("floor", f"must not exceed the cap ({self.floor} > {self.cap})")
        for name in ("cap", "floor"):
            if not is_multiple_of(getattr(self, name), self.step):
                raise ValidationError(
                    name, f"{getattr(self, name)} is not on the grid of {self.decimals} decimal places"
                )

    @property
    def step(self) -> Decimal:
        """The published grid: ``10^-decimals``."""
        return Decimal(1).scaleb(-self.decimals)

    @classmethod
    def for_instrument(cls, instrument: object, **options: object) -> "FundingRateRule":
        """The rule of an :class:`~perprisk.instrument.Instrument` (interval, cap, floor); options override."""
        values: dict[str, object] = {
            "interval_hours": getattr(instrument, "funding_interval_hours"),
            "cap": getattr(instrument, "funding_rate_cap"),
            "floor": getattr(instrument, "funding_rate_floor"),
        }
        values.update(options)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FundingRate:
    """A funding rate and the steps that produced it.

    ``value`` is the published rate (rounded); ``exact`` the capped rate before rounding; ``rate_8h`` the
    clamped 8-hour rate; ``scaled`` after interval scaling, before cap/floor; ``limited_by`` ``"cap"``,
    ``"floor"`` or ``None``.
    """

    value: Decimal
    exact: Fraction
    average_premium: Fraction
    rate_8h: Fraction
    scaled: Fraction
    limited_by: str | None


def funding_rate(average_premium: object, rule: FundingRateRule | None = None) -> FundingRate:
    """``F = clamp((P̄ + clamp(I − P̄, −b, b)) · N/8, floor, cap)``, rounded per ``rule``."""
    rule = rule or FundingRateRule()
    p = exact(average_premium, "average_premium")
    interest = Fraction(rule.interest_rate_8h)
    band = Fraction(rule.clamp_band_8h)
    rate_8h = p + clamp(interest - p, -band, band)
    scaled = rate_8h * Fraction(rule.interval_hours, REFERENCE_INTERVAL_HOURS)
    capped = clamp(scaled, Fraction(rule.floor), Fraction(rule.cap))
    limited_by = "cap" if scaled > Fraction(rule.cap) else "floor" if scaled < Fraction(rule.floor) else None
    return FundingRate(
        value=quantize(capped, rule.step, rule.rounding),
        exact=capped,
        average_premium=p,
        rate_8h=rate_8h,
        scaled=scaled,
        limited_by=limited_by,
    )


def funding_rate_from_samples(
    samples: Iterable[object], rule: FundingRateRule | None = None, averaging: str | PremiumAverage = "simple"
) -> FundingRate:
    """The funding rate of a whole interval's premium samples (averaged with ``averaging``)."""
    values = [exact(s, f"samples[{i}]") for i, s in enumerate(samples)]
    return funding_rate(premium_average(averaging).average(values), rule)


# ------------------------------------------------------------------------------------------- payment


def funding_payment(sign: int, size: object, mark: object, rate: object) -> Decimal:
    """``−s·q·M·F``: the amount credited to a position at a funding time (negative: the position pays).

    ``sign`` +1 long, −1 short; ``size`` > 0 in base units; ``mark`` > 0 the mark price at the funding time;
    ``rate`` the published funding rate.  Exact: a result without a finite decimal expansion (only possible
    when a non-decimal Fraction is passed) is refused rather than rounded.
    """
    if isinstance(sign, bool) or sign not in (1, -1):
        raise ValidationError("sign", f"must be +1 (long) or -1 (short), got {sign!r}")
    if type(size) is Decimal and type(mark) is Decimal and type(rate) is Decimal:
        # the engine's case: finite decimals multiply exactly (checked by the trapping context)
        if size.is_finite() and mark.is_finite() and rate.is_finite() and size > 0 and mark > 0:
            product = exact_product(size, mark, rate)
            if product is not None:
                result = product.copy_negate() if sign > 0 else product  # exact: no context involved
                return result if result else ZERO  # no negative zero
    q = exact(size, "size", positive=True)
    m = exact(mark, "mark", positive=True)
    f = exact(rate, "rate")
    amount = -sign * q * m * f
    result = fraction_to_decimal(amount)
    if Fraction(result) != amount:
        raise ValidationError(
            "rate", f"the payment {amount} has no finite decimal expansion; pass decimal inputs"
        )
    return result


def funding_credits(sizes: Sequence[object], mark: object, rate: object) -> list[Decimal]:
    """:func:`funding_payment` of many positions at one funding time: ``sizes`` signed (long > 0), the credits
    in order — the same Decimals as ``funding_payment(sign, |size|, mark, rate)`` one by one (digits and
    exponent: an exact product does not depend on the order of its factors), computed as ``size × (−M·F)``
    with ``M·F`` once.  Anything but finite non-zero Decimal sizes, a positive Decimal mark and a Decimal rate
    (or a product beyond the exact context) goes through :func:`funding_payment`, which also refuses bad input."""
    if type(mark) is Decimal and type(rate) is Decimal and mark.is_finite() and rate.is_finite() and mark > 0:
        multiply = EXACT_CONTEXT.multiply
        try:
            per_size = multiply(mark, rate).copy_negate()  # −M·F: a long (size > 0) pays when F > 0
            credits = []
            for size in sizes:
                if type(size) is not Decimal or not size.is_finite() or not size:
                    break
                credit = multiply(size, per_size)
                credits.append(credit if credit else ZERO)  # no negative zero
            else:
                return credits
        except decimal.Inexact:
            pass
    return [funding_payment(1 if size > 0 else -1, abs(size), mark, rate) for size in sizes]  # type: ignore[operator]
