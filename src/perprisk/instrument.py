"""Instrument specifications and risk-tier (leverage bracket) tables.

A tier table is an ordered list of notional brackets ``[floor, cap)`` each with a maintenance margin rate
(mmr), a maximum leverage and a maintenance amount (Binance ``cum``, Bybit "MM deduction").  Maintenance
amounts follow SPEC §2: ``cum_1 = 0``, ``cum_n = cum_{n-1} + floor_n·(mmr_n − mmr_{n-1})`` so that
``MM = N·mmr − cum`` is continuous across tiers.  Tables are validated when built; a bad table is refused
with the tier and the field named.
"""

from __future__ import annotations

import json
import math
import tomllib
import weakref
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from perprisk.errors import ValidationError
from perprisk.money import FRACTION_TYPES, ZERO, Fraction, to_decimal


@dataclass(frozen=True, slots=True)
class RiskTier:
    """One bracket: notional in ``[floor, cap)`` (``cap`` None = unbounded)."""

    tier: int
    floor: Decimal
    cap: Decimal | None
    mmr: Decimal
    max_leverage: Decimal
    maintenance_amount: Decimal

    def contains(self, notional: Decimal) -> bool:
        return self.floor <= notional and (self.cap is None or notional < self.cap)


@dataclass(frozen=True, slots=True)
class TierSpec:
    """Raw tier as read from a file, before the table is checked (``maintenance_amount`` may be absent)."""

    floor: object
    cap: object
    mmr: object
    max_leverage: object
    maintenance_amount: object = None


def derive_maintenance_amounts(floors: Sequence[Decimal], mmrs: Sequence[Decimal]) -> list[Decimal]:
    """The maintenance-amount recurrence of SPEC §2 (continuity of ``N·mmr − cum`` at each floor)."""
    amounts: list[Decimal] = []
    for i, (floor, mmr) in enumerate(zip(floors, mmrs)):
        amounts.append(ZERO if i == 0 else amounts[-1] + floor * (mmr - mmrs[i - 1]))
    return amounts


