"""Double-entry ledger: every balance change is a transfer between ledger accounts.

Balances are exact Decimals per (ledger account, asset).  Money enters and leaves only through the
``external`` account (deposits and withdrawals), so at every moment::

    Σ balances of all non-external accounts  ==  Σ deposits − Σ withdrawals  ==  −balance(external)

Traders' margin accounts hold a *quote balance* in the dYdX sense: buying ``q`` at ``P`` moves ``q·P`` from the
buyer's margin account to the seller's, so a fill conserves value by construction and the equity of a margin
account is ``quote + Σ s·q·M`` over its positions.  Insurance fund, fee account, platform and the liquidation
engine are ledger accounts like any trader's.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Iterator

from perprisk.errors import ValidationError
from perprisk.money import EXACT_CONTEXT, ZERO

EXTERNAL = "external"
INSURANCE_FUND = "insurance_fund"
FEES = "fees"
PLATFORM = "platform"
LIQUIDATION_ENGINE = "liquidation_engine"


#: The engine account id of the liquidation engine (its positions are real and count in open interest).
LIQUIDATION_ENGINE_ID = 0


def trader_account(account_id: int) -> str:
    """The cross wallet of a trader (the liquidation engine's for id 0)."""
    return LIQUIDATION_ENGINE if account_id == LIQUIDATION_ENGINE_ID else f"trader/{account_id}"


def isolated_account(account_id: int, symbol: str, side: str) -> str:
    """The margin account of one isolated position (side ``both`` in one-way mode)."""
    return f"trader/{account_id}/isolated/{symbol}/{side}"


@dataclass(frozen=True, slots=True)
class Transfer:
    sequence: int
    source: str
    destination: str
    asset: str
    amount: Decimal
    reason: str


class Ledger:
    """Exact double-entry balances with an optional in-memory history of transfers."""

    def __init__(self, keep_history: bool = True) -> None:
        #: asset → ledger account → balance.  Asset-major, so a total is one C-level sum over one dict's values
        #: (the conservation check of a million-account run) and an account costs no dict of its own.
        self._balances: dict[str, dict[str, Decimal]] = {}
        self._history: list[Transfer] | None = [] if keep_history else None
        self._sequence = 0
        #: Ledger accounts whose balances changed since the last :meth:`drain_touched` (for incremental scans).
        self.touched: set[str] = set()
        self._watchers: list[set[str]] = []  # see :meth:`watch`

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_watchers"] = []  # watchers belong to live consumers, not to a snapshot
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        by_account = state.pop("_accounts", None)
        if by_account is not None:  # a snapshot from before the asset-major layout: account → asset → balance
            balances: dict[str, dict[str, Decimal]] = {}
            for acct, assets in by_account.items():  # type: ignore[union-attr]
                for asset, bal in assets.items():
                    balances.setdefault(asset, {})[acct] = bal
            state["_balances"] = balances
        self.__dict__.update(state)
        self.__dict__.setdefault("_watchers", [])

    def watch(self) -> set[str]:
        """A set of ledger accounts that every later transfer adds its source and destination to — zero amounts
        included: a trade moves each leg's fee from its margin account even when the fee is zero, so a watcher
        sees position changes too.  Independent of :attr:`touched` (which the engine's scanner drains); the
        consumer clears its own set.  :meth:`unwatch` ends it."""
        watcher: set[str] = set()
        self._watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: set[str]) -> None:
        self._watchers = [w for w in self._watchers if w is not watcher]

    # -------------------------------------------------------------------------------------------- moves

    def transfer(self, source: str, destination: str, asset: str, amount: Decimal, reason: str) -> Transfer | None:
        """Move ``amount`` of ``asset`` from ``source`` to ``destination``; a zero amount is a no-op.  Returns the
        transfer's record when the ledger keeps its history (else, and for a zero amount, None).

        Negative amounts are refused (say the transfer the other way); whether an account may go negative is a
        business rule checked by the caller *before* it transfers.
        """
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise ValidationError("amount", f"a finite Decimal is required, got {amount!r}")
        if amount < 0:
            raise ValidationError("amount", f"must not be negative, got {amount} ({reason})")
        if source == destination:
            raise ValidationError("destination", f"cannot transfer from {source} to itself")
        for watcher in self._watchers:
            watcher.add(source)
            watcher.add(destination)
        if amount == 0:
            return None
        balances = self._balances.get(asset)
        if balances is None:
            balances = self._balances[asset] = {}
        try:  # exact, or refused before anything changes (a balance beyond 60 significant digits)
            new_src = EXACT_CONTEXT.subtract(balances.get(source, ZERO), amount)
            new_dst = EXACT_CONTEXT.add(balances.get(destination, ZERO), amount)
        except decimal.Inexact:
            raise ValidationError("amount", f"{amount} would make a balance need more than 60 significant "
                                  f"digits ({reason})") from None
        balances[source] = new_src
        balances[destination] = new_dst
        self.touched.add(source)
        self.touched.add(destination)
        self._sequence += 1
        if self._history is None:  # no record is built when nothing keeps it
            return None
        record = Transfer(self._sequence, source, destination, asset, amount, reason)
        self._history.append(record)
        return record

    def move(self, source: str, destination: str, asset: str, amount: Decimal, reason: str) -> None:
        """Like :meth:`transfer` but a negative amount moves the other way (for signed PnL and funding)."""
        if amount < 0:
            self.transfer(destination, source, asset, amount.copy_negate(), reason)  # exact: no context
        else:
            self.transfer(source, destination, asset, amount, reason)

    def move_many(self, source: str, moves: Iterable[tuple[str, Decimal]], asset: str, reason: str) -> None:
        """:meth:`move` from one ``source`` to many ``(destination, amount)``, in order: the same balances,
        records, touched accounts and watchers as calling it for each, in one loop (a market's funding).  A
        refused move raises as :meth:`transfer` does, with the moves before it applied, as a loop of
        :meth:`move` would leave them."""
        balances = self._balances.get(asset)  # made at the first non-zero move, as transfer() does
        subtract, add = EXACT_CONTEXT.subtract, EXACT_CONTEXT.add
        touched, watchers, history = self.touched, self._watchers, self._history
        for destination, amount in moves:
            if not isinstance(amount, Decimal) or not amount.is_finite():
                raise ValidationError("amount", f"a finite Decimal is required, got {amount!r}")
            if destination == source:
                raise ValidationError("destination", f"cannot transfer from {source} to itself")
            if amount < 0:  # the other way, as move() does
                src, dst, amount = destination, source, amount.copy_negate()  # exact: no context
            else:
                src, dst = source, destination
            for watcher in watchers:
                watcher.add(src)
                watcher.add(dst)
            if amount == 0:
                continue
            if balances is None:
                balances = self._balances[asset] = {}
            try:
                new_src = subtract(balances.get(src, ZERO), amount)
                new_dst = add(balances.get(dst, ZERO), amount)
            except decimal.Inexact:
                raise ValidationError("amount", f"{amount} would make a balance need more than 60 significant "
                                      f"digits ({reason})") from None
            balances[src] = new_src
            balances[dst] = new_dst
            touched.add(src)
            touched.add(dst)
            self._sequence += 1
            if history is not None:
                history.append(Transfer(self._sequence, src, dst, asset, amount, reason))

    # -------------------------------------------------------------------------------------------- reads

    def drain_touched(self) -> set[str]:
        touched, self.touched = self.touched, set()
        return touched

    def balance(self, account: str, asset: str) -> Decimal:
        balances = self._balances.get(asset)
        return ZERO if balances is None else balances.get(account, ZERO)

    def holders(self, asset: str) -> int:
        """How many ledger accounts have a balance entry in ``asset`` (0: nobody has ever held it, or it was
        never moved; a positive count may include accounts back at zero)."""
        balances = self._balances.get(asset)
        return 0 if balances is None else len(balances)

    def balances_of(self, account: str) -> dict[str, Decimal]:
        """The non-zero balances of one ledger account, by asset (in the order the ledger first saw each asset)."""
        out: dict[str, Decimal] = {}
        for asset, balances in self._balances.items():
            bal = balances.get(account)
            if bal:
                out[asset] = bal
        return out

    def items(self) -> Iterator[tuple[tuple[str, str], Decimal]]:
        return iter(sorted(((acct, asset), bal) for asset, balances in self._balances.items() for acct, bal in balances.items()))

    def assets(self) -> set[str]:
        return set(self._balances)

    def total(self, asset: str, include_external: bool = False) -> Decimal:
        return self.totals(include_external).get(asset, ZERO)

    def totals(self, include_external: bool = False) -> dict[str, Decimal]:
        """Σ balances per asset over the internal accounts (and ``external`` if asked), exactly, in one pass."""
        try:
            with decimal.localcontext(EXACT_CONTEXT):  # every addition exact, or Inexact is raised
                return self._totals(include_external)
        except decimal.Inexact:  # beyond 60 digits: add again at unbounded precision (still exact)
            with decimal.localcontext(decimal.Context(prec=decimal.MAX_PREC, traps=[decimal.Inexact])):
                return self._totals(include_external)

    def _totals(self, include_external: bool) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for asset in sorted(self._balances):
            balances = self._balances[asset]
            total = sum(balances.values(), ZERO)  # one C-level pass over the asset's balances
            if not include_external:
                total -= balances.get(EXTERNAL, ZERO)
            out[asset] = total
        return out

    def conservation_error(self) -> dict[str, Decimal]:
        """Per asset: Σ internal balances − (deposits − withdrawals); all zero when money is conserved."""
        totals = self.totals()  # has every asset of the ledger (see _totals): no second pass to list them
        with decimal.localcontext(decimal.Context(prec=decimal.MAX_PREC)):  # the difference exact, never rounded
            return {asset: totals[asset] + self.balance(EXTERNAL, asset) for asset in sorted(totals)}

    def history(self, account: str | None = None) -> Iterable[Transfer]:
        if self._history is None:
            return ()
        if account is None:
            return tuple(self._history)
        return tuple(t for t in self._history if account in (t.source, t.destination))

    @property
    def sequence(self) -> int:
        return self._sequence

    def snapshot(self) -> dict[str, dict[str, str]]:
        """Plain data for snapshots and the state hash (non-zero balances only, sorted)."""
        return dict(self.snapshot_items())

    def snapshot_items(self) -> Iterator[tuple[str, dict[str, str]]]:
        """:meth:`snapshot`'s entries one ledger account at a time, sorted by account (accounts whose balances are
        all zero left out)."""
        current: str | None = None
        balances: dict[str, str] = {}
        for (acct, asset), bal in self.items():
            if bal == 0:
                continue
            if acct != current:
                if balances:
                    yield current, balances  # type: ignore[misc]
                current, balances = acct, {}
            balances[asset] = str(bal)
        if balances:
            yield current, balances  # type: ignore[misc]
