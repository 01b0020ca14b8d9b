"""Liquidation-price families: how each exchange evaluates maintenance margin (SPEC §2).

Every family reduces to one equation in the price ``P`` of the target market::

    C + Σ_t s_t·q_t·(P − E_t) − Σ_t MM_t(P) − fee·Σ_t q_t·P = 0

where ``C`` is the margin balance not moving with ``P`` (position margin when isolated; wallet balance plus the
other cross positions' PnL minus their maintenance when cross).  Families differ only in how ``MM_t`` depends
on ``P`` and whether the closing taker fee is part of the trigger — small named strategy objects, no
``if exchange == ...`` chains.
"""

from __future__ import annotations

from dataclasses import dataclass

from perprisk.errors import ValidationError
from perprisk.formulas.margin import exact_ratio, maintenance_margin_ratio
from perprisk.formulas.positions import PositionLeg
from perprisk.instrument import RiskTier, tier_index
from perprisk.money import Fraction


@dataclass(frozen=True)
class LiquidationFamily:
    """How one exchange family computes maintenance margin for the liquidation trigger."""

    name: str
    #: True: MM on the notional at the price being tested (q·P); False: on the position value at entry (q·E).
    mm_at_price: bool
    #: True: ``MM = N·mmr − maintenance_amount`` (Binance cum, Bybit deduction); False: ``MM = N·mmr``.
    uses_maintenance_amount: bool
    #: True: the taker fee to close at the price is added to the maintenance requirement.
    uses_taker_fee: bool
    #: True: the tier is the one of the notional at the solved price (re-checked); False: fixed up front.
    tier_recheck: bool
    formula: str

    def fixed_tier(self, leg: PositionLeg) -> RiskTier:
        """The tier used when there is no re-check: of the entry value or of the notional at mark."""
        return _tier_of_notional(leg, leg.mark_price if self.mm_at_price else leg.entry_price)

    def tier_at(self, leg: PositionLeg, price: Fraction) -> RiskTier:
        """The tier in force when the leg's market trades at ``price``."""
        if self.tier_recheck:
            return _tier_of_notional(leg, price)
        return self.fixed_tier(leg)

    def maintenance(self, leg: PositionLeg, price: Fraction, tier: RiskTier | None = None) -> Fraction:
        """Maintenance margin of ``leg`` when its market is at ``price`` (fee excluded)."""
        return Fraction(*self.maintenance_ratio(leg, price, tier))

    def maintenance_ratio(self, leg: PositionLeg, price: Fraction, tier: RiskTier | None = None) -> tuple[int, int]:
        """:meth:`maintenance` as an integer pair ``(n, d)``, ``d > 0``."""
        tier = tier or self.tier_at(leg, price)
        qn, qd = exact_ratio(leg.size)
        bn, bd = exact_ratio(price if self.mm_at_price else leg.entry_price)
        return maintenance_margin_ratio(qn * bn, qd * bd, tier, self.uses_maintenance_amount)

    def closing_fee(self, leg: PositionLeg, price: Fraction, taker_fee: Fraction) -> Fraction:
        return Fraction(*self.closing_fee_ratio(leg, price, taker_fee))

    def closing_fee_ratio(self, leg: PositionLeg, price: Fraction, taker_fee: Fraction) -> tuple[int, int]:
        """:meth:`closing_fee` as an integer pair ``(n, d)``, ``d > 0``."""
        if not self.uses_taker_fee:
            return 0, 1
        qn, qd = exact_ratio(leg.size)
        pn, pd = exact_ratio(price)
        fn, fd = exact_ratio(taker_fee)
        return qn * pn * fn, qd * pd * fd


def _tier_of_notional(leg: PositionLeg, price: Fraction | object) -> RiskTier:
    """``leg.tiers.tier_for_notional_clamped(q·price)`` without building the notional as a Fraction."""
    qn, qd = exact_ratio(leg.size)
    pn, pd = exact_ratio(price)  # type: ignore[arg-type]
    if qn * pn < 0:
        return leg.tiers.tier_for_notional_clamped(Fraction(qn * pn, qd * pd))  # refused: negative notional
    return leg.tiers.tiers[tier_index(leg.tiers).clamped_position_of_ratio(qn * pn, qd * pd)]


FAMILIES: dict[str, LiquidationFamily] = {
    f.name: f
    for f in (
        LiquidationFamily(
            "binance", True, True, False, True,
            "LP = (WB − TMM₁ + UPNL₁ + cum − s·q·E) / (q·mmr − s·q); tier of the notional at LP",
        ),
        LiquidationFamily(
            "bybit", False, True, False, False,
            "long LP = E − (PM − MM)/q, short LP = E + (PM − MM)/q; MM = q·E·mmr − deduction",
        ),
        LiquidationFamily(
            "okx", True, False, True, False,
            "long LP = (E − PM/q)/(1 − mmr − taker), short LP = (E + PM/q)/(1 + mmr + taker)",
        ),
        LiquidationFamily(
            "gate", True, False, True, False,
            "long LP = (E − PM/q)/(1 − mmr − taker), short LP = (E + PM/q)/(1 + mmr + taker)",
        ),
        LiquidationFamily(
            "mexc", False, False, False, False,
            "long LP = (MM − PM + E·q)/q, short LP = (E·q − MM + PM)/q; MM = q·E·mmr",
        ),
        LiquidationFamily(
            "generic", True, True, True, True,
            "equity = Σ(q·P·mmr − cum) + taker·Σq·P, tier of the notional at LP (perprisk's engine rule)",
        ),
    )
}


def get_family(name: object, field: str = "family") -> LiquidationFamily:
    if isinstance(name, LiquidationFamily):
        return name
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in FAMILIES:
        raise ValidationError(field, f"unknown family {name!r} (one of: {', '.join(FAMILIES)})")
    return FAMILIES[key]
