"""The exchange engine: commands → validation → journal → apply → events.

One writer.  :meth:`Engine.execute` validates a command completely against the current state (raising a
:class:`~perprisk.errors.ValidationError` that names the field, with nothing changed), appends it to the
journal, then applies it; applying cannot fail and emits events.  The state is a projection of the journal:
replaying the journal from empty — or from a snapshot plus the tail — gives the same :meth:`state_hash`.

Money moves only through the double-entry :class:`~perprisk.ledger.Ledger`.  Prices and margin figures of
record use the exact formulas of :mod:`perprisk.formulas` (the ``generic`` family: tiered maintenance margin
plus the taker fee to close), so the liquidation price the engine reports equals the calculator's.
"""

from __future__ import annotations

import decimal
import hashlib
import itertools
import json
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Any, Callable, Iterable, Sequence

import orjson

from perprisk import commands as cmd
from perprisk import events as ev
from perprisk.account import BOTH, LONG, SHORT, Account, MarketSettings, Position, PositionMode, SlottedState
from perprisk.book import FastOrderBook, OrderBook
from perprisk.book.events import Cancellation, Fill, StopTriggered
from perprisk.book.orders import (
    OrderRequest,
    OrderType,
    SelfTradePrevention,
    TimeInForce,
    TriggerReference,
)
from perprisk.book.orders import (
    Side as BookSide,
)
from perprisk.errors import ValidationError
from perprisk.formulas import (
    FAMILIES, LiquidationResult, MarginMode, liquidation_price, liquidation_price_value,
)
from perprisk.formulas.margin import margin_ratio
from perprisk.instrument import Instrument
from perprisk.ledger import EXTERNAL, FEES, LIQUIDATION_ENGINE_ID, Ledger, trader_account
from perprisk.market import (
    FundingRateRule,
    FundingSchedule,
    IndexCalculator,
    MarkPriceEngine,
    PremiumAccumulator,
    SourceQuote,
    funding_credits,
    impact_margin_notional_for,
    impact_prices,
)
from perprisk.money import (
    EXACT_CONTEXT,
    ZERO,
    Fraction,
    Rounding,
    exact_decimal,
    exact_product,
    format_decimal,
    is_exact_number,
    is_multiple_of,
    round_quotient_to_step,
    round_to_step,
    to_decimal,
)
from perprisk.risk.alerts import AlertBook, validate_rule
from perprisk.risk.insurance import InsuranceFund
from perprisk.risk.liquidation import Liquidator
from perprisk.risk.policies import get_policy
from perprisk.risk.scanner import CROSS, ISOLATED, FastScanner, ScanMarket, ScanPosition

GENERIC = FAMILIES["generic"]

#: The values each enumerated field of an order accepts (built once: validation runs per command).
_SIDES = ("buy", "sell")
_ORDER_TYPES = tuple(t.value for t in OrderType)
_SELF_TRADE_PREVENTIONS = tuple(s.value for s in SelfTradePrevention)
_TRIGGER_REFERENCES = tuple(r.value for r in TriggerReference)
_TIMES_IN_FORCE = tuple(t.value for t in TimeInForce)

#: Member by value of the enumerations an order request carries (what ``Enum(value)`` looks up, as one dict).
_BOOK_SIDES = {m.value: m for m in BookSide}
_ORDER_TYPE_MEMBERS = {m.value: m for m in OrderType}
_SELF_TRADE_PREVENTION_MEMBERS = {m.value: m for m in SelfTradePrevention}
_TRIGGER_REFERENCE_MEMBERS = {m.value: m for m in TriggerReference}
_TIME_IN_FORCE_MEMBERS = {m.value: m for m in TimeInForce}


def _member(enum_type: type[Enum], members: dict[str, Any], value: object) -> Any:
    """``enum_type(value)``: a dict lookup for a value string, the enum's own lookup for anything else."""
    member = members.get(value) if type(value) is str else None
    return member if member is not None else enum_type(value)


_add, _subtract, _multiply = EXACT_CONTEXT.add, EXACT_CONTEXT.subtract, EXACT_CONTEXT.multiply
_SIZE = attrgetter("size")
_ACCOUNT_ID = attrgetter("account_id")

#: What the exact Decimal context raises when a figure is not an exact Decimal within 60 digits (or not a
#: number it can take): the fast paths then leave the decision to the rational reference code.
_NOT_EXACT = (decimal.Inexact, decimal.InvalidOperation, decimal.DivisionByZero)


def _at_most_zero(constant: Decimal, terms: dict[Any, Decimal]) -> bool | None:
    """Whether ``constant + Σ notional / leverage`` over ``terms`` (leverage → notional, leverages > 0) is ≤ 0,
    decided exactly in decimals; ``None`` when that is not possible within 60 digits.

    One leverage ``L`` (the common case, whatever ``L``): ``c + n/L ≤ 0 ⇔ c·L + n ≤ 0`` — no division.  Several:
    each ``n/L`` must be an exact (terminating) decimal."""
    try:
        if len(terms) == 1:
            ((leverage, notional),) = terms.items()
            return _add(_multiply(constant, leverage), notional) <= 0
        total = constant
        for leverage, notional in terms.items():
            total = _add(total, EXACT_CONTEXT.divide(notional, leverage))
        return total <= 0
    except _NOT_EXACT:
        return None


@dataclass(frozen=True)
class CollateralAsset:
    """An asset accepted as margin, valued at ``price × (1 − haircut)`` (SPEC §2: multi-asset collateral).

    ``price_symbol`` names the market whose index prices the asset; ``None`` means it is worth 1 settle unit.
    Negative balances (debts) are valued at full price, never with a haircut.
    """

    asset: str
    haircut: Decimal = ZERO
    price_symbol: str | None = None


DEFAULT_COLLATERAL = (
    CollateralAsset("USDT"),
    CollateralAsset("USDC", Decimal("0")),
    CollateralAsset("BTC", Decimal("0.05"), "BTCUSDT"),
    CollateralAsset("ETH", Decimal("0.05"), "ETHUSDT"),
)


@dataclass(frozen=True)
class EngineConfig:
    markets: tuple[Instrument, ...]
    collateral: tuple[CollateralAsset, ...] = DEFAULT_COLLATERAL
    #: Margin on a market order is reserved at mark × (1 ± this band) (worst fill it may get).
    market_order_band: Decimal = Decimal("0.05")
    #: Precision of balances moved by rounding-bearing rules (isolated margin on open).
    balance_precision: Decimal = Decimal("0.00000001")
    default_leverage: Decimal = Decimal(20)
    book_factory: Callable[[Instrument], OrderBook] | None = None
    #: Mark price method from index quotes: ``fair`` (MEXC/BitMEX) or ``median3`` (Binance).
    mark_method: str = "fair"
    #: Index outlier band and staleness (Binance preset: 5 %, 10 s).
    index_band: Decimal = Decimal("0.05")
    index_stale_after_ms: int = 10_000
    #: Premium averaging for funding: ``simple`` or ``linear`` (Binance's 1..n weights).
    premium_averaging: str = "simple"
    #: Negative-balance policy (SPEC §2.2): insurance_fund | negative_balance_protection | debt | socialized_loss.
    policy: str = "insurance_fund"
    #: The liquidation engine disposes with IOC orders no worse than mark × (1 ∓ band).
    disposal_band: Decimal = Decimal("0.05")
    #: One insurance fund per market instead of one per settlement currency.
    insurance_per_market: bool = False
    #: At most this many margin units liquidated per risk pass (None: no limit) — platform capacity.
    liquidation_capacity: int | None = None
    #: Screen risk passes with the vectorized scanner (False: the exact loop over every account).
    use_scanner: bool = True
    #: Keep every ledger transfer in memory (turn off for large simulations; balances are unaffected).
    keep_ledger_history: bool = True


@dataclass(slots=True)
class OrderMeta(SlottedState):
    """What the engine remembers of a live order (the book holds the matching state)."""

    order_id: int
    account_id: int
    symbol: str
    slot: str
    side: str  # buy | sell
    price: Decimal | None
    remaining: Decimal
    reduce_only: bool
    order_type: str
    triggered: bool = True  # False while a conditional order waits outside the book


class OrderTable:
    """Live orders by id, indexed by account too (margin checks read one account's orders, not all)."""

    def __init__(self) -> None:
        self._by_id: dict[int, OrderMeta] = {}
        self._by_account: dict[int, dict[int, OrderMeta]] = {}

    def __setitem__(self, order_id: int, meta: OrderMeta) -> None:
        self._by_id[order_id] = meta
        self._by_account.setdefault(meta.account_id, {})[order_id] = meta

    def __getitem__(self, order_id: int) -> OrderMeta:
        return self._by_id[order_id]

    def __delitem__(self, order_id: int) -> None:
        meta = self._by_id.pop(order_id)
        orders = self._by_account[meta.account_id]
        del orders[order_id]
        if not orders:
            del self._by_account[meta.account_id]

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):
        return iter(self._by_id)

    def get(self, order_id: int, default: OrderMeta | None = None) -> OrderMeta | None:
        return self._by_id.get(order_id, default)

    def pop(self, order_id: int, default: OrderMeta | None = None) -> OrderMeta | None:
        if order_id not in self._by_id:
            return default
        meta = self._by_id[order_id]
        del self[order_id]
        return meta

    def values(self):
        return self._by_id.values()

    def items(self):
        return self._by_id.items()

    def of(self, account_id: int) -> list[OrderMeta]:
        """The account's live orders, oldest first."""
        orders = self._by_account.get(account_id)
        return [orders[i] for i in sorted(orders)] if orders else []


@dataclass
class MarketState:
    instrument: Instrument
    book: OrderBook
    index_calculator: IndexCalculator
    mark_engine: MarkPriceEngine
    premiums: PremiumAccumulator
    funding_rule: FundingRateRule
    mark_price: Decimal | None = None
    index_price: Decimal | None = None
    last_price: Decimal | None = None
    timestamp_ms: int = 0
    current_rate: Decimal = Decimal("0.0001")  # last settled rate: the fair price's funding basis
    funding_history: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)  # (time, rate, mark)
    #: the market's open positions by (account id, slot), in the order they opened: a position that goes flat
    #: leaves it, and comes back at the end when it reopens (a long run closes most of the positions it opens)
    positions: dict[tuple[int, str], Position] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        positions = state.get("positions")
        if isinstance(positions, list):  # an engine snapshot from before: every position slot ever opened
            state["positions"] = {(p.account_id, p.slot): p for p in positions if p.size}
        self.__dict__.update(state)

    @classmethod
    def create(cls, instrument: Instrument, book: OrderBook, config: "EngineConfig") -> "MarketState":
        schedule = FundingSchedule.for_instrument(instrument)
        return cls(
            instrument=instrument,
            book=book,
            index_calculator=IndexCalculator(config.index_band, config.index_stale_after_ms),
            mark_engine=MarkPriceEngine(config.mark_method, schedule, instrument.tick_size, Rounding.HALF_EVEN),
            premiums=PremiumAccumulator(config.premium_averaging),
            funding_rule=FundingRateRule.for_instrument(instrument),
        )


