"""The risk scan: which margin units a mark-price tick makes liquidatable — screened fast, confirmed exactly.

Two scanners with one API and one test suite (ARCHITECTURE.md, "a naive reference and a fast implementation"):

- :class:`ReferenceScanner` — a plain loop evaluating the exact trigger of every unit exposed to the ticked
  markets.  Obviously correct, O(units) Fraction arithmetic per tick.
- :class:`FastScanner` — positions kept as per-market numpy arrays (struct of arrays), so a tick costs one pass
  over memory; every unit it flags is re-checked with the same exact formulas before it is reported
  ("screen fast, confirm exactly").

Margin units
------------
The scanners know nothing of the engine; they hold *margin units*, each under a caller-chosen hashable key
(the engine would use e.g. ``("isolated", account_id, symbol, slot)`` and ``("cross", account_id)``):

- an **isolated unit** (:meth:`Scanner.upsert_isolated`): one position — signed size ``q`` in one market —
  and the quote balance ``Q`` of its own margin account;
- a **cross unit** (:meth:`Scanner.upsert_cross`): an account's cross wallet — its collateral value ``C``
  (exact, already valued with haircuts by the engine) and its cross positions, in one or several markets
  (hedge mode: at most one long and one short leg per market).

Both are in the engine's quote-balance form: equity = balance + Σ q·M.  The requirement is the ``generic``
family's (the engine's rule, :meth:`perprisk.engine.Engine.position_maintenance`): per position, the tiered
``|q|·M·mmr − cum`` at the tier of the notional at the mark, plus the taker fee ``|q|·M·taker`` to close.
A unit is **liquidatable when equity ≤ requirement** (margin ratio ≥ 100 %, SPEC §2).  Order margin is not
part of the scan: the engine adds it in its own exact check.  Tier tables and taker fees are per market
(:class:`ScanMarket`, as in the engine's :class:`~perprisk.instrument.Instrument`).

``scan(symbol, mark)`` sets the mark and returns the keys of the units *exposed to that market* (holding a
position in it) that are liquidatable at the current marks, in first-insertion order (deterministic, and the
same list from both scanners).  Units in other markets cannot have changed; :meth:`Scanner.scan_all` checks
every unit.

How the fast scanner screens
----------------------------
For a single-leg unit (an isolated position, or a cross account with one position) the trigger
``f(M) = B + q·M − MM(|q|·M) − fee·|q|·M`` depends on one mark only, and in the notional ``n = |q|·M`` it is
``B + h_s(n)`` with ``h_s(n) = s·n − n·(mmr_t + fee) + cum_t`` on tier ``t``.  The ``cum`` recurrence makes
``h_s`` continuous; its slopes ``s − mmr_t − fee`` all have one sign in real tables (longs: positive as long
as ``mmr + fee < 1``; shorts: always negative), so ``h_s`` is strictly monotone and the unit has **one exact
liquidation threshold over all tiers**: a long is liquidatable iff ``M ≤ L``, a short iff ``M ≥ U``.  It is
solved once per update (a bisection over the market's tier breakpoints ``h_s(floor_t)`` and one division),
so tier changes between ticks need no work at all.  Per market the thresholds sit in two float64 arrays
(``lower`` for longs, ``upper`` for shorts) and a tick is one comparison pass ``L ≥ m`` / ``U ≤ m``.

Soundness of the float screen: ``L`` is computed exactly (Decimal with a trap on inexact steps, or Fraction),
the one division rounded toward the safe side; float conversion is correctly rounded and rounding is
monotone, so ``M ≤ L`` implies ``fl(M) ≤ fl(L)``: the screen cannot miss a liquidatable unit.  The thresholds
are widened by a relative ``epsilon`` (1e-9) on top — cheap belt and braces; a few units within a billionth
of their threshold become candidates the exact check turns down.

Every other unit — cross accounts with positions in several markets, hedged legs, and single legs in a
market whose tier table is not monotone — is an *account*: one slot in the account arrays.  Per market, the
account columns hold the affine form of the account's legs there within their current tiers,
``c0 + slope·M``, and the interval ``[lo, hi)`` of marks over which those tiers hold (zero slope and an
infinite interval where it has no position).  Account slots are aligned across markets, so the group sum over
an account's markets is a plain sum of columns, and ``value`` tracks ``f`` at the current marks less a
tolerance.  A tick of market X is a few contiguous passes over the accounts: ``value += slope_X·(m − m_prev)``;
accounts whose mark left ``[lo_X, hi_X)`` get their tiers recomputed and ``value`` corrected (this matters:
``f`` is concave, so a tier's line extended past its interval over-estimates ``f``); then one pass flags
``value ≤ 0``.  Because ``value`` is updated incrementally, it is rebuilt from the columns (vectorized)
every ``resync_every`` ticks and whenever a mark leaves ``[m_r/2, 2·m_r]`` of the mark ``m_r`` at the last
rebuild.  The tolerance ``epsilon·S``, with ``S`` a bound on the magnitudes summed into ``f`` for marks up to
``2·m_r``, is orders of magnitude above the accumulated rounding (≈ ``resync_every · 10 · 2⁻⁵³ · S``), so
again nothing liquidatable is missed.

Updates are O(1) amortized (O(legs) for a cross unit): slots come from free lists, arrays grow by doubling
and are never rebuilt per update; a removed unit's slot is reset to values that never flag.

Funding: stale units
--------------------
A funding settlement moves the balance of every unit of a market, by ``|q|·M·F`` per leg.  Re-valuing each
(an exact threshold per unit) was two thirds of a settlement's cost.  Instead the caller may declare the bound
(:meth:`Scanner.mark_stale`): every unit of the market becomes *stale*; the fast scanner widens the market's
arrays in one pass each (a threshold moves by at most ``M·|F| / sigma_min``, ``sigma_min`` the least slope of
``h_s`` over the tiers; an account's value by at most ``(ql + qs)·M·|F|``), so the screen still holds every
unit that may be liquidatable, and lists units that were never liquidatable for a check.  A stale candidate
is not confirmed with its old balance: it goes to :attr:`Scanner.stale_candidates`, the caller re-values it
exactly, and :meth:`Scanner.confirm_stale` checks it.  Units re-valued or stored again are fresh.
"""

from __future__ import annotations

import bisect
import decimal
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property
from typing import Hashable, Iterable, Iterator, Mapping, NamedTuple, Sequence, Union

import numpy as np

from perprisk.errors import ValidationError
from perprisk.formulas import FAMILIES, PositionLeg, Side
from perprisk.formulas.margin import is_liquidatable, maintenance_margin_in_tier
from perprisk.instrument import Instrument, TierTable
from perprisk.money import FRACTION_TYPES, Fraction, to_decimal

GENERIC = FAMILIES["generic"]
# The scanner's precomputations are written for the engine's rule; refuse to run on a changed definition.
if not (GENERIC.mm_at_price and GENERIC.uses_maintenance_amount and GENERIC.uses_taker_fee and GENERIC.tier_recheck):
    raise ImportError("perprisk.risk.scanner assumes the generic family: MM at the mark, with cum, fee and tier re-check")

