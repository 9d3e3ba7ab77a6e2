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
  first a calculation into an empty store, then ``--rounds`` rounds of three runs taken in turn in this same
  process: the engine alone (``load_project`` + ``evaluate_cohorts``), a Dagster recalculation publishing the next
  version, and the same recalculation without Dagster (the service call the ``cohort_membership`` step makes), to
  tell Dagster's own share from checking and publishing. Taking the engine's time here, beside the Dagster runs,
  keeps the comparison within minutes on one machine state (the engine worker's run may be many minutes away).
  The memberships it writes are the ones the store published.
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


def _evaluate_set(args: argparse.Namespace, spec: dict):
    """``load_project`` + one ``evaluate_cohorts`` call over the whole set: ``(members, load_s, evaluate_s)``."""
    sys.path.insert(0, str(ROOT))
    from cohort_pipeline import evaluate_cohorts
    from cohort_pipeline.sources.readers import load_project

    definitions = None if args.infer_types else spec["property_definitions"]
    started = time.perf_counter()
    project = load_project(args.data_dir, 1)
    loaded = time.perf_counter()
    members = evaluate_cohorts([c["posthog"] for c in spec["cohorts"]], project.persons, project.person_distinct_ids,
                               project.events, now=datetime.fromisoformat(spec["now"]), timezone=spec["timezone"],
                               property_definitions=definitions)
    return members, loaded - started, time.perf_counter() - loaded


def engine(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(ROOT))
    import polars as pl

    from cohort_pipeline import evaluate_cohorts
    from cohort_pipeline.sources.readers import load_project

    spec = _load_set(args.set)
    report: dict = {"polars": pl.__version__, "threads": pl.thread_pool_size()}
    per_cohort: dict[str, float] = {}
    if args.mode == "engine":
        members, load_s, evaluate_s = _evaluate_set(args, spec)
    else:
        now = datetime.fromisoformat(spec["now"])
        definitions = None if args.infer_types else spec["property_definitions"]
        started = time.perf_counter()
        project = load_project(args.data_dir, 1)
        load_s = time.perf_counter() - started
        frames = []
        for cohort in (c["posthog"] for c in spec["cohorts"]):  # ids ascending: references point to lower ids
            t0 = time.perf_counter()
            published = pl.concat(frames) if frames else None
            frame = evaluate_cohorts([cohort], project.persons, project.person_distinct_ids, project.events, now=now,
                                     timezone=spec["timezone"], property_definitions=definitions,
                                     published_memberships=published)
            per_cohort[str(cohort["id"])] = time.perf_counter() - t0
            frames.append(frame)
        members = pl.concat(frames)
        evaluate_s = time.perf_counter() - started - load_s
    members.write_parquet(args.out)
    report.update(load_s=load_s, evaluate_s=evaluate_s, total_s=load_s + evaluate_s, rows=members.height,
                  per_cohort_s=per_cohort)
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

    from cohort_pipeline.defs.local_run import local_instance
    from cohort_pipeline.defs.resources import CohortPipelineSettings

    settings = CohortPipelineSettings(data_dir=str(args.data_dir), definitions_path=str(definitions),
                                      store_url=f"sqlite:///{work / 'store.db'}", state_dir=str(work / "state"))
    instance = local_instance()
    store = settings.store()
    first = _dagster_run(settings, instance, spec["now"], "first calculation")
    # then, in turn, round after round: the engine alone, the Dagster recalculation, the service call alone; all in
    # this process, so each comparison holds runs taken minutes apart at most, under the same machine state
    rounds = []
    for _ in range(args.rounds):
        _, load_s, evaluate_s = _evaluate_set(args, spec)
        recalculation = _dagster_run(settings, instance, spec["now"], "recalculation")
        rounds.append({"engine_s": load_s + evaluate_s, "dagster": recalculation,
                       "service_s": _service_recalculation(settings, store, spec)})
    members = store.memberships_frame([c["id"] for c in spec["cohorts"]], project_id=1)
    members.select(pl.col("cohort_id").cast(pl.Int64), "person_id").write_parquet(args.out)
    return {"first": first, "rounds": rounds, "total_s": first["run_s"], "rows": members.height,
            "per_cohort_s": {}}


def _dagster_run(settings, instance, as_of: str, label: str) -> dict:
    """One run of ``refresh_cohorts`` over every cohort partition: its time and each step's."""
    from cohort_pipeline.defs.local_run import refresh_everything

    started = time.perf_counter()
    result = refresh_everything(settings, instance, as_of=as_of)
    elapsed = time.perf_counter() - started
    if result is None or not result.success:
        raise SystemExit(f"the Dagster run ({label}) failed; see {os.environ['DAGSTER_HOME']}")
    return {"label": label, "run_s": elapsed, "steps_s": _step_durations(instance, result.run_id)}


def _service_recalculation(settings, store, spec: dict) -> float:
    """A recalculation doing the work of the ``cohort_membership`` step without Dagster: the service call the
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
    parser.add_argument("--rounds", type=int, default=1,
                        help="dagster: rounds of (engine alone, Dagster recalculation, service recalculation)")
    args = parser.parse_args()
    report = WORKERS[args.mode](args)
    report["peak_rss_mib"] = _peak_rss_mib()
    args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