@dataclass(frozen=True)
class TierTable:
    """A validated, ordered risk-tier table for one symbol."""

    symbol: str
    tiers: tuple[RiskTier, ...]

    @classmethod
    def from_specs(cls, symbol: str, specs: Sequence[TierSpec]) -> "TierTable":
        """Validate and build; refuses non-increasing floors, gaps, mmr ∉ (0, 1], leverage < 1, bad cum."""
        if not specs:
            raise ValidationError("tiers", f"{symbol}: the tier table is empty")
        floors, caps, mmrs, levs = [], [], [], []
        for i, spec in enumerate(specs, start=1):
            where = f"tiers[{i}]"
            floor = to_decimal(spec.floor, f"{where}.floor", non_negative=True)
            cap = None if spec.cap is None else to_decimal(spec.cap, f"{where}.cap", positive=True)
            mmr = to_decimal(spec.mmr, f"{where}.mmr")
            if not (ZERO < mmr <= 1):
                raise ValidationError(f"{where}.mmr", f"{symbol} tier {i}: mmr must lie in (0, 1], got {mmr}")
            lev = to_decimal(spec.max_leverage, f"{where}.max_leverage")
            if lev < 1:
                raise ValidationError(
                    f"{where}.max_leverage", f"{symbol} tier {i}: max leverage must be at least 1, got {lev}"
                )
            if i == 1 and floor != 0:
                raise ValidationError(f"{where}.floor", f"{symbol} tier 1: the first floor must be 0, got {floor}")
            if i > 1:
                if floor <= floors[-1]:
                    raise ValidationError(
                        f"{where}.floor",
                        f"{symbol} tier {i}: floors must increase, {floor} does not exceed {floors[-1]}",
                    )
                if caps[-1] is None or caps[-1] != floor:
                    raise ValidationError(
                        f"{where}.floor",
                        f"{symbol} tier {i}: floor {floor} must equal the previous tier's cap {caps[-1]} (no gaps)",
                    )
            if cap is not None and cap <= floor:
                raise ValidationError(f"{where}.cap", f"{symbol} tier {i}: cap {cap} must exceed floor {floor}")
            if cap is None and i != len(specs):
                raise ValidationError(f"{where}.cap", f"{symbol} tier {i}: only the last tier may be unbounded")
            floors.append(floor)
            caps.append(cap)
            mmrs.append(mmr)
            levs.append(lev)
        amounts = derive_maintenance_amounts(floors, mmrs)
        for i, (spec, derived) in enumerate(zip(specs, amounts), start=1):
            if spec.maintenance_amount is None:
                continue
            given = to_decimal(spec.maintenance_amount, f"tiers[{i}].maintenance_amount")
            if given != derived:
                raise ValidationError(
                    f"tiers[{i}].maintenance_amount",
                    f"{symbol} tier {i}: maintenance amount {given} disagrees with {derived} derived from "
                    "floors and mmrs (cum_n = cum_{n-1} + floor_n·(mmr_n − mmr_{n-1}))",
                )
        tiers = tuple(
            RiskTier(i, f, c, m, lv, a)
            for i, (f, c, m, lv, a) in enumerate(zip(floors, caps, mmrs, levs, amounts), start=1)
        )
        return cls(symbol, tiers)

    @classmethod
    def from_brackets(
        cls, symbol: str, brackets: Iterable[tuple[object, object, object]], last_cap: object = None
    ) -> "TierTable":
        """Build from ``(floor, mmr, max_leverage)`` rows; each cap is the next floor, the last is ``last_cap``."""
        rows = list(brackets)
        specs = [
            TierSpec(floor, rows[i + 1][0] if i + 1 < len(rows) else last_cap, mmr, lev)
            for i, (floor, mmr, lev) in enumerate(rows)
        ]
        return cls.from_specs(symbol, specs)

    @classmethod
    def single(cls, symbol: str, mmr: object, maintenance_amount: object = 0, max_leverage: object = 125) -> "TierTable":
        """A one-tier table for an explicit mmr and maintenance amount (no bracket information)."""
        mmr_d = to_decimal(mmr, "mmr")
        if not (ZERO < mmr_d <= 1):
            raise ValidationError("mmr", f"must lie in (0, 1], got {mmr_d}")
        amount = to_decimal(maintenance_amount, "maintenance_amount", non_negative=True)
        lev = to_decimal(max_leverage, "max_leverage")
        if lev < 1:
            raise ValidationError("max_leverage", f"must be at least 1, got {lev}")
        return cls(symbol, (RiskTier(1, ZERO, None, mmr_d, lev, amount),))

    def tier_for_notional(self, notional: Decimal) -> RiskTier:
        """The tier with ``floor ≤ notional < cap``; a notional beyond the last cap is refused."""
        if notional < 0:
            raise ValidationError("notional", f"must not be negative, got {notional}")
        for tier in self.tiers:
            if tier.contains(notional):
                return tier
        raise ValidationError(
            "notional", f"{self.symbol}: notional {notional} is at or beyond the last tier's cap {self.tiers[-1].cap}"
        )

    def tier_for_notional_clamped(self, notional) -> RiskTier:
        """Like :meth:`tier_for_notional`, but a notional beyond the last cap gets the last tier.

        Used when solving for prices, where a hypothetical notional may exceed what the exchange would accept.
        """
        if notional < 0:
            raise ValidationError("notional", f"must not be negative, got {notional}")
        return self.tiers[tier_index(self).clamped_position(notional)]

    @property
    def max_notional(self) -> Decimal | None:
        return self.tiers[-1].cap

    def max_leverage_for_notional(self, notional: Decimal) -> Decimal:
        return self.tier_for_notional(notional).max_leverage


# ------------------------------------------------------------------------------ exact index (a cache)


