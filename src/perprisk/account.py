"""Accounts and positions: margin modes, position modes, leverage, and the margin figures of record.

Positions keep a signed size and an exact cost basis ``Σ s·q·P`` (a Fraction: the entry price is an exact
rational).  Money lives in the ledger: each position belongs to a *margin account* (the trader's cross wallet,
or one isolated account per isolated position) whose quote balance moves with every fill, fee and funding
payment.  The equity of a margin account is ``collateral value + Σ s·q·M`` over its positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import Enum

from perprisk.errors import ValidationError
from perprisk.formulas import MarginMode, PositionLeg, Side
from perprisk.instrument import Instrument
from perprisk.ledger import isolated_account, trader_account
from perprisk.money import ZERO, Fraction, Rounding, round_to_step

#: Grid of a position's cost basis after a partial close.  Average cost scales by remaining/size, which is
#: exact but compounds denominators: a desk closing in part thousands of times carried a 4,000-digit rational.
#: The cost basis is a reading (entry price, realized PnL, withdrawable wallet) — money of record is the
#: ledger, and equity (ledger + q·M) does not use it — so it is kept on a 1e-30 grid, floored: never more
#: wallet or position margin than exact (floor lowers a long's cost and makes a short's more negative).
COST_STEP = Decimal("1e-30")


class SlottedState:
    """Pickling for the engine's per-account state classes, which are slotted (``dataclass(slots=True)``: a
    million-account run holds millions of them, and a slotted instance is smaller and one pointer closer to its
    fields): the state is a dict of the fields, as it was when they were plain dataclasses, so engine snapshots
    taken before (journals) still load."""

    __slots__ = ()

    def __getstate__(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


class PositionMode(str, Enum):
    ONE_WAY = "one_way"
    HEDGE = "hedge"


#: Position slot names: ``both`` in one-way mode, ``long``/``short`` legs in hedge mode.
BOTH, LONG, SHORT = "both", "long", "short"


@dataclass(slots=True)
class Position(SlottedState):
    """An open position of one account in one market slot (mutable engine state)."""

    account_id: int
    symbol: str
    slot: str  # both | long | short
    margin_mode: MarginMode
    leverage: Decimal
    size: Decimal = ZERO  # signed: > 0 long, < 0 short
    cost: Fraction = Fraction(0)  # Σ signed size × fill price of the open quantity

    @property
    def is_open(self) -> bool:
        return self.size != 0

    @property
    def side(self) -> Side:
        return Side.LONG if self.size > 0 else Side.SHORT

    @property
    def entry_price(self) -> Fraction:
        if self.size == 0:
            return Fraction(0)
        return self.cost / Fraction(self.size)

    @property
    def margin_account(self) -> str:
        if self.margin_mode is MarginMode.ISOLATED:
            return isolated_account(self.account_id, self.symbol, self.slot)
        return trader_account(self.account_id)

    def apply_fill(self, signed_quantity: Decimal, price: Decimal) -> Decimal:
        """Add a signed fill; returns the quantity that closed existing exposure (≥ 0)."""
        size = self.size
        if size == 0 or (size > 0) == (signed_quantity > 0):
            self.size = size + signed_quantity
            self.cost += Fraction(signed_quantity) * Fraction(price)
            return ZERO
        closing = min(abs(signed_quantity), abs(size))
        remaining = abs(size) - closing
        if remaining == 0:
            self.cost = Fraction(0)
        else:
            scaled = self.cost * Fraction(remaining) / Fraction(abs(size))
            self.cost = scaled if scaled.denominator == 1 or _is_decimal(scaled) else Fraction(
                round_to_step(scaled, COST_STEP, Rounding.FLOOR))
        self.size = size + signed_quantity
        if self.size != 0 and (self.size > 0) != (size > 0):  # flipped: the rest opens at the fill price
            self.cost = Fraction(self.size) * Fraction(price)
        return closing

    def leg(self, instrument: Instrument, mark_price: Decimal) -> PositionLeg:
        """The position as the formulas see it (the same inputs a trader would give the calculator)."""
        return PositionLeg(
            self.symbol, self.side, abs(self.size), self.entry_price, mark_price, instrument.tiers, self.leverage
        )

    def snapshot(self) -> dict[str, str]:
        return {
            "symbol": self.symbol,
            "slot": self.slot,
            "margin_mode": self.margin_mode.value,
            "leverage": str(self.leverage),
            "size": str(self.size),
            "cost": f"{self.cost.numerator}/{self.cost.denominator}",
        }


@dataclass(slots=True)
class MarketSettings(SlottedState):
    """An account's per-market choices: margin mode and leverage (apply to new exposure)."""

    margin_mode: MarginMode = MarginMode.CROSS
    leverage: Decimal = Decimal(20)
    auto_add_margin: bool = False


@dataclass(slots=True)
class Account(SlottedState):
    account_id: int
    position_mode: PositionMode = PositionMode.ONE_WAY
    settings: dict[str, MarketSettings] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    blocked: bool = False  # debt policy: no withdrawals or new exposure until repaid

    @property
    def wallet(self) -> str:
        return trader_account(self.account_id)

    def market(self, symbol: str) -> MarketSettings:
        settings = self.settings.get(symbol)
        if settings is None:
            settings = self.settings[symbol] = MarketSettings()
        return settings

    def slot_for(self, position_side: str | None) -> str:
        """The position slot an order trades: ``both`` in one-way mode, the named leg in hedge mode."""
        if self.position_mode is PositionMode.ONE_WAY:
            if position_side not in (None, BOTH):
                raise ValidationError("position_side", "only 'both' (or nothing) in one-way mode")
            return BOTH
        if position_side not in (LONG, SHORT):
            raise ValidationError("position_side", "hedge mode: say 'long' or 'short'")
        return position_side

    def position(self, symbol: str, slot: str) -> Position | None:
        return self.positions.get((symbol, slot))

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.size != 0]

    def snapshot(self) -> dict[str, object]:
        return {
            "position_mode": self.position_mode.value,
            "blocked": self.blocked,
            "settings": {
                s: {"margin_mode": m.margin_mode.value, "leverage": str(m.leverage), "auto_add_margin": m.auto_add_margin}
                for s, m in sorted(self.settings.items())
            },
            "positions": [p.snapshot() for _, p in sorted(self.positions.items()) if p.size != 0],
        }


def _is_decimal(x: Fraction) -> bool:
    """True when ``x`` has a finite decimal expansion of at most 30 places (denominator divides 10^30)."""
    return (10**30) % x.denominator == 0
