"""The measured processes: ``python bench/workers.py {engine,engine-each,duckdb,dagster} ...``.

Each worker runs in its own process (started by run.py) and reports its own peak RSS (``VmHWM``) and timings; the
parent adds the process's wall and CPU time from ``os.wait4``. A worker reads the cohort set the parent wrote
(JSON), computes the memberships, writes them as ``(cohort_id, person_id)`` Parquet and a JSON report of its own
timings.

* ``engine``: our engine, every cohort of the set in ONE ``evaluate_cohorts`` call over ``load_project``'s frames;
* ``engine-each``: our engine, one call per cohort (references read from the members computed before, as
  PostHog's per-cohort recalculation reads stored memberships), to show per-cohort times;
* ``duckdb``: one SQL query per cohort over the same Parquet files (views), each result stored as a table
  ``cohort_<id>`` that later cohorts may reference;
* ``dagster``: the Dagster path, as ``cohort-pipeline run`` takes it: a definitions file holding the set, then the
  job ``refresh_cohorts`` over every cohort partition in one in-process run (definitions sync, data-contract
  checks, one fused evaluation, Great Expectations checks, publishing every cohort to a SQLite store, summaries),
  twice: a first calculation into an empty store, then a recalculation that publishes version 2 over version 1;
  then a third recalculation without Dagster (the service call the ``cohort_membership`` step makes), to tell
  Dagster's own share from checking and publishing. The memberships it writes are the ones the store published.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def dagster_path(args: argparse.Namespace) -> dict:
    spec = _load_set(args.set)
    work = args.out.with_suffix("")  # <out>/ beside <out>.parquet: definitions file, store, state, DAGSTER_HOME
    shutil.rmtree(work, ignore_errors=True)
    (work / "dagster_home").mkdir(parents=True)
    os.environ["DAGSTER_HOME"] = str(work / "dagster_home")  # a real instance (SQLite event log), as a user has
    definitions = work / "cohorts.json"
    definitions.write_text(json.dumps({"projects": [{
        "id": 1, "name": "bench", "timezone": spec["timezone"], "property_definitions": spec["property_definitions"],
        "cohorts": [c["posthog"] for c in spec["cohorts"]],
    }]}, indent=1))
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from cohort_pipeline.defs.local_run import local_instance, refresh_everything
    from cohort_pipeline.defs.resources import CohortPipelineSettings

    settings = CohortPipelineSettings(data_dir=str(args.data_dir), definitions_path=str(definitions),
                                      store_url=f"sqlite:///{work / 'store.db'}", state_dir=str(work / "state"))
    instance = local_instance()
    runs = []
    for label in ("first calculation", "recalculation"):
        started = time.perf_counter()
        result = refresh_everything(settings, instance, as_of=spec["now"])
        elapsed = time.perf_counter() - started
        if result is None or not result.success:
            raise SystemExit(f"the Dagster run ({label}) failed; see {work / 'dagster_home'}")
        runs.append({"label": label, "run_s": elapsed, "steps_s": _step_durations(instance, result.run_id)})
    store = settings.store()
    service_s = _service_recalculation(settings, store, spec)
    members = store.memberships_frame([c["id"] for c in spec["cohorts"]], project_id=1)
    members.select(pl.col("cohort_id").cast(pl.Int64), "person_id").write_parquet(args.out)
    return {"runs": runs, "service_s": service_s, "total_s": runs[0]["run_s"], "rows": members.height,
            "per_cohort_s": {}}


def _service_recalculation(settings, store, spec: dict) -> float:
    """A third recalculation, the work of the ``cohort_membership`` step without Dagster: the service call the
    asset makes (load, evaluate, Great Expectations checks, publish), timed alone. What the Dagster run takes on
    top of it is Dagster's own (run set-up, event log, the other assets)."""
    from cohort_pipeline.service.cohort_keys import CohortKey
    from cohort_pipeline.service.recalculation import recalculate

    keys = [CohortKey(1, c["id"]) for c in spec["cohorts"]]
    as_of = datetime.fromisoformat(spec["now"])
    started = time.perf_counter()
    report = recalculate(store, keys, data_dir=Path(settings.data_dir), snapshot=settings.snapshot(), versions={},
                         as_of=as_of)
    elapsed = time.perf_counter() - started
    if not report.all_handled:
        raise SystemExit(f"the service recalculation did not publish every cohort: {report.failure_description()}")
    return elapsed


def _step_durations(instance, run_id: str) -> dict[str, float]:
    """Seconds from each step's start to its success, from the run's event log."""
    started: dict[str, float] = {}
    durations: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[record.step_key] = record.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            durations[record.step_key] = record.timestamp - started[record.step_key]
    return durations


def _peak_rss_mib() -> float:
    """This process's peak RSS since it started this program (``VmHWM`` of its own memory map). The parent's
    ``wait4`` figure would also count the memory of the forked copy of the parent before ``exec``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise SystemExit("no VmHWM in /proc/self/status (peak RSS is measured on Linux only)")


WORKERS = {"engine": engine, "engine-each": engine, "duckdb": duckdb_worker, "dagster": dagster_path}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=sorted(WORKERS))
    parser.add_argument("--set", type=Path, required=True, help="cohort set JSON written by run.py")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="memberships Parquet")
    parser.add_argument("--report", type=Path, required=True, help="timings JSON")
    parser.add_argument("--infer-types", action="store_true")
    args = parser.parse_args()
    report = WORKERS[args.mode](args)
    report["peak_rss_mib"] = _peak_rss_mib()
    args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
