"""Mark (fair) price: the manipulation-resistant price that triggers liquidation (SPEC §2, seed 004).

Two named methods (strategies), chosen per market:

- ``"fair"`` (:class:`FairPriceMethod`, MEXC "Index Price, Fair Price and Latest Transaction Price",
  blog.mexc.com; BitMEX fair-price marking): ``fair = index · (1 + F · t_to_funding / funding_interval)``,
  with ``F`` the current (last) funding rate and ``t_to_funding`` the time until the next funding.
- ``"median3"`` (:class:`Median3Method`, Binance "Mark Price" FAQ,
  binance.com/en/support/faq/fff6ec1b3f5845d19f1fb924644a0877):
  ``median(P1, P2, last)`` with ``P1`` the fair price above and ``P2 = index + MA(mid − index)``, the
  moving average of the basis ``(best_bid + best_ask)/2 − index`` over the last ``basis_window`` samples.
  Binance takes 30 samples (one per second since 2025-09-18, formerly one per 5 s for COIN-M = 2.5 min).

:class:`MarkPriceEngine` keeps the basis window (the only state) and publishes the mark on the tick grid
with an explicit named rounding mode.  Choices where the sources are silent (documented, tested):
with no basis sample yet the moving average is taken as 0 (``P2 = index``); ``median3`` without a last
trade price is refused (``last_price``) rather than guessed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar, Mapping, Protocol

from perprisk.errors import ValidationError
from perprisk.market._exact import exact, median, milliseconds
from perprisk.market.schedule import FundingSchedule
from perprisk.money import Fraction, Rounding, round_price, to_decimal

#: Binance perpetuals: the basis moving average is over 30 data points.
BINANCE_BASIS_WINDOW = 30


def fair_price(
    index: object, funding_rate: object, time_to_funding_ms: int, funding_interval_ms: int
) -> Fraction:
    """``index · (1 + F · t / T)`` — exact; ``0 ≤ t ≤ T``."""
    idx = exact(index, "index", positive=True)
    rate = exact(funding_rate, "funding_rate")
    t = milliseconds(time_to_funding_ms, "time_to_funding_ms", non_negative=True)
    period = milliseconds(funding_interval_ms, "funding_interval_ms", positive=True)
    if t > period:
        raise ValidationError("time_to_funding_ms", f"{t} exceeds the funding interval {period}")
    return idx * (1 + rate * Fraction(t, period))


def basis_price(index: object, basis_average: object) -> Fraction:
    """``P2 = index + MA(mid − index)``."""
    return exact(index, "index", positive=True) + exact(basis_average, "basis_average")


def median3(p1: Fraction, p2: Fraction, last: Fraction) -> Fraction:
    """The middle one of three prices."""
    return median((p1, p2, last))


@dataclass(frozen=True)
class MarkInputs:
    """Everything a mark method may use at one instant (exact values)."""

    index: Fraction
    funding_rate: Fraction
    time_to_funding_ms: int
    funding_interval_ms: int
    last_price: Fraction | None = None
    basis_average: Fraction | None = None  # None: no basis sample yet


@dataclass(frozen=True)
class MarkComponents:
    """The candidate prices of a mark computation (``basis`` and ``last`` only for ``median3``)."""

    fair: Fraction
    basis: Fraction | None = None
    last: Fraction | None = None


def _fair(inputs: MarkInputs) -> Fraction:
    return fair_price(inputs.index, inputs.funding_rate, inputs.time_to_funding_ms, inputs.funding_interval_ms)


class MarkMethod(Protocol):
    name: ClassVar[str]

    def compute(self, inputs: MarkInputs) -> tuple[Fraction, MarkComponents]: ...


@dataclass(frozen=True)
class FairPriceMethod:
    """MEXC / BitMEX: ``index · (1 + F · t_to_funding / funding_interval)``."""

    name: ClassVar[str] = "fair"

    def compute(self, inputs: MarkInputs) -> tuple[Fraction, MarkComponents]:
        p1 = _fair(inputs)
        return p1, MarkComponents(fair=p1)


@dataclass(frozen=True)
class Median3Method:
    """Binance: ``median(P1, P2, last)``."""

    name: ClassVar[str] = "median3"

    def compute(self, inputs: MarkInputs) -> tuple[Fraction, MarkComponents]:
        if inputs.last_price is None:
            raise ValidationError("last_price", "the median3 mark needs the last traded price")
        p1 = _fair(inputs)
        p2 = basis_price(inputs.index, Fraction(0) if inputs.basis_average is None else inputs.basis_average)
        return median3(p1, p2, inputs.last_price), MarkComponents(fair=p1, basis=p2, last=inputs.last_price)


MARK_METHODS: Mapping[str, MarkMethod] = MappingProxyType(
    {FairPriceMethod.name: FairPriceMethod(), Median3Method.name: Median3Method()}
)


def mark_method(method: str | MarkMethod) -> MarkMethod:
    """The method named ``method`` (``"fair"`` or ``"median3"``), or ``method`` itself."""
    if isinstance(method, str):
        try:
            return MARK_METHODS[method]
        except KeyError:
            raise ValidationError(
                "method", f"unknown mark-price method {method!r} (known: {sorted(MARK_METHODS)})"
            ) from None
    if not hasattr(method, "compute"):
        raise ValidationError(
            "method", f"expected a method name or a mark method, got {type(method).__name__}"
        )
    return method


@dataclass(frozen=True)
class MarkPrice:
    """A published mark price: ``value`` on the tick grid, ``exact`` before rounding, and its components."""

    value: Decimal
    exact: Fraction
    method: str
    index: Fraction
    components: MarkComponents
    rounding: Rounding


class MarkPriceEngine:
    """Computes the mark price of one market; holds the basis moving-average window.

    ``method``: ``"fair"`` or ``"median3"`` (or a method object); ``schedule``: the market's funding times;
    ``tick`` and ``rounding``: the published grid and the named mode (no default: say which);
    ``basis_window``: number of basis samples in the moving average (Binance 30).
    """

    def __init__(
        self,
        method: str | MarkMethod,
        schedule: FundingSchedule,
        tick: object,
        rounding: Rounding,
        basis_window: int = BINANCE_BASIS_WINDOW,
    ) -> None:
        self.method = mark_method(method)
        if not isinstance(schedule, FundingSchedule):
            raise ValidationError("schedule", f"expected a FundingSchedule, got {type(schedule).__name__}")
        self.schedule = schedule
        self.tick = to_decimal(tick, "tick", positive=True)
        if not isinstance(rounding, Rounding):
            raise ValidationError("rounding", f"expected a Rounding mode, got {rounding!r}")
        self.rounding = rounding
        if isinstance(basis_window, bool) or not isinstance(basis_window, int) or basis_window <= 0:
            raise ValidationError("basis_window", f"a positive number of samples, got {basis_window!r}")
        self._basis: deque[Fraction] = deque(maxlen=basis_window)

    @property
    def basis_window(self) -> int:
        return self._basis.maxlen or 0

    @property
    def basis_samples(self) -> tuple[Fraction, ...]:
        return tuple(self._basis)

    @property
    def basis_average(self) -> Fraction | None:
        """``MA(mid − index)`` over the window, ``None`` before the first sample."""
        if not self._basis:
            return None
        return sum(self._basis, Fraction(0)) / len(self._basis)

    def observe_basis(self, basis: object) -> Fraction:
        """Record one basis sample ``mid − index`` (the oldest leaves a full window)."""
        value = exact(basis, "basis")
        self._basis.append(value)
        return value

    def observe_book(self, best_bid: object, best_ask: object, index: object) -> Fraction:
        """Record the basis ``(best_bid + best_ask)/2 − index`` of one book snapshot."""
        bid = exact(best_bid, "best_bid", positive=True)
        ask = exact(best_ask, "best_ask", positive=True)
        if bid > ask:
            raise ValidationError("best_bid", f"a crossed book: best bid {bid} above best ask {ask}")
        return self.observe_basis((bid + ask) / 2 - exact(index, "index", positive=True))

    def reset(self) -> None:
        self._basis.clear()

    def mark(self, now_ms: int, index: object, funding_rate: object, last_price: object = None) -> MarkPrice:
        """The mark at ``now_ms`` from the index, the current funding rate and (median3) the last trade."""
        inputs = MarkInputs(
            index=exact(index, "index", positive=True),
            funding_rate=exact(funding_rate, "funding_rate"),
            time_to_funding_ms=self.schedule.time_to_funding_ms(now_ms),
            funding_interval_ms=self.schedule.interval_ms,
            last_price=None if last_price is None else exact(last_price, "last_price", positive=True),
            basis_average=self.basis_average,
        )
        value, components = self.method.compute(inputs)
        return MarkPrice(
            value=round_price(value, self.tick, self.rounding),
            exact=value,
            method=self.method.name,
            index=inputs.index,
            components=components,
            rounding=self.rounding,
        )
