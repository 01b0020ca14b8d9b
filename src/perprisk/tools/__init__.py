"""Trader's toolkit (SPEC §2.4): pure functions over :mod:`perprisk.formulas`.

* :mod:`~perprisk.tools.venue` — the venue a trade is planned on (family, tiers, fee) and shared helpers;
* :mod:`~perprisk.tools.sizing` — reverse sizing, margin for a target liquidation price, risk per trade;
* :mod:`~perprisk.tools.checks` — margin usage, reward:risk, leverage warnings, stop before liquidation;
* :mod:`~perprisk.tools.drift` — funding and fee drift of the liquidation price over a holding period;
* :mod:`~perprisk.tools.plan` — staged margin plan (seed 003);
* :mod:`~perprisk.tools.pretrade` — the pre-trade check of seed 003;
* :mod:`~perprisk.tools.requests` — validated ``calc liquidation`` requests.
"""
