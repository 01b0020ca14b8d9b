"""``perprisk bench stress`` option bounds (src/perprisk/cli/bench.py): a bad value is refused with exit code 2
and a message naming the option and the reason, before anything runs; good values reach
``run_stress_benchmark`` parsed.  No benchmark runs here: ``run_stress_benchmark`` (and, for the refusal that
happens inside it, the scenario's candles and the stress run) are replaced by recorders."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import perprisk.sim.bench as sim_bench
from perprisk.cli import app
from perprisk.cli.output import EXIT_BAD_INPUT

runner = CliRunner()
FIGURES = {"accounts": 100, "wall_s": 0.5, "scaling_ratio": 1.0}  # what the stand-in benchmark reports


@pytest.fixture
def calls(monkeypatch):
    """Record calls to ``run_stress_benchmark`` instead of running it (the command imports it at call time)."""
    recorded: list[dict] = []

    def fake_run_stress_benchmark(**kwargs):
        recorded.append(kwargs)
        return dict(FIGURES)

    monkeypatch.setattr(sim_bench, "run_stress_benchmark", fake_run_stress_benchmark)
    return recorded


def bench_stress(*args: str):
    return runner.invoke(app, ["bench", "stress", *args])


def flat(text: str) -> str:
    """Click's error box without its frame and line wrapping (the wrap depends on the terminal width)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# ------------------------------------------------------------------------------------------ refused by the parser

@pytest.mark.parametrize("args, option, reason", [
    # accounts: min=100
    (["--accounts", "99"], "--accounts", "Input should be greater than or equal to 100"),
    (["--accounts", "0"], "--accounts", "Input should be greater than or equal to 100"),
    (["--accounts", "-5"], "--accounts", "Input should be greater than or equal to 100"),
    (["--accounts", "abc"], "--accounts", "Input should be a valid integer"),
    (["--accounts", "1e6"], "--accounts", "Input should be a valid integer"),
    (["--accounts", "100.5"], "--accounts", "Input should be a valid integer"),
    # bars: min=2 (a run needs at least two candles)
    (["--bars", "1"], "--bars", "Input should be greater than or equal to 2"),
    (["--bars", "0"], "--bars", "Input should be greater than or equal to 2"),
    (["--bars", "two"], "--bars", "Input should be a valid integer"),
    # baseline accounts: min=100
    (["--baseline-accounts", "99"], "--baseline-accounts", "Input should be greater than or equal to 100"),
    (["--baseline-accounts", "0"], "--baseline-accounts", "Input should be greater than or equal to 100"),
    (["--baseline-accounts", "x"], "--baseline-accounts", "Input should be a valid integer"),
    # seed: an integer
    (["--seed", "x"], "--seed", "Input should be a valid integer"),
    (["--seed", "1.5"], "--seed", "Input should be a valid integer"),
])
@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_out_of_bounds_values_are_refused_and_nothing_runs(calls, args, option, reason, as_json):
    result = bench_stress(*args, "--no-progress", *(["--json"] if as_json else []))
    assert result.exit_code == EXIT_BAD_INPUT == 2
    message = flat(result.stderr)
    assert f"Invalid value for '{option}': {reason}" in message
    assert result.stdout == ""  # no figures, no partial JSON
    assert calls == []


@pytest.mark.parametrize("option", ["--accounts", "--bars", "--baseline-accounts", "--seed"])
def test_an_option_without_its_value_is_refused(calls, option):
    result = bench_stress("--no-progress", option)
    assert result.exit_code == 2
    assert f"Option '{option}' requires an argument" in flat(result.stderr)
    assert calls == []


def test_an_unknown_option_is_refused(calls):
    result = bench_stress("--accounts", "1000", "--acounts", "1000", "--no-progress")
    assert result.exit_code == 2
    assert "No such option: --acounts" in flat(result.stderr)
    assert calls == []


# ------------------------------------------------------------------------------------------ refused by the scenario

@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_a_negative_seed_is_refused_by_the_scenario_before_any_data_is_loaded(monkeypatch, as_json):
    """``--seed`` has no bound of its own in the CLI: ``run_stress_benchmark`` is called and its first step, the
    ``Scenario``, refuses (seed: "a non-negative integer") — turned into the CLI error contract by run_guarded.
    Nothing is loaded or run: the candles loader and the stress run are recorders that must stay unused."""
    used: list[str] = []
    monkeypatch.setattr(sim_bench, "load_scenario_candles", lambda *a, **k: used.append("candles"))
    monkeypatch.setattr(sim_bench, "run_stress", lambda *a, **k: used.append("run"))
    result = bench_stress("--seed", "-1", "--accounts", "100", "--no-progress", *(["--json"] if as_json else []))
    assert result.exit_code == 2
    if as_json:
        assert json.loads(result.stdout) == {"error": {"field": "seed", "message": "a non-negative integer, got -1"}}
    else:
        assert result.stdout == ""
        assert flat(result.stderr) == "error in seed: a non-negative integer, got -1"
    assert used == []