#: Relative screening margin: thresholds are widened by it, and cross accounts are flagged within it.
EPSILON = 1e-9
#: Incremental cross-account values are rebuilt from their rows after this many ticks.
RESYNC_EVERY = 4096

Exact = Union[Decimal, Fraction]
MarkInput = Union[Decimal, Fraction, int, str]

ISOLATED = "isolated"
CROSS = "cross"

# Exact Decimal arithmetic for the threshold precomputation: any inexact step raises and falls back to Fraction.
_EXACT = decimal.Context(
    prec=120, Emin=-999_999, Emax=999_999,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)
# The one division of a threshold, rounded toward the safe side (a long's L up, a short's U down).
_TOWARD_PLUS = decimal.Context(
    prec=40, rounding=decimal.ROUND_CEILING, Emin=-999_999, Emax=999_999,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)
_TOWARD_MINUS = decimal.Context(
    prec=40, rounding=decimal.ROUND_FLOOR, Emin=-999_999, Emax=999_999,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero],
)


# ------------------------------------------------------------------------------------------------ values


@dataclass(frozen=True)
class ScanMarket:
    """A market as the scanner sees it: its tier table and the taker fee paid to close (the engine's rule)."""

    symbol: str
    tiers: TierTable
    taker_fee: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValidationError("symbol", "required, a non-empty string")
        if not isinstance(self.tiers, TierTable):
            raise ValidationError("tiers", f"{self.symbol}: required, a TierTable")
        fee = to_decimal(self.taker_fee, "taker_fee")
        if not (Decimal(-1) < fee < 1):
            raise ValidationError("taker_fee", f"{self.symbol}: a fee rate must lie in (-1, 1), got {fee}")
        object.__setattr__(self, "taker_fee", fee)
        tiers = self.tiers.tiers
        if not tiers or tiers[0].floor != 0:
            raise ValidationError("tiers", f"{self.symbol}: the first tier must start at notional 0")
        for prev, tier in zip(tiers, tiers[1:]):
            if tier.floor <= prev.floor or prev.cap != tier.floor:
                raise ValidationError("tiers", f"{self.symbol}: tier floors must increase, each the previous cap")
            # continuity of N·mmr − cum at each floor (SPEC §2): the scanner's thresholds rely on it
            if tier.maintenance_amount - prev.maintenance_amount != tier.floor * (tier.mmr - prev.mmr):
                raise ValidationError(
                    "tiers", f"{self.symbol} tier {tier.tier}: maintenance amount breaks the continuity of N·mmr − cum"
                )

    @classmethod
    def from_instrument(cls, instrument: Instrument) -> "ScanMarket":
        return cls(instrument.symbol, instrument.tiers, instrument.taker_fee)


class ScanPosition(NamedTuple):
    """One cross position: the market and the signed size in base units (> 0 long, < 0 short)."""

    symbol: str
    size: Decimal


@dataclass(frozen=True)
class ScanUnit:
    """A margin unit: ``balance`` (isolated quote balance, or cross collateral value) and its positions."""

    key: Hashable
    kind: str  # ISOLATED | CROSS
    balance: Exact
    positions: tuple[ScanPosition, ...]

    @cached_property
    def symbols(self) -> frozenset[str]:
        return frozenset(p.symbol for p in self.positions)

    @cached_property
    def exact(self) -> tuple[Fraction, tuple[tuple[str, Fraction], ...]]:
        """The balance and the signed sizes as Fractions (computed once, when the unit is first checked)."""
        return Fraction(self.balance), tuple((p.symbol, Fraction(p.size)) for p in self.positions)


# ----------------------------------------------------------------------------------------- exact formulas


def position_requirement(market: ScanMarket, size: Decimal, price: Fraction) -> Fraction:
    """Maintenance margin at ``price`` plus the taker fee to close — the engine's rule (``generic`` family).

    Exactly :meth:`perprisk.engine.Engine.position_maintenance`: the family's tiered maintenance margin at the
    tier of the notional at the price, and its closing fee.  (The generic family never reads the entry price
    for either, so the leg is built with the price in that field.)
    """
    side = Side.LONG if size > 0 else Side.SHORT
    leg = PositionLeg(market.symbol, side, abs(size), price, price, market.tiers)  # type: ignore[arg-type]
    return GENERIC.maintenance(leg, price) + GENERIC.closing_fee(leg, price, Fraction(market.taker_fee))


def exact_margin(
    unit: ScanUnit, markets: Mapping[str, ScanMarket], marks: Mapping[str, Fraction]
) -> tuple[Fraction, Fraction]:
    """``(equity, requirement)`` of a unit at the given marks, exactly: ``B + Σ q·M`` and ``Σ (MM + fee)``."""
    equity = Fraction(unit.balance)
    requirement = Fraction(0)
    for pos in unit.positions:
        price = marks[pos.symbol]
        equity += Fraction(pos.size) * price
        requirement += position_requirement(markets[pos.symbol], pos.size, price)
    return equity, requirement


# ----------------------------------------------------------------------------------------------- input


def _exact_mark(value: object, field: str) -> Fraction:
    if isinstance(value, FRACTION_TYPES):
        if value <= 0:
            raise ValidationError(field, f"must be greater than zero, got {value}")
        return value
    return Fraction(to_decimal(value, field, positive=True))


def _exact_balance(value: object, field: str) -> Exact:
    if type(value) is not Decimal and isinstance(value, FRACTION_TYPES):
        return value
    return to_decimal(value, field)


def _size(value: object, field: str) -> Decimal:
    size = to_decimal(value, field)
    if size == 0:
        raise ValidationError(field, "must not be zero (remove the unit when its position is closed)")
    return size


# ------------------------------------------------------------------------------------------ common base


