"""The ``perprisk`` command line (thin: parsing and printing only; the rules live below)."""

from __future__ import annotations

import typer

from perprisk import __version__
from perprisk.cli import calc_tools  # noqa: F401
from perprisk.cli.bench import bench_app
from perprisk.cli.calc import calc_app
from perprisk.cli.demo import demo_command
from perprisk.cli.stress import stress_command, sweep_command

app = typer.Typer(
    name="perprisk",
    help="Exact clearing and risk engine for leveraged crypto perpetuals: margin, tiers, liquidation, "
    "insurance fund, ADL — and the calculators that tell a trader where their exchange liquidates them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(calc_app, name="calc")
app.add_typer(bench_app, name="bench")
app.command("demo")(demo_command)
app.command("stress")(stress_command)
app.command("sweep")(sweep_command)
from perprisk.cli import serve as _serve  # noqa: E402,F401  (registers the `serve` command on app)


@app.command("version")
def version() -> None:
    """Print the perprisk version."""
    typer.echo(__version__)


def main() -> None:
    app()
