"""Output helpers shared by the CLI commands: JSON on stdout, readable tables, errors with exit code 2."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Iterable, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from perprisk.errors import ValidationError

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(err: ValidationError, as_json: bool) -> NoReturn:
    """Report a refused request: JSON ``{"error": {...}}`` on stdout with --json, else a message on stderr."""
    if as_json:
        print_json({"error": err.to_dict()})
    else:
        err_console.print(f"[bold red]error[/] in [bold]{err.field}[/]: {err.message}")
    raise typer.Exit(EXIT_BAD_INPUT)


def run_guarded(as_json: bool, action: Callable[[], T]) -> T:
    """Run ``action``; turn a ValidationError into the CLI's error contract."""
    try:
        return action()
    except ValidationError as err:
        fail(err, as_json)


def read_json_request(input_file: str | None) -> Any:
    """One JSON document from ``--input FILE`` or stdin; numbers parsed as exact Decimals."""
    from decimal import Decimal

    if input_file:
        try:
            with open(input_file, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as err:
            raise ValidationError("input", f"cannot read {input_file}: {err.strerror or err}") from None
    else:
        text = sys.stdin.read()
    if not text.strip():
        raise ValidationError("request", "empty input: expected one JSON object")
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as err:
        raise ValidationError("request", f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}") from None


def key_value_table(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", justify="right")
    for key, value in rows:
        table.add_row(key, "—" if value is None else str(value))
    return table


def rows_table(title: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*("—" if v is None else str(v) for v in row))
    return table
