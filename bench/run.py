"""Benchmark: our fused engine against DuckDB (one hand-written query per cohort), same files, same run.

    python bench/run.py --size M                  # both cohort sets (12 and 100), both engines
    python bench/run.py --size S --cohorts 12     # quick check
    python bench/run.py --size M --cohorts 12 --repeat 3   # each engine 3 times, in turn: medians, every total
    python bench/run.py --size L                  # 10M persons / 300M events, the 12-cohort set (generation ~11 min)

For the 12-cohort set it also measures the Dagster path (``--skip-dagster`` to skip): ``refresh_cohorts`` over
every cohort partition in one run, against the engine alone timed in the same process, in turn (``--repeat`` rounds),
and checks that the store published the same members.

Generates the data if missing (``bench/data/<size>/project_1``, gitignored), writes each cohort set (PostHog
JSON + SQL) next to it, runs each engine in its own process (peak RSS: the process's own ``VmHWM``), checks that both give
the same members for every cohort (exit status 1 and the diff sizes when not), prints the table and appends it
with the machine's description to ``bench/RESULTS.md`` (``--no-record`` to skip).

No timing is asserted anywhere: the numbers are recorded, the targets of issue 6 are judged by reading them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from cohorts import NOW, PROPERTY_DEFINITIONS, SETS, TIMEZONE, BenchCohort  # noqa: E402

SIZES = {  # persons, events (90 days)
    "S": (100_000, 3_000_000),
    "M": (1_000_000, 30_000_000),
    "L": (10_000_000, 300_000_000),
}
SEED = 6
RESULTS = BENCH / "RESULTS.md"


# ---- data ---------------------------------------------------------------------------------------------------------


def ensure_data(data_dir: Path, size: str) -> float | None:
    """Generate ``data_dir/project_1`` unless it is complete; returns the generation time (None if it existed)."""
    if (data_dir / "project_1" / "events.parquet").exists():
        return None
    from cohort_pipeline.sources.generator import generate_dataset

    persons, events = SIZES[size]
    partial = data_dir.with_name(data_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"generating {size}: {persons:,} persons, {events:,} events into {data_dir} ...", flush=True)
    started = time.perf_counter()
    generate_dataset(partial, persons=persons, events=events, seed=SEED, project_ids=(1,))
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if data_dir.exists():
        shutil.rmtree(data_dir)
    partial.rename(data_dir)
    return time.perf_counter() - started


def data_summary(data_dir: Path) -> str:
    import pyarrow.parquet as pq

    parts = []
    for table in ("persons", "person_distinct_ids", "events"):
        path = data_dir / "project_1" / f"{table}.parquet"
        rows = pq.ParquetFile(path).metadata.num_rows
        parts.append(f"{table} {rows:,} rows ({path.stat().st_size / 2**20:,.0f} MiB)")
    return "; ".join(parts)


# ---- processes ----------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    report: dict
    wall_s: float
    peak_rss_mb: float
    cpu_s: float  # user + system CPU time of the process: less sensitive than wall time to other load


def write_set(run_dir: Path, name: str, cohorts: list[BenchCohort]) -> Path:
    """The cohort set file the workers read: the clock, the timezone, the property definitions, each cohort's PostHog
    JSON and SQL."""
    set_path = run_dir / f"set_{name}.json"
    set_path.write_text(json.dumps({
        "now": NOW.isoformat(), "timezone": TIMEZONE, "property_definitions": PROPERTY_DEFINITIONS,
        "cohorts": [{"id": c.id, "name": c.name, "posthog": c.posthog(), "sql": c.sql} for c in cohorts],
    }, indent=1))
    return set_path


def run_worker(mode: str, set_path: Path, data_dir: Path, out: Path, infer_types: bool,
               polars_engine: str | None = None, extra: list[str] = ()) -> Measured:
    report_path = out.with_suffix(".json")
    command = [sys.executable, str(BENCH / "workers.py"), mode, "--set", str(set_path), "--data-dir", str(data_dir),
               "--out", str(out), "--report", str(report_path), *(["--infer-types"] if infer_types else []), *extra]
    started = time.perf_counter()
    env = dict(os.environ)
    if polars_engine:  # Polars' default engine for collect() (the engine's code is unchanged)
        env["POLARS_ENGINE_AFFINITY"] = polars_engine
    process = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{mode} worker failed with exit status {process.returncode}: {' '.join(command)}")
    report = json.loads(report_path.read_text())
    # the worker's own VmHWM: wait4's ru_maxrss would include the forked copy of this process before exec
    return Measured(report, wall, report["peak_rss_mib"], usage.ru_utime + usage.ru_stime)


# ---- checking ------------------------------------------------------------------------------------------------------


def compare(cohorts: list[BenchCohort], ours: Path, duck: Path) -> dict[int, tuple[int, int, int, int]]:
    """Per cohort: (ours, duckdb, only ours, only duckdb) member counts."""
    a = pl.read_parquet(ours).select(pl.col("cohort_id").cast(pl.Int64), "person_id")
    b = pl.read_parquet(duck).select(pl.col("cohort_id").cast(pl.Int64), "person_id")
    only_a = a.join(b, on=["cohort_id", "person_id"], how="anti")
    only_b = b.join(a, on=["cohort_id", "person_id"], how="anti")
    counts = [dict(f.group_by("cohort_id").len().iter_rows()) for f in (a, b, only_a, only_b)]
    return {c.id: tuple(table.get(c.id, 0) for table in counts) for c in cohorts}


# ---- reporting -----------------------------------------------------------------------------------------------------


def machine() -> list[str]:
    import duckdb
    import numpy
    import pyarrow

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "cohort_pipeline/engine",
                            "cohort_pipeline/sources"], capture_output=True, text=True).stdout.strip()
    return [
        f"CPU: {model}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable); RAM {mem_kb / 2**20:.1f} GiB; "
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, Polars {pl.__version__}, DuckDB {duckdb.__version__}, "
        f"PyArrow {pyarrow.__version__}, NumPy {numpy.__version__}",
        f"cohort_pipeline at {commit}{' (uncommitted changes in cohort_pipeline/engine or sources)' if dirty else ''}",
    ]


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def median_run(runs: list[Measured]) -> Measured | None:
    """The run whose total time is the median (the lower middle one of an even number); ``None`` for no runs."""
    if not runs:
        return None
    return sorted(runs, key=lambda run: run.report["total_s"])[(len(runs) - 1) // 2]


def repeats_line(label: str, ours_runs: list[Measured], duck_runs: list[Measured]) -> str:
    """Every run's total time, in the order they ran, and the spread of the ratio they allow."""
    ours = [run.report["total_s"] for run in ours_runs]
    line = f"[{label}] {len(ours)} runs each, in turn; ours totals " + ", ".join(f"{t:.2f}" for t in ours) + " s"
    if duck_runs:
        duck = [run.report["total_s"] for run in duck_runs]
        ratios = [o / d for o, d in zip(ours, duck, strict=True)]
        line += ("; duckdb totals " + ", ".join(f"{t:.2f}" for t in duck) + " s; ratio run by run "
                 + ", ".join(f"{r:.2f}x" for r in ratios) + " (the tables use each engine's median run)")
    return line


