"""The book benchmark runs end to end on a short stream (no timing asserted: rates depend on the machine)."""

from __future__ import annotations

from perprisk.benchmarks.book import run_book_benchmark


def test_the_benchmark_runs_and_reports_its_keys() -> None:
    report = run_book_benchmark(ops=400, seed=3, repeats=1)
    assert {"ops", "fast_ops_per_s", "naive_ops_per_s", "ratio"} <= report.keys()
    assert report["ops"] == 400
    assert report["fast_ops_per_s"] > 0 and report["naive_ops_per_s"] > 0 and report["ratio"] > 0
    assert report["agree"] is True  # both books gave the same events on the stream
    assert abs(sum(report["mix"].values()) - 1) < 1e-9
