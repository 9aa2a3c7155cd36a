"""The benchmark harness and report: results recorded, NaN refused, tables written."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402
import report  # noqa: E402


def _row(ratio):
    return {"benchmark": "b", "measured": "2 s", "against": "1 s", "ratio": ratio}


def test_record_writes_the_result_and_refuses_nan(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    harness.record("fine", {"seconds": [1.0, 2.0]}, [_row(2.0)])
    saved = json.loads((tmp_path / "fine.json").read_text())
    assert saved["rows"] == [_row(2.0)] and saved["machine"]["cores"] == os.cpu_count()
    for figures, rows in [({"seconds": [1.0, math.nan]}, [_row(2.0)]),
                          ({"seconds": 1.0}, [_row(math.nan)]),
                          ({"seconds": 1.0}, []), ({}, [_row(2.0)])]:
        with pytest.raises(SystemExit) as failed:
            harness.record("broken", figures, rows)
        assert "missing or NaN" in str(failed.value)


def test_report_writes_results_and_the_readme_table(tmp_path, monkeypatch):
    results, readme = tmp_path / "results", tmp_path / "README.md"
    results.mkdir()
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\nrest\n")
    monkeypatch.setattr(report, "BENCH", tmp_path)
    monkeypatch.setattr(report, "RESULTS", results)
    monkeypatch.setattr(report, "README", readme)
    monkeypatch.setattr(harness, "RESULTS", results)
    harness.record("serving_latency", {
        "in_process": {"p50_ms": 2.0, "p99_ms": 3.0}, "keras_predict": {"p50_ms": 50.0, "p99_ms": 90.0},
        "server": {"p50_ms": 4.0, "p99_ms": 5.0}}, [_row(2.0)])
    (results / "hardware_efficiency.png").write_bytes(b"stale")
    report.main()
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| b | 2 s | 1 s | 2.000 |" in text
    assert "| `benchmarks/input_pipeline.py` | not run |" in text
    assert (results / "serving_latency.png").stat().st_size > 1000
    assert not (results / "hardware_efficiency.png").exists()  # no result, so no chart
    assert "![Serving latency](results/serving_latency.png)" in (tmp_path / "RESULTS.md").read_text()


def test_serving_benchmark_runs_and_records(tmp_path):
    env = dict(os.environ, KAT_BENCH_RESULTS=str(tmp_path))
    run = subprocess.run([sys.executable, str(BENCH / "serving_latency.py"), "--requests", "8",
                          "--clients", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    saved = json.loads((tmp_path / "serving_latency.json").read_text())
    assert saved["figures"]["failed_requests"] == 0
    assert [row["ratio"] > 0 for row in saved["rows"]] == [True, True]


def test_results_table_reruns_rows_and_rewrites_the_readme_table(tmp_path):
    """`make results` on two shortened rows: each row's command runs, and the table between
    the README's markers is written from the runs' metrics.json."""
    import results_table

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results_table.START}\nold table\n{results_table.END}\nrest\n")
    done = subprocess.run(
        [sys.executable, str(BENCH / "results_table.py"), "--rows",
         "fashion_mnist_default,sequence_fashion_mnist_simple_rnn",
         "--measured", str(tmp_path / "measured.json"),
         "--set", "data.limit=256", "--set", "epochs=1", "--readme", str(readme),
         "--table", str(tmp_path / "table.md"), "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KAT_BENCH_RESULTS": str(tmp_path / "results")})
    assert done.returncode == 0, done.stderr[-3000:]
    text = readme.read_text()
    assert text.startswith(f"intro\n{results_table.START}\n")
    assert text.endswith(f"{results_table.END}\nrest\n")
    assert "old table" not in text
    rows = [line for line in text.splitlines() if line.startswith("| `python")]
    assert [r.split("`")[1] for r in rows] == [
        "python -m training train --preset fashion_mnist_default",
        "python -m training train --preset sequence_fashion_mnist_simple_rnn"]
    saved = json.loads((tmp_path / "measured.json").read_text())
    assert rows[0].split(" | ")[3] == saved["rows"]["fashion_mnist_default"]["accuracy"]  # from metrics.json
    assert "resnet_small x0.5" in rows[0] and "simple_rnn 128" in rows[1]
    assert (tmp_path / "table.md").read_text().count("| `python") == 2