def table(cohorts: list[BenchCohort], checked: dict | None, ours_each: Measured | None,
          duck: Measured | None) -> list[str]:
    lines = [f"{'id':>3}  {'cohort':<58} {'ours':>9} {'duckdb':>9} {'check':<12} {'duckdb s':>8}"
             + (f" {'ours 1-by-1 s':>13}" if ours_each else "")]
    for c in cohorts:
        if checked:
            n_ours, n_duck, only_ours, only_duck = checked[c.id]
            verdict = "ok" if not (only_ours or only_duck) else f"-{only_ours}/+{only_duck}"
        else:
            n_ours = n_duck = None
            verdict = "not checked"
        duck_s = f"{duck.report['per_cohort_s'][str(c.id)]:8.2f}" if duck else f"{'-':>8}"
        each = f" {ours_each.report['per_cohort_s'][str(c.id)]:13.2f}" if ours_each else ""
        lines.append(f"{c.id:>3}  {c.name[:58]:<58} {n_ours if n_ours is not None else '-':>9} "
                     f"{n_duck if n_duck is not None else '-':>9} {verdict:<12} {duck_s}{each}")
    return lines


def summary(label: str, ours: Measured, duck: Measured | None, ours_each: Measured | None) -> list[str]:
    r = ours.report
    lines = [
        f"[{label}] ours (one evaluate_cohorts call): load_project {r['load_s']:.2f} s + evaluate {r['evaluate_s']:.2f} s"
        f" = {r['total_s']:.2f} s; process wall {ours.wall_s:.2f} s, CPU {ours.cpu_s:.1f} s; peak RSS "
        f"{ours.peak_rss_mb:,.0f} MiB",
    ]
    if ours_each:
        e = ours_each.report
        lines.append(f"[{label}] ours (one call per cohort): evaluate {e['evaluate_s']:.2f} s; process CPU "
                     f"{ours_each.cpu_s:.1f} s; peak RSS {ours_each.peak_rss_mb:,.0f} MiB")
    if duck:
        d = duck.report
        lines += [
            f"[{label}] duckdb ({len(d['per_cohort_s'])} queries, {d['threads']} threads): queries {d['evaluate_s']:.2f} s"
            f" (+ setup {d['setup_s']:.2f} s); process wall {duck.wall_s:.2f} s, CPU {duck.cpu_s:.1f} s; peak RSS "
            f"{duck.peak_rss_mb:,.0f} MiB",
            f"[{label}] ratio ours / duckdb: total {r['total_s'] / d['total_s']:.2f}x, evaluate only "
            f"{r['evaluate_s'] / d['evaluate_s']:.2f}x, process wall {ours.wall_s / duck.wall_s:.2f}x, "
            f"process CPU {ours.cpu_s / duck.cpu_s:.2f}x, "
            f"peak RSS {ours.peak_rss_mb / duck.peak_rss_mb:.2f}x",
        ]
    return lines


