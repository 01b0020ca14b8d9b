"""``perprisk calc`` — the trader's toolkit commands (SPEC §2.4): sizing, checks, stops, drift, plans,
pre-trade.

Thin: each command parses flags, calls one function of :mod:`perprisk.tools`, and prints either a readable
table (numbers rounded for the eye only) or, with ``--json``, one JSON object whose numbers are full-precision
decimal strings.  Bad input exits with code 2 (``{"error": {"field", "message"}}`` on stdout under
``--json``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

import typer
from rich.table import Table

from perprisk.cli.calc import JSON_OPT, calc_app
from perprisk.cli.output import console, key_value_table, print_json, run_guarded
from perprisk.errors import ValidationError
from perprisk.formulas import FAMILIES
from perprisk.money import Rounding, format_decimal, quantize
from perprisk.paths import BINANCE_TIERS_FILE, BTC_DAILY_FILE
from perprisk.tools import checks, drift, plan, pretrade, sizing
from perprisk.tools.venue import DEFAULT_LOT, DEFAULT_TICK, Venue, make_venue, position_margin

# ------------------------------------------------------------------------------------------ shared options

FAMILY_OPT = typer.Option("binance", "--family", help=f"Exchange family: {', '.join(FAMILIES)}.")
TIERS_OPT = typer.Option(
    None,
    "--tiers-file",
    help=f"Risk-tier file (default: shipped Binance USDⓈ-M tiers, {BINANCE_TIERS_FILE.name}).",
)
SYMBOL_OPT = typer.Option("BTCUSDT", "--symbol", help="Symbol (looked up in the tiers file).")
MMR_OPT = typer.Option(None, "--mmr", help="One explicit maintenance margin rate instead of the tiers file.")
AMOUNT_OPT = typer.Option(
    None, "--maintenance-amount", help="Maintenance amount with --mmr (cum / deduction)."
)
TAKER_OPT = typer.Option(
    "0", "--taker-fee", help="Taker fee rate in the liquidation formula (okx, gate, generic)."
)
SIDE_OPT = typer.Option(None, "--side", help="long | short")
ENTRY_OPT = typer.Option(None, "--entry", help="Entry price.")
SIZE_OPT = typer.Option(None, "--size", help="Position size in base units.")
MARGIN_OPT = typer.Option(None, "--margin", help="Isolated position margin.")
LEVERAGE_OPT = typer.Option(
    None, "--leverage", help="Leverage; margin = size·entry/leverage when --margin is absent."
)
ENTRY_FEE_OPT = typer.Option(
    str(drift.DEFAULT_ENTRY_FEE_RATE),
    "--entry-fee-rate",
    help="Fee rate charged on the entry notional (Binance taker 0.05 %).",
)
FUNDING_RATE_OPT = typer.Option(
    str(drift.DEFAULT_FUNDING_RATE),
    "--funding-rate",
    help="Constant funding rate per interval (longs pay when > 0).",
)
HOURS_OPT = typer.Option(str(drift.DEFAULT_HOLDING_HOURS), "--hours", help="Holding period in hours.")
INTERVAL_OPT = typer.Option(
    str(drift.DEFAULT_FUNDING_INTERVAL_HOURS), "--interval-hours", help="Funding interval in hours."
)
RATES_OPT = typer.Option(None, "--rates", help="Comma-separated funding rates, one per funding time.")


def _venue(
    family: str,
    tiers_file: Optional[str],
    symbol: str,
    mmr: Optional[str],
    maintenance_amount: Optional[str],
    taker_fee: str,
) -> Venue:
    return make_venue(
        family,
        tiers_file=tiers_file,
        symbol=symbol,
        mmr=mmr,
        maintenance_amount=maintenance_amount,
        taker_fee=taker_fee,
    )


def _required(value: Optional[str], field: str) -> str:
    if value is None or not str(value).strip():
        raise ValidationError(field, "required")
    return value


def _list(value: Optional[str], field: str) -> Optional[list[str]]:
    """``"1,2,3"`` → ``["1", "2", "3"]`` (None stays None)."""
    if value is None:
        return None
    items = [x.strip() for x in value.split(",")]
    if not items or any(not x for x in items):
        raise ValidationError(field, f"expected comma-separated numbers, got {value!r}")
    return items


def _date_ms(value: Optional[str], field: str) -> Optional[int]:
    if value is None:
        return None
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ValidationError(field, f"expected a UTC date YYYY-MM-DD, got {value!r}") from None
    return int(day.timestamp()) * 1000


def _int(value: Optional[str], field: str, *, minimum: int = 0) -> Optional[int]:
    if value is None:
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ValidationError(field, f"expected an integer, got {value!r}") from None
    if n < minimum:
        raise ValidationError(field, f"must be at least {minimum}, got {n}")
    return n


# ---------------------------------------------------------------------------------------------- printing

_LEVEL_STYLE = {"ok": "green", "caution": "yellow", "danger": "bold red"}
_COLUMN_LABELS = {
    "index": "#",
    "stage": "#",
    "time_utc": "time (UTC)",
    "liquidation_price": "liq. price",
    "distance_pct": "dist. %",
    "margin_added": "added",
    "margin_total": "margin",
    "payment": "paid",
}
_SIGNIFICANT = 10


def _readable(value: Any, significant: int = _SIGNIFICANT) -> Any:
    """Round long decimal strings for tables (JSON keeps full precision): ~10 significant digits."""
    if not isinstance(value, str):
        return value
    try:
        d = Decimal(value)
    except InvalidOperation:
        return value
    if not d.is_finite() or d == 0 or "." not in value:
        return value
    places = max(2, significant - (d.adjusted() + 1))
    if -d.as_tuple().exponent <= places:
        return value
    return format_decimal(quantize(d, Decimal(1).scaleb(-places), Rounding.HALF_EVEN))


def _cell(key: str, value: Any, significant: int = _SIGNIFICANT) -> Any:
    if value is None:
        return None
    if key == "level":
        return f"[{_LEVEL_STYLE.get(value, 'white')}]{value}[/]"
    if isinstance(value, bool):
        return "[green]yes[/]" if value else "[bold red]no[/]"
    return _readable(value, significant)


def _rows_table(
    title: str, columns: list[str], rows: Iterable[Iterable[Any]], text_columns: Iterable[str] = ()
) -> Table:
    """Rows with compact numbers: numeric columns right-aligned and never wrapped, text columns folded."""
    texts = set(text_columns)
    table = Table(title=title, title_justify="left")
    for col in columns:
        label = _COLUMN_LABELS.get(col, col.replace("_", " "))
        if col in texts:
            table.add_column(label, justify="left", overflow="fold", ratio=1)
        else:
            table.add_column(label, justify="right", no_wrap=col != "time_utc")
    for row in rows:
        table.add_row(*("—" if v is None else str(v) for v in row))
    return table


def _flatten(response: dict[str, Any], skip: Iterable[str]) -> list[tuple[str, Any]]:
    skipped = set(skip)
    rows: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for key, value in response.items():
        if key in skipped or isinstance(value, list):
            continue
        if isinstance(value, dict):
            for sub, v in value.items():
                label = sub if key == "liquidation" else f"{key}.{sub}"
                if label in response or label in seen or isinstance(v, (list, dict)):
                    continue
                rows.append((label, v))
                seen.add(label)
            continue
        rows.append((key, value))
        seen.add(key)
    return [(k.replace("_", " "), _cell(k.rsplit(".", 1)[-1], v)) for k, v in rows]


def _show(
    title: str,
    response: dict[str, Any],
    *,
    skip: Iterable[str] = (),
    tables: Iterable[tuple[str, str, list[str]]] = (),
) -> None:
    """A key/value table of the scalar fields, then one row table per listed field, then notes/warnings."""
    console.print(key_value_table(title, _flatten(response, skip)))
    for field, heading, columns in tables:
        rows = response.get(field) or []
        if rows:
            console.print(
                _rows_table(
                    heading,
                    columns,
                    ([_cell(c, r.get(c), 7) for c in columns] for r in rows),
                    text_columns=("name", "message"),
                )
            )
    for key, style in (("notes", "yellow"), ("warnings", "bold yellow")):
        for note in response.get(key) or []:
            console.print(f"[{style}]{key[:-1]}:[/] {note}")
    if "message" in response:
        style = _LEVEL_STYLE.get(response.get("level", ""), "white")
        console.print(f"[{style}]{response['message']}[/]")


def _run(
    as_json: bool, action: Callable[[], dict[str, Any]], render: Callable[[dict[str, Any]], None]
) -> None:
    response = run_guarded(as_json, action)
    if as_json:
        print_json(response)
    else:
        render(response)


# ---------------------------------------------------------------------------------------------- commands


@calc_app.command("size")
def size_command(
    side: Optional[str] = SIDE_OPT,
    entry: Optional[str] = ENTRY_OPT,
    worst: Optional[str] = typer.Option(None, "--worst", help="Worst price the position must survive."),
    margin: Optional[str] = typer.Option(None, "--margin", help="Margin budget (isolated position margin)."),
    lot: str = typer.Option(str(DEFAULT_LOT), "--lot", help="Quantity step (lot size)."),
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    taker_fee: str = TAKER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Reverse sizing (seed 003): the largest size whose liquidation price lies beyond --worst."""

    def action() -> dict[str, Any]:
        venue = _venue(family, tiers_file, symbol, mmr, maintenance_amount, taker_fee)
        return sizing.reverse_size(
            venue,
            _required(side, "side"),
            _required(entry, "entry"),
            _required(worst, "worst"),
            _required(margin, "margin"),
            lot,
        ).to_json()

    _run(as_json, action, lambda r: _show(f"Reverse sizing — {r['family']} {r['symbol']} {r['side']}", r))


