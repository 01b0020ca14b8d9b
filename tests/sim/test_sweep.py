"""Sweeps: the TOML grid, refusals naming the key, and a real run on a distributed.LocalCluster with two worker
processes (kept small: a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from perprisk.errors import ValidationError
from perprisk.sim.sweep import (
    load_sweep,
    parse_sweep,
    render_sweep_html,
    run_sweep,
    sweep_points,
    write_table,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sweep.toml"

SMALL = {
    "scenario": {"accounts": 40, "start": "2025-10-10T21:10:00Z", "end": "2025-10-10T21:25:00Z"},
    "grid": {"policy": ["insurance_fund", "socialized_loss"], "insurance_fund": ["0", "500"]},
    "sweep": {"seeds": [1], "workers": 2},
}


def test_example_file_parses():
    spec = load_sweep(EXAMPLE)
    points = sweep_points(spec)
    assert len(points) == 4 * 2 * 2 * 2 * len(spec.seeds)
    assert {p["policy"] for p in points} == {
        "insurance_fund",
        "negative_balance_protection",
        "socialized_loss",
        "debt",
    }
    assert spec.base.accounts == 200 and spec.base.population.long_share == 0.62


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"grid": {"colour": ["red"]}}, "grid.colour"),
        ({"grid": {"tiers_scale": ["1", "-2"]}}, "grid.tiers_scale[1]"),
        ({"grid": {"policy": []}}, "grid.policy"),
        ({"grid": {"policy": ["insurance_fund", "bailout"]}}, "grid.policy[1]"),
        ({"scenario": {"acounts": 3}}, "scenario.acounts"),
        ({"sweep": {"seeds": [1, "two"]}}, "sweep.seeds"),
        ({"sweep": {"out": "results.xlsx"}}, "sweep.out"),
        ({"extra": {}}, "<sweep>:extra"),
    ],
)
def test_bad_sweeps_are_refused(doc, field):
    with pytest.raises(ValidationError) as err:
        parse_sweep(doc)
    assert err.value.field == field


def test_sweep_on_a_local_cluster_with_two_worker_processes(tmp_path):
    spec = parse_sweep(SMALL)
    seen = []
    result = run_sweep(spec, progress=lambda done, total: seen.append((done, total)))
    assert result.workers == 2 and result.scheduler.startswith(("tcp://", "inproc://"))
    assert seen[-1] == (4, 4)
    assert [(r["policy"], r["insurance_fund"]) for r in result.rows] == [
        ("insurance_fund", "0"),
        ("insurance_fund", "500"),
        ("socialized_loss", "0"),
        ("socialized_loss", "500"),
    ]
    for row in result.rows:
        assert row["conservation_error"] == "0" and row["open_interest_imbalance"] == "0"
        assert row["accounts"] == 40 and row["insurance_fund_start"] == row["insurance_fund"]
    # the same seed, the same path, the same population: the policies differ in who pays
    fund, soc = result.rows[0], result.rows[2]
    assert fund["liquidations"] == soc["liquidations"]
    path = write_table(result, tmp_path / "sweep.parquet")
    table = pq.read_table(path)
    assert table.num_rows == 4 and table.column_names[:3] == ["policy", "insurance_fund", "seed"]
    csv_path = write_table(result, tmp_path / "sweep.csv")
    assert csv_path.read_text().count("\n") == 5
    page = render_sweep_html(result)
    assert "Plotly" in page and "sweep-policy" in page


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_sweep_cli_on_an_existing_scheduler(tmp_path, cluster):
    import json

    from typer.testing import CliRunner

    from perprisk.cli import app

    spec = tmp_path / "s.toml"
    spec.write_text(
        '[scenario]\naccounts = 30\nstart = "2025-10-10T21:12:00Z"\nend = "2025-10-10T21:20:00Z"\n'
        'funding = "none"\n[grid]\nliquidation_fee = ["0.005", "0.0125"]\n[sweep]\nseeds = [7]\n'
    )
    out, html = tmp_path / "r.csv", tmp_path / "r.html"
    result = CliRunner().invoke(
        app,
        [
            "sweep",
            str(spec),
            "--scheduler",
            cluster.scheduler_address,
            "--out",
            str(out),
            "--html",
            str(html),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["workers"] == 2 and [r["liquidation_fee"] for r in doc["rows"]] == ["0.005", "0.0125"]
    assert out.read_text().startswith('"liquidation_fee","seed"') and "Plotly" in html.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\npolicy = ['bailout']\n")
    result = CliRunner().invoke(app, ["sweep", str(bad), "--json"])
    assert result.exit_code == 2 and json.loads(result.output)["error"]["field"] == "grid.policy[0]"