def dagster_summary(label: str, cohorts: list[BenchCohort], dagster: Measured, run_dir: Path) -> list[str]:
    """The Dagster path against the engine alone (``load_project`` + ``evaluate_cohorts``), both timed in the
    Dagster worker, in turn; and its published members against the engine's."""
    report = dagster.report
    rounds = report["rounds"]
    engine_s = statistics.median(r["engine_s"] for r in rounds)
    first = report["first"]
    lines = [f"[{label}] dagster path, first calculation (into an empty store): refresh_cohorts over {len(cohorts)} "
             f"partitions in one run {first['run_s']:.2f} s = engine alone x {first['run_s'] / engine_s:.2f}; "
             f"steps: {_steps(first)}"]
    for number, r in enumerate(rounds, 1):
        dagster_s, service_s = r["dagster"]["run_s"], r["service_s"]
        lines.append(
            f"[{label}] in turn, round {number} of {len(rounds)}: engine alone {r['engine_s']:.2f} s, Dagster "
            f"recalculation {dagster_s:.2f} s ({(dagster_s / r['engine_s'] - 1) * 100:+.0f}%), the same without "
            f"Dagster (service: load, evaluate, GX checks, publish) {service_s:.2f} s "
            f"({(service_s / r['engine_s'] - 1) * 100:+.0f}%); Dagster's own share {dagster_s - service_s:.2f} s; "
            f"steps: {_steps(r['dagster'])}")
    if len(rounds) > 1:
        ratios = sorted(r["dagster"]["run_s"] / r["engine_s"] for r in rounds)
        lines.append(f"[{label}] Dagster recalculation over the engine alone, round by round: "
                     + ", ".join(f"{(x - 1) * 100:+.0f}%" for x in ratios)
                     + f"; median {(statistics.median(ratios) - 1) * 100:+.0f}%")
    lines.append(f"[{label}] dagster path process: wall {dagster.wall_s:.2f} s (with imports and every run), "
                 f"CPU {dagster.cpu_s:.1f} s, peak RSS {dagster.peak_rss_mb:,.0f} MiB")
    checked = compare(cohorts, run_dir / f"ours_{label}.parquet", run_dir / f"dagster_{label}.parquet")
    bad = {cid: v for cid, v in checked.items() if v[2] or v[3]}
    lines.append(f"[{label}] MISMATCH between the published and the engine's members on {len(bad)} cohort(s)" if bad
                 else f"[{label}] check: the store published the engine's members for all {len(cohorts)} cohorts")
    return lines


def _steps(run: dict) -> str:
    return ", ".join(f"{step} {seconds:.2f} s" for step, seconds in run["steps_s"].items())


def record(lines: list[str], command: str) -> None:
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = "" if RESULTS.exists() else "# Benchmark results (appended by bench/run.py)\n"
    with RESULTS.open("a") as out:
        out.write(f"{header}\n## {stamp}: `{command}`\n\n```\n" + "\n".join(lines) + "\n```\n")


