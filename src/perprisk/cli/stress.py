"""``perprisk stress`` and ``perprisk sweep``: the stress simulator on real crashes (thin: parse, run, print)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from perprisk.cli.output import console, err_console, key_value_table, print_json, rows_table, run_guarded

DEFAULT_HTML = "reports/stress-report.html"
DEFAULT_SWEEP_HTML = "reports/sweep-report.html"
DEFAULT_SWEEP_OUT = "reports/sweep-results.parquet"

#: Summary figures shown in the terminal table, in order.
SHOWN = (
    "accounts",
    "ticks",
    "start",
    "end",
    "price_first",
    "price_low",
    "price_last",
    "liquidations",
    "liquidated_accounts",
    "liquidated_notional",
    "peak_liquidation_minute",
    "insurance_fund_start",
    "insurance_fund_min",
    "insurance_fund_min_at",
    "insurance_fund_end",
    "adl_events",
    "adl_notional",
    "bad_debt",
    "stop_losses_triggered",
    "conservation_error",
    "open_interest_imbalance",
    "elapsed_s",
)


def _progress_bar(enabled: bool, label: str):
    """A rich progress bar (to stderr) whose ``update(done, total)`` is the runner's progress callback."""
    if not enabled:
        return None, None
    if not err_console.is_terminal:  # a log (make demo piped, CI): a plain line every 10 %
        last = [-1]
        started = time.monotonic()

        def elapsed() -> str:
            seconds = int(time.monotonic() - started)
            return f"{seconds // 60}:{seconds % 60:02d}"

        def plain(done: int, total: int) -> None:
            tenth = done * 10 // max(total, 1)
            if tenth != last[0]:
                last[0] = tenth
                err_console.print(f"{label}: {tenth * 10} % ({elapsed()} elapsed)", highlight=False)

        return None, plain
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)  # rich redraws at its own pace

    return progress, update


