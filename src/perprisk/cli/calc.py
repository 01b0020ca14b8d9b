"""``perprisk calc``: the trader's calculators."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Optional

import typer

from perprisk.cli.output import (
    console,
    key_value_table,
    print_json,
    read_json_request,
    rows_table,
    run_guarded,
)
from perprisk.errors import ValidationError
from perprisk.formulas import FAMILIES
from perprisk.instrument import load_tier_tables, select_tier_table
from perprisk.money import format_decimal, to_decimal
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.tools.requests import (
    liquidation_response,
    parse_liquidation_request,
    solve_liquidation,
    tier_response,
)

calc_app = typer.Typer(help="Trader's calculators: liquidation price, tiers, sizing, stops, drift, plans.",
                       no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print one JSON object instead of a table.")


def request_from_flags(**flags: Any) -> dict[str, Any]:
    """Build a one-position ``calc liquidation`` request from command-line flags."""
    position: dict[str, Any] = {
        "symbol": flags["symbol"],
        "side": flags["side"],
        "size": flags["size"],
        "entry_price": flags["entry"],
        "mark_price": flags["mark"] or flags["entry"],
    }
    for key, flag in (("leverage", "leverage"), ("mmr", "mmr"), ("maintenance_amount", "maintenance_amount"),
                      ("tiers_file", "tiers_file")):
        if flags[flag] is not None:
            position[key] = flags[flag]
    if position.get("mmr") is None and position.get("tiers_file") is None:
        position["tiers_file"] = str(BINANCE_TIERS_FILE)
    margin = flags["margin"]
    if margin is None:
        if flags["leverage"] is None:
            raise ValidationError("margin", "give --margin (position margin or wallet balance) or --leverage")
        size = to_decimal(flags["size"], "size", positive=True)
        entry = to_decimal(flags["entry"], "entry", positive=True)
        lev = to_decimal(flags["leverage"], "leverage", positive=True)
        margin = format_decimal(size * entry / lev)
    return {
        "family": flags["family"],
        "margin_mode": flags["mode"],
        "wallet_balance": margin,
        "taker_fee": flags["taker_fee"],
        "positions": [position],
    }


@calc_app.command("liquidation")
def liquidation(
    as_json: bool = JSON_OPT,
    input_file: Optional[str] = typer.Option(None, "--input", help="Read the JSON request from FILE (default stdin)."),
    family: str = typer.Option("binance", help=f"Exchange family: {', '.join(FAMILIES)}."),
    mode: str = typer.Option("isolated", help="isolated | cross"),
    side: Optional[str] = typer.Option(None, help="long | short (giving it builds the request from flags)."),
    size: Optional[str] = typer.Option(None, help="Position size in base units."),
    entry: Optional[str] = typer.Option(None, help="Entry price."),
    mark: Optional[str] = typer.Option(None, help="Mark price (default: entry)."),
    margin: Optional[str] = typer.Option(None, help="Position margin (isolated) or wallet balance (cross)."),
    leverage: Optional[str] = typer.Option(None, help="Leverage; sets margin = size·entry/leverage if --margin is absent."),
    mmr: Optional[str] = typer.Option(None, help="Maintenance margin rate (else the tiers file)."),
    maintenance_amount: Optional[str] = typer.Option(None, help="Maintenance amount (Binance cum / Bybit deduction)."),
    tiers_file: Optional[str] = typer.Option(None, help="Tier table file (default: shipped Binance USDⓈ-M tiers)."),
    symbol: str = typer.Option("BTCUSDT", help="Symbol (also looked up in the tiers file)."),
    taker_fee: str = typer.Option("0", help="Taker fee rate (okx, gate, generic)."),
) -> None:
    """Liquidation and bankruptcy price, distance and tier for a position or a cross account.

    Reads one JSON request from stdin or --input, or builds one from flags when --side is given.
    """

    def action() -> dict[str, Any]:
        if side is not None:
            if size is None or entry is None:
                raise ValidationError("size" if size is None else "entry", "required with --side")
            request = request_from_flags(
                family=family, mode=mode, side=side, size=size, entry=entry, mark=mark, margin=margin,
                leverage=leverage, mmr=mmr, maintenance_amount=maintenance_amount, tiers_file=tiers_file,
                symbol=symbol, taker_fee=taker_fee,
            )
        else:
            request = read_json_request(input_file)
        query = parse_liquidation_request(request)
        return liquidation_response(query, solve_liquidation(query))

    response = run_guarded(as_json, action)
    if as_json:
        print_json(response)
        return
    show = dict(response)
    notes = show.pop("notes")
    for key in ("liquidation_price", "bankruptcy_price", "mark_price", "margin_balance", "maintenance_margin"):
        if show[key] is not None:
            show[key] = _short(show[key], 8)
    for key in ("distance_pct", "margin_ratio_pct"):
        if show[key] is not None:
            show[key] = _short(show[key], 4) + " %"
    console.print(key_value_table(f"Liquidation — {response['family']} {response['margin_mode']}", show.items()))
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


def _short(text: str, places: int) -> str:
    """Readable rounding for tables only (JSON keeps full precision)."""
    from perprisk.money import Rounding, quantize

    return format_decimal(quantize(Decimal(text), Decimal(1).scaleb(-places), Rounding.HALF_EVEN))


@calc_app.command("tiers")
def tiers(
    tiers_file: str = typer.Option(str(BINANCE_TIERS_FILE), help="ccxt leverage-tier JSON or perprisk tiers file."),
    symbol: str = typer.Option("BTCUSDT", help="Symbol, e.g. BTCUSDT or BTC/USDT:USDT."),
    notional: Optional[str] = typer.Option(None, help="Show the tier for this notional (else the whole table)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Risk-tier lookup: mmr, maintenance amount and max leverage for a notional, or the whole table."""

    def action() -> Any:
        try:
            table = select_tier_table(load_tier_tables(tiers_file), symbol, tiers_file)
        except ValidationError as err:
            field = "symbol" if err.field == "tiers_symbol" else ("tiers_file" if err.field == "tiers_file" else f"tiers_file.{err.field}")
            raise ValidationError(field, err.message) from None
        if notional is not None:
            return tier_response(table, notional)
        return {
            "symbol": table.symbol,
            "tiers": [
                {
                    "tier": t.tier,
                    "floor": format_decimal(t.floor),
                    "cap": None if t.cap is None else format_decimal(t.cap),
                    "mmr": format_decimal(t.mmr),
                    "maintenance_amount": format_decimal(t.maintenance_amount),
                    "max_leverage": format_decimal(t.max_leverage),
                }
                for t in table.tiers
            ],
        }

    response = run_guarded(as_json, action)
    if as_json:
        print_json(response)
    elif notional is not None:
        console.print(key_value_table(f"{response['symbol']} tier for notional {notional}", response.items()))
    else:
        console.print(
            rows_table(
                f"{response['symbol']} risk tiers",
                ["tier", "floor", "cap", "mmr", "maintenance amount", "max leverage"],
                ([t["tier"], t["floor"], t["cap"], t["mmr"], t["maintenance_amount"], t["max_leverage"]]
                 for t in response["tiers"]),
            )
        )