# ---- main --------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), required=True)
    parser.add_argument("--cohorts", choices=["12", "100", "both"],
                        help="cohort sets to run (default: both, except at L: 12, the set issue 6's L targets name)")
    parser.add_argument("--skip-duckdb", action="store_true", help="run our engine only (no cross-check)")
    parser.add_argument("--data-dir", type=Path, help="default bench/data/<size>")
    parser.add_argument("--ours-per-cohort", action="store_true",
                        help="also run our engine once per cohort (a third process) for per-cohort times")
    parser.add_argument("--infer-types", action="store_true",
                        help="do not pass property definitions: let the engine infer the types from the data")
    parser.add_argument("--polars-engine", choices=["auto", "in-memory", "streaming"],
                        help="POLARS_ENGINE_AFFINITY for our engine's process (default: Polars' own default)")
    parser.add_argument("--skip-dagster", action="store_true",
                        help="do not measure the Dagster path (refresh_cohorts over all partitions of the 12 set)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run our engine and DuckDB this many times each, taking turns; the tables show each "
                             "one's median run (by total time) and list every total. The Dagster path takes as many "
                             "rounds of (engine alone, Dagster recalculation, service recalculation)")
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.relative_to(ROOT)}")
    args = parser.parse_args()
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.cohorts is None:
        args.cohorts = "12" if args.size == "L" else "both"

    data_dir = (args.data_dir or BENCH / "data" / args.size).resolve()
    generated = ensure_data(data_dir, args.size)
    note = "" if generated is None else f" (generated now in {generated:.0f} s, seed {SEED})"
    lines = [f"size {args.size}{note}: {data_summary(data_dir)}"]
    lines += machine()
    lines.append(f"now = {NOW.isoformat()}, timezone {TIMEZONE}; property definitions "
                 f"{'inferred from the data' if args.infer_types else 'declared'}; Polars engine "
                 f"{args.polars_engine or 'default'}; load average at start "
                 f"{load_average()} (other sessions share this machine: timings are noisy)")

    run_dir = data_dir / "runs" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True)
    failed = False
    ours_totals: dict[str, float] = {}
    for name in (["12", "100"] if args.cohorts == "both" else [args.cohorts]):
        cohorts = SETS[name]()
        set_path = write_set(run_dir, name, cohorts)
        # with --repeat, the engines take turns (ours, DuckDB, ours, ...) so both see the same spells of load
        ours_runs, duck_runs = [], []
        for attempt in range(args.repeat):
            of = f" ({attempt + 1} of {args.repeat})" if args.repeat > 1 else ""
            print(f"--- {name}-cohort set: our engine{of} ...", flush=True)
            ours_runs.append(run_worker("engine", set_path, data_dir, run_dir / f"ours_{name}.parquet",
                                        args.infer_types, args.polars_engine))
            if not args.skip_duckdb:
                print(f"--- {name}-cohort set: DuckDB{of} ...", flush=True)
                duck_runs.append(run_worker("duckdb", set_path, data_dir, run_dir / f"duckdb_{name}.parquet",
                                            args.infer_types))
        ours, duck = median_run(ours_runs), median_run(duck_runs)
        ours_totals[name] = ours.report["total_s"]
        ours_each = None
        if args.ours_per_cohort:
            print(f"--- {name}-cohort set: our engine, one call per cohort ...", flush=True)
            ours_each = run_worker("engine-each", set_path, data_dir, run_dir / f"ours_each_{name}.parquet",
                                   args.infer_types, args.polars_engine)
        checked = None
        if duck is not None:
            checked = compare(cohorts, run_dir / f"ours_{name}.parquet", run_dir / f"duckdb_{name}.parquet")
        section = [f"", f"{name}-cohort set"] + table(cohorts, checked, ours_each, duck) + summary(name, ours, duck,
                                                                                                    ours_each)
        if args.repeat > 1:
            section.append(repeats_line(name, ours_runs, duck_runs))
        if checked:
            bad = {cid: v for cid, v in checked.items() if v[2] or v[3]}
            if bad:
                failed = True
                section.append(f"[{name}] MISMATCH on {len(bad)} cohort(s): " + ", ".join(
                    f"{cid}: {v[2]} only ours, {v[3]} only duckdb" for cid, v in bad.items()))
            else:
                section.append(f"[{name}] check: both engines give the same members for all {len(cohorts)} cohorts")
        if name == "12" and not args.skip_dagster:
            print(f"--- {name}-cohort set: the Dagster path ...", flush=True)
            dagster = run_worker("dagster", set_path, data_dir, run_dir / f"dagster_{name}.parquet", False,
                                 extra=["--rounds", str(args.repeat)])
            section += dagster_summary(name, cohorts, dagster, run_dir)
            failed = failed or any("MISMATCH" in line for line in section)
        print("\n".join(section), flush=True)
        lines += section
    tail = [""]
    if len(ours_totals) == 2:
        tail.append(f"ours 100-cohort / 12-cohort total time: {ours_totals['100'] / ours_totals['12']:.2f}x")
    shown = run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir  # --data-dir may lie elsewhere
    tail.append(f"load average at end {load_average()}; run files in {shown}")
    print("\n".join(tail))
    lines += tail
    if not args.no_record:
        record(lines, command)
    if failed:
        print("FAILED: the engines disagree (see MISMATCH above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
