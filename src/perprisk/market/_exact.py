"""Small exact helpers shared by the market modules: parsing to Fraction, median, clamp, integer times.

Nothing here rounds: values stay exact rationals until a module publishes a Decimal through ``money.py``.
"""

from __future__ import annotations

from typing import Iterable

from perprisk.errors import ValidationError
from perprisk.money import FRACTION_TYPES, Fraction, to_decimal


def exact(value: object, field: str, *, positive: bool = False, non_negative: bool = False) -> Fraction:
    """``value`` (str, int, Decimal or Fraction) as an exact Fraction; floats, NaN, ±inf refused by ``field``.

    A Fraction is taken as it is (``to_decimal`` would round a non-terminating one such as 1/3).
    """
    if isinstance(value, FRACTION_TYPES):
        result = value
        if positive and result <= 0:
            raise ValidationError(field, f"must be greater than zero, got {result}")
        if non_negative and result < 0:
            raise ValidationError(field, f"must not be negative, got {result}")
        return result
    return Fraction(to_decimal(value, field, positive=positive, non_negative=non_negative))


def milliseconds(value: object, field: str, *, positive: bool = False, non_negative: bool = False) -> int:
    """An integer count of milliseconds (epoch time or duration); bools, floats and strings refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"expected an integer number of milliseconds, got {value!r}")
    if positive and value <= 0:
        raise ValidationError(field, f"must be greater than zero, got {value}")
    if non_negative and value < 0:
        raise ValidationError(field, f"must not be negative, got {value}")
    return value


def median(values: Iterable[Fraction]) -> Fraction:
    """The median; for an even count the mean of the two middle values (exact)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of no values")
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def clamp(x: Fraction, low: Fraction, high: Fraction) -> Fraction:
    """``x`` limited to ``[low, high]``."""
    return low if x < low else high if x > high else x
