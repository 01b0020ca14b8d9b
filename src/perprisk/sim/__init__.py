"""The stress simulator: real crashes replayed through the exact engine with a population of leveraged accounts.

Modules (imports point downward):

- :mod:`perprisk.sim.data` — loaders: candles (through :mod:`perprisk.candles`), funding rates, mark prices,
  order-book depth snapshots, UTC time windows; refusals name file, row and field.
- :mod:`perprisk.sim.paths` — candles → mark ticks visiting every bar's high and low; funding events;
  seeded synthetic candles (GBM with jumps, GARCH).
- :mod:`perprisk.sim.population` — the trader population (heavy-tailed leverage capped by tiers, Pareto
  sizes, long/short skew, isolated/cross, stop-losses, entry and holding times).
- :mod:`perprisk.sim.liquidity` — market makers' depth calibrated on real snapshots, thinning with volatility.
- :mod:`perprisk.sim.runner` — :class:`Scenario`, :func:`run_stress`, :func:`compare_policies`.
- :mod:`perprisk.sim.report` — JSON summary, self-contained HTML report (plotly inlined).
- :mod:`perprisk.sim.sweep` — parameter grids × seeds on Dask.
- :mod:`perprisk.sim.bench` — the stress throughput benchmark.

``perprisk stress`` and ``perprisk sweep`` (:mod:`perprisk.cli.stress`) are the command-line faces.
"""

from perprisk.sim.runner import SUMMARY_KEYS, Scenario, StressResult, compare_policies, run_stress

__all__ = ["SUMMARY_KEYS", "Scenario", "StressResult", "compare_policies", "run_stress"]
