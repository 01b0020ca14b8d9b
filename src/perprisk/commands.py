"""Engine commands: what can be asked of the exchange.  Each is journaled before it is applied.

Commands are frozen dataclasses of plain values; :func:`encode` / :func:`decode` turn them into JSON-able
records (Decimals as strings, so the journal is exact) and back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Optional, Union

from perprisk.errors import ValidationError


@dataclass(frozen=True)
class CreateAccount:
    position_mode: str = "one_way"


@dataclass(frozen=True)
class Deposit:
    account_id: int
    asset: str
    amount: Decimal


@dataclass(frozen=True)
class Withdraw:
    account_id: int
    asset: str
    amount: Decimal


@dataclass(frozen=True)
class DepositInsuranceFund:
    """Seed or top up the insurance fund (of one market when funds are per market)."""

    asset: str
    amount: Decimal
    symbol: Optional[str] = None


@dataclass(frozen=True)
class SetPositionMode:
    account_id: int
    position_mode: str  # one_way | hedge


@dataclass(frozen=True)
class SetMarginMode:
    account_id: int
    symbol: str
    margin_mode: str  # isolated | cross


@dataclass(frozen=True)
class SetLeverage:
    account_id: int
    symbol: str
    leverage: Decimal


@dataclass(frozen=True)
class SetAutoAddMargin:
    account_id: int
    symbol: str
    enabled: bool


@dataclass(frozen=True)
class AdjustIsolatedMargin:
    """Add (amount > 0) or remove (amount < 0) margin of an isolated position."""

    account_id: int
    symbol: str
    amount: Decimal
    position_side: Optional[str] = None


@dataclass(frozen=True)
class PlaceOrder:
    account_id: int
    symbol: str
    side: str  # buy | sell
    quantity: Decimal
    order_type: str = "limit"
    price: Optional[Decimal] = None
    time_in_force: Optional[str] = None
    reduce_only: bool = False
    position_side: Optional[str] = None  # hedge mode: long | short
    self_trade_prevention: str = "none"
    trigger_price: Optional[Decimal] = None
    trigger_reference: str = "mark"
    callback_distance: Optional[Decimal] = None
    callback_rate: Optional[Decimal] = None
    activation_price: Optional[Decimal] = None
    client_order_id: Optional[str] = None


@dataclass(frozen=True)
class BlockTrade:
    """A trade agreed off the book between two accounts at ``price`` (within the market-order band of the
    mark): ``account_id`` takes ``side`` and pays the taker fee, ``counterparty_id`` takes the other side and
    pays the maker fee.  Margin, leverage, reduce-only and debt rules are those of an order; one-way mode."""

    account_id: int
    counterparty_id: int
    symbol: str
    side: str  # buy | sell, for account_id
    quantity: Decimal
    price: Decimal
    reduce_only: bool = False


@dataclass(frozen=True)
class CancelOrder:
    account_id: int
    symbol: str
    order_id: int


@dataclass(frozen=True)
class AmendOrder:
    account_id: int
    symbol: str
    order_id: int
    price: Optional[Decimal] = None
    quantity: Optional[Decimal] = None


@dataclass(frozen=True)
class SetAlert:
    """margin_ratio (threshold in %), price (level, direction above|below) or adl_quintile (1–5) alert."""

    account_id: int
    kind: str
    symbol: str
    threshold: Decimal
    direction: str = "above"


@dataclass(frozen=True)
class RemoveAlert:
    account_id: int
    alert_id: int


@dataclass(frozen=True)
class SetMarkPrice:
    """An externally supplied mark (simulator, replayed feed); also sets the index when none is given."""

    symbol: str
    mark_price: Decimal
    timestamp_ms: int
    index_price: Optional[Decimal] = None


@dataclass(frozen=True)
class IndexQuotes:
    """Spot prices from several sources; the engine derives index and mark from them (SPEC §2)."""

    symbol: str
    timestamp_ms: int
    sources: tuple[str, ...]
    prices: tuple[Decimal, ...]
    weights: tuple[Decimal, ...]


@dataclass(frozen=True)
class SampleFunding:
    """Take one premium sample from the book (impact bid/ask against the index)."""

    symbol: str
    timestamp_ms: int


@dataclass(frozen=True)
class SettleFunding:
    """Settle funding now: at ``rate`` if given, else at the rate computed from the premium samples."""

    symbol: str
    timestamp_ms: int
    rate: Optional[Decimal] = None


Command = Union[
    CreateAccount, Deposit, Withdraw, DepositInsuranceFund, SetPositionMode, SetMarginMode, SetLeverage, SetAutoAddMargin,
    AdjustIsolatedMargin, PlaceOrder, BlockTrade, CancelOrder, AmendOrder, SetAlert, RemoveAlert, SetMarkPrice, IndexQuotes, SampleFunding,
    SettleFunding,
]
COMMAND_TYPES: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(Command)}


# ------------------------------------------------------------------------------------------------ codec


def _encode_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_encode_value(v) for v in value]
    return value


def encode(command: Any) -> dict[str, Any]:
    """A JSON-able record ``{"type": ..., field: value}`` (Decimals as strings)."""
    record: dict[str, Any] = {"type": type(command).__name__}
    for f in dataclasses.fields(command):
        record[f.name] = _encode_value(getattr(command, f.name))
    return record


def _decode_value(value: Any, annotation: Any, field: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _decode_value(value, args[0], field)
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        if not isinstance(value, (list, tuple)):
            raise ValidationError(field, "expected a list")
        return tuple(_decode_value(v, item, f"{field}[{i}]") for i, v in enumerate(value))
    if annotation is Decimal:
        return Decimal(str(value))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValidationError(field, f"expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(field, f"expected an integer, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ValidationError(field, f"expected a string, got {value!r}")
        return value
    return value


def decode(record: dict[str, Any]) -> Any:
    """The command a record describes (inverse of :func:`encode`)."""
    kind = record.get("type")
    cls = COMMAND_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValidationError("type", f"unknown command type {kind!r}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in record:
            values[f.name] = _decode_value(record[f.name], hints[f.name], f.name)
    return cls(**values)
