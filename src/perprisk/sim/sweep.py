"""Parameter sweeps on Dask: a grid of stress scenarios × seeds, run in parallel, gathered into one table.

A sweep file (TOML)::

    [scenario]                  # the base scenario: any Scenario field (see perprisk.sim.runner.Scenario)
    accounts = 300
    start = "2025-10-10T20:30:00Z"
    end = "2025-10-10T22:00:00Z"

    [grid]                      # every combination of these values is run
    policy = ["insurance_fund", "socialized_loss"]
    tiers_scale = ["1", "1.5"]          # × every tier's maintenance margin rate
    liquidation_fee = ["0.005", "0.0125"]
    insurance_fund = ["0", "2000"]      # USDT at the start
    liquidation_capacity = [0, 5]       # margin units per risk pass; 0 = unlimited

    [sweep]
    seeds = [1, 2]              # each grid point is run once per seed
    out = "reports/sweep.parquet"   # or .csv
    html = "reports/sweep.html"

The runs go to a Dask cluster: an embedded ``distributed.LocalCluster`` (``workers`` processes, one thread
each) by default, or an existing cluster given by its scheduler address (``tcp://HOST:PORT``; its workers
need perprisk installed).  The candles are loaded and validated once, on the client, and broadcast to the
workers, so the workers need no access to the data file.  Results come back as one row per run (grid values,
seed, the run's summary figures), written as Parquet or CSV, plus an HTML summary.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from perprisk.candles import Candles
from perprisk.errors import ValidationError
from perprisk.sim.runner import Scenario, load_scenario_candles, run_stress

__all__ = [
    "GRID_KEYS",
    "RESULT_COLUMNS",
    "SweepResult",
    "SweepSpec",
    "load_sweep",
    "render_sweep_html",
    "run_point",
    "run_sweep",
    "sweep_points",
    "write_table",
]

#: What a grid may vary: every scalar scenario setting except the data source.
GRID_KEYS = tuple(
    f.name
    for f in fields(Scenario)
    if f.name not in ("data", "format", "synthetic", "population", "liquidity", "seed")
)

#: The summary figures kept for each run, in the table's column order after the grid values and the seed.
RESULT_COLUMNS = (
    "accounts",
    "ticks",
    "liquidations",
    "liquidated_accounts",
    "liquidated_notional",
    "insurance_fund_start",
    "insurance_fund_end",
    "insurance_fund_min",
    "adl_events",
    "adl_notional",
    "adl_accounts",
    "bad_debt",
    "bad_debt_fund",
    "bad_debt_platform",
    "bad_debt_socialized",
    "bad_debt_trader",
    "stop_losses_triggered",
    "conservation_error",
    "open_interest_imbalance",
    "state_hash",
    "elapsed_s",
)


@dataclass(frozen=True)
class SweepSpec:
    base: Scenario
    grid: dict[str, tuple[Any, ...]]
    seeds: tuple[int, ...] = (1,)
    out: str | None = None
    html: str | None = None
    workers: int = 2
    source: str = "<sweep>"


@dataclass
class SweepResult:
    spec: SweepSpec
    rows: list[dict[str, Any]]
    columns: list[str]
    elapsed_s: float = 0.0
    scheduler: str = ""
    workers: int = 0
    files: dict[str, str] = field(default_factory=dict)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (refusals name the key: ``grid.tiers_scale[1]``)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValidationError("sweep", f"cannot read {path}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValidationError("sweep", f"{path.name}: malformed TOML: {err}") from None
    return parse_sweep(doc, path.name, base_dir=path.parent)


def parse_sweep(doc: Mapping[str, Any], source: str = "<sweep>", base_dir: Path | None = None) -> SweepSpec:
    unknown = sorted(set(doc) - {"scenario", "grid", "sweep"})
    if unknown:
        raise ValidationError(
            f"{source}:{unknown[0]}", "unknown table (expected [scenario], [grid], [sweep])"
        )
    base_values = dict(doc.get("scenario", {}))
    for key in ("data", "funding"):
        v = base_values.get(key)
        if (
            isinstance(v, str)
            and v != "auto"
            and base_dir is not None
            and not Path(v).is_absolute()
            and not Path(v).exists()
            and (base_dir / v).exists()
        ):
            base_values[key] = str(base_dir / v)
    base = Scenario.from_mapping(base_values, "scenario")
    grid_doc = doc.get("grid", {})
    if not isinstance(grid_doc, Mapping):
        raise ValidationError("grid", "expected a table of lists")
    grid: dict[str, tuple[Any, ...]] = {}
    for key, values in grid_doc.items():
        if key not in GRID_KEYS:
            raise ValidationError(f"grid.{key}", f"cannot be swept (one of: {', '.join(GRID_KEYS)})")
        if not isinstance(values, list) or not values:
            raise ValidationError(f"grid.{key}", "expected a non-empty list of values")
        for i, v in enumerate(values):  # each value must make a valid scenario on its own
            try:
                Scenario.from_mapping({**base_values, key: v}, "scenario")
            except ValidationError as err:
                raise ValidationError(f"grid.{key}[{i}]", err.message) from None
        grid[key] = tuple(values)
    sweep = dict(doc.get("sweep", {}))
    extra = sorted(set(sweep) - {"seeds", "out", "html", "workers"})
    if extra:
        raise ValidationError(f"sweep.{extra[0]}", "unknown setting (seeds, out, html, workers)")
    seeds = sweep.get("seeds", [base.seed])
    if (
        not isinstance(seeds, list)
        or not seeds
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)
    ):
        raise ValidationError("sweep.seeds", f"a non-empty list of non-negative integers, got {seeds!r}")
    workers = sweep.get("workers", 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise ValidationError("sweep.workers", f"an integer in [1, 256], got {workers!r}")
    for key in ("out", "html"):
        if key in sweep and not isinstance(sweep[key], str):
            raise ValidationError(f"sweep.{key}", "a file path")
    if "out" in sweep and not sweep["out"].endswith((".parquet", ".csv")):
        raise ValidationError("sweep.out", "a .parquet or .csv file")
    return SweepSpec(base, grid, tuple(seeds), sweep.get("out"), sweep.get("html"), workers, source)


def sweep_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every (grid values, seed) to run, in a fixed order."""
    keys = list(spec.grid)
    out = []
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        for seed in spec.seeds:
            point = dict(zip(keys, combo))
            point["seed"] = seed
            out.append(point)
    return out