class Scanner(ABC):
    """The scanner API shared by :class:`ReferenceScanner` and :class:`FastScanner`."""

    def __init__(self, markets: Iterable[ScanMarket], marks: Mapping[str, MarkInput] | None = None) -> None:
        self._markets: dict[str, ScanMarket] = {}
        for market in markets:
            if not isinstance(market, ScanMarket):
                raise ValidationError("markets", f"expected ScanMarket values, got {type(market).__name__}")
            if market.symbol in self._markets:
                raise ValidationError("markets", f"{market.symbol} given twice")
            self._markets[market.symbol] = market
        self._marks: dict[str, Fraction] = {}
        self._units: dict[Hashable, ScanUnit] = {}
        self._seq: dict[Hashable, int] = {}
        self._next_seq = 0
        #: Units the last scan evaluated exactly (the fast scanner's candidates; every exposed unit for the reference).
        self.last_candidate_count = 0
        # staleness (see :meth:`mark_stale`): a clock that ticks at every call, the tick at which each market
        # was last marked stale, and the tick at which each unit was last stored (units stored before the first
        # call are left out: 0)
        self._clock = 0
        self._stale_since: dict[str, int] = {}
        self._stored_at: dict[Hashable, int] = {}
        #: Keys of the stale units the last scan screened as candidates, unconfirmed (see :meth:`mark_stale`).
        self.stale_candidates: list[Hashable] = []
        for symbol, mark in (marks or {}).items():
            self.set_mark(symbol, mark)

    def __setstate__(self, state: dict) -> None:
        # a scanner pickled before staleness existed (an engine snapshot of an older version): nothing is stale
        for name, default in (("_clock", 0), ("_stale_since", {}), ("_stored_at", {}), ("stale_candidates", [])):
            state.setdefault(name, default)
        self.__dict__.update(state)

    # ----------------------------------------------------------------------------------- reading

    @property
    def markets(self) -> Mapping[str, ScanMarket]:
        return dict(self._markets)

    def mark(self, symbol: str) -> Fraction | None:
        self._market(symbol)
        return self._marks.get(symbol)

    def __len__(self) -> int:
        return len(self._units)

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._units
        except TypeError:
            return False

    def __iter__(self) -> Iterator[Hashable]:
        return iter(sorted(self._units, key=self._seq.__getitem__))

    def unit(self, key: Hashable) -> ScanUnit:
        return self._units[self._known(key)]

    def margin(self, key: Hashable) -> tuple[Fraction, Fraction]:
        """Exact ``(equity, requirement)`` of a unit at the current marks."""
        unit = self.unit(key)
        self._require_marks(unit.symbols, "key")
        return exact_margin(unit, self._markets, self._marks)

    def is_liquidatable(self, key: Hashable) -> bool:
        """The exact trigger at the current marks: equity ≤ requirement."""
        return is_liquidatable(*self.margin(key))

    # ---------------------------------------------------------------------------------- updating

    def set_mark(self, symbol: str, mark: MarkInput) -> None:
        """Record a mark without scanning (e.g. to seed the marks before cross units are added)."""
        self._market(symbol)
        self._apply_marks({symbol: _exact_mark(mark, "mark")})

    def upsert_isolated(self, key: Hashable, symbol: str, size: object, quote: object) -> None:
        """Add or replace an isolated unit: one position of signed ``size`` and its margin account's quote balance."""
        self._hashable(key)
        self._market(symbol)
        unit = ScanUnit(key, ISOLATED, _exact_balance(quote, "quote"), (ScanPosition(symbol, _size(size, "size")),))
        self._store(unit)

    def upsert_cross(
        self, key: Hashable, collateral: object, positions: Iterable[ScanPosition | tuple[str, object]]
    ) -> None:
        """Add or replace a cross unit: collateral value (exact) and its cross positions ``(symbol, size)``.

        A unit with positions in several markets (or two legs in one) needs a mark in each of its markets.
        """
        self._hashable(key)
        balance = _exact_balance(collateral, "collateral")
        legs: list[ScanPosition] = []
        sides: set[tuple[str, bool]] = set()
        for i, item in enumerate(positions):
            try:
                symbol, raw = item
            except (TypeError, ValueError):
                raise ValidationError(f"positions[{i}]", "expected (symbol, size)") from None
            self._market(symbol, f"positions[{i}].symbol")
            size = _size(raw, f"positions[{i}].size")
            side = (symbol, size > 0)
            if side in sides:
                raise ValidationError(f"positions[{i}]", f"{symbol}: two positions on the same side; merge them into one")
            sides.add(side)
            legs.append(ScanPosition(symbol, size))
        if not legs:
            raise ValidationError("positions", "at least one position is required (remove the unit when it has none)")
        unit = ScanUnit(key, CROSS, balance, tuple(legs))
        if len(legs) > 1:
            self._require_marks(unit.symbols, "positions")
        self._store(unit)

    def put(self, key: Hashable, kind: str, balance: Exact, positions: tuple[ScanPosition, ...]) -> None:
        """:meth:`upsert_isolated` / :meth:`upsert_cross` for a caller whose inputs are already exact and valid —
        the engine's own margin units: a known market for every leg, non-zero Decimal sizes, at most one leg per
        side of a market, an exact (Decimal or Fraction) balance.  Nothing is re-checked but the marks a
        several-leg unit needs."""
        unit = ScanUnit(key, kind, balance, positions)
        if len(positions) > 1:
            self._require_marks(unit.symbols, "positions")
        self._store(unit)

    def rebalance(self, key: Hashable, balance: object) -> None:
        """Give an existing unit a new balance (its quote, or its collateral value), its positions unchanged —
        what funding, fees and margin moves do; the same as upserting the unit again with that balance."""
        self.revalue(self._known(key), _exact_balance(balance, "balance"))

    def revalue(self, key: Hashable, balance: Exact) -> None:
        """:meth:`rebalance` for a caller whose key is known and whose balance is already exact (a Decimal or a
        Fraction) — the engine's own margin units, as :meth:`put`: nothing is re-checked."""
        old = self._units[key]
        unit = ScanUnit(old.key, old.kind, balance, old.positions)
        self._prepare(unit)  # may refuse (nothing changed yet)
        self._delete(old)
        self._units[unit.key] = unit
        self._stamp(key)
        self._insert(unit)

    def remove(self, key: Hashable) -> None:
        """Forget a unit (its position closed, or the account left cross margin)."""
        key = self._known(key)
        unit = self._units.pop(key)
        del self._seq[key]
        self._unstamp(key)
        self._delete(unit)

    def mark_stale(self, symbol: str, loss_per_size: object) -> None:
        """Every unit exposed to ``symbol`` may have lost up to ``loss_per_size`` of balance per unit of its
        size there (``Σ |q|·loss_per_size`` over its legs in ``symbol``), or gained any amount, and is not
        revalued one by one: what a funding settlement does to every position of a market
        (``loss_per_size = M·|F|``).

        The units become *stale* until they are stored or revalued again.  The screen is widened by the bound,
        so it still finds every unit that may be liquidatable; a stale candidate is not confirmed (its balance
        is old) but listed in :attr:`stale_candidates` after the scan.  The caller revalues those with their
        exact balances and calls :meth:`confirm_stale` (or scans again): with the scan's own keys, exactly what
        a scan over revalued units flags.  A settlement costs one pass over the market's arrays instead of a
        revaluation per unit.
        """
        self._market(symbol)
        bound = Fraction(_exact_balance(loss_per_size, "loss_per_size"))
        if bound < 0:
            raise ValidationError("loss_per_size", f"must not be negative, got {loss_per_size}")
        if bound == 0:
            return  # nothing moved (a zero rate)
        self._clock += 1
        self._stale_since[symbol] = self._clock
        self._widen(symbol, bound)

    def confirm_stale(self) -> list[Hashable]:
        """After the caller re-valued every unit of :attr:`stale_candidates`: those liquidatable now (the
        exact trigger, as a scan confirms a candidate), in first-insertion order; the list is emptied.  The same
        keys a second scan at the same marks would add to the first one's (the screen never misses a unit the
        exact trigger flags, so checking these alone is enough), without a second pass over the arrays."""
        keys, self.stale_candidates = self.stale_candidates, []
        found = []
        for key in keys:
            unit = self._units.get(key)
            if unit is None:
                continue  # removed since: nothing to liquidate
            if self._stale(unit):
                self.stale_candidates = keys
                raise ValidationError("stale_candidates", f"unit {key!r} was not re-valued")
            if self._confirm(unit):
                found.append(key)
        return found

    def is_stale(self, key: Hashable) -> bool:
        """Whether the unit's balance predates a :meth:`mark_stale` of one of its markets."""
        return self._stale(self.unit(key))

    # ------------------------------------------------------------------------------------ scanning

    def scan(self, symbol: str, mark: MarkInput) -> list[Hashable]:
        """Tick ``symbol`` to ``mark``; the keys of the units exposed to it that are liquidatable (confirmed exactly)."""
        return self.scan_marks({symbol: mark})

    def scan_marks(self, marks: Mapping[str, MarkInput]) -> list[Hashable]:
        """Tick several markets at once; keys of the units exposed to any of them that are liquidatable."""
        exact = {}
        for symbol, mark in marks.items():
            self._market(symbol)
            exact[symbol] = _exact_mark(mark, f"marks.{symbol}")
        if not exact:
            self.last_candidate_count = 0
            return []
        self._apply_marks(exact)
        self.stale_candidates = []
        keys = self._scan(frozenset(exact))
        if self.stale_candidates:
            self.stale_candidates.sort(key=self._seq.__getitem__)
        return sorted(keys, key=self._seq.__getitem__)

    def scan_all(self) -> list[Hashable]:
        """Every unit liquidatable at the current marks (markets without a mark are skipped)."""
        return self.scan_marks(dict(self._marks))

    # ------------------------------------------------------------------------------------ internal

    def _confirm(self, unit: ScanUnit) -> bool:
        return is_liquidatable(*exact_margin(unit, self._markets, self._marks))

    def _stale(self, unit: ScanUnit) -> bool:
        if not self._stale_since:
            return False
        stored = self._stored(unit)
        since = self._stale_since
        return any(since.get(symbol, 0) > stored for symbol in unit.symbols)

    def _stamp(self, key: Hashable) -> None:
        """Record that the unit under ``key`` was stored now (fresh)."""
        if self._clock:
            self._stored_at[key] = self._clock

    def _unstamp(self, key: Hashable) -> None:
        self._stored_at.pop(key, None)

    def _stored(self, unit: ScanUnit) -> int:
        """The clock when ``unit`` was last stored (0: before the first :meth:`mark_stale`)."""
        return self._stored_at.get(unit.key, 0)

    def _widen(self, symbol: str, bound: Fraction) -> None:
        """Widen the screen of ``symbol``'s units for balances lower by up to ``bound`` per unit of size (the
        fast scanner's arrays; nothing to do for a scanner that checks every unit)."""

    def _market(self, symbol: object, field: str = "symbol") -> ScanMarket:
        market = self._markets.get(symbol) if isinstance(symbol, str) else None
        if market is None:
            raise ValidationError(field, f"unknown market {symbol!r} (one of: {', '.join(self._markets)})")
        return market

    def _hashable(self, key: object) -> None:
        try:
            hash(key)
        except TypeError:
            raise ValidationError("key", f"must be hashable, got {type(key).__name__}") from None

    def _known(self, key: Hashable) -> Hashable:
        self._hashable(key)
        if key not in self._units:
            raise ValidationError("key", f"no unit {key!r}")
        return key

    def _require_marks(self, symbols: Iterable[str], field: str) -> None:
        missing = sorted(s for s in symbols if s not in self._marks)
        if missing:
            raise ValidationError(field, f"no mark yet for {', '.join(missing)}: set it first (set_mark or scan)")

    def _store(self, unit: ScanUnit) -> None:
        old = self._units.get(unit.key)
        self._prepare(unit)  # may refuse (nothing changed yet)
        if old is not None:
            self._delete(old)
        else:
            self._seq[unit.key] = self._next_seq
            self._next_seq += 1
        self._units[unit.key] = unit
        self._stamp(unit.key)
        self._insert(unit)

    def _apply_marks(self, marks: Mapping[str, Fraction]) -> None:
        self._marks.update(marks)

    def _prepare(self, unit: ScanUnit) -> None:
        """Refuse a unit this implementation cannot hold (before anything changes)."""

    @abstractmethod
    def _insert(self, unit: ScanUnit) -> None: ...

    @abstractmethod
    def _delete(self, unit: ScanUnit) -> None: ...

    @abstractmethod
    def _scan(self, ticked: frozenset[str]) -> list[Hashable]: ...


