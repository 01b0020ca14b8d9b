"""Engine events: what applying a command did.  Plain frozen values, in the order they happened."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from perprisk.money import FRACTION_TYPES, Fraction


@dataclass(frozen=True)
class AccountCreated:
    account_id: int


@dataclass(frozen=True)
class BalanceChanged:
    account_id: int
    asset: str
    amount: Decimal  # signed: + deposit, − withdrawal
    reason: str


@dataclass(frozen=True)
class SettingChanged:
    account_id: int
    symbol: str | None
    setting: str
    value: str


@dataclass(frozen=True)
class OrderAccepted:
    order_id: int
    account_id: int
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal | None
    order_type: str


@dataclass(frozen=True)
class OrderCancelled:
    order_id: int
    account_id: int
    symbol: str
    quantity: Decimal
    reason: str


@dataclass(frozen=True)
class OrderTriggered:
    order_id: int
    account_id: int
    symbol: str
    reference: str
    price: Decimal


@dataclass(frozen=True)
class Trade:
    symbol: str
    sequence: int
    price: Decimal
    quantity: Decimal
    taker_order_id: int
    maker_order_id: int
    taker_account_id: int
    maker_account_id: int
    taker_side: str
    taker_fee: Decimal
    maker_fee: Decimal


@dataclass(frozen=True)
class BlockTraded:
    """An off-book trade (:class:`perprisk.commands.BlockTrade`): not on the tape, the last price unchanged."""

    symbol: str
    price: Decimal
    quantity: Decimal
    taker_account_id: int
    maker_account_id: int
    taker_side: str
    taker_fee: Decimal
    maker_fee: Decimal


@dataclass(frozen=True)
class PositionChanged:
    account_id: int
    symbol: str
    slot: str
    size: Decimal
    entry_price: Fraction


@dataclass(frozen=True)
class MarginMoved:
    account_id: int
    symbol: str
    slot: str
    amount: Decimal  # + into the isolated position, − back to the wallet
    reason: str


@dataclass(frozen=True)
class MarkPriceUpdated:
    symbol: str
    mark_price: Decimal
    index_price: Decimal
    timestamp_ms: int


@dataclass(frozen=True)
class FundingSampled:
    symbol: str
    premium: Fraction | None  # None: the book could not fill the impact notional on a side
    timestamp_ms: int


@dataclass(frozen=True)
class FundingPaid:
    account_id: int
    symbol: str
    slot: str
    amount: Decimal  # signed: + received, − paid
    rate: Decimal
    mark_price: Decimal


@dataclass(frozen=True)
class FundingSettled:
    symbol: str
    rate: Decimal
    mark_price: Decimal
    timestamp_ms: int
    payments: int


@dataclass(frozen=True)
class LiquidationStep:
    """One step of the liquidation process (SPEC §2.1), with the margin ratio before and after it."""

    account_id: int
    symbol: str | None
    slot: str | None
    step: str  # auto_add_margin | cancel_orders | self_offset | tier_down | takeover | liquidation_fee
    quantity: Decimal
    price: Decimal | None
    margin_ratio_before: Decimal | None  # percent; None = unbounded (equity ≤ 0)
    margin_ratio_after: Decimal | None
    reason: str
    timestamp_ms: int


@dataclass(frozen=True)
class Disposal:
    """The liquidation engine closing what it took over, in the book (IOC inside the price band)."""

    symbol: str
    liquidated_account_id: int
    quantity: Decimal
    filled: Decimal
    bankruptcy_price: Decimal
    limit_price: Decimal
    pnl: Decimal  # + surplus to the fund, − deficit paid by the policy's payer
    paid_by: str  # insurance_fund | platform | socialized | none
    timestamp_ms: int
    fund_before: Decimal  # the insurance fund's balance when the disposal started
    sign: int  # +1: the liquidation engine sold a long it took over; −1: it bought back a short


@dataclass(frozen=True)
class AdlExecuted:
    account_id: int
    symbol: str
    slot: str
    quantity: Decimal
    price: Decimal
    liquidated_account_id: int
    reason: str  # fund_insufficient | book_depth
    timestamp_ms: int


@dataclass(frozen=True)
class DebtRecorded:
    account_id: int
    asset: str
    amount: Decimal  # the negative balance the trader owes
    timestamp_ms: int


@dataclass(frozen=True)
class LossSocialized:
    account_id: int
    symbol: str
    slot: str
    amount: Decimal
    timestamp_ms: int


@dataclass(frozen=True)
class Alert:
    account_id: int
    kind: str  # margin_ratio | price | adl_quintile
    symbol: str | None
    message: str
    value: Decimal | None
    timestamp_ms: int


def event_to_dict(event: Any) -> dict[str, Any]:
    """A JSON-able view of an event (numbers as decimal strings)."""
    from perprisk.money import format_decimal

    out: dict[str, Any] = {"event": type(event).__name__}
    for f in fields(event):
        value = getattr(event, f.name)
        out[f.name] = format_decimal(value) if isinstance(value, (Decimal, *FRACTION_TYPES)) else value
    return out