# ------------------------------------------------------------------------------------------ accepted

def test_defaults_are_the_documented_target_run(calls):
    # 1,000,000 accounts over 2,880 one-minute candles, seed 1, baseline chosen by the benchmark (None)
    result = bench_stress("--json", "--no-progress")
    assert result.exit_code == 0, result.output
    assert calls == [{"accounts": 1_000_000, "bars": 2880, "seed": 1, "baseline_accounts": None, "progress": None}]
    assert json.loads(result.stdout) == FIGURES


@pytest.mark.parametrize("args, expected", [
    # the bounds themselves are accepted
    (["--accounts", "100"], {"accounts": 100}),
    (["--bars", "2"], {"bars": 2}),
    (["--baseline-accounts", "100"], {"baseline_accounts": 100}),
    (["--seed", "0"], {"seed": 0}),
    # ordinary values, parsed to integers
    (["--accounts", "250000", "--bars", "1440", "--seed", "7", "--baseline-accounts", "2500"],
     {"accounts": 250_000, "bars": 1440, "seed": 7, "baseline_accounts": 2500}),
    (["--accounts=5000", "--bars=30"], {"accounts": 5000, "bars": 30}),
    (["--accounts", "1000", "--baseline-accounts", "1000"], {"accounts": 1000, "baseline_accounts": 1000}),
    # the scenario options, passed on only when they differ from the benchmark's defaults
    (["--policy", "debt"], {"policy": "debt"}),
    (["--path-order", "auto"], {"path_order": "auto"}),
    (["--check-every", "240"], {"check_every": 240}),
    (["--policy", "insurance_fund", "--path-order", "close"], {}),
])
def test_good_values_reach_the_benchmark_parsed(calls, args, expected):
    result = bench_stress(*args, "--json", "--no-progress")
    assert result.exit_code == 0, result.output
    wanted = {"accounts": 1_000_000, "bars": 2880, "seed": 1, "baseline_accounts": None, "progress": None}
    wanted.update(expected)
    assert calls == [wanted]
    assert all(type(calls[0][k]) is int for k in ("accounts", "bars", "seed"))
    assert json.loads(result.stdout) == FIGURES


def test_without_json_the_figures_are_a_table(calls):
    result = bench_stress("--accounts", "100", "--bars", "2", "--no-progress")
    assert result.exit_code == 0, result.output
    assert len(calls) == 1
    assert "Stress benchmark" in result.stdout and "scaling_ratio" in result.stdout and "0.5" in result.stdout


def test_progress_is_a_callback_unless_turned_off(calls):
    result = bench_stress("--accounts", "100", "--bars", "2", "--json")
    assert result.exit_code == 0, result.output
    assert callable(calls[0]["progress"])


@pytest.mark.parametrize("as_json", [True, False])
def test_a_baseline_larger_than_the_run_is_refused_before_anything_runs(monkeypatch, as_json):
    used: list[str] = []
    monkeypatch.setattr(sim_bench, "load_scenario_candles", lambda *a, **k: used.append("candles"))
    monkeypatch.setattr(sim_bench, "run_stress", lambda *a, **k: used.append("run"))
    result = bench_stress("--accounts", "100", "--baseline-accounts", "1000", "--no-progress",
                          *(["--json"] if as_json else []))
    assert result.exit_code == EXIT_BAD_INPUT
    message = "1000 is more than the run's 100 accounts: a baseline is a smaller run of the same scenario"
    if as_json:
        assert json.loads(result.stdout) == {"error": {"field": "baseline_accounts", "message": message}}
    else:
        assert flat(result.stderr) == f"error in baseline_accounts: {message}"
    assert used == []


@pytest.mark.parametrize("args, field", [
    (["--policy", "bailout"], "policy"),
    (["--path-order", "sideways"], "path_order"),
])
def test_an_unknown_policy_or_path_order_is_refused_before_anything_runs(monkeypatch, args, field):
    used: list[str] = []
    monkeypatch.setattr(sim_bench, "load_scenario_candles", lambda *a, **k: used.append("candles"))
    monkeypatch.setattr(sim_bench, "run_stress", lambda *a, **k: used.append("run"))
    result = bench_stress("--accounts", "100", "--no-progress", "--json", *args)
    assert result.exit_code == EXIT_BAD_INPUT
    error = json.loads(result.stdout)["error"]
    assert error["field"] == field and "unknown" in error["message"]
    assert used == []
