"""Position values the formulas work on."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, IntEnum

from perprisk.errors import ValidationError
from perprisk.instrument import TierTable


class Side(IntEnum):
    """Position direction as the sign ``s`` of SPEC §2 (+1 long, −1 short)."""

    LONG = 1
    SHORT = -1

    @classmethod
    def parse(cls, value: object, field: str = "side") -> "Side":
        if isinstance(value, Side):
            return value
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text in ("long", "buy"):
            return cls.LONG
        if text in ("short", "sell"):
            return cls.SHORT
        raise ValidationError(field, f"must be 'long' or 'short', got {value!r}")

    @property
    def label(self) -> str:
        return "long" if self is Side.LONG else "short"


class MarginMode(str, Enum):
    ISOLATED = "isolated"
    CROSS = "cross"

    @classmethod
    def parse(cls, value: object, field: str = "margin_mode") -> "MarginMode":
        try:
            return cls(str(value).strip().lower()) if isinstance(value, str) else cls(value)
        except ValueError:
            raise ValidationError(field, f"must be 'isolated' or 'cross', got {value!r}") from None


@dataclass(frozen=True, slots=True)
class PositionLeg:
    """One open position: ``size`` in base units (> 0), prices in the settle currency.

    ``tiers`` gives the maintenance margin rate and amount by notional (a one-tier table when the user gave an
    explicit mmr).  ``leverage`` is informational for the price formulas (the margin is given explicitly).
    """

    symbol: str
    side: Side
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    tiers: TierTable
    leverage: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.size > 0:
            raise ValidationError("size", f"{self.symbol}: must be greater than zero, got {self.size}")
        if not self.entry_price > 0:
            raise ValidationError("entry_price", f"{self.symbol}: must be greater than zero, got {self.entry_price}")
        if not self.mark_price > 0:
            raise ValidationError("mark_price", f"{self.symbol}: must be greater than zero, got {self.mark_price}")

    @property
    def sign(self) -> int:
        return int(self.side)
