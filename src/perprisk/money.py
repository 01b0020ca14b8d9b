"""Exact money: parsing, the Decimal context, and the one place where rounding happens.

Every amount of record in perprisk is a :class:`decimal.Decimal`; the formulas work in exact rationals
(:class:`Fraction`: ``quicktions.Fraction``, the compiled drop-in for :class:`fractions.Fraction` — the
same exact arithmetic, several times faster; values of either type are accepted everywhere) and come back to Decimal only through the functions here, each with a named
rounding mode.  Binary floats are refused at the boundary: ``0.1`` is not a price.
"""

from __future__ import annotations

import decimal
import fractions
import math
from decimal import Decimal
from enum import Enum
from typing import Union

from quicktions import Fraction

from perprisk.errors import ValidationError

#: The exact-rational types an input may be given as (the engine's own and the standard library's).
FRACTION_TYPES = (Fraction, fractions.Fraction)

#: Context for Decimal arithmetic of record: 60 significant digits, every anomaly trapped.
MONEY_CONTEXT = decimal.Context(
    prec=60,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

#: Context for products that must be exact: 60 digits and ``Inexact`` trapped, so a result that would need
#: rounding raises instead (callers fall back to rationals).
EXACT_CONTEXT = decimal.Context(
    prec=60,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact],
)


def exact_product(*factors: Decimal) -> Decimal | None:
    """The exact product of finite Decimals, or None when it does not fit in 60 significant digits."""
    result = Decimal(1)
    try:
        for f in factors:
            result = EXACT_CONTEXT.multiply(result, f)
    except decimal.Inexact:
        return None
    return result


def is_exact_number(x: object) -> bool:
    """True for a Decimal or an int: what the exact Decimal context computes with directly (never a Fraction,
    a string, a float or a bool)."""
    kind = type(x)
    return kind is Decimal or kind is int


def exact_decimal(x: Fraction) -> Decimal | None:
    """``x`` as a Decimal when that is exact within 60 digits (a terminating expansion), else None."""
    if x.denominator == 1:
        return Decimal(x.numerator)
    try:
        return EXACT_CONTEXT.divide(Decimal(x.numerator), Decimal(x.denominator))
    except decimal.Inexact:
        return None


#: Largest decimal exponent accepted at the boundary (no price, size or balance is near 1e±40).
MAX_EXPONENT = 40

#: Significant digits used when an exact rational has no finite decimal expansion (e.g. 1/3).
DISPLAY_DIGITS = 40

Number = Union[Decimal, Fraction, int]
ZERO = Decimal(0)


class Rounding(str, Enum):
    """Named rounding modes; every rounding in perprisk states one of these."""

    DOWN = "down"  # toward zero
    UP = "up"  # away from zero
    FLOOR = "floor"  # toward -infinity
    CEILING = "ceiling"  # toward +infinity
    HALF_EVEN = "half_even"
    HALF_UP = "half_up"  # ties away from zero

    @property
    def decimal_mode(self) -> str:
        return _DECIMAL_MODES[self]


_DECIMAL_MODES = {
    Rounding.DOWN: decimal.ROUND_DOWN,
    Rounding.UP: decimal.ROUND_UP,
    Rounding.FLOOR: decimal.ROUND_FLOOR,
    Rounding.CEILING: decimal.ROUND_CEILING,
    Rounding.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    Rounding.HALF_UP: decimal.ROUND_HALF_UP,
}


