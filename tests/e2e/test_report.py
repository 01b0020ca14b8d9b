"""The stress report in a real browser: the self-contained HTML that ``perprisk stress --html`` (and ``make demo``)
writes is opened from disk in the system's Chromium (as for the dashboard tests), with every network request
refused, and each chart must be drawn by plotly with data in it: no script error, nothing fetched, every chart's
SVG holding marks.

The run is a short window of the real 2025-10-10 crash (21:00–21:40 UTC) so that liquidations, the insurance fund
and ADL all have something to draw; the policy comparison report is checked the same way, with its table.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from perprisk.cli import app

#: the charts of a report, by the id of their div (``sim/report.py``)
CHARTS = ("chart-price", "chart-fund", "chart-adl", "chart-policies", "chart-distances", "chart-oi")

#: per chart div: what plotly drew (its figure's traces and their points, and the SVG marks in the page)
_DRAWN = """
ids => ids.map(id => {
  const div = document.getElementById(id);
  if (!div) return {id, found: false};
  // plotly's computed points per trace (the figure's arrays arrive base64-encoded; calcdata is what it drew from)
  const traces = (div.calcdata || []).map(points => ({
    type: points[0] && points[0].trace ? points[0].trace.type : null,
    points: points.filter(p => p && (Number.isFinite(p.y) || Number.isFinite(p.s) || Number.isFinite(p.p))).length,
  }));
  const marks = div.querySelectorAll(
    '.scatterlayer .trace path.js-line, .scatterlayer .trace .point, .barlayer .trace .point path'
  ).length;
  const box = div.getBoundingClientRect();
  return {id, found: true, svg: div.querySelectorAll('svg.main-svg').length, traces, marks,
          width: box.width, height: box.height};
})
"""


def _stress(tmp_path, name: str, *extra: str) -> tuple[dict, str]:
    out, html = tmp_path / f"{name}.json", tmp_path / f"{name}.html"
    result = CliRunner().invoke(
        app,
        [
            "stress", "--no-progress", "--accounts", "1000", "--seed", "3",
            "--start", "2025-10-10T21:00Z", "--end", "2025-10-10T21:40Z",
            "--json", str(out), "--html", str(html), *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), html.as_uri()


def _open(browser, uri: str, shot):
    """Open ``uri`` with every request but the file itself refused; (page, script errors, refused requests)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    refused: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    def route(r):
        if r.request.url == uri:
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(uri, wait_until="load")
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {len(CHARTS)}")
    page.screenshot(path=str(shot), full_page=True)
    return page, errors, refused


@pytest.mark.parametrize("compare", [False, True], ids=["single-run", "compare-policies"])
def test_the_report_draws_every_chart_with_data_and_fetches_nothing(browser, tmp_path, compare):
    summary, uri = _stress(tmp_path, "report", *(["--compare-policies"] if compare else []))
    main = summary["policies"]["insurance_fund"] if compare else summary
    assert main["liquidations"] > 0 and main["adl_events"] > 0  # the window has all the charts' subjects
    shot = tmp_path / "report.png"
    page, errors, refused = _open(browser, uri, shot)
    try:
        assert errors == [] and refused == []
        drawn = page.evaluate(_DRAWN, list(CHARTS))
        for chart in drawn:
            assert chart["found"], chart["id"]
            assert chart["svg"] >= 1 and chart["width"] > 300 and chart["height"] > 200, chart
            assert any(t["points"] > 0 for t in chart["traces"]), chart
            assert chart["marks"] > 0, chart  # plotly drew lines, points or bars, not only the axes
        cards = page.locator(".card").all_inner_texts()
        assert any(text.startswith("liquidations") and f"{main['liquidations']:,}" in text for text in cards)
        assert page.locator("p.ok").count() == 1 and page.locator("p.bad").count() == 0
        if compare:  # the table of the four policies, one row each
            table = page.locator("h2:has-text('Bad debt by policy') ~ table").first.inner_text()
            for policy in ("insurance_fund", "negative_balance_protection", "debt", "socialized_loss"):
                assert policy in table
        assert shot.stat().st_size > 50_000  # a page of charts, not a blank one
    finally:
        page.close()
