"""Negative-balance policies (SPEC §2.2): who bears a liquidation loss beyond the trader's margin.

Small named strategies chosen per venue; every one moves money only by ledger transfers, so money is
conserved whatever the policy.

- ``insurance_fund`` (default): positions are taken over at the bankruptcy price, the trader ends at zero;
  disposal deficits are paid by the insurance fund; ADL when the fund cannot pay.
- ``negative_balance_protection``: the trader ends at zero and the *platform* books the loss (its ledger
  account may go negative); the insurance fund is not touched for deficits and ADL is never needed.
- ``debt``: a trader already below zero is taken over at the mark and keeps the negative balance as a debt to
  the exchange: no withdrawals or new exposure until repaid.  Disposal slippage is paid by the fund.
- ``socialized_loss``: deficits are spread over the market's profitable positions pro rata to their
  unrealized profit (over all positions by notional if none is in profit).
"""

from __future__ import annotations

from dataclasses import dataclass

from perprisk.errors import ValidationError


@dataclass(frozen=True)
class NegativeBalancePolicy:
    name: str
    #: Who pays a disposal deficit: ``fund``, ``platform`` or ``socialized``.
    deficit_payer: str
    #: False: a trader already past bankruptcy is taken over at the mark and keeps the debt.
    takeover_at_bankruptcy_when_negative: bool
    description: str

    @property
    def uses_fund(self) -> bool:
        return self.deficit_payer == "fund"


POLICIES: dict[str, NegativeBalancePolicy] = {
    p.name: p
    for p in (
        NegativeBalancePolicy("insurance_fund", "fund", True,
                              "the insurance fund covers losses beyond margin; ADL when it cannot"),
        NegativeBalancePolicy("negative_balance_protection", "platform", True,
                              "the account is reset to zero and the platform books the loss"),
        NegativeBalancePolicy("debt", "fund", False,
                              "the trader keeps a negative balance as a debt; blocked until repaid"),
        NegativeBalancePolicy("socialized_loss", "socialized", True,
                              "losses are spread over the market's profitable positions pro rata"),
    )
}


def get_policy(name: object) -> NegativeBalancePolicy:
    if isinstance(name, NegativeBalancePolicy):
        return name
    if name not in POLICIES:
        raise ValidationError("policy", f"unknown negative-balance policy {name!r} (one of: {', '.join(POLICIES)})")
    return POLICIES[name]  # type: ignore[index]
