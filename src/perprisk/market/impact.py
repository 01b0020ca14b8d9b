"""Impact prices: the average fill price of a market order for the impact notional (funding premium input).

Binance ("Introduction to Binance Futures Funding Rates", binance.com/en/support/faq/360033525031):
the impact bid/ask price is the average fill price to execute the *Impact Margin Notional* on the bid/ask
side, and ``IMN = 200 USDT / initial margin rate at the maximum leverage`` (e.g. a 20× contract, initial
margin rate 5 % → IMN 4,000 USDT; BTCUSDT at 125× → 25,000 USDT).

Levels are plain ``(price, quantity)`` pairs, best first (bids highest first, asks lowest first), so the
engine can pass its own book depth without this module knowing the book.  A book too thin to fill the
notional gives ``None`` (no impact price): the caller decides (e.g. skip that premium sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Literal, Sequence

from perprisk.errors import ValidationError
from perprisk.market._exact import exact
from perprisk.money import Fraction, fraction_to_decimal

#: Binance: the impact notional is what 200 USDT of margin buys at the maximum leverage.
BINANCE_IMPACT_MARGIN = Decimal(200)

Side = Literal["bid", "ask"]


def impact_margin_notional(initial_margin_rate: object, margin: object = BINANCE_IMPACT_MARGIN) -> Decimal:
    """``IMN = margin / initial_margin_rate`` (Binance: 200 USDT / IMR at the maximum leverage)."""
    imr = exact(initial_margin_rate, "initial_margin_rate", positive=True)
    if imr > 1:
        raise ValidationError("initial_margin_rate", f"must not exceed 1 (100 %), got {imr}")
    amount = exact(margin, "margin", positive=True)
    return fraction_to_decimal(amount / imr)


def impact_margin_notional_for(instrument: object, margin: object = BINANCE_IMPACT_MARGIN) -> Decimal:
    """The IMN of an :class:`~perprisk.instrument.Instrument`: IMR = 1 / max leverage of its first tier."""
    max_leverage = instrument.tiers.tiers[0].max_leverage  # type: ignore[attr-defined]
    return impact_margin_notional(Fraction(1) / Fraction(max_leverage), margin)


def impact_price(levels: Iterable[Sequence[object]], notional: object, side: Side) -> Fraction | None:
    """Average fill price of a market order for ``notional`` (quote currency) walking ``levels``, or ``None``.

    ``side="bid"`` walks bids (a market sell), ``side="ask"`` walks asks (a market buy).  The last level is
    taken partially.  ``None`` when the levels together cannot fill the notional.  Exact: the average is
    ``notional / quantity filled``.
    """
    if side not in ("bid", "ask"):
        raise ValidationError("side", f"must be 'bid' or 'ask', got {side!r}")
    target = exact(notional, "notional", positive=True)
    remaining = target
    filled = Fraction(0)
    previous: Fraction | None = None
    for i, level in enumerate(levels):
        if isinstance(level, (str, bytes)) or not isinstance(level, Sequence) or len(level) != 2:
            raise ValidationError(f"levels[{i}]", f"expected a (price, quantity) pair, got {level!r}")
        price = exact(level[0], f"levels[{i}].price", positive=True)
        qty = exact(level[1], f"levels[{i}].quantity", positive=True)
        if previous is not None and (price > previous if side == "bid" else price < previous):
            order = "highest" if side == "bid" else "lowest"
            raise ValidationError(f"levels[{i}].price", f"{side} levels must be ordered best ({order}) first")
        previous = price
        level_notional = price * qty
        if level_notional >= remaining:
            filled += remaining / price
            remaining = Fraction(0)
            break
        filled += qty
        remaining -= level_notional
    if remaining > 0:
        return None
    return target / filled


@dataclass(frozen=True, slots=True)
class ImpactPrices:
    """Impact bid and ask prices (``None`` on a side whose depth cannot fill the notional)."""

    bid: Fraction | None
    ask: Fraction | None
    notional: Fraction

    @property
    def complete(self) -> bool:
        return self.bid is not None and self.ask is not None


def impact_prices(
    bids: Iterable[Sequence[object]], asks: Iterable[Sequence[object]], notional: object
) -> ImpactPrices:
    """Both impact prices for ``notional``."""
    amount = exact(notional, "notional", positive=True)
    return ImpactPrices(impact_price(bids, amount, "bid"), impact_price(asks, amount, "ask"), amount)