def to_decimal(
    value: object,
    field: str,
    *,
    positive: bool = False,
    non_negative: bool = False,
) -> Decimal:
    """Parse ``value`` (str, int or Decimal) into a finite Decimal, or raise ValidationError naming ``field``.

    Floats are refused: a binary float cannot say which decimal number was meant.  Booleans are refused.
    """
    if type(value) is Decimal:  # the common case, first
        result = value
    elif isinstance(value, bool):
        raise ValidationError(field, f"expected a decimal number, got a boolean ({value!r})")
    elif isinstance(value, float):
        raise ValidationError(
            field, f"binary floats are refused for exact money; pass the number as a string, e.g. \"{value!r}\""
        )
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, FRACTION_TYPES):
        result = fraction_to_decimal(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text:
            raise ValidationError(field, "expected a decimal number, got an empty string")
        try:
            result = Decimal(text)
        except decimal.InvalidOperation:
            raise ValidationError(field, f"not a decimal number: {value!r}") from None
    else:
        raise ValidationError(field, f"expected a decimal number (string or integer), got {type(value).__name__}")
    if not result.is_finite():
        if result.is_nan():
            raise ValidationError(field, "NaN is not a number")
        raise ValidationError(field, "infinity is not allowed")
    if result and not (-MAX_EXPONENT <= result.adjusted() <= MAX_EXPONENT):
        raise ValidationError(field, f"out of range: magnitudes from 1e-{MAX_EXPONENT} to 1e{MAX_EXPONENT} are accepted")
    if positive and result <= 0:
        raise ValidationError(field, f"must be greater than zero, got {result}")
    if non_negative and result < 0:
        raise ValidationError(field, f"must not be negative, got {result}")
    return result


def json_number(value: str) -> Decimal:
    """``parse_float`` hook for :func:`json.loads`/``tomllib``: JSON numbers become exact Decimals."""
    return Decimal(value)


def _round_fraction_to_int(x: Fraction, rounding: Rounding) -> int:
    if rounding is Rounding.FLOOR:
        return math.floor(x)
    if rounding is Rounding.CEILING:
        return math.ceil(x)
    if rounding is Rounding.DOWN:
        return math.trunc(x)
    if rounding is Rounding.UP:
        return math.floor(x) if x < 0 and x == math.floor(x) else (math.ceil(x) if x > 0 else math.floor(x))
    if rounding is Rounding.HALF_EVEN:
        return round(x)
    if rounding is Rounding.HALF_UP:
        magnitude = math.floor(abs(x) + Fraction(1, 2))
        return magnitude if x >= 0 else -magnitude
    raise AssertionError(rounding)


def round_to_step(value: Number, step: Decimal, rounding: Rounding) -> Decimal:
    """Round ``value`` to an integer multiple of ``step`` (a tick or a lot) with the named mode; exact."""
    if step <= 0:
        raise ValidationError("step", f"must be greater than zero, got {step}")
    if type(value) is Decimal and type(step) is Decimal and value.is_finite():
        try:  # an exact decimal quotient (the common case: a decimal step) rounded by Decimal itself
            units = int(EXACT_CONTEXT.divide(value, step).to_integral_value(rounding=_DECIMAL_MODES[rounding]))
            return MONEY_CONTEXT.multiply(Decimal(units), step)
        except decimal.DecimalException:  # the quotient does not terminate within 60 digits: rationals
            pass
    units = _round_fraction_to_int(Fraction(value) / Fraction(step), rounding)
    return MONEY_CONTEXT.multiply(Decimal(units), step)


def round_quotient_to_step(dividend: Number, divisor: Number, step: Decimal, rounding: Rounding) -> Decimal:
    """``dividend / divisor`` rounded to an integer multiple of ``step`` with the named mode; exact — the same
    figure as ``round_to_step(Fraction(dividend) / Fraction(divisor), step, rounding)``, from one exact decimal
    division when the inputs are positive Decimals or integers and the mode is CEILING or FLOOR (e.g. the
    margin q·P / L of an isolated position on the balance grid)."""
    if (rounding in (Rounding.CEILING, Rounding.FLOOR) and type(step) is Decimal and step > 0
            and is_exact_number(dividend) and is_exact_number(divisor) and dividend > 0 and divisor > 0):
        try:
            whole, rest = EXACT_CONTEXT.divmod(dividend, EXACT_CONTEXT.multiply(divisor, step))
            units = int(whole) + (1 if rest and rounding is Rounding.CEILING else 0)
            return MONEY_CONTEXT.multiply(Decimal(units), step)
        except decimal.DecimalException:  # a quotient beyond 60 digits: the rational path below
            pass
    return round_to_step(Fraction(dividend) / Fraction(divisor), step, rounding)


def round_price(price: Number, tick: Decimal, rounding: Rounding) -> Decimal:
    """A price on the tick grid."""
    return round_to_step(price, tick, rounding)


def round_quantity(quantity: Number, lot: Decimal, rounding: Rounding = Rounding.DOWN) -> Decimal:
    """A quantity on the lot grid (toward zero unless told otherwise: never more than asked)."""
    return round_to_step(quantity, lot, rounding)


def is_multiple_of(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` lies exactly on the grid of ``step``."""
    if type(value) is Decimal and type(step) is Decimal and value.is_finite() and step.is_finite() and step:
        try:  # exact decimal remainder (the trapping context refuses a rounded one)
            return EXACT_CONTEXT.remainder(value, step).is_zero()
        except (decimal.Inexact, decimal.InvalidOperation):
            pass  # quotient beyond 60 digits: decide with rationals
    return (Fraction(value) / Fraction(step)).denominator == 1


def quantize(value: Number, exponent: Decimal, rounding: Rounding) -> Decimal:
    """Round to a number of decimal places given as an exponent (``Decimal('0.01')`` = cents)."""
    return round_to_step(value, exponent, rounding)


def fraction_to_decimal(
    x: Fraction | Decimal | int, digits: int = DISPLAY_DIGITS, rounding: Rounding = Rounding.HALF_EVEN
) -> Decimal:
    """An exact rational as a Decimal: exact when its expansion terminates, else ``digits`` significant digits."""
    if isinstance(x, Decimal):
        return x
    x = Fraction(x)
    den = x.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den == 1:
        scale = max(twos, fives)
        scaled = x.numerator * 10**scale // x.denominator  # exact: the denominator divides 10**scale
        digits = tuple(int(ch) for ch in str(abs(scaled)))
        return Decimal((1 if scaled < 0 else 0, digits, -scale))
    ctx = decimal.Context(prec=digits, rounding=rounding.decimal_mode, Emin=-999_999, Emax=999_999)
    return ctx.divide(Decimal(x.numerator), Decimal(x.denominator))


def format_decimal(x: Number) -> str:
    """Plain decimal text (no exponent, no trailing zeros) for JSON and tables."""
    d = fraction_to_decimal(x) if not isinstance(x, Decimal) else x
    if d == 0:
        return "0"
    sign, digits, exponent = d.as_tuple()
    digits_list = list(digits)
    while exponent < 0 and len(digits_list) > 1 and digits_list[-1] == 0:  # strip trailing zeros, exactly
        digits_list.pop()
        exponent += 1
    return format(Decimal((sign, tuple(digits_list), exponent)), "f")
