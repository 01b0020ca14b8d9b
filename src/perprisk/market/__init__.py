"""Market prices: index (spot sources), mark/fair price, funding (premium, rate, payments, schedule).

Pure, exact (``Fraction``/``Decimal``) and independent of the order book: impact prices are computed from
plain ``(price, quantity)`` levels the engine passes in.  Rounding happens only through ``perprisk.money``
with a named mode.
"""

from perprisk.market.funding import (
    FundingRate,
    FundingRateRule,
    LinearWeightedAverage,
    PremiumAccumulator,
    SimpleAverage,
    funding_credits,
    funding_payment,
    funding_rate,
    funding_rate_from_samples,
    premium_index,
)
from perprisk.market.impact import (
    ImpactPrices,
    impact_margin_notional,
    impact_margin_notional_for,
    impact_price,
    impact_prices,
)
from perprisk.market.index import (
    CapOutliers,
    ExcludeOutliers,
    IndexCalculator,
    IndexPrice,
    NoFreshSourceError,
    SourceQuote,
)
from perprisk.market.mark import (
    FairPriceMethod,
    MarkPrice,
    MarkPriceEngine,
    Median3Method,
    fair_price,
    median3,
)
from perprisk.market.schedule import FundingSchedule

__all__ = [
    "CapOutliers",
    "ExcludeOutliers",
    "FairPriceMethod",
    "FundingRate",
    "FundingRateRule",
    "FundingSchedule",
    "ImpactPrices",
    "IndexCalculator",
    "IndexPrice",
    "LinearWeightedAverage",
    "MarkPrice",
    "MarkPriceEngine",
    "Median3Method",
    "NoFreshSourceError",
    "PremiumAccumulator",
    "SimpleAverage",
    "SourceQuote",
    "fair_price",
    "funding_credits",
    "funding_payment",
    "funding_rate",
    "funding_rate_from_samples",
    "impact_margin_notional",
    "impact_margin_notional_for",
    "impact_price",
    "impact_prices",
    "median3",
    "premium_index",
]
