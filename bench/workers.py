"""The measured processes: ``python bench/workers.py {engine,engine-each,duckdb} ...``.

Each worker runs in its own process (started by run.py), so the parent can read that process's peak RSS from
``os.wait4``. A worker reads the cohort set the parent wrote (JSON), computes the memberships, writes them as
``(cohort_id, person_id)`` Parquet and a JSON report of its own timings.

* ``engine``: our engine, every cohort of the set in ONE ``evaluate_cohorts`` call over ``load_project``'s frames;
* ``engine-each``: our engine, one call per cohort (references read from the members computed before, as
  PostHog's per-cohort recalculation reads stored memberships), to show per-cohort times;
* ``duckdb``: one SQL query per cohort over the same Parquet files (views), each result stored as a table
  ``cohort_<id>`` that later cohorts may reference.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_set(path: Path) -> dict:
    return json.loads(path.read_text())


def engine(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from cohort_pipeline import evaluate_cohorts
    from cohort_pipeline.sources.readers import load_project

    spec = _load_set(args.set)
    now = datetime.fromisoformat(spec["now"])
    definitions = None if args.infer_types else spec["property_definitions"]
    cohorts = [c["posthog"] for c in spec["cohorts"]]
    started = time.perf_counter()
    project = load_project(args.data_dir, 1)
    loaded = time.perf_counter()
    report: dict = {"polars": pl.__version__, "threads": pl.thread_pool_size()}
    if args.mode == "engine":
        members = evaluate_cohorts(cohorts, project.persons, project.person_distinct_ids, project.events, now=now,
                                   timezone=spec["timezone"], property_definitions=definitions)
        per_cohort = {}
    else:
        frames, per_cohort = [], {}
        for cohort in cohorts:  # ids ascending: references point to lower ids, already computed
            t0 = time.perf_counter()
            published = pl.concat(frames) if frames else None
            frame = evaluate_cohorts([cohort], project.persons, project.person_distinct_ids, project.events, now=now,
                                     timezone=spec["timezone"], property_definitions=definitions,
                                     published_memberships=published)
            per_cohort[str(cohort["id"])] = time.perf_counter() - t0
            frames.append(frame)
        members = pl.concat(frames)
    evaluated = time.perf_counter()
    members.write_parquet(args.out)
    report.update(load_s=loaded - started, evaluate_s=evaluated - loaded, total_s=evaluated - started,
                  rows=members.height, per_cohort_s=per_cohort)
    return report


def duckdb_worker(args: argparse.Namespace) -> dict:
    import duckdb
    import pyarrow.parquet as pq

    spec = _load_set(args.set)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # display only: every bound is converted explicitly in the SQL
    project = args.data_dir / "project_1"
    for table in ("persons", "person_distinct_ids", "events"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{project / (table + '.parquet')}')")
    ready = time.perf_counter()
    per_cohort: dict[str, float] = {}
    for cohort in spec["cohorts"]:  # ids ascending: references point to lower ids, already stored
        t0 = time.perf_counter()
        con.execute(f"CREATE TEMP TABLE cohort_{cohort['id']} AS {cohort['sql']}")
        per_cohort[str(cohort["id"])] = time.perf_counter() - t0
    finished = time.perf_counter()
    union = " UNION ALL ".join(f"SELECT {c['id']}::BIGINT AS cohort_id, person_id FROM cohort_{c['id']}"
                               for c in spec["cohorts"])
    table = con.sql(union).arrow()
    if hasattr(table, "read_all"):  # newer DuckDB returns a RecordBatchReader
        table = table.read_all()
    pq.write_table(table, args.out)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    memory_limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    return {"duckdb": duckdb.__version__, "threads": threads, "memory_limit": memory_limit,
            "setup_s": ready - started, "evaluate_s": finished - ready, "total_s": finished - started,
            "rows": table.num_rows, "per_cohort_s": per_cohort}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["engine", "engine-each", "duckdb"])
    parser.add_argument("--set", type=Path, required=True, help="cohort set JSON written by run.py")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="memberships Parquet")
    parser.add_argument("--report", type=Path, required=True, help="timings JSON")
    parser.add_argument("--infer-types", action="store_true")
    args = parser.parse_args()
    report = duckdb_worker(args) if args.mode == "duckdb" else engine(args)
    args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
