"""Outputs of a stress run: the JSON summary and a self-contained HTML report (plotly, its JavaScript inlined —
no network needed to open it).

Charts, as a risk team would show them: the price with liquidation clusters (liquidated notional per minute),
the insurance fund and bad debt over time, ADL events, bad debt by negative-balance policy (all four when
the policies were compared), the distribution of liquidation distances at the start, and open interest.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from perprisk.errors import ValidationError

__all__ = ["POLICY_COLUMNS", "policy_table", "render_html", "write_html", "write_json"]

#: Columns of the policy comparison table (``perprisk stress --compare-policies``).
POLICY_COLUMNS = (
    "policy",
    "liquidations",
    "liquidated_notional",
    "adl_events",
    "adl_notional",
    "bad_debt",
    "insurance_fund_end",
    "insurance_fund_min",
    "platform_loss",
    "socialized_loss",
    "trader_debt",
)


def write_json(summary: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as err:
        raise ValidationError("json", f"cannot write {path}: {err.strerror or err}") from None
    return path


def policy_table(results: Mapping[str, Any]) -> list[list[Any]]:
    """One row per policy (exact figures as decimal strings, rounded to cents for reading)."""
    rows = []
    for policy, r in results.items():
        s = r.summary
        rows.append(
            [
                policy,
                s["liquidations"],
                _cents(s["liquidated_notional"]),
                s["adl_events"],
                _cents(s["adl_notional"]),
                _cents(s["bad_debt"]),
                _cents(s["insurance_fund_end"]),
                _cents(s["insurance_fund_min"]),
                _cents(s["bad_debt_by_payer"]["platform"]),
                _cents(s["socialized_loss"]),
                _cents(s["bad_debt_by_payer"]["trader_debt"]),
            ]
        )
    return rows


def _cents(text: str) -> str:
    from decimal import ROUND_HALF_EVEN, Decimal

    return f"{Decimal(text).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"


def _times(series: Mapping[str, np.ndarray]) -> list[str]:
    return [
        datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        for t in series["time_ms"].tolist()
    ]


def _bucketed(
    series: Mapping[str, np.ndarray], names: tuple[str, ...]
) -> tuple[list[str], dict[str, np.ndarray], str]:
    """Sums per time bucket: one minute for short runs, coarser (5 … 60 min) so a long run has at most ~300
    bars that a reader can see.  Returns the bucket labels (bucket start, UTC), the sums and the bucket name."""
    t = series["time_ms"]
    span_min = (t[-1] - t[0]) / 60_000 if len(t) else 0
    size = next((m for m in (1, 5, 10, 15, 30, 60) if span_min / m <= 300), 60)
    bucket = (t // (60_000 * size)).astype(np.int64)
    uniq, inverse = np.unique(bucket, return_inverse=True)
    out = {n: np.bincount(inverse, weights=series[n], minlength=len(uniq)) for n in names}
    labels = [datetime.fromtimestamp(int(m) * 60 * size, tz=UTC).strftime("%Y-%m-%d %H:%M") for m in uniq]
    return labels, out, "minute" if size == 1 else f"{size} minutes"


def _figures(results: Mapping[str, Any], main: str) -> list[tuple[str, str, Any]]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    r = results[main]
    s = r.series
    t = _times(s)
    minutes, agg, per = _bucketed(s, ("liquidations", "liquidated_notional", "adl_events", "adl_notional"))
    figs: list[tuple[str, str, Any]] = []

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=minutes,
            y=agg["liquidated_notional"],
            name=f"liquidated notional per {per} (USDT)",
            marker_color="rgba(214,39,40,0.55)",
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Scatter(x=t, y=s["price"], name="price (mark path)", line=dict(color="#1f77b4", width=1.2)),
        secondary_y=False,
    )
    hit = s["liquidations"] > 0
    if hit.any():
        size = 6 + 30 * np.sqrt(s["liquidated_notional"][hit] / max(s["liquidated_notional"].max(), 1e-9))
        fig.add_trace(
            go.Scatter(
                x=[t[i] for i in np.flatnonzero(hit)],
                y=s["mark"][hit],
                mode="markers",
                name="liquidation cluster",
                marker=dict(size=size, color="rgba(214,39,40,0.8)", line=dict(width=0.5, color="#600")),
                text=[
                    f"{int(c)} liquidations, {v:,.0f} USDT"
                    for c, v in zip(s["liquidations"][hit], s["liquidated_notional"][hit])
                ],
                hoverinfo="text+x",
            ),
            secondary_y=False,
        )
    fig.update_yaxes(title_text="price (USDT)", secondary_y=False)
    fig.update_yaxes(title_text=f"liquidated notional / {per}", secondary_y=True, showgrid=False)
    figs.append(("price", "Price with liquidation clusters", fig))

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Scatter(
            x=t,
            y=s["insurance_fund"],
            name="insurance fund (USDT)",
            fill="tozeroy",
            line=dict(color="#2ca02c"),
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=t, y=s["bad_debt"], name="bad debt, cumulative (USDT)", line=dict(color="#d62728", dash="dot")
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(x=t, y=s["price"], name="price", line=dict(color="#aaa", width=1)), secondary_y=True
    )
    fig.update_yaxes(title_text="USDT", secondary_y=False)
    fig.update_yaxes(title_text="price", secondary_y=True, showgrid=False)
    figs.append(("fund", "Insurance fund and bad debt over time", fig))

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=minutes, y=agg["adl_events"], name=f"ADL events per {per}", marker_color="#9467bd"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=minutes,
            y=np.cumsum(agg["adl_notional"]),
            name="ADL notional, cumulative (USDT)",
            line=dict(color="#8c564b"),
        ),
        secondary_y=True,
    )
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(title_text="ADL events", secondary_y=False)
    fig.update_yaxes(title_text="USDT", secondary_y=True, showgrid=False)
    figs.append(("adl", "Auto-deleveraging (ADL) events", fig))

    policies = list(results)
    payers = (
        ("insurance_fund", "paid by the insurance fund"),
        ("platform", "paid by the platform"),
        ("socialized", "socialized over profitable positions"),
        ("trader_debt", "left as trader debt"),
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        subplot_titles=("bad debt by who bears it (USDT)", "ADL: positions closed at bankruptcy price"),
        specs=[[{}, {"secondary_y": True}]],
    )
    for key, label in payers:
        fig.add_trace(
            go.Bar(
                x=policies,
                y=[float(results[p].summary["bad_debt_by_payer"][key]) for p in policies],
                name=label,
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Bar(
            x=policies,
            y=[results[p].summary["adl_events"] for p in policies],
            name="ADL events",
            marker_color="#9467bd",
            offsetgroup="adl",
        ),
        row=1,
        col=2,
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=policies,
            y=[float(results[p].summary["adl_notional"]) for p in policies],
            name="ADL notional (USDT)",
            mode="markers",
            marker=dict(size=12, color="#8c564b"),
        ),
        row=1,
        col=2,
        secondary_y=True,
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(rangemode="tozero")
    title = (
        "Bad debt by policy"
        if len(policies) > 1
        else f"Bad debt ({policies[0]}; run --compare-policies for all four)"
    )
    figs.append(("policies", title, fig))

    fig = go.Figure()
    d = r.distances
    for key, color in (("long", "#1f77b4"), ("short", "#ff7f0e")):
        if len(d.get(key, ())):
            fig.add_trace(
                go.Histogram(
                    x=d[key],
                    name=f"{key}s ({len(d[key])})",
                    opacity=0.65,
                    marker_color=color,
                    xbins=dict(size=1.0),
                )
            )
    fig.update_layout(
        barmode="overlay",
        xaxis_title="liquidation distance at the start (% of the mark)",
        yaxis_title="positions",
    )
    figs.append(("distances", "Distribution of liquidation distances at the start", fig))

    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=t, y=s["open_interest"], name="open interest (base units)", line=dict(color="#17becf"))
    )
    fig.update_layout(yaxis_title="open interest")
    figs.append(("oi", "Open interest", fig))
    for _, _, f in figs:
        f.update_layout(
            height=380,
            margin=dict(l=60, r=60, t=30, b=40),
            legend=dict(orientation="h", y=-0.18),
            template="plotly_white",
        )
    return figs


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin:28px 0 6px} .muted{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}
th{background:#f5f5f5} td:first-child,th:first-child{text-align:left} .cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:150px} .card b{display:block;font-size:18px}
.ok{color:#2a7a2a} .bad{color:#b00}
"""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(
    results: Mapping[str, Any], title: str = "perprisk stress report", main: str | None = None
) -> str:
    """The report of one run (``{policy: result}`` with one entry) or of a policy comparison."""
    import plotly
    import plotly.io as pio

    if not results:
        raise ValidationError("results", "nothing to report")
    main = main or next(iter(results))
    r = results[main]
    s = r.summary
    ok = s["conservation_error"] == "0" and s["open_interest_imbalance"] == "0"
    cards = [
        ("accounts", f"{s['accounts']:,}"),
        ("ticks", f"{s['ticks']:,}"),
        ("liquidations", f"{s['liquidations']:,}"),
        ("liquidated notional", _cents(s["liquidated_notional"])),
        ("ADL events", f"{s['adl_events']:,}"),
        ("bad debt", _cents(s["bad_debt"])),
        ("insurance fund start", _cents(s["insurance_fund_start"])),
        ("insurance fund min", _cents(s["insurance_fund_min"])),
        ("insurance fund end", _cents(s["insurance_fund_end"])),
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>",
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<div class='muted'>{html.escape(s['data'])} · {html.escape(s['symbol'])} · {s['start']} → {s['end']} · "
        f"policy <b>{html.escape(s['policy'])}</b> · seed {s['seed']} · {s['bars']:,} candles, {s['data_gaps']} gaps · "
        f"price {s['price_first']} → low {s['price_low']} → {s['price_last']}</div>",
        "<div class='cards'>"
        + "".join(f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>" for k, v in cards)
        + "</div>",
        f"<p class='{'ok' if ok else 'bad'}'>Money conserved at every check (conservation error "
        f"{s['conservation_error']}), open interest balanced (imbalance {s['open_interest_imbalance']}) — "
        f"{s['checks']:,} full checks, open interest from events at every tick.</p>",
    ]
    for key, heading, fig in _figures(results, main):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(
            pio.to_html(
                fig,
                include_plotlyjs=False,
                full_html=False,
                div_id=f"chart-{key}",
                config={"displaylogo": False},
            )
        )
        if key == "policies" and len(results) > 1:
            parts.append(_table(list(POLICY_COLUMNS), policy_table(results)))
    parts.append("<h2>Liquidations by step</h2>")
    parts.append(_table(["step", "count"], [[k, v] for k, v in s["liquidations_by_step"].items()]))
    details = [
        [k, json.dumps(v) if isinstance(v, (dict, list)) else v]
        for k, v in s.items()
        if k not in ("liquidations_by_step",)
    ]
    parts.append("<h2>Summary</h2>")
    parts.append(_table(["figure", "value"], details))
    parts.append("<h2>Population</h2>")
    parts.append(_table(["statistic", "value"], [[k, f"{v:,.4g}"] for k, v in r.population.items()]))
    parts.append("<h2>Run</h2>")
    parts.append(_table(["measure", "value"], [[k, v] for k, v in r.performance.items()]))
    scenario = r.scenario.to_dict()
    parts.append("<h2>Scenario</h2>")
    parts.append(
        _table(
            ["parameter", "value"],
            [[k, json.dumps(v) if isinstance(v, (dict, list)) else v] for k, v in scenario.items()],
        )
    )
    if r.gaps:
        parts.append("<h2>Data gaps (reported, not filled)</h2>")
        parts.append(
            _table(
                ["after", "before", "missing candles"],
                [[g["after"], g["before"], g["missing"]] for g in r.gaps],
            )
        )
    parts.append(
        "<p class='muted'>Real data: see data/MANIFEST.md for provenance. Exact money in the engine; "
        "charts use float copies. Generated by perprisk.</p></body></html>"
    )
    return "\n".join(parts)


def write_html(
    results: Mapping[str, Any],
    path: str | Path,
    title: str = "perprisk stress report",
    main: str | None = None,
) -> Path:
    path = Path(path)
    text = render_html(results, title, main)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ValidationError("html", f"cannot write {path}: {err.strerror or err}") from None
    return path
