"""The stress runner: a real price path, a population of leveraged accounts and market makers, driven through
the real engine (exact ledger, risk pass, liquidation pipeline, disposal in the order book, insurance fund,
ADL, negative-balance policy), one command at a time through :meth:`perprisk.engine.Engine.execute`.

Set-up (before the first tick)
    the mark is set to the path's first price; ``desks`` flow desks and one market maker open accounts,
    deposit ample collateral and trade at 1× (cross); the insurance fund is seeded; one account is created
    per trader of the population (:mod:`perprisk.sim.population`).

Every tick ``t`` (in this order)
    1. funding due at or before the tick is settled at the real rate of the funding file (if any);
    2. the market maker cancels its quotes and quotes a fresh ladder around the tick's price
       (:func:`perprisk.sim.liquidity.ladder`: calibrated depth, thinner and wider when volatile);
    3. positions due to close are closed, then positions due to open are opened: the trader deposits, sets
       margin mode, leverage (capped by the tier of the exact notional) and auto-add margin, then trades
       with a flow desk at the tick's price through the engine's ``BlockTrade`` (margin, tier leverage and
       reduce-only checked as for an order, taker fee paid — so every entry and exit is a real trade at the
       market price, without printing on the tape); traders with a stop-loss then place a reduce-only
       stop-market order;
    4. the engine receives the mark (``SetMarkPrice``): conditional orders trigger in the book, then the
       engine's risk pass liquidates — with ``latency_ticks`` > 0 the engine sees the price of
       ``latency_ticks`` ticks ago while the book already quotes around the current one (seed 000 §2.5: a
       late, overloaded liquidation engine); ``liquidation_capacity`` bounds the units liquidated per pass;
    5. the events are tallied, and orders left behind by accounts whose position is gone are cancelled;
    6. the tick is recorded, open interest is balanced from the events (exact, every tick), and every
       ``check_every`` ticks the engine's own conservation error and open interest are checked too.

Money is exact end to end: amounts of record are Decimals from the engine's events and ledger; floats appear
only in the population draw, the depth curve and the per-tick series kept for charts.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from perprisk import commands as cmd
from perprisk import events as ev
from perprisk.candles import FORMATS, Candles
from perprisk.engine import Engine, EngineConfig
from perprisk.errors import ValidationError
from perprisk.instrument import Instrument, TierSpec, TierTable, load_tier_table
from perprisk.ledger import PLATFORM
from perprisk.money import Fraction, Rounding, format_decimal, round_to_step, to_decimal
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.risk.policies import POLICIES
from perprisk.sim.data import (
    DEFAULT_CANDLES_FILE,
    DEFAULT_FUNDING_FILE,
    iso,
    load_funding_rates,
    load_price_candles,
    select_window,
)
from perprisk.sim.liquidity import LiquidityConfig, default_depth_curve, ladder, volatility_ratio
from perprisk.sim.paths import ORDERS, PricePath, candles_to_path, funding_events, synthetic_candles
from perprisk.sim.population import (
    Population,
    PopulationConfig,
    generate_population,
    population_stats,
)
from perprisk.sim.settings import check_known

__all__ = [
    "POLICY_NAMES",
    "SUMMARY_KEYS",
    "Scenario",
    "StressResult",
    "StressRunner",
    "collection_paused",
    "compare_policies",
    "instrument_for",
    "load_scenario_candles",
    "run_stress",
    "scale_tiers",
    "settle_garbage",
]

POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)

#: The keys every summary has (the acceptance contract of the stress command), in order.
SUMMARY_KEYS = (
    "accounts",
    "ticks",
    "liquidations",
    "liquidated_notional",
    "insurance_fund_start",
    "insurance_fund_end",
    "insurance_fund_min",
    "adl_events",
    "bad_debt",
    "conservation_error",
    "open_interest_imbalance",
    "elapsed_s",
)

#: Exchange filters of the symbols the simulator knows (Binance USDⓈ-M): tick size and lot size.
SYMBOL_FILTERS = {
    "BTCUSDT": ("0.1", "0.001"),
    "ETHUSDT": ("0.01", "0.001"),
    "BTCUSDC": ("0.1", "0.001"),
    "ETHUSDC": ("0.01", "0.001"),
}

SETTLE = "USDT"
LIQUIDATING_STEPS = ("tier_down", "takeover")
STEP_NAMES = ("auto_add_margin", "cancel_orders", "self_offset", "tier_down", "takeover", "liquidation_fee")
CENT = Decimal("0.01")
#: The events :meth:`StressRunner._absorb` tallies (it skips the others at once).
_TALLIED = frozenset(
    {
        ev.FundingPaid,
        ev.PositionChanged,
        ev.LiquidationStep,
        ev.AdlExecuted,
        ev.Disposal,
        ev.DebtRecorded,
        ev.LossSocialized,
        ev.OrderTriggered,
    }
)
#: Phases of a tick whose wall time a run reports (``performance["phases_s"]``).
PHASES = ("funding", "quotes", "exits", "entries", "mark_update", "checks")
#: Progress is counted in units of work, so the bar moves with the time a run takes.  Measured on 100,000
#: accounts × 2,856 ticks (phase times over counts): an opening (deposit, settings, block trade, stop-loss)
#: ~190 µs, an exit ~95 µs, a tick ~1 ms for the market maker's quotes plus ~0.06 µs per account (mark update,
#: scan, checks), a funding settlement ~12 µs per account.  So, in units of about one exit: an opening counts 2,
#: an exit 1, a tick 10 + 1 per 1,000 accounts, a settlement 1 per 8 accounts.
PROGRESS_OPENING, PROGRESS_EXIT, PROGRESS_TICK_BASE, PROGRESS_TICK_PER, PROGRESS_FUNDING_PER = 2, 1, 10, 1000, 8


# ================================================================================================ scenario


@contextmanager
def collection_paused() -> Iterator[None]:
    """Automatic garbage collection off for the block (and back to what it was after it); objects frozen in it
    (``gc.freeze``) are handed back to the collector when it ends, also when it raises.

    A stress run holds its population for the whole run, and automatic full collections scanned it again and
    again: ~12 s of a 72 s run at 300,000 accounts × 360 ticks while the run froze its objects every 240 ticks
    (0.98 s collecting and freezing after every tick), and a 1,000,000-account run went 534 s → 418 s on freezing after every tick
    alone. Inside the block the runner calls :func:`settle_garbage` after every tick instead; a reference
    cycle dropped inside it is freed by the first collection after it (automatic, or ``gc.collect()``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def settle_garbage() -> None:
    """Move what was made since the last call out of the collector's sight (``gc.freeze``, a
    constant-time splice), so that no collection — one a library starts, or the first after the run — scans
    the population while the run holds it.

    Nothing is collected here: the run drops no reference cycles (what it drops, reference counting frees at
    once), so a collection of the young generations after every tick found nothing and cost ~7–8 s of a
    1,000,000-account run. Tested over every policy, with latency and a capacity limit
    (``tests/sim/test_runner.py``); a cycle dropped all the same would wait for the first collection after
    :func:`collection_paused` ends."""
    gc.freeze()


@dataclass(frozen=True)
class Scenario:
    """Everything a stress run depends on.  Plain values (strings for exact numbers), so a scenario can come
    from a TOML file or the command line and travel to a Dask worker."""

    data: str | None = None  # candle file; None: the shipped 2025-10-10/11 BTCUSDT crash
    format: str | None = None  # candle format; None: detected
    start: str | None = None  # ISO time or epoch ms: window start (inclusive)
    end: str | None = None  # window end (exclusive)
    funding: str | None = (
        "auto"  # funding-rate file; "auto": the shipped one for the default data; None: none
    )
    synthetic: str | None = None  # gbm | garch: synthetic candles instead of a file
    synthetic_bars: int = 1440
    symbol: str = "BTCUSDT"
    tick_size: str | None = None
    lot_size: str | None = None
    accounts: int = 100_000
    seed: int = 1
    policy: str = "insurance_fund"
    path_order: str = "auto"
    substeps: int = 0
    insurance_fund: str | None = None  # USDT; None: insurance_fund_ratio × the population's gross notional
    insurance_fund_ratio: float = 0.005
    liquidation_fee: str | None = None  # None: the instrument's (1.25 %)
    tiers_scale: str = "1"  # multiplies every tier's maintenance margin rate
    liquidation_capacity: int | None = None  # margin units per risk pass; None: unlimited
    latency_ticks: int = 0
    disposal_band: str = "0.05"
    desks: int = 4
    check_every: int | None = None  # None: every tick up to 5,000 accounts, else every 60 ticks
    distance_sample: int = 1000
    population: PopulationConfig = field(default_factory=PopulationConfig)
    liquidity: LiquidityConfig = field(default_factory=LiquidityConfig)

    def __post_init__(self) -> None:
        if isinstance(self.accounts, bool) or not isinstance(self.accounts, int) or self.accounts < 1:
            raise ValidationError("accounts", f"a positive integer, got {self.accounts!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValidationError("seed", f"a non-negative integer, got {self.seed!r}")
        if self.policy not in POLICIES:
            raise ValidationError("policy", f"unknown policy {self.policy!r}; one of {', '.join(POLICIES)}")
        if self.format is not None and self.format not in FORMATS:
            raise ValidationError("format", f"unknown format {self.format!r}; one of {', '.join(FORMATS)}")
        if self.path_order not in ORDERS:
            raise ValidationError(
                "path_order", f"unknown path order {self.path_order!r}; one of {', '.join(ORDERS)}"
            )
        for name in ("latency_ticks", "substeps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValidationError(name, f"a non-negative integer, got {v!r}")
        if self.liquidation_capacity is not None and (
            isinstance(self.liquidation_capacity, bool)
            or not isinstance(self.liquidation_capacity, int)
            or self.liquidation_capacity < 1
        ):
            raise ValidationError(
                "liquidation_capacity", f"a positive integer (or none), got {self.liquidation_capacity!r}"
            )
        if self.check_every is not None and (not isinstance(self.check_every, int) or self.check_every < 1):
            raise ValidationError("check_every", f"a positive integer, got {self.check_every!r}")
        if not isinstance(self.desks, int) or not 1 <= self.desks <= 64:
            raise ValidationError("desks", f"an integer in [1, 64], got {self.desks!r}")
        if self.insurance_fund is not None:
            to_decimal(self.insurance_fund, "insurance_fund", non_negative=True)
        if not 0 <= self.insurance_fund_ratio < 1:
            raise ValidationError("insurance_fund_ratio", f"in [0, 1), got {self.insurance_fund_ratio}")
        if to_decimal(self.tiers_scale, "tiers_scale", positive=True) > 100:
            raise ValidationError("tiers_scale", "at most 100")
        band = to_decimal(self.disposal_band, "disposal_band", positive=True)
        if band >= 1:
            raise ValidationError("disposal_band", f"must be below 1, got {band}")
        if self.liquidation_fee is not None:
            fee = to_decimal(self.liquidation_fee, "liquidation_fee", non_negative=True)
            if fee >= 1:
                raise ValidationError("liquidation_fee", f"must be below 1, got {fee}")
        if self.synthetic is not None and self.synthetic not in ("gbm", "garch"):
            raise ValidationError("synthetic", f"gbm or garch, got {self.synthetic!r}")

    # ------------------------------------------------------------------------------ conversions

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], prefix: str = "scenario") -> Scenario:
        """A scenario from plain values (a TOML table); nested ``population`` / ``liquidity`` tables."""
        check_known(cls, values, prefix)
        clean: dict[str, Any] = {}
        for k, v in values.items():
            if k == "population":
                clean[k] = (
                    v
                    if isinstance(v, PopulationConfig)
                    else PopulationConfig.from_mapping(v, f"{prefix}.population")
                )
            elif k == "liquidity":
                clean[k] = (
                    v
                    if isinstance(v, LiquidityConfig)
                    else LiquidityConfig.from_mapping(v, f"{prefix}.liquidity")
                )
            elif k in (
                "accounts",
                "seed",
                "latency_ticks",
                "substeps",
                "desks",
                "synthetic_bars",
                "distance_sample",
                "check_every",
                "liquidation_capacity",
            ):
                if v is None or (k == "liquidation_capacity" and v == 0):
                    clean[k] = None
                elif isinstance(v, bool) or not isinstance(v, int):
                    raise ValidationError(f"{prefix}.{k}", f"expected an integer, got {v!r}")
                else:
                    clean[k] = v
            elif k == "insurance_fund_ratio":
                clean[k] = float(v)
            elif k == "funding" and v in (None, "", "none") or v is None:
                clean[k] = None
            else:
                clean[k] = str(v)
        try:
            return cls(**clean)
        except ValidationError as err:
            raise err.within(prefix) if not err.field.startswith(prefix) else err from None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["population"] = self.population.to_dict()
        d["liquidity"] = self.liquidity.to_dict()
        return d


# ================================================================================================ instrument


def scale_tiers(table: TierTable, scale: Decimal) -> TierTable:
    """``table`` with every maintenance margin rate multiplied by ``scale`` (capped at 1); a tier whose new
    rate leaves its maximum leverage no room (``mmr ≥ 1/max_leverage``) gets its leverage lowered to
    ``⌊1 / (1.25·mmr)⌋`` (at least 1).  Maintenance amounts are re-derived (SPEC §2 recurrence)."""
    if scale == 1:
        return table
    specs = []
    for t in table.tiers:
        mmr = min(Decimal(1), t.mmr * scale)
        lev = t.max_leverage
        if mmr * lev >= 1:
            lev = max(Decimal(1), Decimal(int(1 / (Decimal("1.25") * mmr))))
        specs.append(TierSpec(t.floor, t.cap, mmr, lev))
    return TierTable.from_specs(table.symbol, specs)


def instrument_for(scenario: Scenario) -> Instrument:
    """The simulated market: the symbol's exchange filters, the real Binance tiers (scaled), fees."""
    symbol = scenario.symbol.upper()
    tick, lot = SYMBOL_FILTERS.get(symbol, ("0.01", "0.001"))
    tick = scenario.tick_size or tick
    lot = scenario.lot_size or lot
    try:
        tiers = load_tier_table(BINANCE_TIERS_FILE, symbol)
    except ValidationError:
        tiers = load_tier_table(BINANCE_TIERS_FILE, "BTCUSDT")
        tiers = TierTable(symbol, tiers.tiers)
    tiers = scale_tiers(tiers, to_decimal(scenario.tiers_scale, "tiers_scale", positive=True))
    values: dict[str, Any] = dict(
        symbol=symbol,
        base=symbol[:-4] if symbol.endswith(("USDT", "USDC")) else symbol,
        settle=SETTLE,
        tick_size=tick,
        lot_size=lot,
        min_size=lot,
        tiers=tiers,
    )
    if scenario.liquidation_fee is not None:
        values["liquidation_fee"] = scenario.liquidation_fee
    return Instrument.create(**values)


def load_scenario_candles(scenario: Scenario) -> Candles:
    """The candles a scenario replays (file or synthetic), cut to its window."""
    if scenario.synthetic is not None:
        inst_tick = Decimal(scenario.tick_size or SYMBOL_FILTERS.get(scenario.symbol.upper(), ("0.01",))[0])
        candles = synthetic_candles(
            scenario.synthetic, scenario.synthetic_bars, seed=scenario.seed, tick_size=inst_tick
        )
        return select_window(candles, scenario.start, scenario.end)
    path = scenario.data or str(DEFAULT_CANDLES_FILE)
    return load_price_candles(path, scenario.format, scenario.start, scenario.end)


def _funding_file(scenario: Scenario) -> str | None:
    if scenario.funding == "auto":
        return str(DEFAULT_FUNDING_FILE) if scenario.data is None and scenario.synthetic is None else None
    return scenario.funding


# ================================================================================================ result


@dataclass(eq=False)
class StressResult:
    """What a run produced: the summary (JSON-able, exact figures as decimal strings), per-tick series (floats,
    for charts), the liquidation distances at the start, and run metadata."""

    scenario: Scenario
    summary: dict[str, Any]
    series: dict[str, np.ndarray]
    distances: dict[str, np.ndarray]
    population: dict[str, float]
    performance: dict[str, float]
    gaps: list[dict[str, Any]]


class _Totals:
    """Exact running totals of one run (Decimals)."""

    def __init__(self) -> None:
        self.liquidations = 0
        self.liquidated_notional = Decimal(0)
        self.liquidated_accounts: set[int] = set()
        self.past_bankruptcy = 0
        self.by_step: Counter[str] = Counter()
        self.adl_events = 0
        self.adl_notional = Decimal(0)
        self.adl_accounts: set[int] = set()
        self.adl_by_reason: Counter[str] = Counter()
        self.deficit: dict[str, Decimal] = {
            "insurance_fund": Decimal(0),
            "platform": Decimal(0),
            "socialized": Decimal(0),
        }
        self.surplus = Decimal(0)
        self.disposals = 0
        self.disposal_unfilled = Decimal(0)
        self.debt = Decimal(0)
        self.debtors: set[int] = set()
        self.socialized = Decimal(0)
        self.stops_triggered = 0
        self.funding_payments = 0

    @property
    def bad_debt(self) -> Decimal:
        return sum(self.deficit.values(), Decimal(0)) + self.debt


# ================================================================================================ runner


class StressRunner:
    """One stress run (see the module documentation).  ``progress`` is a callable ``(done, total)`` or None,
    counted in units of work (openings, exits, ticks and funding settlements weighted by their cost, see
    ``PROGRESS_OPENING``): called every 1,000 openings of the first tick, then after every tick."""

    def __init__(
        self,
        scenario: Scenario,
        candles: Candles | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        init_started = time.perf_counter()
        self.scenario = scenario
        self.progress = progress
        if candles is None:
            self.candles = load_scenario_candles(scenario)
        else:
            self.candles = select_window(candles, scenario.start, scenario.end)
        self.instrument = instrument_for(scenario)
        self.symbol = self.instrument.symbol
        self.path: PricePath = candles_to_path(
            self.candles, self.instrument.tick_size, scenario.path_order, scenario.substeps, scenario.seed
        )
        funding_file = _funding_file(scenario)
        self.funding = funding_events(self.path, load_funding_rates(funding_file) if funding_file else None)
        self.vol_ratio = volatility_ratio(
            self.path.timestamps_ms, self.path.values, scenario.liquidity.volatility_halflife_ticks
        )
        self.population: Population = generate_population(
            scenario.accounts,
            scenario.population,
            self.instrument.tiers,
            float(self.path.values[0]),
            self.path.timestamps_ms,
            scenario.seed,
            float(self.instrument.taker_fee),
        )
        gross = self.population.gross_notional
        lc = scenario.liquidity
        self.depth_curve = default_depth_curve()
        self.depth_scale = (
            lc.depth_scale if lc.depth_scale is not None else gross / lc.reference_open_interest
        )
        self.engine = Engine(
            EngineConfig(
                markets=(self.instrument,),
                policy=scenario.policy,
                disposal_band=to_decimal(scenario.disposal_band, "disposal_band"),
                liquidation_capacity=scenario.liquidation_capacity,
                keep_ledger_history=False,  # every movement is in the events; a list of transfers is GBs at 1 M
            )
        )
        if scenario.insurance_fund is not None:
            self.fund_start = to_decimal(scenario.insurance_fund, "insurance_fund", non_negative=True)
        else:
            self.fund_start = round_to_step(
                Decimal(repr(gross * scenario.insurance_fund_ratio)), Decimal(1), Rounding.HALF_EVEN
            )
        n = scenario.accounts
        self.check_every = scenario.check_every or (1 if n <= 5000 else 60)
        self.totals = _Totals()
        self.sizes: dict[int, Decimal] = {}
        self.long_oi = Decimal(0)
        self.short_oi = Decimal(0)
        self.account_ids = np.zeros(n, dtype=np.int64)
        self.index_of: dict[int, int] = {}
        self.stop_orders: dict[int, int] = {}  # engine account id → stop order id
        self.maker_orders: list[int] = []
        self.quoted_price: Decimal | None = None
        self.entries = 0
        self.entries_refused: Counter[str] = Counter()
        self.exits = 0
        self.stops_placed = 0
        self.stops_refused = 0
        self.closed_this_tick: set[int] = set()
        self.max_conservation_error = Decimal(0)
        self.max_oi_imbalance = Decimal(0)
        self.first_violation: str | None = None
        self.checks = 0
        self._tick_liq = self._tick_adl = 0
        self._tick_liq_notional = self._tick_adl_notional = 0.0
        self.garbage_s = 0.0  # time spent settling garbage (freezing: see settle_garbage)
        self.init_s = time.perf_counter() - init_started  # the price path, funding, population

    # ------------------------------------------------------------------------------ engine access

    def _settle_garbage(self) -> None:
        started = time.perf_counter()
        settle_garbage()
        self.garbage_s += time.perf_counter() - started

    def _do(self, command: Any) -> list[Any]:
        events = self.engine.execute(command)
        self._absorb(events)
        return events

    def _absorb(self, events: list[Any]) -> None:
        t = self.totals
        for e in events:
            kind = type(e)
            if kind not in _TALLIED:
                continue  # most events (balances, fees, settings, trades, orders) are not tallied here
            if kind is ev.FundingPaid:  # the commonest tallied kinds first
                t.funding_payments += 1
            elif kind is ev.PositionChanged:
                old = self.sizes.get(e.account_id, Decimal(0))
                new = e.size
                if old > 0:
                    self.long_oi -= old
                elif old < 0:
                    self.short_oi += old
                if new > 0:
                    self.long_oi += new
                elif new < 0:
                    self.short_oi -= new
                self.sizes[e.account_id] = new
                if new == 0:
                    self.closed_this_tick.add(e.account_id)
            elif kind is ev.LiquidationStep:
                t.by_step[e.step] += 1
                if e.step in LIQUIDATING_STEPS:
                    t.liquidations += 1
                    notional = e.quantity * e.price
                    t.liquidated_notional += notional
                    t.liquidated_accounts.add(e.account_id)
                    if e.margin_ratio_before is None:  # equity already at or below zero: liquidated too late
                        t.past_bankruptcy += 1
                    self._tick_liq += 1
                    self._tick_liq_notional += float(notional)
            elif kind is ev.AdlExecuted:
                t.adl_events += 1
                notional = e.quantity * e.price
                t.adl_notional += notional
                t.adl_accounts.add(e.account_id)
                t.adl_by_reason[e.reason] += 1
                self._tick_adl += 1
                self._tick_adl_notional += float(notional)
            elif kind is ev.Disposal:
                t.disposals += 1
                t.disposal_unfilled += e.quantity - e.filled
                if e.pnl < 0:
                    t.deficit[e.paid_by] = t.deficit.get(e.paid_by, Decimal(0)) - e.pnl
                else:
                    t.surplus += e.pnl
            elif kind is ev.DebtRecorded:
                t.debt -= e.amount
                t.debtors.add(e.account_id)
            elif kind is ev.LossSocialized:
                t.socialized += e.amount
            elif kind is ev.OrderTriggered:
                t.stops_triggered += 1

    # ------------------------------------------------------------------------------ set-up

    def _new_account(self, deposit: Decimal) -> int:
        account_id = self._do(cmd.CreateAccount())[0].account_id
        if deposit > 0:
            self._do(cmd.Deposit(account_id, SETTLE, deposit))
        return account_id

    def _setup(self) -> None:
        sc = self.scenario
        p0 = self.path.prices[0]
        self._do(cmd.SetMarkPrice(self.symbol, p0, int(self.path.timestamps_ms[0])))
        gross = self.population.gross_notional
        curve_max = (
            float(self.depth_curve.notional_within(sc.liquidity.max_distance_bps * 50.0)) * self.depth_scale
        )
        desk_deposit = round_to_step(
            Decimal(repr(4.0 * gross / sc.desks + 1e6)), Decimal(1), Rounding.CEILING
        )
        maker_deposit = round_to_step(
            Decimal(repr(20.0 * curve_max + 2.0 * gross + 1e6)), Decimal(1), Rounding.CEILING
        )
        self.desks = []
        for _ in range(sc.desks):
            desk = self._new_account(desk_deposit)
            self._do(cmd.SetLeverage(desk, self.symbol, Decimal(1)))
            self.desks.append(desk)
        self.maker = self._new_account(maker_deposit)
        self._do(cmd.SetLeverage(self.maker, self.symbol, Decimal(1)))
        if self.fund_start > 0:
            self._do(cmd.DepositInsuranceFund(SETTLE, self.fund_start))
        for i in range(len(self.population)):
            account_id = self._do(cmd.CreateAccount())[0].account_id
            self.account_ids[i] = account_id
            self.index_of[account_id] = i
            if (i + 1) % 10_000 == 0:
                self._settle_garbage()
        self.support_accounts = set(self.desks) | {self.maker}

    # ------------------------------------------------------------------------------ per tick

    def _requote(self, tick: int, price: Decimal) -> None:
        """Move the market maker's ladder to the tick's price: each level's live order is amended in place
        (price and quantity), a level whose order was filled gets a new one, levels no longer quoted are
        cancelled."""
        engine = self.engine
        inst = self.instrument
        quotes = ladder(
            price,
            float(self.vol_ratio[tick]),
            self.depth_curve,
            self.depth_scale,
            self.scenario.liquidity,
            inst.tick_size,
            inst.lot_size,
            inst.min_size,
        )
        slots: dict[str, list[int]] = {"buy": [], "sell": []}
        for order_id in self.maker_orders:
            meta = engine.orders.get(order_id)
            if meta is not None:
                slots[meta.side].append(order_id)
        kept: list[int] = []
        # move the side the price moves toward first, so an amended level never crosses the maker's own
        # not-yet-moved quotes on the other side
        first = "sell" if self.quoted_price is None or price >= self.quoted_price else "buy"
        self.quoted_price = price
        ordered = [q for q in quotes if q.side == first] + [q for q in quotes if q.side != first]
        for q in ordered:
            live = slots[q.side]
            try:
                if live:
                    order_id = live.pop(0)
                    meta = engine.orders[order_id]
                    if meta.price != q.price or meta.remaining != q.quantity:
                        self._do(
                            cmd.AmendOrder(
                                self.maker, self.symbol, order_id, price=q.price, quantity=q.quantity
                            )
                        )
                    if order_id in engine.orders:
                        kept.append(order_id)
                else:
                    events = self._do(
                        cmd.PlaceOrder(self.maker, self.symbol, q.side, q.quantity, price=q.price)
                    )
                    kept.append(events[0].order_id)
            except ValidationError:
                continue  # the maker is out of margin for this level: the book is thinner
        for side in ("buy", "sell"):
            for order_id in slots[side]:
                if order_id in engine.orders:
                    self._do(cmd.CancelOrder(self.maker, self.symbol, order_id))
        self.maker_orders = kept

    def _cross(
        self, account_id: int, desk: int, side: str, quantity: Decimal, price: Decimal, reduce_only: bool
    ) -> None:
        """The trader trades ``quantity`` with a flow desk at ``price`` (a block trade: the engine checks margin,
        tier leverage and reduce-only exactly as for an order; the trader pays the taker fee)."""
        self._do(cmd.BlockTrade(account_id, desk, self.symbol, side, quantity, price, reduce_only))

    def _open(self, i: int, price: Decimal) -> None:
        pop = self.population
        inst = self.instrument
        account_id = int(self.account_ids[i])
        quantity = round_to_step(
            Decimal(repr(float(pop.notional[i]) / float(price))), inst.lot_size, Rounding.FLOOR
        )
        quantity = max(quantity, inst.min_size)
        notional = quantity * price
        tier = inst.tiers.tier_for_notional_clamped(notional)
        leverage = min(Decimal(int(pop.leverage[i])), tier.max_leverage)
        buffer = Decimal(f"{float(pop.buffer[i]):.4f}")
        margin = notional / leverage
        deposit = (
            round_to_step(margin * (1 + buffer) + 2 * notional * inst.taker_fee, CENT, Rounding.CEILING) + 1
        )
        self._do(cmd.Deposit(account_id, SETTLE, deposit))
        if pop.isolated[i]:
            self._do(cmd.SetMarginMode(account_id, self.symbol, "isolated"))
            if pop.auto_add[i]:
                self._do(cmd.SetAutoAddMargin(account_id, self.symbol, True))
        self._do(cmd.SetLeverage(account_id, self.symbol, leverage))
        side = "buy" if pop.side[i] > 0 else "sell"
        desk = self.desks[i % len(self.desks)]
        try:
            self._cross(account_id, desk, side, quantity, price, reduce_only=False)
        except ValidationError as err:
            self.entries_refused[err.field] += 1
            return
        self.entries += 1
        if pop.stop[i]:
            self._place_stop(i, account_id, side, quantity, price)

    def _place_stop(self, i: int, account_id: int, side: str, quantity: Decimal, price: Decimal) -> None:
        """A reduce-only stop-loss a population-drawn fraction of the way from the entry to the engine's own
        liquidation price (one source of truth for the formula: the engine's ``liquidation``)."""
        pop = self.population
        inst = self.instrument
        liquidation_price = self.engine.liquidation_price_of(account_id, self.symbol)
        if liquidation_price is None:
            self.stops_refused += 1
            return
        fraction = Fraction(Decimal(repr(float(pop.stop_fraction[i]))))  # drawn as a float statistic
        level = Fraction(price) + (liquidation_price - Fraction(price)) * fraction
        if side == "buy":  # a long's stop sells below
            trigger = round_to_step(level, inst.tick_size, Rounding.FLOOR)
            stop_side = "sell"
        else:
            trigger = round_to_step(level, inst.tick_size, Rounding.CEILING)
            stop_side = "buy"
        if trigger <= 0:
            self.stops_refused += 1
            return
        try:
            events = self._do(
                cmd.PlaceOrder(
                    account_id,
                    self.symbol,
                    stop_side,
                    quantity,
                    order_type="stop_market",
                    trigger_price=trigger,
                    reduce_only=True,
                )
            )
        except ValidationError:
            self.stops_refused += 1  # e.g. the trigger is already crossed by the (lagging) mark
            return
        self.stop_orders[account_id] = events[0].order_id
        self.stops_placed += 1

    def _close(self, i: int, price: Decimal) -> None:
        account_id = int(self.account_ids[i])
        size = self.sizes.get(account_id, Decimal(0))
        if size == 0:
            return
        self._cancel_stop(account_id)
        side = "sell" if size > 0 else "buy"
        try:
            self._cross(account_id, self.desks[i % len(self.desks)], side, abs(size), price, reduce_only=True)
        except ValidationError as err:
            self.entries_refused[f"exit:{err.field}"] += 1
            return
        self.exits += 1

    def _cancel_stop(self, account_id: int) -> None:
        order_id = self.stop_orders.pop(account_id, None)
        if order_id is not None and order_id in self.engine.orders:
            self._do(cmd.CancelOrder(account_id, self.symbol, order_id))

    def _cleanup(self) -> None:
        """Cancel the stop-loss of every account whose position went to zero (liquidated, deleveraged,
        stopped out): a reduce-only order must not outlive its position."""
        closed, self.closed_this_tick = self.closed_this_tick, set()
        for account_id in sorted(closed):
            if account_id in self.stop_orders and self.sizes.get(account_id, Decimal(0)) == 0:
                self._cancel_stop(account_id)

    def _check(self, tick: int, full: bool) -> None:
        imbalance = self.long_oi - self.short_oi
        if imbalance != 0:
            self.max_oi_imbalance = max(self.max_oi_imbalance, abs(imbalance))
            self.first_violation = self.first_violation or f"tick {tick}: open interest imbalance {imbalance}"
        if not full:
            return
        self.checks += 1
        errors = self.engine.conservation_error()
        worst = max((abs(v) for v in errors.values()), default=Decimal(0))
        if worst != 0:
            self.max_conservation_error = max(self.max_conservation_error, worst)
            self.first_violation = self.first_violation or f"tick {tick}: conservation error {errors}"
        longs, shorts = self.engine.open_interest(self.symbol)
        if longs != shorts or longs != self.long_oi or shorts != self.short_oi:
            self.max_oi_imbalance = max(self.max_oi_imbalance, abs(longs - shorts), abs(longs - self.long_oi))
            self.first_violation = self.first_violation or (
                f"tick {tick}: engine open interest {longs} long / {shorts} short, events say "
                f"{self.long_oi} / {self.short_oi}"
            )

    # ------------------------------------------------------------------------------ distances

    def _distances(self) -> dict[str, np.ndarray]:
        """Liquidation distance (%) of the positions open after the first tick, from the engine's own exact
        liquidation price (a seeded sample of at most ``distance_sample`` accounts)."""
        open_idx = [
            i
            for i in np.flatnonzero(self.population.entry_tick == 0).tolist()
            if self.sizes.get(int(self.account_ids[i]), Decimal(0)) != 0
        ]
        rng = np.random.Generator(np.random.PCG64(self.scenario.seed + 7919))
        if len(open_idx) > self.scenario.distance_sample:
            open_idx = sorted(
                rng.choice(open_idx, size=self.scenario.distance_sample, replace=False).tolist()
            )
        out = {"long": [], "short": [], "long_isolated": [], "short_isolated": []}
        for i in open_idx:
            result = self.engine.liquidation(int(self.account_ids[i]), self.symbol)
            if result is None or result.distance_pct is None:
                continue
            pct = float(result.distance_pct)  # the formulas' exact distance, as a statistic
            key = "long" if self.population.side[i] > 0 else "short"
            out[key].append(pct)
            if self.population.isolated[i]:
                out[f"{key}_isolated"].append(pct)
        return {k: np.asarray(v, dtype=float) for k, v in out.items()}

    # ------------------------------------------------------------------------------ the run

    def run(self) -> StressResult:
        with collection_paused():  # the run freezes what it made after every tick (settle_garbage)
            return self._run()

    def _run(self) -> StressResult:
        started = time.perf_counter()
        sc = self.scenario
        path = self.path
        n_ticks = len(path)
        pop = self.population
        self._setup()
        self._settle_garbage()
        setup_s = time.perf_counter() - started
        entries_at: dict[int, list[int]] = {}
        for i, t in enumerate(pop.entry_tick.tolist()):
            entries_at.setdefault(t, []).append(i)
        exits_at: dict[int, list[int]] = {}
        for i, t in enumerate(pop.exit_tick.tolist()):
            if t >= 0:
                exits_at.setdefault(t, []).append(i)
        funding_at: dict[int, list[Any]] = {}
        for f in self.funding:
            funding_at.setdefault(f.tick, []).append(f)
        series = {
            name: np.zeros(n_ticks)
            for name in (
                "mark",
                "price",
                "liquidations",
                "liquidated_notional",
                "insurance_fund",
                "adl_events",
                "adl_notional",
                "bad_debt",
                "open_interest",
                "stops_triggered",
                "vol_ratio",
                "platform",
            )
        }
        fund_min = self.fund_start
        fund_min_tick = 0
        distances: dict[str, np.ndarray] = {}
        stops_before = 0
        engine_s = 0.0
        latency = sc.latency_ticks
        fund_account = self.engine.insurance
        work = self._work_plan(n_ticks, entries_at, exits_at, funding_at)
        work_total, done = sum(work), 0
        clock = time.perf_counter
        phases = [0.0] * len(PHASES)  # seconds per phase of the tick loop (see PHASES)
        for tick in range(n_ticks):
            self._tick_liq = self._tick_adl = 0
            self._tick_liq_notional = self._tick_adl_notional = 0.0
            price = path.prices[tick]
            ts = int(path.timestamps_ms[tick])
            t0 = clock()
            for f in funding_at.get(tick, ()):
                self._do(cmd.SettleFunding(self.symbol, ts, f.rate))
            t1 = clock()
            self._requote(tick, price)
            t2 = clock()
            for i in exits_at.get(tick, ()):
                self._close(i, price)
            t3 = clock()
            opening = entries_at.get(tick, ())
            for k, i in enumerate(opening):
                self._open(i, price)
                if tick == 0 and self.progress is not None and (k + 1) % 1000 == 0:
                    self.progress(done + (k + 1) * PROGRESS_OPENING, work_total)  # the initial positions
            mark = path.prices[tick - latency] if tick >= latency else path.prices[0]
            t4 = clock()
            self._do(cmd.SetMarkPrice(self.symbol, mark, ts))
            t5 = clock()
            self._cleanup()
            fund = fund_account.balance(SETTLE)
            if fund < fund_min:
                fund_min, fund_min_tick = fund, tick
            self._check(tick, full=(tick % self.check_every == 0 or tick == n_ticks - 1))
            t6 = clock()
            engine_s += t5 - t4
            phases[0] += t1 - t0
            phases[1] += t2 - t1
            phases[2] += t3 - t2
            phases[3] += t4 - t3
            phases[4] += t5 - t4
            phases[5] += t6 - t5
            series["mark"][tick] = float(mark)
            series["price"][tick] = float(price)
            series["liquidations"][tick] = self._tick_liq
            series["liquidated_notional"][tick] = self._tick_liq_notional
            series["insurance_fund"][tick] = float(fund)
            series["adl_events"][tick] = self._tick_adl
            series["adl_notional"][tick] = self._tick_adl_notional
            series["bad_debt"][tick] = float(self.totals.bad_debt)
            series["open_interest"][tick] = float(self.long_oi)
            series["stops_triggered"][tick] = self.totals.stops_triggered - stops_before
            series["vol_ratio"][tick] = float(self.vol_ratio[tick])
            series["platform"][tick] = float(self.engine.ledger.balance(PLATFORM, SETTLE))
            stops_before = self.totals.stops_triggered
            if tick == 0:
                distances = self._distances()
            self._settle_garbage()
            done += work[tick]
            if self.progress is not None:
                self.progress(done, work_total)
        series["time_ms"] = path.timestamps_ms.astype(float)
        elapsed = time.perf_counter() - started
        summary_started = time.perf_counter()
        summary = self._summary(fund_min, fund_min_tick, series, elapsed)
        summary_s = time.perf_counter() - summary_started
        run_s = elapsed - setup_s
        performance = {
            "elapsed_s": round(elapsed, 3),
            "setup_s": round(setup_s, 3),
            "ticks_per_s": round(n_ticks / run_s, 2) if run_s > 0 else float("inf"),
            "mark_update_ms_per_tick": round(engine_s / n_ticks * 1e3, 3),
            "mark_update_us_per_account_tick": round(engine_s / n_ticks / len(pop) * 1e6, 3),
            "other_ms_per_tick": round((run_s - engine_s) / n_ticks * 1e3, 3),
            # where the time went: funding, market-maker quotes, exits, entries (with stop-loss placement),
            # the mark update (risk pass, liquidations, ADL), checks and clean-up; the rest is recording
            "phases_s": {name: round(v, 3) for name, v in zip(PHASES, phases)},
            # outside elapsed_s: building the price path and the population before it, the summary (state hash
            # included) after it; and the garbage collections the run makes itself (inside the figures above)
            "init_s": round(self.init_s, 3),
            "summary_s": round(summary_s, 3),
            "garbage_collection_s": round(self.garbage_s, 3),
        }
        gaps = [
            {"after": iso(g.after_ms), "before": iso(g.before_ms), "missing": g.missing} for g in path.gaps
        ]
        return StressResult(sc, summary, series, distances, population_stats(pop), performance, gaps)

    def _work_plan(
        self,
        n_ticks: int,
        entries_at: Mapping[int, list[int]],
        exits_at: Mapping[int, list[int]],
        funding_at: Mapping[int, list[Any]],
    ) -> list[int]:
        """Units of work per tick (see ``PROGRESS_OPENING``): what the progress callback counts."""
        n = len(self.population)
        per_tick = PROGRESS_TICK_BASE + n // PROGRESS_TICK_PER
        per_settlement = max(1, n // PROGRESS_FUNDING_PER)
        return [
            per_tick
            + PROGRESS_OPENING * len(entries_at.get(t, ()))
            + PROGRESS_EXIT * len(exits_at.get(t, ()))
            + per_settlement * len(funding_at.get(t, ()))
            for t in range(n_ticks)
        ]

    def _summary(
        self, fund_min: Decimal, fund_min_tick: int, series: dict[str, np.ndarray], elapsed: float
    ) -> dict[str, Any]:
        t = self.totals
        path = self.path
        fund_end = self.engine.insurance.balance(SETTLE)
        longs, shorts = self.engine.open_interest(self.symbol)
        minute = (path.timestamps_ms // 60_000) * 60_000
        peak: dict[str, Any] = {}
        if t.liquidations:
            uniq, inverse = np.unique(minute, return_inverse=True)
            counts = np.bincount(inverse, weights=series["liquidations"])
            notional = np.bincount(inverse, weights=series["liquidated_notional"])
            k = int(np.argmax(notional))
            peak = {
                "minute": iso(int(uniq[k])),
                "liquidations": int(counts[k]),
                "notional": round(float(notional[k]), 2),
            }
        summary: dict[str, Any] = {
            "accounts": len(self.population),
            "ticks": len(path),
            "liquidations": t.liquidations,
            "liquidated_notional": format_decimal(t.liquidated_notional),
            "insurance_fund_start": format_decimal(self.fund_start),
            "insurance_fund_end": format_decimal(fund_end),
            "insurance_fund_min": format_decimal(fund_min),
            "adl_events": t.adl_events,
            "bad_debt": format_decimal(t.bad_debt),
            "conservation_error": format_decimal(self.max_conservation_error),
            "open_interest_imbalance": format_decimal(self.max_oi_imbalance),
            "elapsed_s": round(elapsed, 3),
            # ---- beyond the contract
            "policy": self.scenario.policy,
            "seed": self.scenario.seed,
            "data": Path(path.source).name if not path.source.startswith("synthetic") else path.source,
            "symbol": self.symbol,
            "start": iso(int(path.timestamps_ms[0])),
            "end": iso(int(path.timestamps_ms[-1])),
            "bars": len(path.bar_times_ms),
            "data_gaps": len(path.gaps),
            "price_first": format_decimal(path.prices[0]),
            "price_low": format_decimal(min(path.prices)),
            "price_high": format_decimal(max(path.prices)),
            "price_last": format_decimal(path.prices[-1]),
            "liquidated_accounts": len(t.liquidated_accounts),
            "liquidations_by_step": {s: t.by_step.get(s, 0) for s in STEP_NAMES},
            "liquidations_past_bankruptcy": t.past_bankruptcy,
            "peak_liquidation_minute": peak,
            "insurance_fund_min_at": iso(int(path.timestamps_ms[fund_min_tick])),
            "adl_notional": format_decimal(t.adl_notional),
            "adl_accounts": len(t.adl_accounts),
            "adl_by_reason": {r: t.adl_by_reason.get(r, 0) for r in ("fund_insufficient", "book_depth")},
            "bad_debt_by_payer": {
                **{k: format_decimal(v) for k, v in t.deficit.items()},
                "trader_debt": format_decimal(t.debt),
            },
            "accounts_in_debt": len(t.debtors),
            "socialized_loss": format_decimal(t.socialized),
            "platform_balance": format_decimal(self.engine.ledger.balance(PLATFORM, SETTLE)),
            "disposals": t.disposals,
            "disposal_surplus": format_decimal(t.surplus),
            "disposal_unfilled_quantity": format_decimal(t.disposal_unfilled),
            "entries": self.entries,
            "entries_refused": dict(sorted(self.entries_refused.items())),
            "exits": self.exits,
            "stop_losses_placed": self.stops_placed,
            "stop_losses_triggered": t.stops_triggered,
            "funding_settlements": len(self.funding),
            "funding_payments": t.funding_payments,
            "open_interest_end": format_decimal(longs),
            "open_interest_short_end": format_decimal(shorts),
            "fees_collected": format_decimal(self.engine.ledger.balance("fees", SETTLE)),
            "checks": self.checks,
            "check_every": self.check_every,
            "first_violation": self.first_violation,
            "latency_ticks": self.scenario.latency_ticks,
            "liquidation_capacity": self.scenario.liquidation_capacity,
            "liquidation_fee": format_decimal(self.instrument.liquidation_fee),
            "tiers_scale": self.scenario.tiers_scale,
            "depth_scale": round(self.depth_scale, 8),
            "state_hash": self.engine.state_hash(),
        }
        return summary


def run_stress(
    scenario: Scenario, candles: Candles | None = None, progress: Callable[[int, int], None] | None = None
) -> StressResult:
    """Run one scenario (see :class:`StressRunner`)."""
    return StressRunner(scenario, candles, progress).run()


def compare_policies(
    scenario: Scenario,
    policies: tuple[str, ...] = POLICY_NAMES,
    candles: Candles | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, StressResult]:
    """The same scenario and seed under each negative-balance policy."""
    if candles is None:
        candles = load_scenario_candles(scenario)
    out: dict[str, StressResult] = {}
    for policy in policies:
        cb = None if progress is None else (lambda d, n, _p=policy: progress(_p, d, n))
        out[policy] = run_stress(replace(scenario, policy=policy), candles, cb)
    return out
