"""``perprisk bench``: throughput benchmarks, each measured against a baseline in the same run."""

from __future__ import annotations

import typer

from perprisk.cli.output import console, key_value_table, print_json, run_guarded

bench_app = typer.Typer(help="Benchmarks: ratios against a baseline measured in the same run.", no_args_is_help=True)


@bench_app.command("book")
def bench_book(
    ops: int = typer.Option(200_000, min=1_000, help="Operations in the exchange-core mix."),
    seed: int = typer.Option(1, help="Seed of the order stream."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Fast order book vs the naive reference book on the same order stream."""
    from perprisk.benchmarks.book import run_book_benchmark

    result = run_book_benchmark(ops=ops, seed=seed)
    if as_json:
        print_json(result)
    else:
        console.print(key_value_table("Order book benchmark (exchange-core mix)", result.items()))


@bench_app.command("scan")
def bench_scan(
    positions: int = typer.Option(1_000_000, min=1_000, help="Positions in the population."),
    seed: int = typer.Option(1, help="Seed of the population."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Risk scan at a new mark vs a memory-bandwidth reference and the exact per-position scan."""
    from perprisk.benchmarks.scan import run_scan_benchmark

    result = run_scan_benchmark(positions=positions, seed=seed)
    if as_json:
        print_json(result)
    else:
        console.print(key_value_table("Risk scan benchmark", result.items()))


@bench_app.command("stress")
def bench_stress(
    accounts: int = typer.Option(1_000_000, min=100, help="Accounts in the population."),
    bars: int = typer.Option(2880, min=2, help="One-minute candles of the 2025-10-10/11 crash (one tick each)."),
    seed: int = typer.Option(1, help="Seed of the population."),
    baseline_accounts: int = typer.Option(
        None, min=100,
        help="Accounts of the baseline run, at most --accounts (default: 1 % of the accounts, at least 1,000).",
    ),
    policy: str = typer.Option("insurance_fund", help="Negative-balance policy of both runs."),
    path_order: str = typer.Option("close", help="Ticks per candle: close (one tick each) or a bar order."),
    check_every: int = typer.Option(
        None, min=1, help="Full conservation and open-interest check every N ticks (default: the stress default)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress lines on stderr."),
) -> None:
    """The stress replay at scale: wall time, what dominates, peak memory (target: 1,000,000 accounts over
    2,880 ticks in 60 s)."""
    from perprisk.cli.stress import _progress_bar
    from perprisk.sim.bench import run_stress_benchmark

    options = dict(accounts=accounts, bars=bars, seed=seed, baseline_accounts=baseline_accounts)
    # only what differs from the benchmark's defaults is passed on (the defaults live in one place)
    for name, value, default in (("policy", policy, "insurance_fund"), ("path_order", path_order, "close"),
                                 ("check_every", check_every, None)):
        if value != default:
            options[name] = value
    progress, update = _progress_bar(not no_progress, "bench stress")
    if progress is not None:
        progress.start()
    try:
        result = run_guarded(as_json, lambda: run_stress_benchmark(**options, progress=update))
    finally:
        if progress is not None:
            progress.stop()
    if as_json:
        print_json(result)
    else:
        console.print(key_value_table("Stress benchmark", result.items()))