def _book_factory(instrument: Instrument) -> OrderBook:
    return FastOrderBook(instrument.symbol, instrument.tick_size, instrument.lot_size)


class Engine:
    """The exchange: accounts, markets, books, ledger; driven only by commands."""

    #: Decide the common margin checks in exact decimals before the rational reference code (each fast path
    #: computes the same exact figure, or gives way).  Off: every decision is the reference code's (the tests
    #: run both and compare events, refusals and state hashes).
    fast_paths = True

    def __init__(self, config: EngineConfig, journal: Any | None = None) -> None:
        self.config = config
        self.journal = journal
        self.ledger = Ledger(keep_history=config.keep_ledger_history)
        factory = config.book_factory or _book_factory
        self.markets: dict[str, MarketState] = {
            m.symbol: MarketState.create(m, factory(m), config) for m in config.markets
        }
        self.collateral = {c.asset: c for c in config.collateral}
        self._priced_assets = tuple(c.asset for c in config.collateral if c.price_symbol is not None)
        self.accounts: dict[int, Account] = {LIQUIDATION_ENGINE_ID: Account(LIQUIDATION_ENGINE_ID)}
        self.orders = OrderTable()
        self.policy = get_policy(config.policy)
        self.insurance = InsuranceFund(self.ledger, config.insurance_per_market)
        self.liquidator = Liquidator(self)
        self.alerts = AlertBook()
        self.scanner: FastScanner | None = (
            FastScanner([ScanMarket.from_instrument(m) for m in config.markets]) if config.use_scanner else None
        )
        self._scan_keys: dict[int, list[tuple]] = {}  # account id → its units in the scanner
        self._touched_slots: set[tuple[int, str, str]] = set()  # positions changed by the current command
        self._dirty_accounts: set[int] = set()  # accounts whose units must be re-sent to the scanner
        self._volatile: set[int] = set()  # accounts whose scan inputs move with prices
        self.next_account_id = 1
        self.next_order_id = 1
        self.sequence = 0  # commands applied
        self._checked_order: tuple[Any, int, int, Any] | None = None  # (command, sequence, order id, book's parse)
        self._events: list[Any] = []

    # ================================================================================== command entry

    def execute(self, command: Any) -> list[Any]:
        """Validate, journal, apply; returns the events.  A refused command changes nothing."""
        self.validate(command)
        if self.journal is not None:
            self.journal.append(command)
        return self.apply(command)

    def validate(self, command: Any) -> None:
        handler = getattr(self, f"_validate_{type(command).__name__}", None)
        if handler is None:
            raise ValidationError("type", f"unknown command {type(command).__name__}")
        handler(command)

    def apply(self, command: Any) -> list[Any]:
        """Apply an already validated (or journaled) command."""
        self._events = []
        getattr(self, f"_apply_{type(command).__name__}")(command)
        if self._touched_slots:
            self._enforce_reduce_only()
        self.sequence += 1
        events, self._events = self._events, []
        return events

    def replay(self, commands: Iterable[Any]) -> None:
        """Apply journaled commands in order (they were validated when first executed)."""
        for command in commands:
            self.apply(command)

    # ================================================================================== lookups

    def account(self, account_id: int, field: str = "account_id") -> Account:
        if isinstance(account_id, bool) or not isinstance(account_id, int):
            raise ValidationError(field, f"expected an integer account id, got {account_id!r}")
        acct = self.accounts.get(account_id) if account_id != LIQUIDATION_ENGINE_ID else None
        if acct is None:
            raise ValidationError(field, f"no account {account_id}")
        return acct

    def market(self, symbol: str, field: str = "symbol") -> MarketState:
        state = self.markets.get(symbol) if isinstance(symbol, str) else None
        if state is None:
            raise ValidationError(field, f"unknown market {symbol!r} (markets: {', '.join(sorted(self.markets))})")
        return state

    def _asset(self, asset: str) -> CollateralAsset:
        coll = self.collateral.get(asset) if isinstance(asset, str) else None
        if coll is None:
            raise ValidationError("asset", f"{asset!r} is not accepted (assets: {', '.join(sorted(self.collateral))})")
        return coll

    # ================================================================================== margin figures

    def asset_price(self, asset: str) -> Fraction | None:
        coll = self.collateral[asset]
        if coll.price_symbol is None:
            return Fraction(1)
        state = self.markets.get(coll.price_symbol)
        if state is None:
            return None
        price = state.index_price if state.index_price is not None else state.mark_price
        return None if price is None else Fraction(price)

    def collateral_value(self, ledger_account: str) -> Fraction:
        """Σ balances valued at index × (1 − haircut); debts at full price (assets without a price count 0)."""
        total = Fraction(0)
        for asset, balance in self.ledger.balances_of(ledger_account).items():
            coll = self.collateral.get(asset)
            if coll is not None and coll.price_symbol is None and (balance < 0 or not coll.haircut):
                total += Fraction(balance)  # a settle-unit asset at face value (the common case, kept cheap)
                continue
            price = self.asset_price(asset) if coll is not None else None
            if price is None:
                continue
            value = Fraction(balance) * price
            total += value * (1 - Fraction(coll.haircut)) if balance > 0 else value
        return total

    def mark(self, symbol: str) -> Decimal:
        state = self.markets[symbol]
        if state.mark_price is not None:
            return state.mark_price
        if state.last_price is not None:
            return state.last_price
        raise ValidationError("symbol", f"{symbol} has no mark price yet")

    def _mark_or_none(self, symbol: str) -> Decimal | None:
        state = self.markets[symbol]
        return state.mark_price if state.mark_price is not None else state.last_price

    def position_maintenance(self, position: Position, mark: Decimal) -> Fraction:
        """Maintenance margin at the mark plus the taker fee to close (the engine's rule, ``generic``)."""
        inst = self.markets[position.symbol].instrument
        leg = position.leg(inst, mark)
        price = Fraction(mark)
        return GENERIC.maintenance(leg, price) + GENERIC.closing_fee(leg, price, Fraction(inst.taker_fee))

    def position_initial_margin(self, position: Position, mark: Decimal) -> Fraction:
        return abs(Fraction(position.size)) * Fraction(mark) / Fraction(position.leverage)

    def order_margin(self, account: Account, symbol: str | None = None, margin_mode: MarginMode | None = None) -> Fraction:
        """Initial margin reserved by open orders that would add exposure (reduce-only orders reserve none)."""
        # Σ remaining × price per market in exact decimals (one division by the market's leverage after)
        notional: dict[str, Decimal] = {}
        for meta in self.orders.of(account.account_id):
            if meta.reduce_only:
                continue
            if symbol is not None and meta.symbol != symbol:
                continue
            price = meta.price if meta.price is not None else self._mark_or_none(meta.symbol)
            if price is None:
                continue
            try:
                value = EXACT_CONTEXT.multiply(meta.remaining, price)
                notional[meta.symbol] = EXACT_CONTEXT.add(notional.get(meta.symbol, ZERO), value)
            except decimal.Inexact:  # beyond 60 digits: cannot happen on a tick/lot grid, kept exact anyway
                return self._order_margin_rational(account, symbol, margin_mode)
        total = Fraction(0)
        for market, value in notional.items():
            settings = account.market(market)
            if margin_mode is not None and settings.margin_mode is not margin_mode:
                continue
            total += Fraction(value) / Fraction(settings.leverage)
        return total

    def _order_margin_rational(self, account: Account, symbol: str | None, margin_mode: MarginMode | None) -> Fraction:
        total = Fraction(0)
        for meta in self.orders.of(account.account_id):
            if meta.reduce_only or (symbol is not None and meta.symbol != symbol):
                continue
            settings = account.market(meta.symbol)
            if margin_mode is not None and settings.margin_mode is not margin_mode:
                continue
            price = meta.price if meta.price is not None else self._mark_or_none(meta.symbol)
            if price is not None:
                total += Fraction(meta.remaining) * Fraction(price) / Fraction(settings.leverage)
        return total

    def cross_equity(self, account: Account) -> Fraction:
        """Collateral value of the wallet + Σ s·q·M of the cross positions (quote-balance form)."""
        equity = self.collateral_value(account.wallet)
        for pos in account.open_positions():
            if pos.margin_mode is MarginMode.CROSS:
                equity += Fraction(pos.size) * Fraction(self.mark(pos.symbol))
        return equity

    def cross_maintenance(self, account: Account) -> Fraction:
        return sum(
            (self.position_maintenance(p, self.mark(p.symbol)) for p in account.open_positions()
             if p.margin_mode is MarginMode.CROSS),
            Fraction(0),
        )

    def isolated_equity(self, position: Position) -> Fraction:
        inst = self.markets[position.symbol].instrument
        quote = Fraction(self.ledger.balance(position.margin_account, inst.settle))
        return quote + Fraction(position.size) * Fraction(self.mark(position.symbol))

    def position_margin(self, position: Position) -> Fraction:
        """Isolated position margin ``PM`` (quote + s·q·E): what a trader enters as the position's margin."""
        inst = self.markets[position.symbol].instrument
        return Fraction(self.ledger.balance(position.margin_account, inst.settle)) + position.cost

    def wallet_balance(self, account: Account) -> Fraction:
        """Cross wallet balance as a trader reads it: collateral + realized PnL (quote + Σ cross cost)."""
        total = self.collateral_value(account.wallet)
        for pos in account.open_positions():
            if pos.margin_mode is MarginMode.CROSS:
                total += pos.cost
        return total

    def asset_balances(self, account: Account) -> dict[str, Fraction]:
        """The cross wallet per asset as a trader reads it: the ledger balance plus, for a settlement asset,
        the cost basis of the cross positions settled in it (deposits − withdrawals + realized PnL − fees ±
        funding).  What a withdrawal is checked against."""
        balances = {asset: Fraction(v) for asset, v in self.ledger.balances_of(account.wallet).items()}
        for p in account.open_positions():
            if p.margin_mode is MarginMode.CROSS:
                settle = self.markets[p.symbol].instrument.settle
                balances[settle] = balances.get(settle, Fraction(0)) + p.cost
        return balances

    def available_balance(self, account: Account) -> Fraction:
        """Cross equity − initial margin of cross positions − order margin of all orders."""
        used = sum(
            (self.position_initial_margin(p, self.mark(p.symbol)) for p in account.open_positions()
             if p.margin_mode is MarginMode.CROSS),
            Fraction(0),
        )
        return self.cross_equity(account) - used - self.order_margin(account)

    # ---------------------------------------------------------------- the same figures in exact decimals
    # Fast paths of the margin checks on entry.  Each computes exactly the figure of the rational function it
    # stands for, in Decimals under EXACT_CONTEXT, and returns None (or False) when it cannot — a result that
    # would need rounding, a number that is not a Decimal — so the caller falls back to the reference.

    def _collateral_exact(self, ledger_account: str) -> Decimal | None:
        """:meth:`collateral_value` as an exact Decimal, or None."""
        total = ZERO
        try:
            for asset, balance in self.ledger.balances_of(ledger_account).items():
                coll = self.collateral.get(asset)
                if coll is None:
                    continue  # not collateral: no price, counts 0
                if coll.price_symbol is None:
                    if balance < 0 or not coll.haircut:
                        total = _add(total, balance)  # a settle-unit asset at face value
                        continue
                    price: Decimal | int = 1
                else:
                    state = self.markets.get(coll.price_symbol)
                    if state is None:
                        continue
                    price = state.index_price if state.index_price is not None else state.mark_price
                    if price is None:
                        continue
                if not (is_exact_number(price) and is_exact_number(coll.haircut)):
                    return None
                value = _multiply(balance, price)
                total = _add(total, _multiply(value, _subtract(1, coll.haircut)) if balance > 0 else value)
        except _NOT_EXACT:
            return None
        return total

    def _cross_margin_exact(self, account: Account, with_positions: bool = True
                            ) -> tuple[Decimal, dict[Any, Decimal]] | None:
        """``(base, terms)``: ``base`` = :meth:`cross_equity`, and ``terms`` (leverage → notional) with
        ``Σ terms[L] / L`` = Σ :meth:`position_initial_margin` of the cross positions (``with_positions``) +
        :meth:`order_margin` — so that, exactly, ``available_balance = base − Σ terms[L]/L`` (or, without the
        positions, ``cross_equity − order_margin = base − Σ terms[L]/L``); or None."""
        base = self._collateral_exact(account.wallet)
        if base is None:
            return None
        terms: dict[Any, Decimal] = {}
        try:
            for pos in account.positions.values():
                if pos.size == 0 or pos.margin_mode is not MarginMode.CROSS:
                    continue
                mark = self._mark_or_none(pos.symbol)
                leverage = pos.leverage
                if mark is None or not (is_exact_number(mark) and is_exact_number(leverage)) or leverage <= 0:
                    return None  # (no mark: the reference refuses)
                base = _add(base, _multiply(pos.size, mark))
                if with_positions:
                    terms[leverage] = _add(terms.get(leverage, ZERO), _multiply(pos.size.copy_abs(), mark))
            orders = self.orders.of(account.account_id)
            if orders:
                notional: dict[str, Decimal] = {}  # as order_margin: Σ remaining × price per market
                for meta in orders:
                    if meta.reduce_only:
                        continue
                    price = meta.price if meta.price is not None else self._mark_or_none(meta.symbol)
                    if price is None:
                        continue
                    notional[meta.symbol] = _add(notional.get(meta.symbol, ZERO), _multiply(meta.remaining, price))
                for market, value in notional.items():
                    leverage = account.market(market).leverage
                    if not is_exact_number(leverage) or leverage <= 0:
                        return None
                    terms[leverage] = _add(terms.get(leverage, ZERO), value)
        except _NOT_EXACT:
            return None
        return base, terms

    def _opening_fits(self, account: Account, symbol: str, opening_qty: Decimal, price: Decimal | Fraction,
                      extra: Decimal | Fraction) -> bool:
        """True when :meth:`_check_opening` with these arguments passes, decided in exact decimals; False when
        it refuses or cannot be decided so (the caller then runs the reference check)."""
        if not (self.fast_paths and is_exact_number(opening_qty) and is_exact_number(price) and is_exact_number(extra)):
            return False
        inst = self.markets[symbol].instrument
        settings = account.settings.get(symbol)
        leverage = settings.leverage if settings is not None else self.config.default_leverage
        fee = inst.taker_fee
        if not (is_exact_number(leverage) and is_exact_number(fee)) or leverage <= 0:
            return False
        try:
            # the leverage must fit the tier of the resulting notional (the reference's sum, then exact)
            current = sum((abs(p.size) for p in account.positions.values() if p.symbol == symbol), ZERO)
            notional = _multiply(_add(current, opening_qty), price)
            if leverage > inst.tiers.tier_for_notional_clamped(notional).max_leverage:
                return False
            # required = opening/L + opening × max(fee, 0) + extra
            opening = _multiply(opening_qty, price)
            charge = _add(_multiply(opening, fee) if fee > 0 else ZERO, extra)
        except _NOT_EXACT:
            return False
        return self._margin_fits(account, leverage, opening, charge)

    def _amend_fits(self, account: Account, symbol: str, meta: OrderMeta, new_qty: Decimal,
                    new_price: Decimal | None) -> bool:
        """True when an amended order's extra initial margin fits the available balance (the check of
        ``_validate_AmendOrder``), decided in exact decimals; False when it does not or cannot be decided so."""
        price = meta.price
        if not (self.fast_paths and new_price is not None and price is not None and is_exact_number(new_qty)
                and is_exact_number(new_price) and is_exact_number(meta.remaining) and is_exact_number(price)):
            return False
        leverage = account.market(symbol).leverage
        if not is_exact_number(leverage) or leverage <= 0:
            return False
        try:
            extra = _subtract(_multiply(new_qty, new_price), _multiply(meta.remaining, price))
        except _NOT_EXACT:
            return False
        return extra <= 0 or self._margin_fits(account, leverage, extra, ZERO)  # extra ≤ 0: no margin to find

    def _margin_fits(self, account: Account, leverage: Decimal, notional: Decimal, charge: Decimal) -> bool:
        """True when ``notional / leverage + charge`` ≤ :meth:`available_balance`, decided in exact decimals;
        False when not, or when it cannot be decided so."""
        parts = self._cross_margin_exact(account)
        if parts is None:
            return False
        base, terms = parts
        try:
            # notional/L + charge ≤ available = base − Σ terms[L']/L'
            #   ⇔  (charge − base) + Σ (terms + {L: notional})[L'] / L' ≤ 0
            constant = _subtract(charge, base)
            terms[leverage] = _add(terms.get(leverage, ZERO), notional)
        except _NOT_EXACT:
            return False
        return _at_most_zero(constant, terms) is True

    def _reduction_fits(self, account: Account, position: Position, mark: Decimal, cost: Decimal) -> bool:
        """True when ``cost`` ≤ the margin a pure reduction draws on (:meth:`isolated_equity` of ``position``,
        or :meth:`cross_equity` − :meth:`order_margin`), decided in exact decimals; False when not or undecided."""
        if not (self.fast_paths and is_exact_number(mark) and is_exact_number(cost)):
            return False
        if position.margin_mode is MarginMode.ISOLATED:
            settle = self.markets[position.symbol].instrument.settle
            try:
                equity = _add(self.ledger.balance(position.margin_account, settle), _multiply(position.size, mark))
            except _NOT_EXACT:
                return False
            return cost <= equity
        parts = self._cross_margin_exact(account, with_positions=False)
        if parts is None:
            return False
        base, terms = parts
        try:
            constant = _subtract(cost, base)
        except _NOT_EXACT:
            return False
        return _at_most_zero(constant, terms) is True  # cost ≤ base − Σ terms[L]/L

    def liquidation(self, account_id: int, symbol: str, slot: str = BOTH) -> LiquidationResult | None:
        """The engine's liquidation price for a position — the calculator's, with the same inputs."""
        inputs = self._liquidation_inputs(account_id, symbol, slot)
        return None if inputs is None else liquidation_price(GENERIC, *inputs[0], **inputs[1])

    def liquidation_price_of(self, account_id: int, symbol: str, slot: str = BOTH) -> Fraction | None:
        """:meth:`liquidation`'s ``liquidation_price`` alone (None: no position, or no liquidation price)."""
        inputs = self._liquidation_inputs(account_id, symbol, slot)
        return None if inputs is None else liquidation_price_value(GENERIC, *inputs[0], **inputs[1])

    def _liquidation_inputs(self, account_id: int, symbol: str, slot: str
                            ) -> tuple[tuple[MarginMode, Any, list[Any]], dict[str, Any]] | None:
        """The calculator's inputs for a position: (margin mode, wallet or position margin, legs), options."""
        account = self.account(account_id)
        position = account.position(symbol, slot)
        if position is None or position.size == 0:
            return None
        inst = self.markets[symbol].instrument
        fee = inst.taker_fee
        if position.margin_mode is MarginMode.ISOLATED:
            legs = [position.leg(inst, self.mark(symbol))]
            return (MarginMode.ISOLATED, self.position_margin(position), legs), {"taker_fee": fee}
        legs = [p.leg(self.markets[p.symbol].instrument, self.mark(p.symbol)) for p in account.open_positions()
                if p.margin_mode is MarginMode.CROSS]
        side = position.side if account.position_mode is PositionMode.HEDGE else None
        options = {"target": symbol, "target_side": side, "taker_fee": fee}
        return (MarginMode.CROSS, self.wallet_balance(account), legs), options

    def margin_ratio(self, account_id: int, symbol: str | None = None, slot: str = BOTH) -> Fraction | None:
        """Cross: Σ MM / equity of the account; isolated (symbol given): MM / (PM + U) of that position."""
        account = self.account(account_id)
        if symbol is not None:
            position = account.position(symbol, slot)
            if position is not None and position.size != 0 and position.margin_mode is MarginMode.ISOLATED:
                return margin_ratio(self.position_maintenance(position, self.mark(symbol)), self.isolated_equity(position))
        return margin_ratio(self.cross_maintenance(account), self.cross_equity(account) - self.order_margin(account))

    def open_interest(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(Σ long size, Σ short size) — equal in every market (SPEC invariant 2): summed, exactly, over every
        open position of the market (the liquidation engine's included; flat slots leave ``MarketState.positions``)."""
        sizes = list(map(_SIZE, self.market(symbol).positions.values()))
        with decimal.localcontext(EXACT_CONTEXT):  # C-level passes: the longs, the net, and shorts from them
            longs = sum(filter(ZERO.__lt__, sizes), ZERO)
            return longs, longs - sum(sizes, ZERO)

    def conservation_error(self) -> dict[str, Decimal]:
        return self.ledger.conservation_error()

    # ================================================================================== accounts & money

    def _validate_CreateAccount(self, c: cmd.CreateAccount) -> None:
        _position_mode(c.position_mode)

    def _apply_CreateAccount(self, c: cmd.CreateAccount) -> None:
        account_id = self.next_account_id
        self.next_account_id += 1
        self.accounts[account_id] = Account(account_id, _position_mode(c.position_mode))
        self._events.append(ev.AccountCreated(account_id))

    def _validate_Deposit(self, c: cmd.Deposit) -> None:
        self.account(c.account_id)
        self._asset(c.asset)
        to_decimal(c.amount, "amount", positive=True)

    def _apply_Deposit(self, c: cmd.Deposit) -> None:
        self.ledger.transfer(EXTERNAL, trader_account(c.account_id), c.asset, c.amount, "deposit")
        self._events.append(ev.BalanceChanged(c.account_id, c.asset, c.amount, "deposit"))
        account = self.accounts[c.account_id]
        if account.blocked and self.collateral_value(account.wallet) >= 0:
            account.blocked = False  # the debt is repaid
            self._events.append(ev.SettingChanged(c.account_id, None, "blocked", "false"))

    def _validate_DepositInsuranceFund(self, c: cmd.DepositInsuranceFund) -> None:
        self._asset(c.asset)
        to_decimal(c.amount, "amount", positive=True)
        if c.symbol is not None:
            self.market(c.symbol)

    def _apply_DepositInsuranceFund(self, c: cmd.DepositInsuranceFund) -> None:
        symbol = c.symbol
        self.insurance.receive(EXTERNAL, c.asset, c.amount, symbol, self._now(symbol), "fund deposit")

    def _now(self, symbol: str | None) -> int:
        if symbol is not None:
            return self.markets[symbol].timestamp_ms
        return max((m.timestamp_ms for m in self.markets.values()), default=0)

    def _validate_Withdraw(self, c: cmd.Withdraw) -> None:
        account = self.account(c.account_id)
        coll = self._asset(c.asset)
        amount = to_decimal(c.amount, "amount", positive=True)
        if account.blocked:
            raise ValidationError("account_id", f"account {c.account_id} is in debt: repay before withdrawing")
        realized = self.asset_balances(account).get(c.asset, Fraction(0))
        if Fraction(amount) > realized:
            raise ValidationError("amount", f"{amount} exceeds the {c.asset} balance {_show(realized)}")
        price = self.asset_price(c.asset) or Fraction(0)
        value = Fraction(amount) * price * (1 - Fraction(coll.haircut))
        available = self.available_balance(account)
        if value > available:
            raise ValidationError(
                "amount", f"withdrawing {amount} {c.asset} would leave open positions and orders under initial "
                f"margin (available {_show(available)})",
            )

    def _apply_Withdraw(self, c: cmd.Withdraw) -> None:
        self.ledger.transfer(trader_account(c.account_id), EXTERNAL, c.asset, c.amount, "withdrawal")
        self._events.append(ev.BalanceChanged(c.account_id, c.asset, c.amount.copy_negate(), "withdrawal"))

    def _validate_SetPositionMode(self, c: cmd.SetPositionMode) -> None:
        account = self.account(c.account_id)
        _position_mode(c.position_mode)
        if account.open_positions() or self.orders.of(c.account_id):
            raise ValidationError("position_mode", "close all positions and cancel all orders first")

    def _apply_SetPositionMode(self, c: cmd.SetPositionMode) -> None:
        self.accounts[c.account_id].position_mode = _position_mode(c.position_mode)
        self._events.append(ev.SettingChanged(c.account_id, None, "position_mode", c.position_mode))

    def _has_exposure(self, account: Account, symbol: str) -> bool:
        return any(p.symbol == symbol and p.size != 0 for p in account.positions.values()) or any(
            o.symbol == symbol for o in self.orders.of(account.account_id)
        )

    def _validate_SetMarginMode(self, c: cmd.SetMarginMode) -> None:
        account = self.account(c.account_id)
        self.market(c.symbol)
        MarginMode.parse(c.margin_mode)
        if self._has_exposure(account, c.symbol):
            raise ValidationError("margin_mode", f"{c.symbol}: close the position and cancel orders first")

    def _apply_SetMarginMode(self, c: cmd.SetMarginMode) -> None:
        self.accounts[c.account_id].market(c.symbol).margin_mode = MarginMode.parse(c.margin_mode)
        self._events.append(ev.SettingChanged(c.account_id, c.symbol, "margin_mode", c.margin_mode))

    def _validate_SetLeverage(self, c: cmd.SetLeverage) -> None:
        account = self.account(c.account_id)
        state = self.market(c.symbol)
        leverage = to_decimal(c.leverage, "leverage")
        if leverage < 1:
            raise ValidationError("leverage", f"must be at least 1, got {leverage}")
        exposure = sum((abs(p.size) for p in account.positions.values() if p.symbol == c.symbol), ZERO)
        price = self._mark_or_none(c.symbol) or ZERO
        pending = sum(
            (o.remaining * (o.price or price) for o in self.orders.of(c.account_id)
             if o.symbol == c.symbol and not o.reduce_only),
            ZERO,
        )
        notional = exposure * price + pending
        tier = state.instrument.tiers.tier_for_notional_clamped(notional)
        if leverage > tier.max_leverage:
            raise ValidationError(
                "leverage", f"{leverage}× exceeds the maximum {tier.max_leverage}× of {c.symbol} tier {tier.tier} "
                f"for the position and orders' notional {notional}",
            )

    def _apply_SetLeverage(self, c: cmd.SetLeverage) -> None:
        account = self.accounts[c.account_id]
        self._dirty_accounts.add(c.account_id)  # order margin depends on the leverage
        leverage = to_decimal(c.leverage, "leverage")  # as validated: the state holds a Decimal
        account.market(c.symbol).leverage = leverage
        for pos in account.positions.values():
            if pos.symbol == c.symbol:
                pos.leverage = leverage
        self._events.append(ev.SettingChanged(c.account_id, c.symbol, "leverage", str(leverage)))

    def _validate_SetAutoAddMargin(self, c: cmd.SetAutoAddMargin) -> None:
        self.account(c.account_id)
        self.market(c.symbol)
        if not isinstance(c.enabled, bool):
            raise ValidationError("enabled", "expected true or false")

    def _apply_SetAutoAddMargin(self, c: cmd.SetAutoAddMargin) -> None:
        self.accounts[c.account_id].market(c.symbol).auto_add_margin = c.enabled
        self._events.append(ev.SettingChanged(c.account_id, c.symbol, "auto_add_margin", str(c.enabled).lower()))

    def _validate_AdjustIsolatedMargin(self, c: cmd.AdjustIsolatedMargin) -> None:
        account = self.account(c.account_id)
        state = self.market(c.symbol)
        amount = to_decimal(c.amount, "amount")
        if amount == 0:
            raise ValidationError("amount", "must not be zero")
        slot = account.slot_for(c.position_side)
        position = account.position(c.symbol, slot)
        if position is None or position.size == 0 or position.margin_mode is not MarginMode.ISOLATED:
            raise ValidationError("symbol", f"no open isolated {c.symbol} position")
        if amount > 0:
            if account.blocked:
                raise ValidationError("account_id", "account is in debt")
            if Fraction(amount) > self.available_balance(account):
                raise ValidationError("amount", f"{amount} exceeds the available balance {_show(self.available_balance(account))}")
            if Fraction(amount) > self.asset_balances(account).get(state.instrument.settle, Fraction(0)):
                raise ValidationError("amount", f"{amount} exceeds the wallet's {state.instrument.settle} balance")
        else:
            mark = self.mark(c.symbol)
            remaining = self.isolated_equity(position) + Fraction(amount)
            needed = self.position_initial_margin(position, mark)
            if remaining < needed:
                raise ValidationError(
                    "amount", f"removing {-amount} would leave {_show(remaining)} below the initial margin {_show(needed)}"
                )

    def _apply_AdjustIsolatedMargin(self, c: cmd.AdjustIsolatedMargin) -> None:
        account = self.accounts[c.account_id]
        slot = account.slot_for(c.position_side)
        position = account.positions[(c.symbol, slot)]
        settle = self.markets[c.symbol].instrument.settle
        self.ledger.move(account.wallet, position.margin_account, settle, c.amount, "isolated margin adjustment")
        self._events.append(ev.MarginMoved(c.account_id, c.symbol, slot, c.amount, "user"))

    # ================================================================================== orders

    def _order_request(self, c: cmd.PlaceOrder, order_id: int) -> OrderRequest:
        return OrderRequest(
            order_id=order_id,
            account_id=str(c.account_id),
            side=_member(BookSide, _BOOK_SIDES, c.side),
            quantity=c.quantity,
            order_type=_member(OrderType, _ORDER_TYPE_MEMBERS, c.order_type),
            price=c.price,
            time_in_force=_member(TimeInForce, _TIME_IN_FORCE_MEMBERS, c.time_in_force) if c.time_in_force else None,
            self_trade_prevention=_member(SelfTradePrevention, _SELF_TRADE_PREVENTION_MEMBERS,
                                          c.self_trade_prevention),
            reduce_only=c.reduce_only,
            trigger_price=c.trigger_price,
            trigger_reference=_member(TriggerReference, _TRIGGER_REFERENCE_MEMBERS, c.trigger_reference),
            callback_distance=c.callback_distance,
            callback_rate=c.callback_rate,
            activation_price=c.activation_price,
        )

    def _closable(self, account: Account, symbol: str, slot: str, side: str) -> Decimal:
        """How much of an order on ``side`` would reduce the position in ``slot`` (not open new exposure)."""
        position = account.position(symbol, slot)
        if position is None or position.size == 0:
            return ZERO
        reduces = (position.size > 0 and side == "sell") or (position.size < 0 and side == "buy")
        return abs(position.size) if reduces else ZERO

    def _validate_PlaceOrder(self, c: cmd.PlaceOrder) -> None:
        account = self.account(c.account_id)
        state = self.market(c.symbol)
        inst = state.instrument
        _choice(c.side, _SIDES, "side")
        _choice(c.order_type, _ORDER_TYPES, "order_type")
        _choice(c.self_trade_prevention, _SELF_TRADE_PREVENTIONS, "self_trade_prevention")
        _choice(c.trigger_reference, _TRIGGER_REFERENCES, "trigger_reference")
        if c.time_in_force is not None:
            _choice(c.time_in_force, _TIMES_IN_FORCE, "time_in_force")
        quantity = _grid_quantity(c.quantity, inst)
        order_type = _member(OrderType, _ORDER_TYPE_MEMBERS, c.order_type)
        for name in ("price", "trigger_price", "activation_price"):
            value = getattr(c, name)
            if value is not None:
                _grid_price(value, inst, name)
        if order_type.is_limit and c.price is None:
            raise ValidationError("price", f"required for a {c.order_type} order")
        if not order_type.is_limit and c.price is not None:
            raise ValidationError("price", f"a {c.order_type} order takes no price")
        slot = account.slot_for(c.position_side)
        if account.position_mode is PositionMode.HEDGE:
            opening = (slot == LONG and c.side == "buy") or (slot == SHORT and c.side == "sell")
            if not opening and c.quantity > self._closable(account, c.symbol, slot, c.side):
                raise ValidationError("quantity", f"closes more than the {slot} position holds")
        closable = self._closable(account, c.symbol, slot, c.side)
        if c.reduce_only and closable == 0:
            raise ValidationError("reduce_only", "the order would increase the position (no position to reduce)")
        if account.blocked and not c.reduce_only and quantity > closable:
            raise ValidationError("account_id", f"account {c.account_id} is in debt: only reducing orders")
        # everything the book itself checks (grid, trigger not already crossed, ...), without side effects
        checked = state.book.check(self._order_request(c, self.next_order_id),
                                   max_quantity=closable if c.reduce_only else None)
        # initial margin on entry, open orders included (opening quantity only)
        opening_qty = ZERO if c.reduce_only else max(ZERO, quantity - closable)
        if opening_qty > 0:
            mark = self._mark_or_none(c.symbol)
            if c.price is not None:
                price = c.price if type(c.price) is Decimal else Fraction(c.price)  # (validated: on the grid)
            elif mark is not None:
                band = Fraction(self.config.market_order_band)
                price = Fraction(mark) * (1 + band if c.side == "buy" else 1 - band)
            else:
                raise ValidationError("order_type", f"{c.symbol} has no mark price yet: use a limit order")
            self._check_opening(account, c.symbol, opening_qty, price)
        # the book's parse of the order, for this command's apply when nothing is applied in between
        self._checked_order = (c, self.sequence, self.next_order_id, checked)

    def _check_opening(self, account: Account, symbol: str, opening_qty: Decimal, price: Decimal | Fraction,
                       field: str = "quantity", extra: Decimal | Fraction = ZERO) -> None:
        """An order or trade that opens ``opening_qty`` at ``price``: the leverage must fit the tier of the
        resulting notional, and initial margin plus the taker fee (plus ``extra``, e.g. the loss of trading
        away from the mark) must fit the available balance."""
        if self._opening_fits(account, symbol, opening_qty, price, extra):
            return  # decided in exact decimals; otherwise (a refusal, or undecided) the reference decides
        price, extra = Fraction(price), Fraction(extra)
        inst = self.markets[symbol].instrument
        settings = account.market(symbol) if symbol in account.settings else MarketSettings(
            leverage=self.config.default_leverage)
        # leverage bounded by the tier of the resulting notional
        current = sum((abs(p.size) for p in account.positions.values() if p.symbol == symbol), ZERO)
        notional = (Fraction(current) + Fraction(opening_qty)) * price
        tier = inst.tiers.tier_for_notional_clamped(notional)
        if settings.leverage > tier.max_leverage:
            raise ValidationError(
                field, f"the resulting notional {_show(notional)} is in tier {tier.tier} whose maximum "
                f"leverage {tier.max_leverage}× is below the account's {settings.leverage}×: lower the leverage",
            )
        required = Fraction(opening_qty) * price / Fraction(settings.leverage)
        required += Fraction(opening_qty) * price * max(Fraction(inst.taker_fee), Fraction(0))
        required += extra
        available = self.available_balance(account)
        if required > available:
            who = f"account {account.account_id}: " if field != "quantity" else ""
            raise ValidationError(
                field, f"{who}initial margin {_show(required)} exceeds the available balance {_show(available)}"
            )

    def _validate_BlockTrade(self, c: cmd.BlockTrade) -> None:
        taker = self.account(c.account_id)
        maker = self.account(c.counterparty_id, "counterparty_id")
        if taker is maker:
            raise ValidationError("counterparty_id", "a block trade needs two different accounts")
        state = self.market(c.symbol)
        inst = state.instrument
        _choice(c.side, _SIDES, "side")
        if not isinstance(c.reduce_only, bool):
            raise ValidationError("reduce_only", f"expected true or false, got {c.reduce_only!r}")
        quantity = _grid_quantity(c.quantity, inst)
        price = _grid_price(c.price, inst)
        mark = self._mark_or_none(c.symbol)
        if mark is None:
            raise ValidationError("symbol", f"{c.symbol} has no mark price yet")
        if self._away_from_mark(price, mark):
            band = Fraction(self.config.market_order_band)
            raise ValidationError("price", f"{price} is more than {_show(band * 100)} % away from the mark {mark}")
        other_side = "sell" if c.side == "buy" else "buy"
        legs = ((taker, c.side, c.reduce_only, "account_id", "quantity", inst.taker_fee),
                (maker, other_side, False, "counterparty_id", "counterparty_id", inst.maker_fee))
        for account, side, reduce_only, account_field, margin_field, fee_rate in legs:
            if account.position_mode is PositionMode.HEDGE:
                raise ValidationError(account_field, f"account {account.account_id} is in hedge mode: block trades are "
                                      "for one-way accounts")
            closable = self._closable(account, c.symbol, BOTH, side)
            if reduce_only and quantity > closable:
                raise ValidationError("reduce_only", "the trade would increase the position (or flip it)")
            if account.blocked and quantity > closable:
                raise ValidationError(account_field, f"account {account.account_id} is in debt: only reducing trades")
            # trading away from the mark is a loss at once (buying above it, selling below it), plus the fee
            try:
                worse: Decimal | Fraction = EXACT_CONTEXT.subtract(price, mark) if side == "buy" \
                    else EXACT_CONTEXT.subtract(mark, price)
            except decimal.Inexact:  # a mark with more digits than the context holds
                worse = (Fraction(price) - Fraction(mark)) * (1 if side == "buy" else -1)
            adverse = self._product(quantity, worse) if worse > 0 else ZERO
            opening_qty = max(ZERO, quantity - closable)
            if opening_qty > 0:
                self._check_opening(account, c.symbol, opening_qty, price, margin_field, adverse)
                continue
            if self._reduction_cost_fits(account, c.symbol, quantity, price, mark, fee_rate, adverse):
                continue  # decided in exact decimals; otherwise the reference below decides
            adverse = Fraction(adverse)
            cost = adverse + (Fraction(quantity) * Fraction(price) * Fraction(fee_rate) if fee_rate > 0 else 0)
            if cost > 0:  # a pure reduction must not leave the margin it draws on below zero at the mark
                position = account.position(c.symbol, BOTH)
                assert position is not None
                equity = (self.isolated_equity(position) if position.margin_mode is MarginMode.ISOLATED
                          else self.cross_equity(account) - self.order_margin(account))
                if cost > equity:
                    raise ValidationError(
                        "price", f"account {account.account_id}: trading at {price} against the mark {mark} costs "
                        f"{_show(cost)} but its margin is worth {_show(equity)} at the mark"
                    )

    def _away_from_mark(self, price: Decimal, mark: Decimal) -> bool:
        """|price − mark| > mark × market_order_band (exactly: in decimals when they are exact, else rationals)."""
        band = self.config.market_order_band
        if self.fast_paths and is_exact_number(price) and is_exact_number(mark) and is_exact_number(band):
            try:
                return EXACT_CONTEXT.subtract(price, mark).copy_abs() > EXACT_CONTEXT.multiply(mark, band)
            except _NOT_EXACT:
                pass
        return abs(Fraction(price) - Fraction(mark)) > Fraction(mark) * Fraction(band)

    def _product(self, a: Decimal, b: Decimal | Fraction) -> Decimal | Fraction:
        """``a × b`` exactly: a Decimal when it is one within 60 digits (fast paths on), else a Fraction."""
        product = exact_product(a, b) if self.fast_paths and is_exact_number(a) and is_exact_number(b) else None
        return product if product is not None else Fraction(a) * Fraction(b)

    def _reduction_cost_fits(self, account: Account, symbol: str, quantity: Decimal, price: Decimal, mark: Decimal,
                             fee_rate: Decimal, adverse: Decimal | Fraction) -> bool:
        """True when a block trade's pure reduction passes its check (its cost — the loss against the mark
        plus the fee — is nothing, or fits the margin it draws on), decided in exact decimals; False when it
        does not or cannot be decided so."""
        if not (self.fast_paths and is_exact_number(adverse) and is_exact_number(fee_rate)):
            return False
        try:
            cost = EXACT_CONTEXT.add(adverse, EXACT_CONTEXT.multiply(EXACT_CONTEXT.multiply(quantity, price), fee_rate)
                                     if fee_rate > 0 else ZERO)
        except _NOT_EXACT:
            return False
        if cost <= 0:
            return True
        position = account.position(symbol, BOTH)
        return position is not None and self._reduction_fits(account, position, mark, cost)

    def _apply_BlockTrade(self, c: cmd.BlockTrade) -> None:
        inst = self.markets[c.symbol].instrument
        taker, maker = self.accounts[c.account_id], self.accounts[c.counterparty_id]
        for account in (taker, maker):
            if c.symbol not in account.settings:
                account.settings[c.symbol] = MarketSettings(leverage=self.config.default_leverage)
        other_side = "sell" if c.side == "buy" else "buy"
        quantity, price = c.quantity, c.price  # as validated: Decimals (anything else is parsed the same way)
        if type(quantity) is not Decimal or type(price) is not Decimal:
            quantity, price = to_decimal(quantity, "quantity"), to_decimal(price, "price")
        taker_fee, maker_fee = self._exchange(
            c.symbol, [(taker, BOTH, c.side, inst.taker_fee), (maker, BOTH, other_side, inst.maker_fee)],
            quantity, price, "block trade",
        )
        self._events.append(ev.BlockTraded(c.symbol, price, quantity, taker.account_id, maker.account_id,
                                           c.side, taker_fee, maker_fee))

    def _apply_PlaceOrder(self, c: cmd.PlaceOrder) -> None:
        account = self.accounts[c.account_id]
        if c.symbol not in account.settings:
            account.settings[c.symbol] = MarketSettings(leverage=self.config.default_leverage)
        order_id = self.next_order_id
        self.next_order_id += 1
        slot = account.slot_for(c.position_side)
        order_type = _member(OrderType, _ORDER_TYPE_MEMBERS, c.order_type)
        # the state holds the validated Decimals, whatever form (int, string) the command gave them in
        price = None if c.price is None else to_decimal(c.price, "price")
        quantity = to_decimal(c.quantity, "quantity")
        meta = OrderMeta(order_id, c.account_id, c.symbol, slot, c.side, price, quantity, c.reduce_only,
                         c.order_type, triggered=not order_type.is_conditional)
        self.orders[order_id] = meta
        self._dirty_accounts.add(c.account_id)
        self._events.append(ev.OrderAccepted(order_id, c.account_id, c.symbol, c.side, quantity, price, c.order_type))
        book = self.markets[c.symbol].book
        checked, self._checked_order = self._checked_order, None
        if checked is not None and checked[0] is c and checked[1] == self.sequence and checked[2] == order_id:
            events = book.submit_checked_events(checked[3])  # validated just now, in this state: not parsed again
        else:  # replayed from the journal, or validated before other commands: parsed here
            max_quantity = self._closable(account, c.symbol, slot, c.side) if c.reduce_only else None
            events = book.submit_events(self._order_request(c, order_id), max_quantity=max_quantity)
        self._process_book_events(c.symbol, events)

    def _validate_CancelOrder(self, c: cmd.CancelOrder) -> None:
        self.account(c.account_id)
        self.market(c.symbol)
        meta = self.orders.get(c.order_id)
        if meta is None or meta.account_id != c.account_id or meta.symbol != c.symbol:
            raise ValidationError("order_id", f"no open order {c.order_id} of account {c.account_id} in {c.symbol}")

    def _apply_CancelOrder(self, c: cmd.CancelOrder) -> None:
        self._process_book_events(c.symbol, self.markets[c.symbol].book.cancel_events(c.order_id))

    def _validate_AmendOrder(self, c: cmd.AmendOrder) -> None:
        self._validate_CancelOrder(cmd.CancelOrder(c.account_id, c.symbol, c.order_id))
        meta = self.orders[c.order_id]
        inst = self.markets[c.symbol].instrument
        if c.price is None and c.quantity is None:
            raise ValidationError("price", "give a new price and/or quantity")
        if not meta.triggered:
            raise ValidationError("order_id", "a conditional order waiting for its trigger cannot be amended: "
                                  "cancel it and place a new one")
        new_price, new_qty = meta.price, meta.remaining
        if c.price is not None:
            new_price = _grid_price(c.price, inst)
            if meta.price is None:
                raise ValidationError("price", "this order has no limit price to amend")
        if c.quantity is not None:
            new_qty = _grid_quantity(c.quantity, inst)
        account = self.accounts[c.account_id]
        if not meta.reduce_only and (new_qty > meta.remaining or (new_price or 0) > (meta.price or 0)):
            if self._amend_fits(account, c.symbol, meta, new_qty, new_price):
                return  # decided in exact decimals; otherwise the reference below decides
            extra = Fraction(new_qty) * Fraction(new_price or 0) - Fraction(meta.remaining) * Fraction(meta.price or 0)
            leverage = account.market(c.symbol).leverage
            if extra > 0 and extra / Fraction(leverage) > self.available_balance(account):
                raise ValidationError("quantity", "the amended order's initial margin exceeds the available balance")

    def _apply_AmendOrder(self, c: cmd.AmendOrder) -> None:
        meta = self.orders[c.order_id]
        self._dirty_accounts.add(c.account_id)
        result = self.markets[c.symbol].book.amend(c.order_id, price=c.price, quantity=c.quantity)
        if c.price is not None:
            meta.price = to_decimal(c.price, "price")
        if c.quantity is not None:
            meta.remaining = to_decimal(c.quantity, "quantity")
        self._process_book_events(c.symbol, result.events)

    # ================================================================================== fills

    def _process_book_events(self, symbol: str, events: Sequence[Any]) -> None:
        for event in events:
            if isinstance(event, Fill):
                self._settle_fill(symbol, event)
            elif isinstance(event, Cancellation):
                meta = self.orders.get(event.order_id)
                if meta is not None:
                    self._dirty_accounts.add(meta.account_id)
                    meta.remaining -= event.quantity
                    if meta.remaining <= 0:
                        del self.orders[event.order_id]
                reason = event.reason.value if isinstance(event.reason, Enum) else event.reason
                self._events.append(ev.OrderCancelled(event.order_id, int(event.account_id), symbol,
                                                      event.quantity, reason))
            elif isinstance(event, StopTriggered):
                meta = self.orders.get(event.order_id)
                if meta is not None:
                    meta.triggered = True
                self._events.append(ev.OrderTriggered(event.order_id, int(event.account_id), symbol,
                                                      event.reference.value, event.price))

    def _position_for(self, account: Account, symbol: str, slot: str) -> Position:
        position = account.positions.get((symbol, slot))
        if position is None:
            settings = account.market(symbol)
            position = Position(account.account_id, symbol, slot, settings.margin_mode, settings.leverage)
            account.positions[(symbol, slot)] = position
            self.markets[symbol].positions[(account.account_id, slot)] = position
        elif position.size == 0:  # a flat slot takes the current settings, and rejoins the market's positions
            settings = account.market(symbol)
            position.margin_mode, position.leverage = settings.margin_mode, settings.leverage
            self.markets[symbol].positions[(account.account_id, slot)] = position
        return position

    def _settle_fill(self, symbol: str, fill: Fill) -> None:
        state = self.markets[symbol]
        inst = state.instrument
        taker = self.orders[fill.taker_order_id]
        maker = self.orders[fill.maker_order_id]
        taker_fee, maker_fee = self._exchange(
            symbol,
            [(self.accounts[taker.account_id], taker.slot, taker.side, inst.taker_fee),
             (self.accounts[maker.account_id], maker.slot, maker.side, inst.maker_fee)],
            fill.quantity, fill.price, "trade",
        )
        for meta in (taker, maker):
            meta.remaining -= fill.quantity
            if meta.remaining <= 0:
                self.orders.pop(meta.order_id, None)
        state.last_price = fill.price
        self._events.append(ev.Trade(symbol, fill.sequence, fill.price, fill.quantity, taker.order_id, maker.order_id,
                                     taker.account_id, maker.account_id, taker.side, taker_fee, maker_fee))

    def _bilateral_trade(self, symbol: str, buyer: tuple[Account, str], seller: tuple[Account, str],
                         quantity: Decimal, price: Decimal, reason: str) -> None:
        """A trade that bypasses the book (takeover, ADL, self-offset): no fee, not on the tape."""
        self._exchange(symbol, [(buyer[0], buyer[1], "buy", ZERO), (seller[0], seller[1], "sell", ZERO)],
                       quantity, price, reason)

    def _exchange(self, symbol: str, legs: list[tuple[Account, str, str, Decimal]], qty: Decimal, price: Decimal,
                  reason: str) -> list[Decimal]:
        """Apply one trade to both sides: positions, isolated margin on open, fees, and the cash q·P."""
        settle = self.markets[symbol].instrument.settle
        # exact (60 digits, Inexact trapped): validated prices and quantities on their grids come nowhere near
        notional = EXACT_CONTEXT.multiply(price, qty)
        fees: list[Decimal] = []
        margin_accounts: dict[str, str] = {}
        closed_isolated: list[tuple[Account, Position]] = []
        for account, slot, side, rate in legs:
            position = self._position_for(account, symbol, slot)
            margin_account = position.margin_account
            was_open = position.size
            opening = qty - position.apply_fill(qty if side == "buy" else -qty, price)
            if position.size == 0:  # flat: it leaves the market's open positions
                del self.markets[symbol].positions[(account.account_id, slot)]
            if position.margin_mode is MarginMode.ISOLATED and opening > 0:
                margin = self._isolated_margin_on_open(opening, price, position.leverage)
                self.ledger.transfer(account.wallet, margin_account, settle, margin, "isolated margin on open")
                self._events.append(ev.MarginMoved(account.account_id, symbol, slot, margin, "open"))
            fee = ZERO if account.account_id == LIQUIDATION_ENGINE_ID else EXACT_CONTEXT.multiply(notional, rate)
            self.ledger.move(margin_account, FEES, settle, fee, "trading fee")
            fees.append(fee)
            margin_accounts[side] = margin_account
            self._events.append(ev.PositionChanged(account.account_id, symbol, slot, position.size,
                                                   position.entry_price))
            self._dirty_accounts.add(account.account_id)
            self._touched_slots.add((account.account_id, symbol, slot))
            if position.margin_mode is MarginMode.ISOLATED and position.size == 0 and was_open != 0:
                closed_isolated.append((account, position))
        if margin_accounts["buy"] != margin_accounts["sell"]:  # buyer pays q·P: value conserved by construction
            self.ledger.transfer(margin_accounts["buy"], margin_accounts["sell"], settle, notional, reason)
        for account, position in closed_isolated:
            rest = self.ledger.balance(position.margin_account, settle)
            self.ledger.move(position.margin_account, account.wallet, settle, rest, "isolated position closed")
            self._events.append(ev.MarginMoved(account.account_id, symbol, position.slot, rest.copy_negate(), "close"))
        return fees

    def _isolated_margin_on_open(self, quantity: Decimal, price: Decimal, leverage: Decimal) -> Decimal:
        """q·P / L rounded up to the balance precision: the margin an isolated position takes on open."""
        notional = exact_product(quantity, price) if is_exact_number(quantity) and is_exact_number(price) else None
        return round_quotient_to_step(notional if notional is not None else Fraction(quantity) * Fraction(price),
                                      leverage, self.config.balance_precision, Rounding.CEILING)

    def _submit_internal(self, account_id: int, symbol: str, side: str, quantity: Decimal, price: Decimal) -> Decimal:
        """An IOC limit order of the liquidation engine; returns the quantity filled."""
        order_id = self.next_order_id
        self.next_order_id += 1
        self.orders[order_id] = OrderMeta(order_id, account_id, symbol, BOTH, side, price, quantity, False, "limit")
        request = OrderRequest(order_id=order_id, account_id=str(account_id), side=BookSide(side), quantity=quantity,
                               order_type=OrderType.LIMIT, price=price, time_in_force=TimeInForce.IOC)
        result = self.markets[symbol].book.submit(request)
        self._process_book_events(symbol, result.events)
        self.orders.pop(order_id, None)
        return sum((f.quantity for f in result.fills if f.taker_order_id == order_id), ZERO)

    def _cancel_internal(self, symbol: str, order_id: int, reason: str | None = None) -> None:
        events = self.markets[symbol].book.cancel_events(order_id)
        if reason is not None:
            events = [replace(e, reason=reason) if isinstance(e, Cancellation) else e for e in events]
        self._process_book_events(symbol, events)
        self.orders.pop(order_id, None)

    def _enforce_reduce_only(self) -> None:
        """Reduce-only orders (resting or waiting for a trigger) never add exposure: once their position is
        closed, flipped or smaller than the order, they are cancelled."""
        touched, self._touched_slots = self._touched_slots, set()
        for account_id in sorted({t[0] for t in touched}):
            for meta in self.orders.of(account_id):
                if meta.reduce_only and (account_id, meta.symbol, meta.slot) in touched:
                    self._cancel_if_not_reducing(meta)

    def _cancel_if_not_reducing(self, meta: OrderMeta) -> None:
        if meta.order_id in self.orders:
            position = self.accounts[meta.account_id].position(meta.symbol, meta.slot)
            size = position.size if position is not None else ZERO
            reduces = (size > 0 and meta.side == "sell") or (size < 0 and meta.side == "buy")
            if not reduces or meta.remaining > abs(size):
                self._cancel_internal(meta.symbol, meta.order_id, "reduce_only_exceeds_position")

    # ================================================================================== prices & funding

    def _validate_SetMarkPrice(self, c: cmd.SetMarkPrice) -> None:
        state = self.market(c.symbol)
        to_decimal(c.mark_price, "mark_price", positive=True)
        if c.index_price is not None:
            to_decimal(c.index_price, "index_price", positive=True)
        self._check_time(state, c.timestamp_ms)

    def _apply_SetMarkPrice(self, c: cmd.SetMarkPrice) -> None:
        mark = to_decimal(c.mark_price, "mark_price")  # as validated: the state holds Decimals
        index = mark if c.index_price is None else to_decimal(c.index_price, "index_price")
        self._set_mark(c.symbol, mark, index, c.timestamp_ms)

    def _validate_SetAlert(self, c: cmd.SetAlert) -> None:
        self.account(c.account_id)
        self.market(c.symbol)
        validate_rule(c.kind, to_decimal(c.threshold, "threshold"), c.direction)

    def _apply_SetAlert(self, c: cmd.SetAlert) -> None:
        rule = self.alerts.add(c.account_id, c.kind, c.symbol, c.threshold, c.direction)
        self._events.append(ev.SettingChanged(c.account_id, c.symbol, f"alert {rule.alert_id}",
                                              f"{c.kind} {c.direction} {c.threshold}"))

    def _validate_RemoveAlert(self, c: cmd.RemoveAlert) -> None:
        self.account(c.account_id)
        rule = self.alerts.rules.get(c.alert_id)
        if rule is None or rule.account_id != c.account_id:
            raise ValidationError("alert_id", f"no alert {c.alert_id} of account {c.account_id}")

    def _apply_RemoveAlert(self, c: cmd.RemoveAlert) -> None:
        rule = self.alerts.rules.pop(c.alert_id)
        self._events.append(ev.SettingChanged(c.account_id, rule.symbol, f"alert {c.alert_id}", "removed"))

    def _set_mark(self, symbol: str, mark: Decimal, index: Decimal, timestamp_ms: int) -> None:
        state = self.markets[symbol]
        previous = state.mark_price
        state.mark_price, state.index_price, state.timestamp_ms = mark, index, timestamp_ms
        self._events.append(ev.MarkPriceUpdated(symbol, mark, index, timestamp_ms))
        result = state.book.update_mark_price(mark)
        self._process_book_events(symbol, result.events)
        self.liquidator.risk_pass({symbol}, timestamp_ms)
        if self.alerts.rules:
            self.alerts.evaluate(self, symbol, timestamp_ms, previous)

    def _validate_SettleFunding(self, c: cmd.SettleFunding) -> None:
        state = self.market(c.symbol)
        if c.rate is not None:
            rate = to_decimal(c.rate, "rate")
            inst = state.instrument
            if not (inst.funding_rate_floor <= rate <= inst.funding_rate_cap):
                raise ValidationError("rate", f"{rate} is outside [{inst.funding_rate_floor}, {inst.funding_rate_cap}]")
        elif not len(state.premiums):
            raise ValidationError("rate", "no premium samples yet: give a rate")
        if state.mark_price is None:
            raise ValidationError("symbol", f"{c.symbol} has no mark price yet")
        self._check_time(state, c.timestamp_ms)

    def _apply_SettleFunding(self, c: cmd.SettleFunding) -> None:
        state = self.markets[c.symbol]
        if c.rate is not None:
            rate = c.rate
            state.premiums.reset()
        else:
            rate = state.premiums.close_interval(state.funding_rule).value
        mark = state.mark_price
        assert mark is not None
        settle = state.instrument.settle
        pool = f"funding/{c.symbol}"
        # the market's open positions by account (a stable sort keeps each account's slots in the order they opened)
        paying = sorted((p for p in state.positions.values() if p.size), key=_ACCOUNT_ID)
        events, symbol = self._events, c.symbol
        # balances changed before the settlement are re-valued in the scanner as usual; the settlement's own
        # moves are not one by one: the scanner is told their bound and re-values the units it needs (below)
        pending = self.ledger.drain_touched() if self.scanner is not None else None
        credits = funding_credits([p.size for p in paying], mark, rate)  # longs pay if F > 0
        self.ledger.move_many(pool, [(p.margin_account, credit) for p, credit in zip(paying, credits)], settle,
                              "funding")
        events.extend(ev.FundingPaid(p.account_id, symbol, p.slot, credit, rate, mark)
                      for p, credit in zip(paying, credits))
        payments = len(paying)
        leftover = self.ledger.balance(pool, settle)
        assert leftover == 0, f"funding pool {pool} not flat: {leftover} (open interest unbalanced)"
        if pending is not None:  # (the engine has a scanner)
            self.ledger.drain_touched()
            self.ledger.touched |= pending
            # every credit is −s·|q|·M·F: at most |q|·M·|F| lost (a Fraction: exact whatever the digits)
            self.scanner.mark_stale(symbol, abs(Fraction(mark) * Fraction(rate)))
        state.current_rate = rate
        state.timestamp_ms = c.timestamp_ms
        state.funding_history.append((c.timestamp_ms, rate, mark))
        self._events.append(ev.FundingSettled(c.symbol, rate, mark, c.timestamp_ms, payments))
        self.liquidator.risk_pass(None, c.timestamp_ms)

    def _validate_IndexQuotes(self, c: cmd.IndexQuotes) -> None:
        state = self.market(c.symbol)
        self._check_time(state, c.timestamp_ms)
        if not (len(c.sources) == len(c.prices) == len(c.weights)) or not c.sources:
            raise ValidationError("sources", "sources, prices and weights must be non-empty lists of one length")
        state.index_calculator.compute(self._quotes(c), c.timestamp_ms)
        if self.config.mark_method == "median3" and state.last_price is None:
            raise ValidationError("symbol", f"{c.symbol}: the median3 mark needs a last trade price first")

    def _quotes(self, c: cmd.IndexQuotes) -> list[SourceQuote]:
        return [
            SourceQuote(src, to_decimal(p, f"prices[{i}]", positive=True), to_decimal(w, f"weights[{i}]", non_negative=True),
                        c.timestamp_ms)
            for i, (src, p, w) in enumerate(zip(c.sources, c.prices, c.weights))
        ]

    def _apply_IndexQuotes(self, c: cmd.IndexQuotes) -> None:
        state = self.markets[c.symbol]
        index = state.index_calculator.compute(self._quotes(c), c.timestamp_ms).value
        bid, ask = state.book.best_bid(), state.book.best_ask()
        if bid is not None and ask is not None:
            state.mark_engine.observe_book(bid, ask, index)
        mark = state.mark_engine.mark(c.timestamp_ms, index, state.current_rate, state.last_price).value
        self._set_mark(c.symbol, mark, index, c.timestamp_ms)

    def _validate_SampleFunding(self, c: cmd.SampleFunding) -> None:
        state = self.market(c.symbol)
        self._check_time(state, c.timestamp_ms)
        if state.index_price is None:
            raise ValidationError("symbol", f"{c.symbol} has no index price yet")

    def _apply_SampleFunding(self, c: cmd.SampleFunding) -> None:
        state = self.markets[c.symbol]
        depth = state.book.depth(None)
        impact = impact_prices(
            [(lv.price, lv.quantity) for lv in depth.bids], [(lv.price, lv.quantity) for lv in depth.asks],
            impact_margin_notional_for(state.instrument),
        )
        premium = None
        if impact.complete:  # a book too thin to fill the impact notional gives no sample
            premium = state.premiums.add_prices(impact.bid, impact.ask, state.index_price)
        state.timestamp_ms = c.timestamp_ms
        self._events.append(ev.FundingSampled(c.symbol, premium, c.timestamp_ms))

    def _check_time(self, state: MarketState, timestamp_ms: object) -> None:
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
            raise ValidationError("timestamp_ms", f"expected a non-negative integer (ms since the epoch), got {timestamp_ms!r}")
        if timestamp_ms < state.timestamp_ms:
            raise ValidationError("timestamp_ms", f"{timestamp_ms} is before the market's time {state.timestamp_ms}")

    # ================================================================================== risk scan

    def _sync_scanner(self) -> None:
        """Send the margin units of every account changed since the last scan to the scanner (exact inputs)."""
        scanner = self.scanner
        assert scanner is not None
        for symbol, state in self.markets.items():
            mark = state.mark_price if state.mark_price is not None else state.last_price
            if mark is not None and scanner.mark(symbol) != mark:
                scanner.set_mark(symbol, mark)
        dirty = self._dirty_accounts  # positions, orders or settings changed: the units are rebuilt
        balances: set[int] = set()  # only ledger balances changed (funding, fees, margin moves): re-valued
        for key in self.ledger.drain_touched():
            if key.startswith("trader/"):
                balances.add(int(key.split("/", 2)[1]))
        dirty |= self._volatile
        balances -= dirty
        dirty.discard(LIQUIDATION_ENGINE_ID)
        balances.discard(LIQUIDATION_ENGINE_ID)
        held = self._held_priced_assets()
        for account_id in sorted(balances):
            account = self.accounts.get(account_id)
            keys = self._scan_keys.get(account_id)
            if account is None or not keys:
                dirty.add(account_id)  # nothing in the scanner to re-value: the full path decides
                continue
            orders = self.orders.of(account_id)
            if self._moves_with_prices(account, orders, held):
                self._volatile.add(account_id)
            self._revalue_units(account, keys, orders)
        for account_id in sorted(dirty):
            self._volatile.discard(account_id)
            for key in self._scan_keys.pop(account_id, ()):
                scanner.remove(key)
            account = self.accounts.get(account_id)
            if account is None:
                continue
            orders = self.orders.of(account_id)
            if self._moves_with_prices(account, orders, held):
                self._volatile.add(account_id)
            keys: list[tuple] = []
            cross: list[ScanPosition] = []
            isolated: list[Position] = []
            for p in account.positions.values():
                if p.size != 0:
                    if p.margin_mode is MarginMode.CROSS:
                        cross.append(ScanPosition(p.symbol, p.size))
                    else:
                        isolated.append(p)
            # the engine's units are exact and valid by construction: ``put`` skips the public API's checks
            if cross:
                keys.append(("cross", account_id))
                scanner.put(keys[-1], CROSS, self._scan_collateral(account, orders), tuple(cross))
            for p in isolated:
                settle = self.markets[p.symbol].instrument.settle
                keys.append(("isolated", account_id, p.symbol, p.slot))
                balance = self.ledger.balance(p.margin_account, settle)
                scanner.put(keys[-1], ISOLATED, balance, (ScanPosition(p.symbol, p.size),))
            if keys:
                self._scan_keys[account_id] = keys
        dirty.clear()

    def _revalue_units(self, account: Account, keys: Iterable[tuple], orders: list[OrderMeta]) -> None:
        """Give the scanner the exact balances of some of an account's units (their positions unchanged)."""
        scanner = self.scanner
        assert scanner is not None
        for key in keys:  # the engine's own units: exact balances, known keys (no re-checks)
            if key[0] == "cross":
                scanner.revalue(key, self._scan_collateral(account, orders))
            else:
                position = account.positions[(key[2], key[3])]
                settle = self.markets[key[2]].instrument.settle
                scanner.revalue(key, self.ledger.balance(position.margin_account, settle))

    def _scan_collateral(self, account: Account, orders: list[OrderMeta]) -> Decimal | Fraction:
        """A cross unit's balance for the scanner: collateral value − order margin (exact)."""
        if self.fast_paths and all(m.reduce_only for m in orders):
            # no order margin (reduce-only orders reserve none): the collateral value is all, a Decimal when exact
            collateral = self._collateral_exact(account.wallet)
            if collateral is not None:
                return collateral
        rational = self.collateral_value(account.wallet) - self.order_margin(account)
        as_decimal = exact_decimal(rational)  # the scanner's decimal path avoids mixed comparisons
        return rational if as_decimal is None else as_decimal

    def _held_priced_assets(self) -> tuple[str, ...]:
        """The collateral assets priced by a market that some ledger account holds (none on the usual
        single-asset venue, or where nobody deposited them): what :meth:`_moves_with_prices` must look at."""
        return tuple(asset for asset in self._priced_assets if self.ledger.holders(asset))

    def _moves_with_prices(self, account: Account, orders: list[OrderMeta], held: tuple[str, ...]) -> bool:
        """Whether an account's scan inputs move with prices (re-sent before every scan): collateral in an
        asset priced by a market (``held``: :meth:`_held_priced_assets`), or an order without a price (its
        margin is reserved at the mark)."""
        for m in orders:
            if m.price is None and not m.reduce_only:
                return True
        if not held:
            return False
        wallet, balance = account.wallet, self.ledger.balance
        return any(balance(wallet, asset) for asset in held)

    def risk_candidates(self, symbols: set[str] | None) -> list[tuple[Account, Position | None]]:
        """Margin units the scanner flags (exactly confirmed there), in the order of the exact reference loop."""
        if self.scanner is None:
            return self.liquidator.flagged(symbols)
        self._sync_scanner()
        scanner = self.scanner
        marks = {s: self.mark(s) for s in sorted(symbols) if self._mark_or_none(s)} if symbols else None
        keys = scanner.scan_marks(marks) if marks is not None else scanner.scan_all()
        if scanner.stale_candidates:  # not re-valued since a funding settlement: re-value them, check them
            by_account: dict[int, list[tuple]] = {}
            for key in scanner.stale_candidates:
                by_account.setdefault(key[1], []).append(key)
            for account_id in sorted(by_account):
                account, orders = self.accounts[account_id], self.orders.of(account_id)
                self._revalue_units(account, by_account[account_id], orders)
            keys = keys + scanner.confirm_stale()  # (ordered below)
        units: list[tuple[int, int, str, str, Account, Position | None]] = []
        for key in keys:
            account = self.accounts[key[1]]
            if key[0] == "cross":
                units.append((key[1], 0, "", "", account, None))
            else:
                position = account.positions[(key[2], key[3])]
                units.append((key[1], 1, key[2], key[3], account, position))
        units.sort(key=lambda u: u[:4])
        return [(u[4], u[5]) for u in units]

    # ================================================================================== state

    def snapshot_state(self) -> dict[str, Any]:
        """Canonical plain-data view of the whole state (what :meth:`state_hash` hashes)."""
        state = self._state_sections()
        state["ledger"] = self.ledger.snapshot()
        state["accounts"] = {str(i): a.snapshot() for i, a in sorted(self.accounts.items())}
        return state

    def _state_sections(self) -> dict[str, Any]:
        """:meth:`snapshot_state` but for its two big sections, ``ledger`` and ``accounts`` (one entry per ledger
        account, one per trader): those the callers build, whole or in pieces."""
        return {
            "sequence": self.sequence,
            "next_account_id": self.next_account_id,
            "next_order_id": self.next_order_id,
            "policy": self.policy.name,
            "alerts": [[r.alert_id, r.account_id, r.kind, r.symbol, str(r.threshold), r.direction]
                       for _, r in sorted(self.alerts.rules.items())],
            "alerts_fired": sorted([list(k) + [v] for k, v in self.alerts.last_fired.items()]),
            "orders": [
                [m.order_id, m.account_id, m.symbol, m.slot, m.side, str(m.price), str(m.remaining), m.reduce_only,
                 m.order_type, m.triggered]
                for _, m in sorted(self.orders.items())
            ],
            "markets": {
                s: {
                    "mark": str(m.mark_price), "index": str(m.index_price), "last": str(m.last_price),
                    "time": m.timestamp_ms, "rate": str(m.current_rate),
                    "samples": [str(x) for x in m.premiums.samples],
                    "basis": [str(x) for x in m.mark_engine.basis_samples],
                    "funding": [[t, str(r), str(p)] for t, r, p in m.funding_history],
                    "book": m.book.snapshot(),
                }
                for s, m in sorted(self.markets.items())
            },
        }

    def state_hash(self) -> str:
        """sha256 of the canonical JSON text of :meth:`snapshot_state` (sorted keys, no spaces).

        The text is hashed as it is written, ``HASH_CHUNK`` entries of the big sections at a time: the same
        bytes as encoding the whole snapshot at once (tested), without the whole snapshot or the whole text in
        memory — at 1,000,000 accounts those were gigabytes, and the run's peak."""
        hasher = hashlib.sha256()
        sections = self._state_sections()
        big = {
            "ledger": self.ledger.snapshot_items,
            # JSON sorts the keys as strings ("10" before "9"): the entries are written in that order
            "accounts": lambda: ((k, a.snapshot()) for k, a in sorted((str(i), a) for i, a in self.accounts.items())),
        }
        opening = "{"
        for name in sorted([*sections, *big]):
            hasher.update(f"{opening}{_canonical_json(name)}:".encode())
            opening = ","
            if name in sections:
                hasher.update(_canonical_json(sections[name]).encode())
                continue
            hasher.update(b"{")
            entries = big[name]()
            separator = b""
            while chunk := dict(itertools.islice(entries, HASH_CHUNK)):
                hasher.update(separator + _canonical_bytes(chunk)[1:-1])
                separator = b","
            hasher.update(b"}")
        hasher.update(b"}")
        return hasher.hexdigest()


#: Entries of the state's big sections (ledger accounts, trader accounts) encoded at a time by ``state_hash``.
HASH_CHUNK = 4096


def _canonical_json(value: Any) -> str:
    """The state hash's encoding: JSON with sorted keys, no spaces, anything else as its ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _canonical_bytes(value: Any) -> bytes:
    """:func:`_canonical_json` as UTF-8 bytes, written by orjson (~10× faster on the big sections' entries:
    dicts and lists of strings and booleans) when it gives the same bytes — a text of printable ASCII and the
    escapes both write; ``json.dumps`` escapes everything else (non-ASCII, DEL) — else, or if orjson refuses the
    value, by ``json``."""
    try:
        data = orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits
        data = b""
    return data if data and data.isascii() and b"\x7f" not in data else _canonical_json(value).encode()


def _position_mode(value: object) -> PositionMode:
    try:
        return PositionMode(value)
    except ValueError:
        raise ValidationError("position_mode", f"must be 'one_way' or 'hedge', got {value!r}") from None



def _grid_quantity(value: object, inst: Instrument, field: str = "quantity") -> Decimal:
    """A positive quantity on the instrument's lot grid, at least its minimum size."""
    quantity = to_decimal(value, field, positive=True)
    if not is_multiple_of(quantity, inst.lot_size):
        raise ValidationError(field, f"{quantity} is not a multiple of the lot size {inst.lot_size}")
    if quantity < inst.min_size:
        raise ValidationError(field, f"{quantity} is below the minimum size {inst.min_size}")
    return quantity


def _grid_price(value: object, inst: Instrument, field: str = "price") -> Decimal:
    """A positive price on the instrument's tick grid."""
    price = to_decimal(value, field, positive=True)
    if not is_multiple_of(price, inst.tick_size):
        raise ValidationError(field, f"{price} is not on the tick size {inst.tick_size}")
    return price


def _choice(value: object, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise ValidationError(field, f"must be one of {', '.join(allowed)}; got {value!r}")


def _show(x: Fraction | Decimal) -> str:
    """A figure for an error message (8 decimals)."""
    return format_decimal(round_to_step(x, Decimal("0.00000001"), Rounding.HALF_EVEN))


# ====================================================================================== persistence


def _engine_state(engine: Engine) -> dict[str, Any]:
    return {k: v for k, v in engine.__dict__.items()
            if k not in ("journal", "_events", "liquidator", "_checked_order")}


def take_snapshot(engine: Engine) -> None:
    """Store the engine's state in its journal at the current sequence."""
    if engine.journal is None:
        raise ValidationError("journal", "the engine has no journal")
    engine.journal.save_snapshot(engine.sequence, _engine_state(engine), engine.state_hash())


def recover(config: EngineConfig, journal: Any, *, use_snapshot: bool = True) -> Engine:
    """Rebuild an engine from its journal: latest snapshot (if any and wanted) + the commands after it."""
    engine = Engine(config, journal=None)
    after = 0
    snapshot = journal.latest_snapshot() if use_snapshot else None
    if snapshot is not None:
        after, state, expected_hash = snapshot
        engine.__dict__.update(state)
        if engine.state_hash() != expected_hash:
            raise ValidationError("snapshot", f"snapshot at {after} does not match its recorded state hash")
    engine.replay(command for _, command in journal.commands(after))
    engine.journal = journal
    return engine
