"""The price and quantity grid of a book: Decimals at the API, whole ticks and lots inside.

A price of ``20377.1`` on a ``0.1`` tick is ``203771`` ticks; a quantity of ``0.005`` on a ``0.001`` lot is
``5`` lots.  Conversion is exact both ways: a value off the grid is refused, never rounded.  Reference prices
that need not lie on the grid (the mark price) are held as exact fractions of a tick.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from perprisk.errors import ValidationError
from perprisk.money import MONEY_CONTEXT, Fraction, fraction_to_decimal, to_decimal


@dataclass(frozen=True)
class Grid:
    """Tick size (price step) and lot size (quantity step) of one book."""

    tick_size: Decimal
    lot_size: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "tick_size", to_decimal(self.tick_size, "tick_size", positive=True))
        object.__setattr__(self, "lot_size", to_decimal(self.lot_size, "lot_size", positive=True))

    def to_ticks(self, value: object, field: str) -> int:
        """A positive price on the tick grid, in ticks; ``ValidationError(field, ...)`` otherwise."""
        return _steps(to_decimal(value, field, positive=True), self.tick_size, field, "tick size")

    def to_lots(self, value: object, field: str) -> int:
        """A positive quantity on the lot grid, in lots; ``ValidationError(field, ...)`` otherwise."""
        return _steps(to_decimal(value, field, positive=True), self.lot_size, field, "lot size")

    def to_exact_ticks(self, value: object, field: str) -> int | Fraction:
        """A positive price anywhere (on the grid or between ticks) as an exact number of ticks."""
        ticks = Fraction(to_decimal(value, field, positive=True)) / Fraction(self.tick_size)
        return ticks.numerator if ticks.denominator == 1 else ticks

    def price(self, ticks: int | Fraction) -> Decimal:
        """The price of ``ticks`` ticks, exact."""
        if isinstance(ticks, int):
            return MONEY_CONTEXT.multiply(Decimal(ticks), self.tick_size)
        return fraction_to_decimal(ticks * Fraction(self.tick_size))

    def quantity(self, lots: int) -> Decimal:
        """The quantity of ``lots`` lots, exact."""
        return MONEY_CONTEXT.multiply(Decimal(lots), self.lot_size)


def _steps(value: Decimal, step: Decimal, field: str, step_name: str) -> int:
    """``value / step`` as an int when it is a whole number of steps; exact (``divmod`` never rounds)."""
    try:
        whole, rest = MONEY_CONTEXT.divmod(value, step)
    except decimal.InvalidOperation:
        raise ValidationError(field, f"{value} is too large for the {step_name} {step}") from None
    if rest != 0:
        raise ValidationError(field, f"{value} is not a multiple of the {step_name} {step}")
    return int(whole)