# -------------------------------------------------------------------------------------------- reference


class ReferenceScanner(Scanner):
    """The obviously-correct scan: a plain loop over the units, each checked with the exact formulas."""

    def _insert(self, unit: ScanUnit) -> None:
        pass

    def _delete(self, unit: ScanUnit) -> None:
        pass

    def _scan(self, ticked: frozenset[str]) -> list[Hashable]:
        found = []
        evaluated = 0
        for key, unit in self._units.items():
            if unit.symbols.isdisjoint(ticked):
                continue
            if self._stale(unit):
                self.stale_candidates.append(key)  # its balance is old: the caller revalues it
                continue
            evaluated += 1
            if self._confirm(unit):
                found.append(key)
        self.last_candidate_count = evaluated
        return found


# ------------------------------------------------------------------------------------------------- fast


class _Slots:
    """Struct-of-arrays columns with a free list: O(1) amortized alloc/free, capacity doubling, no rebuilds."""

    def __init__(self, columns: Mapping[str, tuple[type, float]], capacity: int = 64) -> None:
        self._columns = dict(columns)
        self.capacity = capacity
        self.hw = 0  # high-water mark: slots [0, hw) have been used; scans read that prefix
        self._free: list[int] = []
        self.live = 0
        self.col: dict[str, np.ndarray] = {
            name: np.full(capacity, fill, dtype=dtype) for name, (dtype, fill) in self._columns.items()
        }

    def alloc(self) -> int:
        self.live += 1
        if self._free:
            return self._free.pop()
        if self.hw == self.capacity:
            self._grow()
        self.hw += 1
        return self.hw - 1

    def free(self, slot: int) -> None:
        for name, (_, fill) in self._columns.items():
            self.col[name][slot] = fill
        self._free.append(slot)
        self.live -= 1

    def add_columns(self, columns: Mapping[str, tuple[type, float]]) -> None:
        """New columns, filled with their fill value for every slot (free or used)."""
        for name, (dtype, fill) in columns.items():
            self._columns[name] = (dtype, fill)
            self.col[name] = np.full(self.capacity, fill, dtype=dtype)

    def _grow(self) -> None:
        new = self.capacity * 2
        for name, (dtype, fill) in self._columns.items():
            arr = np.full(new, fill, dtype=dtype)
            arr[: self.capacity] = self.col[name]
            self.col[name] = arr
        self.capacity = new


