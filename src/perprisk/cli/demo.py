"""``perprisk demo``: the main job (until the stress simulator lands: the calculator on a shipped example)."""

from __future__ import annotations

import json
from decimal import Decimal

from perprisk.cli.output import console, rows_table
from perprisk.formulas import FAMILIES
from perprisk.money import Rounding, format_decimal, quantize
from perprisk.paths import BINANCE_TIERS_FILE
from perprisk.tools.requests import liquidation_response, parse_liquidation_request, solve_liquidation


def _round(text: str | None, places: int = 2) -> str | None:
    if text is None:
        return None
    return format_decimal(quantize(Decimal(text), Decimal(1).scaleb(-places), Rounding.HALF_EVEN))


def demo_command() -> None:
    """Where would each exchange family liquidate a 20× BTCUSDT position? (real Binance tiers)."""
    console.print("[bold]perprisk demo[/] — 1.5 BTC at 121,600 (the 2025-10-10 open), 20×, isolated, "
                  "taker fee 0.05 %; mark 121,600. Tiers: Binance USDⓈ-M BTCUSDT (shipped in data/).")
    rows = []
    for side in ("long", "short"):
        for family in FAMILIES:
            request = {
                "family": family,
                "margin_mode": "isolated",
                "wallet_balance": "9120",
                "taker_fee": "0.0005",
                "positions": [{
                    "symbol": "BTCUSDT", "side": side, "size": "1.5", "entry_price": "121600",
                    "mark_price": "121600", "leverage": "20", "tiers_file": str(BINANCE_TIERS_FILE),
                }],
            }
            query = parse_liquidation_request(json.loads(json.dumps(request)))
            r = liquidation_response(query, solve_liquidation(query))
            rows.append([side, family, _round(r["liquidation_price"]), _round(r["bankruptcy_price"]),
                         _round(r["distance_pct"], 3), r["tier"], r["mmr"]])
    console.print(rows_table("Liquidation price by exchange family",
                             ["side", "family", "liquidation", "bankruptcy", "distance %", "tier", "mmr"], rows))
    console.print("On 2025-10-10 BTCUSDT fell to 101,516.5 (−16.5 %): every long above was liquidated.")
