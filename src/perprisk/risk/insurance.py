"""The insurance fund: fed by liquidation fees and disposal surpluses, pays disposal deficits (SPEC §2.1).

One fund per settlement currency (optionally one per market).  The fund is a ledger account like any
other; this module names it and keeps a balance history anyone can read (seed 002: transparency).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from perprisk.ledger import INSURANCE_FUND, Ledger


@dataclass(frozen=True)
class FundRecord:
    timestamp_ms: int
    asset: str
    symbol: str | None  # the market the movement came from
    change: Decimal  # signed: + into the fund
    balance: Decimal  # after the change
    reason: str


class InsuranceFund:
    """Names the fund's ledger accounts and records every movement in and out."""

    def __init__(self, ledger: Ledger, per_market: bool = False) -> None:
        self.ledger = ledger
        self.per_market = per_market
        self.history: list[FundRecord] = []

    def account(self, symbol: str | None) -> str:
        return f"{INSURANCE_FUND}/{symbol}" if self.per_market and symbol else INSURANCE_FUND

    def balance(self, asset: str, symbol: str | None = None) -> Decimal:
        return self.ledger.balance(self.account(symbol), asset)

    def receive(self, source: str, asset: str, amount: Decimal, symbol: str | None, timestamp_ms: int, reason: str) -> None:
        """``amount`` ≥ 0 from ``source`` into the fund."""
        if amount == 0:
            return
        self.ledger.transfer(source, self.account(symbol), asset, amount, reason)
        self._record(timestamp_ms, asset, symbol, amount, reason)

    def pay(self, destination: str, asset: str, amount: Decimal, symbol: str | None, timestamp_ms: int, reason: str) -> None:
        """``amount`` ≥ 0 out of the fund (the caller made sure the fund holds it)."""
        if amount == 0:
            return
        self.ledger.transfer(self.account(symbol), destination, asset, amount, reason)
        self._record(timestamp_ms, asset, symbol, amount.copy_negate(), reason)

    def _record(self, timestamp_ms: int, asset: str, symbol: str | None, change: Decimal, reason: str) -> None:
        self.history.append(FundRecord(timestamp_ms, asset, symbol, change, self.balance(asset, symbol), reason))