@calc_app.command("margin")
def margin_command(
    side: Optional[str] = SIDE_OPT,
    entry: Optional[str] = ENTRY_OPT,
    size: Optional[str] = SIZE_OPT,
    target_lp: Optional[str] = typer.Option(None, "--target-lp", help="Wanted liquidation price."),
    margin_step: str = typer.Option("0.01", "--margin-step", help="Round the margin up to this step."),
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    taker_fee: str = TAKER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Margin needed for a target liquidation price (isolated), checked by recomputing the price."""

    def action() -> dict[str, Any]:
        venue = _venue(family, tiers_file, symbol, mmr, maintenance_amount, taker_fee)
        return sizing.margin_for_liquidation_price(
            venue,
            _required(side, "side"),
            _required(size, "size"),
            _required(entry, "entry"),
            _required(target_lp, "target_lp"),
            margin_step,
        ).to_json()

    _run(as_json, action, lambda r: _show(f"Margin for a liquidation price — {r['family']} {r['symbol']}", r))


@calc_app.command("risk-size")
def risk_size_command(
    account: Optional[str] = typer.Option(None, "--account", help="Account equity."),
    entry: Optional[str] = ENTRY_OPT,
    stop: Optional[str] = typer.Option(None, "--stop", help="Stop-loss price."),
    risk_pct: str = typer.Option("1", "--risk-pct", help="Percent of the account risked (seed 000: 1–2 %)."),
    side: Optional[str] = typer.Option(None, "--side", help="long | short (default: from the stop)."),
    lot: str = typer.Option(str(DEFAULT_LOT), "--lot", help="Quantity step; the size is rounded down to it."),
    margin: Optional[str] = MARGIN_OPT,
    leverage: Optional[str] = LEVERAGE_OPT,
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    taker_fee: str = TAKER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Risk-per-trade sizing: size = account × risk% / |entry − stop|; with --margin or --leverage, is the
    stop before the liquidation price?"""

    def action() -> dict[str, Any]:
        venue = _venue(family, tiers_file, symbol, mmr, maintenance_amount, taker_fee)
        return sizing.risk_size(
            _required(account, "account"),
            _required(entry, "entry"),
            _required(stop, "stop"),
            risk_pct=risk_pct,
            side=side,
            lot=lot,
            venue=venue,
            margin=margin,
            leverage=leverage,
        ).to_json()

    _run(as_json, action, lambda r: _show(f"Risk-per-trade sizing — {r['side']}", r))


@calc_app.command("usage")
def usage_command(
    used_margin: Optional[str] = typer.Option(None, "--used-margin", help="Margin committed to positions."),
    equity: Optional[str] = typer.Option(None, "--equity", help="Account equity."),
    limit_pct: str = typer.Option("80", "--limit-pct", help="Usage limit in percent (seed 000: 80 %)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Margin usage = used margin / equity (warns above 80 %)."""

    def action() -> dict[str, Any]:
        return checks.margin_usage(
            _required(used_margin, "used_margin"), _required(equity, "equity"), limit_pct
        ).to_json()

    _run(as_json, action, lambda r: _show("Margin usage", r, skip=("message",)))


@calc_app.command("reward-risk")
def reward_risk_command(
    entry: Optional[str] = ENTRY_OPT,
    stop: Optional[str] = typer.Option(None, "--stop", help="Stop-loss price."),
    target: Optional[str] = typer.Option(None, "--target", help="Take-profit price."),
    side: Optional[str] = typer.Option(None, "--side", help="long | short (default: from the stop)."),
    min_ratio: str = typer.Option("2", "--min-ratio", help="Minimum reward per unit of risk (seed 000: 2)."),
    size: Optional[str] = typer.Option(None, "--size", help="Size, to show the amounts."),
    as_json: bool = JSON_OPT,
) -> None:
    """Reward:risk of entry, stop and target (warns below 1:2)."""

    def action() -> dict[str, Any]:
        return checks.reward_risk(
            _required(entry, "entry"),
            _required(stop, "stop"),
            _required(target, "target"),
            side=side,
            min_ratio=min_ratio,
            size=size,
        ).to_json()

    _run(as_json, action, lambda r: _show("Reward : risk", r, skip=("message",)))


@calc_app.command("leverage")
def leverage_command(
    leverage: Optional[str] = typer.Option(None, "--leverage", help="Leverage to check."),
    experience: str = typer.Option("beginner", "--experience", help="beginner (≤ 5×) | expert (≤ 20×)."),
    notional: Optional[str] = typer.Option(
        None, "--notional", help="Position notional: also check the tier max."
    ),
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Leverage warning: ok / caution / danger against the beginner (5×) and expert (20×) limits."""

    def action() -> dict[str, Any]:
        venue = (
            _venue(family, tiers_file, symbol, mmr, maintenance_amount, "0") if notional is not None else None
        )
        return checks.leverage_check(
            _required(leverage, "leverage"), experience, venue=venue, notional=notional
        ).to_json()

    _run(as_json, action, lambda r: _show("Leverage check", r, skip=("message",)))


@calc_app.command("stop")
def stop_command(
    side: Optional[str] = SIDE_OPT,
    entry: Optional[str] = ENTRY_OPT,
    lp: Optional[str] = typer.Option(
        None, "--lp", help="Liquidation price (else solved from size and margin)."
    ),
    size: Optional[str] = SIZE_OPT,
    margin: Optional[str] = MARGIN_OPT,
    leverage: Optional[str] = LEVERAGE_OPT,
    fraction: str = typer.Option(
        "0.5", "--fraction", help="Where the stop sits from entry (0) to the LP (1)."
    ),
    tick: Optional[str] = typer.Option(
        str(DEFAULT_TICK), "--tick", help="Price tick; the stop rounds toward entry."
    ),
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    taker_fee: str = TAKER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Stop suggestion before the liquidation price (default half-way from entry, seed 003)."""

    def action() -> dict[str, Any]:
        s, e = _required(side, "side"), _required(entry, "entry")
        if lp is not None:
            if size is not None or margin is not None or leverage is not None:
                raise ValidationError("lp", "give --lp, or --size with --margin/--leverage, not both")
            return checks.suggest_stop(s, e, lp, fraction=fraction, tick=tick).to_json()
        venue = _venue(family, tiers_file, symbol, mmr, maintenance_amount, taker_fee)
        q = _required(size, "size")
        return checks.suggest_stop_for_position(
            venue, s, q, e, position_margin(q, e, margin, leverage), fraction=fraction, tick=tick
        ).to_json()

    _run(as_json, action, lambda r: _show(f"Stop before liquidation — {r['side']}", r))


@calc_app.command("drift")
def drift_command(
    side: Optional[str] = SIDE_OPT,
    entry: Optional[str] = ENTRY_OPT,
    size: Optional[str] = SIZE_OPT,
    margin: Optional[str] = MARGIN_OPT,
    leverage: Optional[str] = LEVERAGE_OPT,
    mark: Optional[str] = typer.Option(None, "--mark", help="Mark price standing still (default: entry)."),
    hours: str = HOURS_OPT,
    interval_hours: str = INTERVAL_OPT,
    funding_rate: str = FUNDING_RATE_OPT,
    rates: Optional[str] = RATES_OPT,
    funding_file: Optional[str] = typer.Option(
        None, "--funding-file", help="Real funding rates (freqtrade JSON, e.g. data/binance_um)."
    ),
    since: Optional[str] = typer.Option(
        None, "--since", help="With --funding-file: first UTC date YYYY-MM-DD."
    ),
    periods: Optional[str] = typer.Option(
        None, "--periods", help="With --funding-file: number of funding times."
    ),
    entry_fee_rate: str = ENTRY_FEE_OPT,
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    taker_fee: str = TAKER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Funding and fee drift: the liquidation price after each funding time while the price stands still."""

    def action() -> dict[str, Any]:
        venue = _venue(family, tiers_file, symbol, mmr, maintenance_amount, taker_fee)
        s, e, q = _required(side, "side"), _required(entry, "entry"), _required(size, "size")
        pm = position_margin(q, e, margin, leverage)
        timestamps = None
        if funding_file is not None:
            if rates is not None:
                raise ValidationError("rates", "give --rates or --funding-file, not both")
            series = drift.load_funding_rates(funding_file).window(
                _date_ms(since, "since"), _int(periods, "periods")
            )
            series_rates: list[Any] = list(series.rates)
            timestamps = list(series.timestamps_ms)
        elif since is not None or periods is not None:
            raise ValidationError(
                "since" if since is not None else "periods", "only meaningful with --funding-file"
            )
        elif rates is not None:
            series_rates = _list(rates, "rates") or []
        else:
            series_rates = drift.constant_rates(funding_rate, hours, interval_hours)
        return drift.funding_drift(
            venue,
            s,
            q,
            e,
            pm,
            series_rates,
            mark=mark,
            timestamps_ms=timestamps,
            entry_fee_rate=entry_fee_rate,
        ).to_json()

    def render(r: dict[str, Any]) -> None:
        for step in r["steps"]:
            if step["timestamp_ms"] is not None:
                step["time_utc"] = datetime.fromtimestamp(step["timestamp_ms"] // 1000, tz=UTC).strftime(
                    "%Y-%m-%d %H:%M"
                )
        columns = (["index", "time_utc"] if any("time_utc" in s for s in r["steps"]) else ["index"]) + [
            "rate",
            "payment",
            "margin",
            "liquidation_price",
            "distance_pct",
        ]
        if r["liquidated_at"] is not None:
            columns.append("liquidated")
        _show(
            f"Funding & fee drift — {r['family']} {r['symbol']} {r['side']}",
            r,
            tables=[
                ("steps", "Liquidation price after each funding time (index 0: after the entry fee)", columns)
            ],
        )

    _run(as_json, action, render)


@calc_app.command("plan")
def plan_command(
    side: Optional[str] = SIDE_OPT,
    entry: Optional[str] = ENTRY_OPT,
    size: Optional[str] = SIZE_OPT,
    budget: Optional[str] = typer.Option(None, "--budget", help="Total margin budget for the trade."),
    initial_margin: Optional[str] = typer.Option(None, "--initial-margin", help="Margin posted at entry."),
    max_adds: str = typer.Option(
        str(plan.DEFAULT_MAX_ADDS), "--max-adds", help="At most this many add levels."
    ),
    levels: Optional[str] = typer.Option(
        None, "--levels", help="Comma-separated add levels (else evenly spaced)."
    ),
    invalidation: Optional[str] = typer.Option(None, "--invalidation", help="Price where the idea is wrong."),
    tick: Optional[str] = typer.Option(str(DEFAULT_TICK), "--tick", help="Price tick for the spaced levels."),
    margin_step: str = typer.Option("0.01", "--margin-step", help="Adds are rounded down to this step."),
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    taker_fee: str = TAKER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Staged margin plan (seed 003): initial margin, at most N pre-set add levels, LP after each add."""

    def action() -> dict[str, Any]:
        venue = _venue(family, tiers_file, symbol, mmr, maintenance_amount, taker_fee)
        return plan.staged_margin_plan(
            venue,
            _required(side, "side"),
            _required(size, "size"),
            _required(entry, "entry"),
            _required(budget, "budget"),
            _required(initial_margin, "initial_margin"),
            max_adds=_int(max_adds, "max_adds") or 0,
            levels=_list(levels, "levels"),
            invalidation=invalidation,
            tick=tick,
            margin_step=margin_step,
        ).to_json()

    _run(
        as_json,
        action,
        lambda r: _show(
            f"Staged margin plan — {r['family']} {r['symbol']} {r['side']}",
            r,
            skip=("initial",),
            tables=[
                (
                    "stages",
                    "Stages (0: entry; k: after the k-th add at its level)",
                    [
                        "stage",
                        "price",
                        "margin_added",
                        "margin_total",
                        "liquidation_price",
                        "distance_pct",
                        "leverage",
                    ],
                )
            ],
        ),
    )


@calc_app.command("pretrade")
def pretrade_command(
    side: Optional[str] = SIDE_OPT,
    entry: Optional[str] = ENTRY_OPT,
    size: Optional[str] = SIZE_OPT,
    margin: Optional[str] = MARGIN_OPT,
    leverage: Optional[str] = LEVERAGE_OPT,
    stop: Optional[str] = typer.Option(None, "--stop", help="Invalidation level: where the idea is wrong."),
    candles: str = typer.Option(
        str(BTC_DAILY_FILE), "--candles", help="Candle file for the ordinary daily move."
    ),
    candles_format: Optional[str] = typer.Option(None, "--candles-format", help="Candle file format (auto)."),
    k: str = typer.Option(
        str(pretrade.DEFAULT_K), "--k", help="Distance must exceed k × the ordinary daily move."
    ),
    quantile: str = typer.Option(
        str(pretrade.DEFAULT_QUANTILE), "--quantile", help="Quantile of the daily range (0.5 = median)."
    ),
    lookback_days: str = typer.Option(
        str(pretrade.DEFAULT_LOOKBACK_DAYS),
        "--lookback-days",
        help="Days of candles up to the file's last day.",
    ),
    hours: str = HOURS_OPT,
    interval_hours: str = INTERVAL_OPT,
    funding_rate: str = FUNDING_RATE_OPT,
    rates: Optional[str] = RATES_OPT,
    entry_fee_rate: str = ENTRY_FEE_OPT,
    family: str = FAMILY_OPT,
    tiers_file: Optional[str] = TIERS_OPT,
    symbol: str = SYMBOL_OPT,
    mmr: Optional[str] = MMR_OPT,
    maintenance_amount: Optional[str] = AMOUNT_OPT,
    taker_fee: str = TAKER_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Pre-trade check (seed 003): distance beyond k × the ordinary daily move after carry, an invalidation
    level before the liquidation price; pass/fail with named reasons."""

    def action() -> dict[str, Any]:
        venue = _venue(family, tiers_file, symbol, mmr, maintenance_amount, taker_fee)
        s, e, q = _required(side, "side"), _required(entry, "entry"), _required(size, "size")
        pm = position_margin(q, e, margin, leverage)
        move = pretrade.daily_move_from_file(
            candles,
            fmt=candles_format,
            lookback_days=_int(lookback_days, "lookback_days", minimum=1) or 1,
            quantile=quantile,
        )
        return pretrade.pretrade_check(
            venue,
            s,
            q,
            e,
            pm,
            stop=stop,
            daily_move=move,
            k=k,
            rates=_list(rates, "rates"),
            hours=hours,
            funding_rate=funding_rate,
            interval_hours=interval_hours,
            entry_fee_rate=entry_fee_rate,
        ).to_json()

    def render(r: dict[str, Any]) -> None:
        verdict = "[bold green]PASS[/]" if r["passed"] else "[bold red]FAIL[/]: " + ", ".join(r["reasons"])
        _show(
            f"Pre-trade check — {r['family']} {r['symbol']} {r['side']}",
            r,
            skip=("reasons",),
            tables=[("checks", "Checks (seed 003)", ["name", "passed", "message"])],
        )
        console.print(verdict)

    _run(as_json, action, render)
