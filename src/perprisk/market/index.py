"""Index price: a weighted average of spot sources, protected against outliers and stale feeds (SPEC §2).

Rule (SPEC §2; Binance "Price Index" FAQ, binance.com/en/support/faq/547ba48141474ab3bddc5d7898f97928;
MEXC "Index Price, Fair Price and Last Price", mexc.com/learn/article/17827791508654):

1. **Stale sources drop.** A quote older than ``stale_after_ms`` relative to ``now_ms`` gets weight 0
   (Binance: "if one exchange has no updates for 10 seconds, the weight of this exchange will be zero").
   No fresh source at all → :class:`NoFreshSourceError`; an index is never made up.
2. **Deviation from the median** of the fresh prices, ``|p − median| / median``, is compared with the band
   (Binance 5 %, MEXC 3 %); "more than the band" is strict: a source exactly on the band is kept.
3. The outlier policy (a small named strategy) decides what to do with deviating sources:

   - :class:`ExcludeOutliers` (``"exclude"``, the SPEC rule, Binance 2020 FAQ, MEXC): one deviating source
     gets weight 0 and the weights of the others are renormalized; if more than one deviates, the index is
     the median of all fresh sources instead of a weighted average.
   - :class:`CapOutliers` (``"cap"``, a later Binance variant and several other venues): a deviating price
     is capped at ``median·(1 ± band)`` and every fresh source keeps its weight.

The weighted average is ``Σ wᵢ·pᵢ / Σ wᵢ`` over the sources kept (weights renormalized).  Arithmetic is
exact (``Fraction``); the published value is rounded to ``tick`` with a named mode when a tick is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import ClassVar, Iterable, Mapping, Protocol, Sequence

from perprisk.errors import ValidationError
from perprisk.market._exact import exact, median, milliseconds
from perprisk.money import Fraction, Rounding, fraction_to_decimal, round_price, to_decimal

#: Reason codes: every ``IndexPrice.excluded`` reason starts with one of these words.
STALE = "stale"
DEVIATION = "deviation"

#: Result modes.
WEIGHTED_AVERAGE = "weighted_average"
MEDIAN = "median"
CAPPED_WEIGHTED_AVERAGE = "capped_weighted_average"


class NoFreshSourceError(ValidationError):
    """Every source is stale (or none was given): there is no index price to publish."""


@dataclass(frozen=True, slots=True)
class SourceQuote:
    """The latest spot price of one source (exchange), its index weight, and when it was observed."""

    source: str
    price: Decimal
    weight: Decimal
    timestamp_ms: int

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValidationError("source", f"a non-empty source name is required, got {self.source!r}")
        where = f"source {self.source!r}: "
        try:
            object.__setattr__(self, "price", to_decimal(self.price, "price", positive=True))
            object.__setattr__(self, "weight", to_decimal(self.weight, "weight", non_negative=True))
            milliseconds(self.timestamp_ms, "timestamp_ms", non_negative=True)
        except ValidationError as err:
            raise ValidationError(err.field, where + err.message) from None


@dataclass(frozen=True)
class IndexPrice:
    """A published index price and how it was obtained.

    ``value`` is the published Decimal (on the calculator's tick when it has one), ``exact`` the unrounded
    rational.  ``used_sources`` are the sources that entered the result, ``excluded`` maps each source that
    did not to its reason (``"stale: …"`` or ``"deviation: …"``), ``deviating`` lists every fresh source beyond
    the band (in ``median`` mode they are used: the median is taken over all fresh sources), ``adjusted``
    the capped prices of the ``cap`` policy.
    """

    value: Decimal
    exact: Fraction
    mode: str
    median: Fraction
    used_sources: tuple[str, ...]
    excluded: Mapping[str, str]
    deviating: tuple[str, ...] = ()
    adjusted: Mapping[str, Fraction] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class IndexCombination:
    """What an outlier policy returns: the exact value, the mode, and which sources it used or set aside."""

    value: Fraction
    mode: str
    used: tuple[str, ...]
    excluded: dict[str, str]
    deviating: tuple[str, ...]
    adjusted: dict[str, Fraction]


def deviation(price: Fraction, reference: Fraction) -> Fraction:
    """Relative distance ``|p − m| / m`` of a price from the reference (median)."""
    return abs(price - reference) / reference


def _percent(x: Fraction) -> str:
    return f"{fraction_to_decimal(x * 100, 6)}%"


def weighted_average(quotes: Sequence[SourceQuote], prices: Mapping[str, Fraction] | None = None) -> Fraction:
    """``Σ wᵢ·pᵢ / Σ wᵢ`` (weights renormalized over ``quotes``); refuses a zero weight sum by ``weight``."""
    total = sum((Fraction(q.weight) for q in quotes), Fraction(0))
    if total == 0:
        names = ", ".join(q.source for q in quotes)
        raise ValidationError("weight", f"the weights of the sources kept ({names}) sum to zero")
    prices = prices or {}
    weighted = (Fraction(q.weight) * prices.get(q.source, Fraction(q.price)) for q in quotes)
    return sum(weighted, Fraction(0)) / total


class OutlierPolicy(Protocol):
    """What to do with fresh sources that deviate from the median by more than the band."""

    name: ClassVar[str]

    def combine(self, fresh: Sequence[SourceQuote], mid: Fraction, band: Fraction) -> IndexCombination: ...


@dataclass(frozen=True)
class ExcludeOutliers:
    """SPEC §2 / Binance FAQ / MEXC: one deviating source → weight 0; more than one → median of all fresh."""

    name: ClassVar[str] = "exclude"

    def combine(self, fresh: Sequence[SourceQuote], mid: Fraction, band: Fraction) -> IndexCombination:
        deviating = [q for q in fresh if deviation(Fraction(q.price), mid) > band]
        names = tuple(q.source for q in deviating)
        if len(deviating) > 1:
            return IndexCombination(mid, MEDIAN, tuple(q.source for q in fresh), {}, names, {})
        kept = [q for q in fresh if q.source not in names]
        excluded = {
            q.source: f"{DEVIATION}: {_percent(deviation(Fraction(q.price), mid))} from the median "
            f"{fraction_to_decimal(mid)} is more than the band {_percent(band)}"
            for q in deviating
        }
        used = tuple(q.source for q in kept)
        return IndexCombination(weighted_average(kept), WEIGHTED_AVERAGE, used, excluded, names, {})


@dataclass(frozen=True)
class CapOutliers:
    """Cap a deviating price at ``median·(1 ± band)``; every fresh source keeps its weight."""

    name: ClassVar[str] = "cap"

    def combine(self, fresh: Sequence[SourceQuote], mid: Fraction, band: Fraction) -> IndexCombination:
        low, high = mid * (1 - band), mid * (1 + band)
        adjusted: dict[str, Fraction] = {}
        for q in fresh:
            p = Fraction(q.price)
            if p > high:
                adjusted[q.source] = high
            elif p < low:
                adjusted[q.source] = low
        value = weighted_average(fresh, adjusted)
        return IndexCombination(
            value, CAPPED_WEIGHTED_AVERAGE, tuple(q.source for q in fresh), {}, tuple(adjusted), adjusted
        )


OUTLIER_POLICIES: Mapping[str, OutlierPolicy] = MappingProxyType(
    {ExcludeOutliers.name: ExcludeOutliers(), CapOutliers.name: CapOutliers()}
)


def outlier_policy(method: str | OutlierPolicy) -> OutlierPolicy:
    """The policy named ``method`` (``"exclude"`` or ``"cap"``), or ``method`` itself if it is a policy."""
    if isinstance(method, str):
        try:
            return OUTLIER_POLICIES[method]
        except KeyError:
            raise ValidationError(
                "method", f"unknown index method {method!r} (known: {sorted(OUTLIER_POLICIES)})"
            ) from None
    if not hasattr(method, "combine"):
        raise ValidationError(
            "method", f"expected a method name or an outlier policy, got {type(method).__name__}"
        )
    return method


@dataclass(frozen=True)
class IndexCalculator:
    """Computes the index price from source quotes.

    ``band``: relative deviation from the median beyond which a source is an outlier (``"0.05"`` = 5 %),
    ``0 < band < 1``.  ``stale_after_ms``: a quote older than this (relative to ``now_ms``) is dropped.
    ``method``: ``"exclude"`` (default) or ``"cap"`` (see the module docstring), or a policy object.
    ``tick``/``rounding``: publish the value on this grid with this named mode; without a tick the value is
    published exactly when its decimal expansion terminates, else to 40 significant digits (half-even).
    """

    band: Fraction
    stale_after_ms: int
    method: OutlierPolicy = field(default_factory=ExcludeOutliers)
    tick: Decimal | None = None
    rounding: Rounding = Rounding.HALF_EVEN

    def __post_init__(self) -> None:
        band = exact(self.band, "band", positive=True)
        if band >= 1:
            raise ValidationError("band", f"must be below 1 (100 %), got {band}")
        object.__setattr__(self, "band", band)
        milliseconds(self.stale_after_ms, "stale_after_ms", positive=True)
        object.__setattr__(self, "method", outlier_policy(self.method))
        if self.tick is not None:
            object.__setattr__(self, "tick", to_decimal(self.tick, "tick", positive=True))
        if not isinstance(self.rounding, Rounding):
            raise ValidationError("rounding", f"expected a Rounding mode, got {self.rounding!r}")

    @classmethod
    def binance(cls, stale_after_ms: int = 10_000, **options: object) -> "IndexCalculator":
        """Binance USDⓈ-M preset: band 5 %, no update for 10 s → weight 0 (Binance "Price Index" FAQ)."""
        return cls(Fraction(5, 100), stale_after_ms, **options)  # type: ignore[arg-type]

    @classmethod
    def mexc(cls, stale_after_ms: int = 10_000, **options: object) -> "IndexCalculator":
        """MEXC preset: band 3 % (MEXC index-price article); MEXC publishes no staleness limit, 10 s assumed."""
        return cls(Fraction(3, 100), stale_after_ms, **options)  # type: ignore[arg-type]

    def compute(self, quotes: Iterable[SourceQuote], now_ms: int) -> IndexPrice:
        """The index at ``now_ms`` from the latest quote of each source (one quote per source)."""
        milliseconds(now_ms, "now_ms", non_negative=True)
        quotes = list(quotes)
        if not quotes:
            raise NoFreshSourceError("quotes", "no source quotes were given")
        seen: set[str] = set()
        fresh: list[SourceQuote] = []
        excluded: dict[str, str] = {}
        for i, q in enumerate(quotes):
            if not isinstance(q, SourceQuote):
                raise ValidationError(f"quotes[{i}]", f"expected a SourceQuote, got {type(q).__name__}")
            if q.source in seen:
                raise ValidationError(f"quotes[{i}].source", f"source {q.source!r} appears more than once")
            seen.add(q.source)
            age = now_ms - q.timestamp_ms
            if age < 0:
                raise ValidationError(
                    f"quotes[{i}].timestamp_ms",
                    f"source {q.source!r}: quote time {q.timestamp_ms} is after now_ms {now_ms}",
                )
            if age > self.stale_after_ms:
                excluded[q.source] = (
                    f"{STALE}: last update {age} ms before now, more than {self.stale_after_ms} ms"
                )
            else:
                fresh.append(q)
        if not fresh:
            raise NoFreshSourceError(
                "quotes",
                f"no fresh source: all {len(quotes)} are older than {self.stale_after_ms} ms at {now_ms}",
            )
        mid = median(Fraction(q.price) for q in fresh)
        combo = self.method.combine(fresh, mid, self.band)
        excluded.update(combo.excluded)
        if self.tick is not None:
            value = round_price(combo.value, self.tick, self.rounding)
        else:
            value = fraction_to_decimal(combo.value)
        return IndexPrice(
            value=value,
            exact=combo.value,
            mode=combo.mode,
            median=mid,
            used_sources=combo.used,
            excluded=MappingProxyType(excluded),
            deviating=combo.deviating,
            adjusted=MappingProxyType(dict(combo.adjusted)),
        )
