"""Pure, exact formulas: margin, tiers, bankruptcy and liquidation prices per exchange family.

Inputs are Decimals (or ints/Fractions); results are exact rationals (:class:`fractions.Fraction`) — turn
them into Decimals only through :mod:`perprisk.money` with a named rounding.
"""

from perprisk.formulas.bankruptcy import bankruptcy_price, isolated_bankruptcy_price
from perprisk.formulas.families import FAMILIES, LiquidationFamily, get_family
from perprisk.formulas.liquidation import (
    LiquidationResult,
    liquidation_price,
    liquidation_price_value,
    margin_balance,
)
from perprisk.formulas.margin import (
    distance_pct,
    initial_margin,
    is_liquidatable,
    maintenance_margin,
    margin_ratio,
    notional,
    unrealized_pnl,
)
from perprisk.formulas.positions import MarginMode, PositionLeg, Side

__all__ = [
    "FAMILIES",
    "LiquidationFamily",
    "LiquidationResult",
    "MarginMode",
    "PositionLeg",
    "Side",
    "bankruptcy_price",
    "distance_pct",
    "get_family",
    "initial_margin",
    "is_liquidatable",
    "isolated_bankruptcy_price",
    "liquidation_price",
    "liquidation_price_value",
    "maintenance_margin",
    "margin_balance",
    "margin_ratio",
    "notional",
    "unrealized_pnl",
]
