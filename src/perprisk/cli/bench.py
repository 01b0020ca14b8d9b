"""``perprisk bench``: throughput benchmarks, each measured against a baseline in the same run."""

from __future__ import annotations

import typer

from perprisk.cli.output import console, key_value_table, print_json

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
