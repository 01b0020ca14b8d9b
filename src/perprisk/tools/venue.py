"""The venue a trade is planned on: exchange family, risk tiers and taker fee — and the few shared helpers
every calculator of the trader's toolkit (SPEC §2.4) needs.

The toolkit never re-derives a liquidation formula: :meth:`Venue.isolated` calls
:func:`perprisk.formulas.liquidation_price` and :meth:`Venue.balance_at` calls
:func:`perprisk.formulas.margin_balance` (one source of truth, ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from perprisk.errors import ValidationError
from perprisk.formulas import (
    LiquidationFamily,
    LiquidationResult,
    MarginMode,
    PositionLeg,
    Side,
    get_family,
    liquidation_price,
    margin_balance,
)
from perprisk.instrument import RiskTier, TierTable
from perprisk.money import (
    FRACTION_TYPES,
    ZERO,
    Fraction,
    Number,
    Rounding,
    format_decimal,
    fraction_to_decimal,
    quantize,
    to_decimal,
)
from perprisk.paths import BINANCE_TIERS_FILE

DEFAULT_SYMBOL = "BTCUSDT"
#: Binance USDⓈ-M BTCUSDT quantity step (contracts of 0.001 BTC).
DEFAULT_LOT = Decimal("0.001")
#: Binance USDⓈ-M BTCUSDT price tick.
DEFAULT_TICK = Decimal("0.1")
#: Binance USDⓈ-M regular (VIP 0) taker fee, charged on entry by the carry-cost tools.
DEFAULT_ENTRY_FEE_RATE = Decimal("0.0005")


@dataclass(frozen=True)
class Venue:
    """Where the trade would be liquidated: the exchange family, the symbol's risk tiers, the taker fee.

    ``taker_fee`` is the rate the families that include a closing fee in the trigger (okx, gate, generic) use;
    other families ignore it, exactly as :func:`perprisk.formulas.liquidation_price` does.
    """

    family: LiquidationFamily
    tiers: TierTable
    taker_fee: Decimal = ZERO
    symbol: str = DEFAULT_SYMBOL

    def leg(self, side: Side, size: Number, entry: Number, mark: Number | None = None) -> PositionLeg:
        """One position on this venue (mark = entry unless given)."""
        price = _as_decimal(entry, "entry")
        mark_price = price if mark is None else _as_decimal(mark, "mark")
        return PositionLeg(self.symbol, side, _as_decimal(size, "size"), price, mark_price, self.tiers)

    def isolated(
        self, side: Side, size: Number, entry: Number, margin: Number, mark: Number | None = None
    ) -> LiquidationResult:
        """The exact isolated liquidation result with position margin ``margin``."""
        return liquidation_price(
            self.family,
            MarginMode.ISOLATED,
            margin,
            [self.leg(side, size, entry, mark)],
            taker_fee=self.taker_fee,
        )

    def liquidation_price(
        self, side: Side, size: Number, entry: Number, margin: Number, mark: Number | None = None
    ) -> Fraction | None:
        return self.isolated(side, size, entry, margin, mark).liquidation_price

    def balance_at(
        self,
        side: Side,
        size: Number,
        entry: Number,
        margin: Number,
        price: Number,
        mark: Number | None = None,
    ) -> tuple[Fraction, Fraction]:
        """(margin balance, maintenance requirement) of the isolated position with the market at ``price``."""
        return margin_balance(
            self.family,
            MarginMode.ISOLATED,
            margin,
            [self.leg(side, size, entry, mark)],
            price,
            taker_fee=self.taker_fee,
        )

    def tier_for_notional(self, notional: Number) -> RiskTier | None:
        """The tier of an opening notional, or ``None`` beyond the table (the exchange refuses it)."""
        n = Fraction(notional)
        for tier in self.tiers.tiers:
            if Fraction(tier.floor) <= n and (tier.cap is None or n < Fraction(tier.cap)):
                return tier
        return None

    @property
    def highest_max_leverage(self) -> Decimal:
        return max(t.max_leverage for t in self.tiers.tiers)

    @property
    def largest_maintenance_amount(self) -> Decimal:
        if not self.family.uses_maintenance_amount:
            return ZERO
        return max(t.maintenance_amount for t in self.tiers.tiers)


def _as_decimal(value: Number, field: str) -> Decimal:
    if isinstance(value, FRACTION_TYPES):
        return _exact_decimal(value, field)
    return Decimal(value)


def _exact_decimal(value: Fraction, field: str) -> Decimal:
    """A Fraction as a Decimal when its expansion terminates (prices and sizes of record must)."""
    d = fraction_to_decimal(value)
    if Fraction(d) != value:
        raise ValidationError(
            field, f"{value} has no finite decimal expansion; round it to the tick/lot first"
        )
    return d


def make_venue(
    family: object = "binance",
    *,
    tiers_file: str | Path | None = None,
    symbol: str = DEFAULT_SYMBOL,
    mmr: object = None,
    maintenance_amount: object = None,
    max_leverage: object = None,
    taker_fee: object = "0",
) -> Venue:
    """A validated venue: tiers from a file (default: the shipped Binance USDⓈ-M brackets) or one mmr."""
    fam = get_family(family)
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValidationError("symbol", "must be a non-empty string")
    symbol = symbol.strip()
    fee = to_decimal(taker_fee, "taker_fee")
    if not (ZERO <= fee < 1):
        raise ValidationError("taker_fee", f"must lie in [0, 1), got {fee}")
    if mmr is not None:
        if tiers_file is not None:
            raise ValidationError("mmr", "give either mmr (and maintenance_amount) or tiers_file, not both")
        lev = max_leverage if max_leverage is not None else 125
        tiers = TierTable.single(
            symbol, mmr, maintenance_amount if maintenance_amount is not None else 0, lev
        )
    else:
        if maintenance_amount is not None:
            raise ValidationError(
                "maintenance_amount", "only meaningful with mmr (a tiers file brings its own)"
            )
        if max_leverage is not None:
            raise ValidationError("max_leverage", "only meaningful with mmr (a tiers file brings its own)")
        from perprisk.tools.requests import tier_table_from_file

        path = str(tiers_file if tiers_file is not None else BINANCE_TIERS_FILE)
        try:
            tiers = tier_table_from_file(path, symbol, "venue")
        except ValidationError as err:
            field = err.field.split(".", 1)[1] if err.field.startswith("venue.") else err.field
            raise ValidationError("symbol" if field == "tiers_symbol" else field, err.message) from None
    return Venue(fam, tiers, fee, symbol)


# ------------------------------------------------------------------------------------------ shared helpers


def positive(value: object, field: str) -> Decimal:
    """A number > 0 (str, int or Decimal; an exact Fraction passes through unchanged), else refused."""
    if isinstance(value, FRACTION_TYPES):
        if value <= 0:
            raise ValidationError(field, f"must be greater than zero, got {format_decimal(value)}")
        return value  # type: ignore[return-value]  # exact rationals (e.g. margin = q·E/L) stay exact
    return to_decimal(value, field, positive=True)


def position_margin(
    size: object, entry: object, margin: object = None, leverage: object = None
) -> Decimal | Fraction:
    """Isolated position margin: given directly, or ``q·E / leverage`` exactly (SPEC §2: ``IM = q·E / L``)."""
    if margin is not None and leverage is not None:
        raise ValidationError("leverage", "give the margin or the leverage, not both")
    if margin is not None:
        return positive(margin, "margin")
    if leverage is None:
        raise ValidationError("margin", "give the position margin or the leverage")
    lev = positive(leverage, "leverage")
    if lev < 1:
        raise ValidationError("leverage", f"must be at least 1, got {format_decimal(lev)}")
    from perprisk.formulas import initial_margin

    return initial_margin(positive(size, "size"), positive(entry, "entry"), lev)


def parse_side(value: object, field: str = "side") -> Side:
    return Side.parse(value, field)


def adverse(side: Side, price: Number, reference: Number) -> bool:
    """True when ``price`` lies strictly on the losing side of ``reference`` (below for a long)."""
    p, r = Fraction(price), Fraction(reference)
    return p < r if side is Side.LONG else p > r


def require_adverse(side: Side, price: Decimal, entry: Decimal, field: str, what: str) -> None:
    """Refuse a level that is not on the losing side of the entry (a long's stop must lie below its entry)."""
    if not adverse(side, price, entry):
        where = "below" if side is Side.LONG else "above"
        raise ValidationError(field, f"{what} {price} must lie {where} the entry {entry} for a {side.label}")


def rate_fraction(
    value: object,
    field: str,
    *,
    low: Decimal = ZERO,
    high: Decimal = Decimal(1),
    low_open: bool = True,
    high_open: bool = True,
) -> Decimal:
    """A rate/ratio within bounds, refused otherwise with the bounds named."""
    d = to_decimal(value, field)
    ok_low = d > low if low_open else d >= low
    ok_high = d < high if high_open else d <= high
    if not (ok_low and ok_high):
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        raise ValidationError(field, f"must lie in {lb}{low}, {high}{hb}, got {d}")
    return d


def text(x: Fraction | Decimal | int | None) -> str | None:
    """A number as a full-precision decimal string for JSON (``None`` stays ``None``)."""
    return None if x is None else format_decimal(x)


def brief(x: Fraction | Decimal | int | None, significant: int = 10) -> str:
    """A number for messages: about ``significant`` digits (at least 2 decimals kept), half-even; JSON fields
    keep :func:`text`'s full precision."""
    if x is None:
        return "none"
    d = x if isinstance(x, Decimal) else fraction_to_decimal(Fraction(x))
    if d == 0:
        return "0"
    places = max(2, significant - (d.adjusted() + 1))
    if -d.normalize().as_tuple().exponent <= places:  # type: ignore[operator]
        return format_decimal(d)
    return format_decimal(quantize(d, Decimal(1).scaleb(-places), Rounding.HALF_EVEN))


def liquidation_json(result: LiquidationResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "liquidation_price": text(result.liquidation_price),
        "bankruptcy_price": text(result.bankruptcy_price),
        "distance_pct": text(result.distance_pct),
        "tier": result.tier.tier,
        "mmr": text(result.mmr),
        "maintenance_amount": text(result.maintenance_amount),
        "margin_balance": text(result.equity),
        "maintenance_margin": text(result.maintenance_margin),
    }


def venue_json(venue: Venue) -> dict[str, Any]:
    return {"family": venue.family.name, "symbol": venue.symbol, "taker_fee": text(venue.taker_fee)}