class _Scratch:
    """Preallocated scratch arrays (two bool, one float, and one bool per 8 flags), grown by doubling."""

    def __init__(self) -> None:
        self._alloc(64)

    def _alloc(self, size: int) -> None:
        self.size = size
        self.flags = np.zeros(size, dtype=bool)
        self.flags2 = np.zeros(size, dtype=bool)
        self.floats = np.zeros(size)
        self.words = np.zeros(size // 8, dtype=bool)

    def reserve(self, n: int) -> "_Scratch":
        if n > self.size:
            size = max(n, 2 * self.size)
            self._alloc(size + (-size % 8))
        return self


_EIGHT = np.arange(8)


def _flagged(flags: np.ndarray, n: int, words: np.ndarray) -> np.ndarray:
    """Indices of the True values in ``flags[:n]``; ``flags`` is a scratch buffer of a multiple of 8 elements
    and ``words`` a bool scratch buffer of an eighth of its size.

    Looks at 8 flags per 64-bit word first: candidates are rare, so this is several times less work than
    ``flatnonzero`` over the flags (the bytes past ``n`` may hold stale flags: they are dropped).
    """
    n8 = n + (-n % 8)
    w = words[: n8 // 8]
    np.not_equal(flags[:n8].view(np.uint64), 0, out=w)
    hits = w.nonzero()[0]
    if hits.size == 0:
        return hits
    idx = (hits[:, None] * 8 + _EIGHT).reshape(-1)
    idx = idx[idx < n]
    return idx[flags[idx]]


class _SideTable(NamedTuple):
    """Exact breakpoints of ``h_s(n) = s·n − n·(mmr_t + fee) + cum_t`` for one side of one market."""

    sigma: tuple[Decimal, ...]  # slope s − mmr_t − fee on tier t
    cum: tuple[Decimal, ...]
    keys: tuple[Decimal, ...]  # h_s(floor_t), made increasing (negated for the short side) for bisection
    monotone: bool


class _Market:
    """Per-market state of the fast scanner: threshold arrays, tier tables, and the names of its account columns."""

    def __init__(self, market: ScanMarket, index: int) -> None:
        self.market = market
        tiers = market.tiers.tiers
        fee = market.taker_fee
        self.sides: dict[int, _SideTable] = {}
        for s in (1, -1):
            try:
                sigma = tuple(_EXACT.subtract(_EXACT.subtract(Decimal(s), t.mmr), fee) for t in tiers)
                values = tuple(_EXACT.add(_EXACT.multiply(t.floor, g), t.maintenance_amount) for t, g in zip(tiers, sigma))
            except decimal.DecimalException:  # absurd precision: route these units to the account path
                self.sides[s] = _SideTable((), (), (), False)
                continue
            monotone = all(g > 0 for g in sigma) if s > 0 else all(g < 0 for g in sigma)
            keys = values if s > 0 else tuple(-v for v in values)
            self.sides[s] = _SideTable(sigma, tuple(t.maintenance_amount for t in tiers), keys, monotone)
        # exact tier lookup for the confirmation (the tier of notional n: the last floor ≤ n)
        # (the same tiers with Fraction fields: maintenance_margin_in_tier then skips two conversions per call)
        self.exact_tiers = tuple(
            replace(t, floor=Fraction(t.floor), mmr=Fraction(t.mmr), maintenance_amount=Fraction(t.maintenance_amount))
            for t in tiers
        )
        self.exact_floors = [Fraction(t.floor) for t in tiers]
        self.exact_fee = Fraction(fee)
        # float tiers for the account columns (numpy arrays, and lists for the one-account path)
        self.floor_list = [float(t.floor) for t in tiers]
        self.next_floor_list = self.floor_list[1:] + [math.inf]
        self.rate_list = [float(t.mmr + fee) for t in tiers]
        self.cum_list = [float(t.maintenance_amount) for t in tiers]
        self.floors = np.array(self.floor_list)
        self.next_floors = np.array(self.next_floor_list)
        self.rates = np.array(self.rate_list)
        self.cums = np.array(self.cum_list)
        #: |slope| ≤ kappa·(ql + qs) and |c0| ≤ cmax for an account's terms in this market: magnitude bounds.
        self.kappa = 1.0 + max(float(t.mmr) for t in tiers) + abs(float(fee))
        self.cmax = 2.0 * max(abs(float(t.maintenance_amount)) for t in tiers)
        self.lower = _Slots({"thr": (np.float64, -np.inf), "owner": (np.int64, -1)})
        self.upper = _Slots({"thr": (np.float64, np.inf), "owner": (np.int64, -1)})
        # this market's columns in the account arrays
        self.slope, self.lo, self.hi, self.c0, self.ql, self.qs = (
            f"{name}{index}" for name in ("slope", "lo", "hi", "c0", "ql", "qs")
        )
        #: Per side, the least |slope| of ``h_s`` over the tiers (None: not monotone): a balance lower by ``b`` per
        #: unit of size moves a threshold by at most ``b / sigma_min`` (see :meth:`FastScanner._widen`).
        self.sigma_min = self._sigma_min()
        #: Handles of the single-leg units that are never liquidatable (in no threshold array), and those of them
        #: marked stale and not re-valued since (see :meth:`FastScanner._widen`).
        self.never: dict[int, None] = {}
        self.never_stale: list[int] = []
        self.exposed = 0  # accounts with a position in this market
        self.mark: float | None = None  # float of the current mark
        self.resync_mark: float | None = None  # mark at the last rebuild of the account values

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "sigma_min" not in state:  # pickled before staleness existed
            self.sigma_min = self._sigma_min()
            self.never = None  # type: ignore[assignment]  # listed again by FastScanner.__setstate__
            self.never_stale = []

    def _sigma_min(self) -> dict[int, Fraction | None]:
        return {s: min(abs(Fraction(g)) for g in table.sigma) if table.monotone and table.sigma else None
                for s, table in self.sides.items()}

    def columns(self) -> dict[str, tuple[type, float]]:
        return {
            self.slope: (np.float64, 0.0), self.lo: (np.float64, -np.inf), self.hi: (np.float64, np.inf),
            self.c0: (np.float64, 0.0), self.ql: (np.float64, 0.0), self.qs: (np.float64, 0.0),
        }

    def terms(self, ql: np.ndarray, qs: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Affine form ``c0 + slope·M`` of an account's legs in this market (long size ``ql``, short size ``qs``)
        in their tiers at mark ``m``, and the interval ``[lo, hi)`` of marks over which those tiers hold."""
        c0 = np.zeros(ql.shape)
        slope = np.zeros(ql.shape)
        lo = np.full(ql.shape, -np.inf)
        hi = np.full(ql.shape, np.inf)
        last = len(self.floor_list) - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            for size, s in ((ql, 1.0), (qs, -1.0)):
                held = size > 0
                if not held.any():
                    continue
                tier = np.clip(np.searchsorted(self.floors, size * m, side="right") - 1, 0, last)
                c0 += np.where(held, self.cums[tier], 0.0)
                slope += s * size - size * self.rates[tier]
                lo = np.maximum(lo, np.where(held, self.floors[tier] / size, -np.inf))
                hi = np.minimum(hi, np.where(held, self.next_floors[tier] / size, np.inf))
        return c0, slope, lo, hi

    def terms_one(self, ql: float, qs: float, m: float) -> tuple[float, float, float, float]:
        """:meth:`terms` for one account, in plain floats (numpy's call overhead dominates for a few)."""
        c0 = slope = 0.0
        lo, hi = -math.inf, math.inf
        last = len(self.floor_list) - 1
        for size, s in ((ql, 1.0), (qs, -1.0)):
            if size > 0:
                tier = min(max(bisect.bisect_right(self.floor_list, size * m) - 1, 0), last)
                c0 += self.cum_list[tier]
                slope += s * size - size * self.rate_list[tier]
                lo = max(lo, self.floor_list[tier] / size)
                hi = min(hi, self.next_floor_list[tier] / size)
        return c0, slope, lo, hi


class _Entry:
    """Where a unit lives in the fast scanner's arrays."""

    __slots__ = ("unit", "handle", "book", "slot", "acct", "markets", "stored_at")

    def __init__(self, unit: ScanUnit, handle: int, stored_at: int) -> None:
        self.unit = unit
        self.handle = handle
        self.stored_at = stored_at  # the scanner's clock when the unit was stored (see Scanner.mark_stale)
        self.book: _Slots | None = None  # threshold units: their book (a market's lower/upper) and slot
        self.slot = -1
        self.acct = -1  # account units: their account slot and markets
        self.markets: tuple[_Market, ...] = ()

    def __setstate__(self, state: tuple) -> None:
        self.stored_at = 0  # pickled before staleness existed
        for name, value in state[1].items():
            setattr(self, name, value)


class FastScanner(Scanner):
    """The scan at memory speed: per-market struct-of-arrays screening, exact confirmation of each candidate.

    Layout (see the module docstring for the reasoning and why the float screen never misses):

    - per market, ``lower``/``upper``: float64 thresholds and int64 owners of the single-leg units;
    - per account unit (cross accounts of several markets, hedged legs, non-monotone tables), one slot in the
      account arrays: ``value`` (tracked float of the trigger less the tolerance; +inf when free), ``balance``,
      and per market the columns ``slope``, ``lo``, ``hi``, ``c0``, ``ql``, ``qs`` of its legs there (zero /
      ±inf where it has none).  Account slots are aligned across markets, so the group sum over an account's
      markets is a plain column sum and a tick is contiguous passes — no scatter.  The price is memory: 48 bytes
      per account slot for every market some account trades (columns appear with the first such account).  For
      hundreds of markets, per-market sparse rows with a scatter (``np.add.at``) would be the better trade; it
      measured about twice slower per row here.
    """

    def __init__(
        self,
        markets: Iterable[ScanMarket],
        marks: Mapping[str, MarkInput] | None = None,
        *,
        epsilon: float = EPSILON,
        resync_every: int = RESYNC_EVERY,
    ) -> None:
        if not (isinstance(epsilon, float) and 1e-13 <= epsilon <= 1e-3):
            raise ValidationError("epsilon", f"a float in [1e-13, 1e-3], got {epsilon!r}")
        if not (isinstance(resync_every, int) and 1 <= resync_every <= 65_536):
            raise ValidationError("resync_every", f"an integer in [1, 65536], got {resync_every!r}")
        self.epsilon = epsilon
        self.resync_every = resync_every
        super().__init__(markets)
        self._index = {symbol: _Market(market, j) for j, (symbol, market) in enumerate(self._markets.items())}
        # a market's columns are added when an account first trades it (memory: 48 bytes per slot and market)
        self._accounts = _Slots({"value": (np.float64, np.inf), "balance": (np.float64, 0.0), "owner": (np.int64, -1)})
        self._entries: dict[Hashable, _Entry] = {}
        self._handles: list[_Entry | None] = []
        self._free_handles: list[int] = []
        self._scratch = _Scratch()
        self._ticks_since_resync = 0
        self._prepared: tuple[ScanUnit | None, tuple[str, float] | None] = (None, None)
        #: Number of full rebuilds of the account values so far (for tests and diagnostics).
        self.resyncs = 0
        for symbol, mark in (marks or {}).items():
            self.set_mark(symbol, mark)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        old = [mi for mi in self._index.values() if mi.never is None]  # pickled before staleness existed
        if not old:
            return
        for mi in old:
            mi.never = {}
        for entry in self._handles:  # list the units that are never liquidatable (in no threshold array)
            if entry is not None and entry.book is None and entry.acct < 0:
                self._index[entry.unit.positions[0].symbol].never[entry.handle] = None

    # ------------------------------------------------------------------------------------- marks

    def _apply_marks(self, marks: Mapping[str, Fraction]) -> None:
        super()._apply_marks(marks)
        self._move_accounts({s: float(m) for s, m in marks.items()})

    def _move_accounts(self, marks: Mapping[str, float]) -> None:
        """Move the account values along each ticked market (and re-tier accounts whose tiers changed)."""
        acc = self._accounts
        n = acc.hw
        moved = False
        for symbol, m in marks.items():
            mi = self._index[symbol]
            prev = mi.mark
            mi.mark = m
            if mi.exposed == 0 or prev is None:
                if mi.exposed == 0:
                    mi.resync_mark = m
                continue
            moved = True
            if m == prev:
                continue
            col = acc.col
            scratch = self._scratch.reserve(n)
            # value += slope·Δm for every account (zero slope where it has no position)
            step = np.multiply(col[mi.slope][:n], m - prev, out=scratch.floats[:n])
            np.add(col["value"][:n], step, out=col["value"][:n])
            # accounts whose legs here changed tier: [lo, hi) no longer holds the mark
            out_lo, out_hi = scratch.flags, scratch.flags2
            np.less(m, col[mi.lo][:n], out=out_lo[:n])
            np.greater_equal(m, col[mi.hi][:n], out=out_hi[:n])
            np.logical_or(out_lo[:n], out_hi[:n], out=out_lo[:n])
            stale = _flagged(out_lo, n, scratch.words)
            if stale.size:
                self._retier(mi, stale, m)
        if moved:
            self._ticks_since_resync += 1
            if self._ticks_since_resync >= self.resync_every or any(
                mi.exposed and mi.resync_mark is not None and not (mi.resync_mark / 2 <= mi.mark <= 2 * mi.resync_mark)
                for mi in self._index.values()
            ):
                self._resync()

    def _retier(self, mi: _Market, slots: np.ndarray, m: float) -> None:
        """Accounts whose mark left their tier interval: new affine terms, and the values corrected at ``m``."""
        col = self._accounts.col
        value, c0_col, slope_col, lo_col, hi_col = col["value"], col[mi.c0], col[mi.slope], col[mi.lo], col[mi.hi]
        if slots.size <= 16:  # the usual case: a few accounts crossed a tier floor — plain floats
            ql_col, qs_col = col[mi.ql], col[mi.qs]
            for slot in slots.tolist():
                c0, slope, lo, hi = mi.terms_one(float(ql_col[slot]), float(qs_col[slot]), m)
                value[slot] += (c0 - c0_col[slot]) + (slope - slope_col[slot]) * m
                c0_col[slot], slope_col[slot], lo_col[slot], hi_col[slot] = c0, slope, lo, hi
            return
        c0_v, slope_v, lo_v, hi_v = mi.terms(col[mi.ql][slots], col[mi.qs][slots], m)
        value[slots] += (c0_v - c0_col[slots]) + (slope_v - slope_col[slots]) * m
        c0_col[slots], slope_col[slots], lo_col[slots], hi_col[slots] = c0_v, slope_v, lo_v, hi_v

    def _resync(self) -> None:
        """Rebuild every account value from its terms at the current marks (vectorized; bounds the float drift).

        The tolerance ``epsilon·S`` uses ``S = |balance| + Σ_markets (cmax + 2·kappa·(ql + qs)·m)``: a bound on
        the magnitudes summed into the trigger for marks up to twice the current ones (a mark leaving
        ``[m/2, 2m]`` triggers the next rebuild).
        """
        acc = self._accounts
        col = acc.col
        n = acc.hw
        balance = col["balance"][:n]
        total = balance.copy()
        scale = np.abs(balance)
        for mi in self._index.values():
            mi.resync_mark = mi.mark
            if mi.exposed == 0 or mi.mark is None:
                continue
            m = mi.mark
            ql, qs = col[mi.ql][:n], col[mi.qs][:n]
            c0, slope, lo, hi = mi.terms(ql, qs, m)
            col[mi.c0][:n], col[mi.slope][:n], col[mi.lo][:n], col[mi.hi][:n] = c0, slope, lo, hi
            total += c0 + slope * m
            gross = ql + qs
            scale += np.where(gross > 0, mi.cmax, 0.0) + 2.0 * mi.kappa * m * gross
        value = total - self.epsilon * scale
        value[col["owner"][:n] < 0] = np.inf  # free slots never flag
        col["value"][:n] = value
        self._ticks_since_resync = 0
        self.resyncs += 1

    # ----------------------------------------------------------------------------------- updates

    def revalue(self, key: Hashable, balance: Exact) -> None:
        """As :meth:`Scanner.revalue`; a single-leg unit whose threshold stays in the same array (or stays
        "never") gets its new threshold written in its slot, without freeing and re-allocating it."""
        old = self._units[key]
        unit = ScanUnit(old.key, old.kind, balance, old.positions)
        entry = self._entries[key]
        if entry.acct < 0:
            bound = self._threshold(unit)
            if bound is not None:
                side, value = bound
                mi = self._index[unit.positions[0].symbol]
                book = None if side == "never" else mi.lower if side == "lower" else mi.upper
                if book is entry.book:
                    if book is not None:
                        book.col["thr"][entry.slot] = value
                    entry.unit = unit
                    entry.stored_at = self._clock
                    self._units[key] = unit
                    return
        super().revalue(key, balance)

    def _prepare(self, unit: ScanUnit) -> None:
        bound = self._threshold(unit)
        if bound is None:
            self._require_marks(unit.symbols, "positions")
        self._prepared = (unit, bound)

    def _threshold(self, unit: ScanUnit) -> tuple[str, float] | None:
        """``("lower", L)`` (liquidatable iff M ≤ L), ``("upper", U)`` (iff M ≥ U) or ``("never", 0)`` for a
        single-leg unit in a monotone market, widened by epsilon toward flagging; None: an account unit."""
        if len(unit.positions) != 1:
            return None
        symbol, size = unit.positions[0]
        s = 1 if size > 0 else -1
        table = self._index[symbol].sides[s]
        if not table.monotone:
            return None
        try:
            if type(unit.balance) is not Decimal:  # a Fraction (balances are Decimal or Fraction)
                raise decimal.Inexact
            return self._solve(table, s, _EXACT.minus(unit.balance), abs(size), exact=False)
        except decimal.DecimalException:
            return self._solve(table, s, -Fraction(unit.balance), Fraction(abs(size)), exact=True)

    def _solve(self, table: _SideTable, s: int, target: Exact, size: Exact, exact: bool) -> tuple[str, float]:
        """Solve ``h_s(|q|·M) = target`` (``target = −balance``): one bisection over the breakpoints, one division.

        Decimal inputs: exact steps (inexact ones raise) and the division rounded toward the safe side;
        otherwise exact Fractions.  The float is then correctly rounded, and widened by epsilon.
        """
        eps = self.epsilon
        if s > 0:  # h increasing from h(0): liquidatable iff M ≤ L
            if target < table.keys[0]:
                return ("never", 0.0)
            t = bisect.bisect_right(table.keys, target) - 1
            if exact:
                bound = float((target - Fraction(table.cum[t])) / (Fraction(table.sigma[t]) * size))
            else:
                num = _EXACT.subtract(target, table.cum[t])
                bound = float(_TOWARD_PLUS.divide(num, _EXACT.multiply(table.sigma[t], size)))
            return ("lower", bound * (1.0 + eps))
        # short: h decreasing from h(0): liquidatable iff M ≥ U
        if target >= -table.keys[0]:
            return ("upper", -math.inf)  # liquidatable at every price
        t = bisect.bisect_right(table.keys, -target) - 1
        if exact:
            bound = float((target - Fraction(table.cum[t])) / (Fraction(table.sigma[t]) * size))
        else:
            num = _EXACT.subtract(target, table.cum[t])
            bound = float(_TOWARD_MINUS.divide(num, _EXACT.multiply(table.sigma[t], size)))
        return ("upper", bound * (1.0 - eps))

    def _stamp(self, key: Hashable) -> None:
        pass  # the entry made by _insert carries the clock

    def _unstamp(self, key: Hashable) -> None:
        pass

    def _stored(self, unit: ScanUnit) -> int:
        return self._entries[unit.key].stored_at

    def _insert(self, unit: ScanUnit) -> None:
        if self._free_handles:
            handle = self._free_handles.pop()
        else:
            handle = len(self._handles)
            self._handles.append(None)
        entry = _Entry(unit, handle, self._clock)
        self._handles[handle] = entry
        self._entries[unit.key] = entry
        prepared, bound = self._prepared
        if prepared is not unit:
            bound = self._threshold(unit)
        self._prepared = (None, None)
        if bound is None:
            self._insert_account(entry)
            return
        side, value = bound
        mi = self._index[unit.positions[0].symbol]
        if side == "never":
            mi.never[handle] = None
            return
        book = mi.lower if side == "lower" else mi.upper
        slot = book.alloc()
        book.col["thr"][slot] = value
        book.col["owner"][slot] = handle
        entry.book, entry.slot = book, slot

    def _insert_account(self, entry: _Entry) -> None:
        unit = entry.unit
        acc = self._accounts
        acct = acc.alloc()
        col = acc.col
        legs: dict[str, list[float]] = {}
        for symbol, size in unit.positions:
            legs.setdefault(symbol, [0.0, 0.0])[0 if size > 0 else 1] += abs(float(size))
        balance = float(unit.balance)
        total = balance
        scale = abs(balance)
        markets = []
        for symbol, (ql, qs) in legs.items():
            mi = self._index[symbol]
            m = mi.mark
            assert m is not None  # checked by _prepare
            if mi.slope not in col:
                acc.add_columns(mi.columns())
            if mi.exposed == 0 or mi.resync_mark is None:
                mi.resync_mark = m
            mi.exposed += 1
            markets.append(mi)
            c0, slope, lo, hi = mi.terms_one(ql, qs, m)
            col[mi.c0][acct], col[mi.slope][acct], col[mi.lo][acct], col[mi.hi][acct] = c0, slope, lo, hi
            col[mi.ql][acct], col[mi.qs][acct] = ql, qs
            total += c0 + slope * m
            scale += mi.cmax + 2.0 * mi.kappa * max(m, mi.resync_mark) * (ql + qs)
        col["balance"][acct] = balance
        col["owner"][acct] = entry.handle
        col["value"][acct] = total - self.epsilon * scale
        entry.acct = acct
        entry.markets = tuple(markets)

    def _delete(self, unit: ScanUnit) -> None:
        entry = self._entries.pop(unit.key)
        if entry.book is not None:
            entry.book.free(entry.slot)
        elif entry.acct < 0:  # a unit that is never liquidatable
            self._index[unit.positions[0].symbol].never.pop(entry.handle, None)
        if entry.acct >= 0:
            self._accounts.free(entry.acct)
            for mi in entry.markets:
                mi.exposed -= 1
        self._handles[entry.handle] = None
        self._free_handles.append(entry.handle)

    # ---------------------------------------------------------------------------------- scanning

    def screen(self, ticked: Iterable[str]) -> np.ndarray:
        """Handles of the candidate units exposed to ``ticked`` at the current marks (the float screen only)."""
        ticked = [symbol for symbol in ticked if self._index[symbol].mark is not None]
        found: list[np.ndarray] = []
        accounts = False
        for symbol in ticked:
            mi = self._index[symbol]
            m = mi.mark
            for book, compare in ((mi.lower, np.greater_equal), (mi.upper, np.less_equal)):
                if book.live == 0:
                    continue
                hw = book.hw
                scratch = self._scratch.reserve(hw)
                compare(book.col["thr"][:hw], m, out=scratch.flags[:hw])
                slots = _flagged(scratch.flags, hw, scratch.words)
                if slots.size:
                    found.append(book.col["owner"][slots])
            accounts = accounts or mi.exposed > 0
        if accounts:
            found.append(self._screen_accounts(ticked))
        if not found:
            return np.zeros(0, dtype=np.int64)
        handles = np.concatenate(found) if len(found) > 1 else found[0]
        return handles

    def _screen_accounts(self, ticked: Sequence[str]) -> np.ndarray:
        """Handles of the accounts exposed to ``ticked`` whose tracked value is ≤ 0: one pass over the values."""
        acc = self._accounts
        n = acc.hw
        scratch = self._scratch.reserve(n)
        np.less_equal(acc.col["value"][:n], 0.0, out=scratch.flags[:n])
        handles = acc.col["owner"][_flagged(scratch.flags, n, scratch.words)]
        if handles.size == 0 or len(ticked) == len(self._index):
            return handles
        wanted = set(ticked)
        keep = [h for h in handles.tolist() if not self._handles[h].unit.symbols.isdisjoint(wanted)]  # type: ignore[union-attr]
        return np.array(keep, dtype=np.int64)

    def _confirm(self, unit: ScanUnit) -> bool:
        """The exact trigger with :func:`perprisk.formulas.margin.maintenance_margin_in_tier` and a bisection for
        the tier (the same tier as ``TierTable.tier_for_notional_clamped``: the last floor ≤ notional)."""
        marks = self._marks
        equity, sizes = unit.exact
        requirement = Fraction(0)
        for symbol, size in sizes:
            mi = self._index[symbol]
            price = marks[symbol]
            value = size * price
            equity += value
            notional = abs(value)  # marks are positive
            tier = mi.exact_tiers[bisect.bisect_right(mi.exact_floors, notional) - 1]
            requirement += maintenance_margin_in_tier(notional, tier, GENERIC.uses_maintenance_amount)
            if GENERIC.uses_taker_fee:
                requirement += notional * mi.exact_fee
        return is_liquidatable(equity, requirement)

    def _scan(self, ticked: frozenset[str]) -> list[Hashable]:
        handles = self.screen(ticked).tolist()
        self.last_candidate_count = len(handles)
        found = []
        stale = self.stale_candidates
        check = bool(self._stale_since)
        for h in handles:
            unit = self._handles[h].unit  # type: ignore[union-attr]
            if check and self._stale(unit):
                stale.append(unit.key)  # its balance is old: the caller revalues it (see mark_stale)
            elif self._confirm(unit):
                found.append(unit.key)
        if check:  # units that were never liquidatable may be now: the screen does not hold them
            for symbol in ticked:
                mi = self._index[symbol]
                if not mi.never_stale:
                    continue
                kept = []
                for h in mi.never_stale:  # those still never liquidatable and still stale (a freed handle's
                    entry = self._handles[h]  # new unit is stored after the marking: not stale)
                    if entry is not None and h in mi.never and self._stale(entry.unit):
                        stale.append(entry.unit.key)
                        kept.append(h)
                mi.never_stale = kept
        return found

    def _widen(self, symbol: str, bound: Fraction) -> None:
        """Balances lower by up to ``bound`` per unit of size: a long's threshold ``L`` (liquidatable iff
        ``M ≤ L``) rises by at most ``bound / sigma_min`` over all tiers (``h_s`` is monotone with slopes of at
        least ``sigma_min`` in magnitude), a short's ``U`` falls by at most as much; an account's tracked value
        and balance fall by at most ``(ql + qs)·bound``.  Each step is taken with an upward-rounded bound and
        then moved one float toward flagging, so the screen stays a superset of the exact trigger."""
        mi = self._index[symbol]
        mi.never_stale = list(mi.never)
        for book, s in ((mi.lower, 1), (mi.upper, -1)):
            sigma = mi.sigma_min[s]
            if book.live == 0 or sigma is None:
                continue
            delta = float(bound / sigma) * (1.0 + 1e-12)  # ≥ the exact shift (float() is correctly rounded)
            thr = book.col["thr"][: book.hw]
            finite = np.isfinite(thr)
            if s > 0:
                np.add(thr, delta, out=thr, where=finite)
                np.nextafter(thr, np.inf, out=thr, where=finite)
            else:
                np.subtract(thr, delta, out=thr, where=finite)
                np.nextafter(thr, -np.inf, out=thr, where=finite)
        acc = self._accounts
        n = acc.hw
        if mi.exposed == 0 or mi.ql not in acc.col or n == 0:
            return
        col = acc.col
        loss = (col[mi.ql][:n] + col[mi.qs][:n]) * (float(bound) * (1.0 + 1e-12))
        for name in ("value", "balance"):
            values = col[name][:n]
            finite = np.isfinite(values)
            np.subtract(values, loss, out=values, where=finite)
            np.nextafter(values, -np.inf, out=values, where=finite & (loss > 0))

    # ------------------------------------------------------------------------------- diagnostics

    def scan_bytes(self, symbols: Iterable[str] | None = None) -> int:
        """Bytes of the arrays a scan of ``symbols`` (default: every market) reads — the memory it must touch."""
        total = 0
        accounts = False
        n = self._accounts.hw
        for symbol in symbols if symbols is not None else self._index:
            mi = self._index[symbol]
            total += 8 * (mi.lower.hw * (mi.lower.live > 0) + mi.upper.hw * (mi.upper.live > 0))
            if mi.exposed:
                total += 8 * 4 * n  # slope, lo, hi read; value read and written
                accounts = True
        if accounts:
            total += 8 * n  # the flag pass over the values
        return total

    def layout(self) -> dict[str, int]:
        """How many units sit on each path (threshold arrays, account slots) — for diagnostics and benchmarks."""
        return {
            "units": len(self._units),
            "lower": sum(mi.lower.live for mi in self._index.values()),
            "upper": sum(mi.upper.live for mi in self._index.values()),
            "accounts": self._accounts.live,
            "account_markets": sum(mi.exposed for mi in self._index.values()),
        }
