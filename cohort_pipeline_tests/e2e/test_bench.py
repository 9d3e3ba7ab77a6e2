"""The benchmark of issue 6 end to end at its smallest size, so it cannot rot between the sessions that run it at M
and L: ``bench/run.py --size S`` generates 100k persons / 3M events, runs our engine and DuckDB's hand-written query
per cohort on both cohort sets (12 and 100), and the Dagster path on the 12; it exits 1 when the two engines, or the
store and the engine, disagree on any cohort's members. No timing is looked at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_at_size_s_agrees_with_duckdb_on_every_cohort(tmp_path: Path) -> None:
    data_dir = tmp_path / "S"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--size", "S", "--data-dir", str(data_dir), "--no-record"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-4000:]
    assert "[12] check: both engines give the same members for all 12 cohorts" in finished.stdout
    assert "[100] check: both engines give the same members for all 100 cohorts" in finished.stdout
    assert "[12] check: the store published the engine's members for all 12 cohorts" in finished.stdout
    assert "MISMATCH" not in output
    assert (data_dir / "project_1" / "events.parquet").is_file()