def _common(values: Sequence[object]) -> tuple[int, tuple[int, ...]]:
    """``(D, (n_1, …))`` with ``values[i] == n_i / D`` exactly (D the least common denominator)."""
    ratios = [v.as_integer_ratio() for v in values]  # type: ignore[attr-defined]
    den = math.lcm(1, *(d for _, d in ratios))
    return den, tuple(n * (den // d) for n, d in ratios)


def _finite(value: object) -> bool:
    return isinstance(value, (int, *FRACTION_TYPES)) or (isinstance(value, Decimal) and value.is_finite())


@dataclass(frozen=True, slots=True)
class TierIndex:
    """A tier table's numbers as integers over common denominators, built once per table (see :func:`tier_index`).

    ``mmr_k = mmr_nums[k] / mmr_den``, ``maintenance_amount_k = amount_nums[k] / amount_den``,
    ``floor_k = floor_nums[k] / floor_den``; ``exact`` says those are available (finite numbers: always for
    validated tables).  When the caps strictly increase with only the last one unbounded (``bisectable``), the
    clamped tier lookup is a bisection; ``contiguous`` additionally says that every floor after the first is the
    previous cap and is positive — the shape ``TierTable.from_specs`` guarantees, under which the tier of a
    notional in ``[floor_k, floor_{k+1})`` is tier ``k``.  Hand-built tables of other shapes keep the plain scan.
    """

    tiers: tuple[RiskTier, ...]
    exact: bool
    mmr_den: int
    mmr_nums: tuple[int, ...]
    amount_den: int
    amount_nums: tuple[int, ...]
    bisectable: bool
    caps: tuple[Decimal, ...]  # the bounded caps, increasing (bisectable tables only)
    cap_den: int
    cap_nums: tuple[int, ...]
    contiguous: bool
    floor_den: int
    floor_nums: tuple[int, ...]
    #: further figures derived from the table alone, memoized by the formulas that use them (keyed by them)
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, table: TierTable) -> TierIndex:
        tiers = table.tiers
        exact = all(_finite(t.mmr) and _finite(t.maintenance_amount) for t in tiers)
        mmr_den, mmr_nums = _common([t.mmr for t in tiers]) if exact else (1, ())
        amount_den, amount_nums = _common([t.maintenance_amount for t in tiers]) if exact else (1, ())
        caps = [t.cap for t in tiers]
        bounded = tuple(c for c in caps if c is not None)
        bisectable = (
            all(c is not None for c in caps[:-1])
            and all(_finite(c) for c in bounded)
            and all(a < b for a, b in pairwise(bounded))
        )
        cap_den, cap_nums = _common(bounded) if bisectable else (1, ())
        floors = [t.floor for t in tiers]
        contiguous = (
            exact
            and bisectable
            and all(_finite(f) for f in floors)
            and all(floors[k] == caps[k - 1] for k in range(1, len(tiers)))
            and (len(tiers) == 1 or floors[1] > 0)
        )
        floor_den, floor_nums = _common(floors) if contiguous else (1, ())
        return cls(tiers, exact, mmr_den, mmr_nums, amount_den, amount_nums, bisectable,
                   bounded if bisectable else (), cap_den, cap_nums, contiguous, floor_den, floor_nums)

    def clamped_position(self, notional) -> int:
        """Position in the table of the first tier whose cap exceeds ``notional`` (else the last); ``notional ≥ 0``."""
        kind = type(notional)
        if self.bisectable:
            if kind is Decimal and notional.is_finite():
                return min(bisect_right(self.caps, notional), len(self.tiers) - 1)
            if kind is Fraction or kind is int:
                return self.clamped_position_of_ratio(notional.numerator, notional.denominator)
        for k, tier in enumerate(self.tiers):
            if tier.cap is None or notional < tier.cap:
                return k
        return len(self.tiers) - 1

    def clamped_position_of_ratio(self, numerator: int, denominator: int) -> int:
        """:meth:`clamped_position` of the notional ``numerator / denominator`` (``denominator > 0``).

        ``n/d < cap_k = C_k/D`` ⇔ ``⌊n·D/d⌋ < C_k`` (C_k an integer): one division, then a bisection.
        """
        if not self.bisectable:
            return self.clamped_position(Fraction(numerator, denominator))
        scaled = (numerator * self.cap_den) // denominator
        return min(bisect_right(self.cap_nums, scaled), len(self.tiers) - 1)


_INDEXES: dict[int, tuple[weakref.ref[TierTable], TierIndex]] = {}


def tier_index(table: TierTable) -> TierIndex:
    """The :class:`TierIndex` of ``table``, cached by identity for as long as the table lives.

    Kept beside the table rather than on it, so tables pickle, compare and print exactly as before.
    """
    key = id(table)
    entry = _INDEXES.get(key)
    if entry is not None and entry[0]() is table:
        index = entry[1]
        if index.tiers is table.tiers:
            return index
    index = TierIndex.build(table)
    _INDEXES[key] = (weakref.ref(table, lambda _ref, key=key: _drop_index(key, _ref)), index)
    return index


def _drop_index(key: int, ref: weakref.ref[TierTable]) -> None:
    entry = _INDEXES.get(key)
    if entry is not None and entry[0] is ref:
        del _INDEXES[key]


# ---------------------------------------------------------------------------------------------- loaders


def normalize_symbol(symbol: str) -> str:
    """``BTC/USDT:USDT`` → ``BTCUSDT``; ``btcusdt`` → ``BTCUSDT``."""
    text = symbol.strip().upper()
    if ":" in text:
        text = text.split(":", 1)[0]
    return text.replace("/", "").replace("-", "").replace("_", "")


def _is_ccxt_shape(doc: object) -> bool:
    return (
        isinstance(doc, Mapping)
        and bool(doc)
        and all(isinstance(v, list) for v in doc.values())
        and all(isinstance(t, Mapping) and ("minNotional" in t or "maintenanceMarginRate" in t)
                for v in doc.values() for t in v)
    )


def _specs_from_ccxt(symbol: str, rows: list) -> list[TierSpec]:
    specs = []
    for i, row in enumerate(rows, start=1):
        for key in ("minNotional", "maxNotional", "maintenanceMarginRate", "maxLeverage"):
            last_cap = key == "maxNotional" and i == len(rows) and row.get(key, 0) is None  # unbounded last tier
            if (key not in row or row[key] is None) and not last_cap:
                raise ValidationError(f"{symbol}.tiers[{i}].{key}", "missing in the ccxt leverage-tier row")
        info = row.get("info") or {}
        cum = info.get("cum")
        specs.append(
            TierSpec(row["minNotional"], row["maxNotional"], row["maintenanceMarginRate"], row["maxLeverage"], cum)
        )
    return specs


def _specs_from_simple(symbol: str, rows: list) -> list[TierSpec]:
    specs = []
    allowed = {"floor", "cap", "mmr", "max_leverage", "maintenance_amount"}
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise ValidationError(f"{symbol}.tiers[{i}]", "each tier must be a table/object")
        unknown = set(row) - allowed
        if unknown:
            raise ValidationError(f"{symbol}.tiers[{i}].{sorted(unknown)[0]}", f"unknown field (allowed: {sorted(allowed)})")
        for key in ("floor", "mmr", "max_leverage"):
            if key not in row:
                raise ValidationError(f"{symbol}.tiers[{i}].{key}", "missing")
        specs.append(
            TierSpec(row["floor"], row.get("cap"), row["mmr"], row["max_leverage"], row.get("maintenance_amount"))
        )
    # a simple table may omit caps: each cap is the next floor
    filled = []
    for i, spec in enumerate(specs):
        cap = spec.cap
        if cap is None and i + 1 < len(specs):
            cap = specs[i + 1].floor
        filled.append(TierSpec(spec.floor, cap, spec.mmr, spec.max_leverage, spec.maintenance_amount))
    return filled


def parse_tier_document(doc: object, source: str = "<tiers>") -> dict[str, TierTable]:
    """Tier tables from a parsed document: ccxt ``fetch_leverage_tiers`` shape or the perprisk simple shape.

    Simple shape (JSON or TOML)::

        [[markets]]
        symbol = "BTCUSDT"
        tiers = [ { floor = "0", cap = "300000", mmr = "0.004", max_leverage = "150" }, ... ]
    """
    tables: dict[str, TierTable] = {}
    if _is_ccxt_shape(doc):
        for symbol, rows in doc.items():  # type: ignore[union-attr]
            tables[symbol] = _build(symbol, _specs_from_ccxt(symbol, rows))
        return tables
    if isinstance(doc, Mapping) and isinstance(doc.get("markets"), list):
        for j, market in enumerate(doc["markets"]):
            if not isinstance(market, Mapping) or "symbol" not in market or "tiers" not in market:
                raise ValidationError(f"markets[{j}]", f"{source}: each market needs 'symbol' and 'tiers'")
            symbol = str(market["symbol"])
            if not isinstance(market["tiers"], list) or not market["tiers"]:
                raise ValidationError(f"markets[{j}].tiers", f"{source}: {symbol}: expected a non-empty list of tiers")
            tables[symbol] = _build(symbol, _specs_from_simple(symbol, list(market["tiers"])))
        return tables
    raise ValidationError(
        "tiers_file", f"{source}: not a ccxt fetch_leverage_tiers document nor a perprisk tiers file ([[markets]])"
    )


def _build(symbol: str, specs: list[TierSpec]) -> TierTable:
    try:
        return TierTable.from_specs(symbol, specs)
    except ValidationError as err:
        raise ValidationError(f"{symbol}.{err.field}" if not err.field.startswith(symbol) else err.field, err.message) from None


def load_tier_tables(path: str | Path) -> dict[str, TierTable]:
    """Read every tier table of a JSON or TOML file (ccxt shape or simple shape); numbers parsed exactly."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ValidationError("tiers_file", f"cannot read {p}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ValidationError("tiers_file", f"{p}: not a UTF-8 text file") from None
    try:
        if p.suffix.lower() == ".toml":
            doc = tomllib.loads(text, parse_float=Decimal)
        else:
            doc = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValidationError("tiers_file", f"{p}: malformed file: {err}") from None
    return parse_tier_document(doc, str(p))


def select_tier_table(tables: Mapping[str, TierTable], symbol: str, source: str = "tiers file") -> TierTable:
    """Find ``symbol`` in ``tables`` by exact key or normalized name (``BTCUSDT`` matches ``BTC/USDT:USDT``)."""
    if symbol in tables:
        return tables[symbol]
    wanted = normalize_symbol(symbol)
    matches = [t for key, t in tables.items() if normalize_symbol(key) == wanted]
    if len(matches) == 1:
        return matches[0]
    raise ValidationError(
        "tiers_symbol",
        f"{symbol!r} not found in {source} (has: {', '.join(sorted(tables))})"
        if not matches
        else f"{symbol!r} is ambiguous in {source}",
    )


def load_tier_table(path: str | Path, symbol: str) -> TierTable:
    return select_tier_table(load_tier_tables(path), symbol, str(path))


# ------------------------------------------------------------------------------------------ instruments


@dataclass(frozen=True)
class Instrument:
    """A linear perpetual contract: sizes in base units (contracts × contract size), prices in settle currency."""

    symbol: str
    base: str
    settle: str
    tick_size: Decimal
    lot_size: Decimal
    min_size: Decimal
    tiers: TierTable
    contract_size: Decimal = Decimal(1)
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    liquidation_fee: Decimal = Decimal("0.0125")
    funding_interval_hours: int = 8
    funding_rate_cap: Decimal = Decimal("0.03")
    funding_rate_floor: Decimal = Decimal("-0.03")
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, **values: object) -> "Instrument":
        """Build from loosely typed values (strings from files/APIs), validating each field by name."""
        out: dict[str, object] = {}
        for name in ("symbol", "base", "settle"):
            v = values.get(name)
            if not isinstance(v, str) or not v.strip():
                raise ValidationError(name, "required, a non-empty string")
            out[name] = v.strip()
        for name in ("tick_size", "lot_size", "min_size", "contract_size"):
            if name in values:
                out[name] = to_decimal(values[name], name, positive=True)
            elif name != "contract_size":
                raise ValidationError(name, "required")
        for name in ("maker_fee", "taker_fee", "liquidation_fee"):
            if name in values:
                fee = to_decimal(values[name], name)
                if not (Decimal(-1) < fee < 1):
                    raise ValidationError(name, f"a fee rate must lie in (-1, 1), got {fee}")
                out[name] = fee
        if "funding_interval_hours" in values:
            hours = values["funding_interval_hours"]
            if isinstance(hours, bool) or not isinstance(hours, int) or hours <= 0:
                raise ValidationError("funding_interval_hours", f"a positive integer, got {hours!r}")
            out["funding_interval_hours"] = hours
        for name in ("funding_rate_cap", "funding_rate_floor"):
            if name in values:
                out[name] = to_decimal(values[name], name)
        tiers = values.get("tiers")
        if not isinstance(tiers, TierTable):
            raise ValidationError("tiers", "required, a TierTable")
        out["tiers"] = tiers
        inst = cls(**out)  # type: ignore[arg-type]
        if inst.min_size < inst.lot_size:
            raise ValidationError("min_size", f"{inst.min_size} is below the lot size {inst.lot_size}")
        if inst.funding_rate_floor > inst.funding_rate_cap:
            raise ValidationError("funding_rate_floor", "must not exceed funding_rate_cap")
        return inst