def _scenario_for(base: Scenario, point: Mapping[str, Any]) -> Scenario:
    values = base.to_dict()
    values.update(point)
    return Scenario.from_mapping(values, "scenario")


def run_point(base: Scenario, point: Mapping[str, Any], candles: Candles | None = None) -> dict[str, Any]:
    """One run of the sweep: the point's grid values and seed, then its summary figures (a table row)."""
    result = run_stress(_scenario_for(base, point), candles)
    s = result.summary
    payer = s["bad_debt_by_payer"]
    flat = dict(s)
    flat.update(
        bad_debt_fund=payer["insurance_fund"],
        bad_debt_platform=payer["platform"],
        bad_debt_socialized=payer["socialized"],
        bad_debt_trader=payer["trader_debt"],
    )
    row = {k: (v if not isinstance(v, (list, dict, tuple)) else json.dumps(v)) for k, v in point.items()}
    for col in RESULT_COLUMNS:
        row[col] = flat[col]
    return row


def run_sweep(
    spec: SweepSpec,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Run every point on Dask (see the module documentation); rows come back in the points' order."""
    import time

    from distributed import Client, LocalCluster, as_completed

    points = sweep_points(spec)
    candles = load_scenario_candles(spec.base) if spec.base.synthetic is None else None
    started = time.perf_counter()
    n_workers = workers or spec.workers
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise ValidationError(
                "scheduler", f"cannot reach the Dask scheduler at {scheduler}: {err}"
            ) from None
    else:
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        address = client.scheduler.address
        n_live = len(client.scheduler_info().get("workers", {}))
        shared = client.scatter(candles, broadcast=True) if candles is not None else None
        futures = [
            client.submit(run_point, spec.base, point, shared, pure=False, key=f"stress-point-{i}")
            for i, point in enumerate(points)
        ]
        order = {f.key: i for i, f in enumerate(futures)}
        rows: list[dict[str, Any] | None] = [None] * len(points)
        for done, future in enumerate(as_completed(futures), start=1):
            rows[order[future.key]] = future.result()
            if progress is not None:
                progress(done, len(points))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    columns = list(spec.grid) + ["seed"] + list(RESULT_COLUMNS)
    return SweepResult(
        spec, [r for r in rows if r is not None], columns, time.perf_counter() - started, address, n_live
    )


def write_table(result: SweepResult, path: str | Path) -> Path:
    """The rows as Parquet (``.parquet``) or CSV (``.csv``)."""
    import pyarrow as pa

    path = Path(path)
    data = {c: [row.get(c) for row in result.rows] for c in result.columns}
    for c, values in data.items():  # grid values of mixed types become text
        if len({type(v) for v in values if v is not None}) > 1:
            data[c] = [None if v is None else str(v) for v in values]
    table = pa.table(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif path.suffix == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        raise ValidationError("out", f"{path.name}: write .parquet or .csv")
    return path


def render_sweep_html(result: SweepResult, title: str = "perprisk sweep") -> str:
    """A self-contained page: the results table and, for each grid parameter, bad debt and ADL events against
    its values (every seed a point)."""
    import html as h

    import plotly
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    rows = result.rows
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{h.escape(title)}</title>",
        "<style>body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}"
        "th{background:#f5f5f5}</style>",
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>",
        f"<h1>{h.escape(title)}</h1>",
        f"<p>{len(rows)} runs ({len(sweep_points(result.spec)) // max(len(result.spec.seeds), 1)} grid points × "
        f"{len(result.spec.seeds)} seeds) on Dask ({h.escape(result.scheduler)}, {result.workers} workers) in "
        f"{result.elapsed_s:.1f} s. Base scenario: {h.escape(json.dumps(result.spec.base.to_dict()))}</p>",
    ]
    for key in result.spec.grid:
        values = [str(v) for v in result.spec.grid[key]]
        fig = make_subplots(
            rows=1, cols=3, subplot_titles=("bad debt (USDT)", "ADL events", "insurance fund min (USDT)")
        )
        for col, metric in enumerate(("bad_debt", "adl_events", "insurance_fund_min"), start=1):
            xs = [str(r[key]) for r in rows]
            ys = [float(r[metric]) for r in rows]
            fig.add_trace(go.Box(x=xs, y=ys, boxpoints="all", name=metric, showlegend=False), row=1, col=col)
            fig.update_xaxes(categoryorder="array", categoryarray=values, title_text=key, row=1, col=col)
        fig.update_layout(height=340, margin=dict(l=50, r=20, t=40, b=40), template="plotly_white")
        parts.append(f"<h2>{h.escape(key)}</h2>")
        parts.append(pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=f"sweep-{key}"))
    cols = result.columns
    parts.append("<h2>All runs</h2><table><tr>" + "".join(f"<th>{h.escape(c)}</th>" for c in cols) + "</tr>")
    for r in rows:
        parts.append("<tr>" + "".join(f"<td>{h.escape(str(r.get(c)))}</td>" for c in cols) + "</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