def stress_command(
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Candle file (default: the shipped Binance USDⓈ-M "
        "BTCUSDT 1-minute klines of the 2025-10-10/11 crash).",
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="binance-csv | freqtrade-json | cdd-csv | csv | parquet (default: detected)."
    ),
    start: str | None = typer.Option(None, help="Window start, ISO-8601 UTC (e.g. 2025-10-10T20:00Z)."),
    end: str | None = typer.Option(None, help="Window end (exclusive)."),
    funding: str | None = typer.Option(
        "auto",
        help="Funding-rate file (freqtrade JSON or CSV); 'auto': the "
        "shipped Binance rates for the default data; 'none': no funding.",
    ),
    synthetic: str | None = typer.Option(
        None, help="gbm | garch: a seeded synthetic path instead of a file."
    ),
    bars: int = typer.Option(1440, help="Candles of a synthetic path."),
    symbol: str = typer.Option("BTCUSDT", help="Market (real Binance tiers are used)."),
    accounts: int = typer.Option(100_000, min=1, help="Trader accounts in the population."),
    seed: int = typer.Option(1, min=0, help="Seed of the population, the path order and synthetic paths."),
    policy: str = typer.Option(
        "insurance_fund", help="insurance_fund | negative_balance_protection | debt | socialized_loss."
    ),
    compare_policies: bool = typer.Option(
        False, "--compare-policies", help="Run the four policies on the same seed and print a table."
    ),
    path_order: str = typer.Option(
        "auto", help="Order of each bar's high and low: auto | high-first | low-first | random."
    ),
    substeps: int = typer.Option(0, min=0, max=100, help="Extra ticks between a bar's points."),
    insurance_fund: str | None = typer.Option(
        None,
        help="Insurance fund at the start (USDT); default: "
        "--insurance-fund-ratio × the population's notional.",
    ),
    insurance_fund_ratio: float = typer.Option(0.005, help="Fund at the start as a share of gross notional."),
    liquidation_fee: str | None = typer.Option(None, help="Liquidation fee rate (default 0.0125)."),
    tiers_scale: str = typer.Option("1", help="Multiply every tier's maintenance margin rate."),
    liquidation_capacity: int | None = typer.Option(
        None, min=1, help="Margin units the liquidation engine handles per tick (default: unlimited)."
    ),
    latency_ticks: int = typer.Option(0, min=0, help="The engine sees the price this many ticks late."),
    disposal_band: str = typer.Option("0.05", help="Disposal orders no worse than mark × (1 ∓ band)."),
    check_every: int | None = typer.Option(
        None,
        min=1,
        help="Full conservation/open-interest check every N "
        "ticks (default: 1 up to 5,000 accounts, else 60).",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the JSON summary to this file."),
    html_out: Path = typer.Option(Path(DEFAULT_HTML), "--html", help="Write the HTML report here."),
    no_html: bool = typer.Option(False, "--no-html", help="Skip the HTML report."),
    series_out: Path | None = typer.Option(
        None, "--series", help="Write the per-tick series (CSV or Parquet)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    print_summary_json: bool = typer.Option(
        False, "--print-json", help="Print the summary as JSON on stdout."
    ),
) -> None:
    """Stress-test an insurance fund and liquidation policy on a real crash (default: BTCUSDT 2025-10-10/11).

    Drives the exact engine with a population of leveraged accounts and market makers along the price path;
    writes a JSON summary and a self-contained HTML report.
    """

    def action() -> None:
        from dataclasses import replace

        from perprisk.sim.report import write_html, write_json
        from perprisk.sim.runner import POLICY_NAMES, Scenario, load_scenario_candles, run_stress

        scenario = Scenario(
            data=str(data) if data else None,
            format=fmt,
            start=start,
            end=end,
            funding=None if funding in (None, "none", "") else funding,
            synthetic=synthetic,
            synthetic_bars=bars,
            symbol=symbol,
            accounts=accounts,
            seed=seed,
            policy=policy,
            path_order=path_order,
            substeps=substeps,
            insurance_fund=insurance_fund,
            insurance_fund_ratio=insurance_fund_ratio,
            liquidation_fee=liquidation_fee,
            tiers_scale=tiers_scale,
            liquidation_capacity=liquidation_capacity,
            latency_ticks=latency_ticks,
            disposal_band=disposal_band,
            check_every=check_every,
        )
        candles = load_scenario_candles(scenario)
        show = not no_progress and not print_summary_json
        if compare_policies:
            order = (policy,) + tuple(p for p in POLICY_NAMES if p != policy)
            progress, update = _progress_bar(show, "stress")
            results = {}
            if progress is not None:
                progress.start()
            try:
                for p in order:
                    if progress is not None:
                        progress.update(progress.task_ids[0], description=p, completed=0)
                    results[p] = run_stress(replace(scenario, policy=p), candles, update)
            finally:
                if progress is not None:
                    progress.stop()
            main = results[policy]
            summary = dict(main.summary)
            summary["policies"] = {p: _policy_figures(r.summary) for p, r in results.items()}
        else:
            progress, update = _progress_bar(show, "stress")
            if progress is not None:
                progress.start()
            try:
                main = run_stress(scenario, candles, update)
            finally:
                if progress is not None:
                    progress.stop()
            results = {policy: main}
            summary = dict(main.summary)
        if json_out is not None:
            write_json(summary, json_out)
        report = None
        if not no_html:
            report = write_html(
                results, html_out, title=f"perprisk stress — {summary['symbol']} {summary['start'][:10]}"
            )
        if series_out is not None:
            _write_series(main.series, series_out)
        if print_summary_json:
            print_json(summary)
            return
        console.print(
            key_value_table(
                "Stress summary" + (f" — policy {policy}" if compare_policies else ""),
                [(k, summary[k]) for k in SHOWN],
            )
        )
        if compare_policies:
            console.print(_policy_table(results))
        perf = main.performance
        console.print(
            f"throughput: {perf['ticks_per_s']} ticks/s with {summary['accounts']:,} accounts; engine mark "
            f"update {perf['mark_update_ms_per_tick']} ms/tick ({perf['mark_update_us_per_account_tick']} µs "
            f"per account-tick); set-up {perf['setup_s']} s"
        )
        if json_out is not None:
            console.print(f"summary: {json_out}", soft_wrap=True)
        if report is not None:
            console.print(f"report: {report.resolve()}", soft_wrap=True)

    run_guarded(print_summary_json, action)


def _policy_table(results: dict[str, Any]):
    """Policies as columns, figures as rows (fits a narrow terminal)."""
    from rich.table import Table

    from perprisk.sim.report import POLICY_COLUMNS, policy_table

    rows = policy_table(results)
    table = Table(title="Policies (same seed, same path)", title_justify="left")
    table.add_column("figure", style="bold", no_wrap=True, min_width=20)
    for row in rows:
        table.add_column(str(row[0]), justify="right", overflow="fold")
    for k, name in enumerate(POLICY_COLUMNS[1:], start=1):
        table.add_row(name, *(str(row[k]) for row in rows))
    return table


def _policy_figures(s: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "liquidations",
        "liquidated_notional",
        "adl_events",
        "adl_notional",
        "bad_debt",
        "bad_debt_by_payer",
        "insurance_fund_end",
        "insurance_fund_min",
        "socialized_loss",
        "platform_balance",
        "accounts_in_debt",
        "conservation_error",
        "open_interest_imbalance",
        "state_hash",
    )
    return {k: s[k] for k in keys}


def _write_series(series: dict[str, Any], path: Path) -> None:
    import pyarrow as pa

    from perprisk.errors import ValidationError

    table = pa.table({k: v for k, v in series.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif path.suffix == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        raise ValidationError("series", f"{path.name}: write .csv or .parquet")


def sweep_command(
    file: Path = typer.Argument(..., help="Sweep file (TOML): [scenario], [grid], [sweep]."),
    scheduler: str | None = typer.Option(
        None,
        help="Address of an existing Dask scheduler (tcp://HOST:PORT); default: an embedded local cluster.",
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Worker processes of the embedded cluster (default: the file's, else 2)."
    ),
    out: Path | None = typer.Option(
        None, help=f"Results table, .parquet or .csv (default {DEFAULT_SWEEP_OUT})."
    ),
    html_out: Path | None = typer.Option(
        None, "--html", help=f"HTML summary (default {DEFAULT_SWEEP_HTML})."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Run a grid of stress scenarios × seeds on Dask; write a Parquet/CSV table and an HTML summary."""

    def action() -> None:
        from perprisk.sim.sweep import load_sweep, render_sweep_html, run_sweep, sweep_points, write_table

        spec = load_sweep(file)
        n = len(sweep_points(spec))
        progress = None
        update = None
        if not no_progress and not as_json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            progress = Progress(
                TextColumn("[bold]sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("runs"),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
            task = progress.add_task("sweep", total=n)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            progress.start()
        try:
            result = run_sweep(spec, scheduler=scheduler, workers=workers, progress=update)
        finally:
            if progress is not None:
                progress.stop()
        table_path = write_table(result, out or Path(spec.out or DEFAULT_SWEEP_OUT))
        html_path = Path(html_out or spec.html or DEFAULT_SWEEP_HTML)
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render_sweep_html(result, f"perprisk sweep — {file.name}"), encoding="utf-8")
        if as_json:
            print_json(
                {
                    "rows": result.rows,
                    "table": str(table_path),
                    "html": str(html_path),
                    "elapsed_s": round(result.elapsed_s, 3),
                    "workers": result.workers,
                }
            )
            return
        shown = list(spec.grid) + [
            "seed",
            "liquidations",
            "adl_events",
            "bad_debt",
            "insurance_fund_min",
            "conservation_error",
        ]
        console.print(
            rows_table(
                f"Sweep: {len(result.rows)} runs on {result.workers} Dask workers ({result.elapsed_s:.1f} s)",
                shown,
                [[r[c] for c in shown] for r in result.rows],
            )
        )
        console.print(f"table: {table_path.resolve()}", soft_wrap=True)
        console.print(f"report: {html_path.resolve()}", soft_wrap=True)

    run_guarded(as_json, action)
