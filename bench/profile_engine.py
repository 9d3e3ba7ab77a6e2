"""Where our engine's time goes, phase by phase, and what the issue's optimisations would buy (evidence for issue 6).

    python bench/profile_engine.py --size M [--cohorts 12]

Polars 2.x has no ``LazyFrame.profile()`` (removed with the streaming engine becoming the default), so this
script times phases instead. It rebuilds exactly the plan ``evaluate_cohorts`` builds (same internal objects, read
only: nothing in ``cohort_pipeline`` is changed) and runs it stage by stage, materialising each stage's output so
each stage is timed alone:

  scan+filter -> join to person_distinct_ids -> JSON extraction -> row predicates -> group-by per person
  -> branches (sequence, regularity) -> persons side (person leaves, joins, unpivot)

then measures alternatives on the same materialised rows: integer-coded distinct ids, categorical event names,
aggregation per distinct id before the join. Timings are wall-clock on a shared 2-core machine (noisy).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import polars as pl

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from cohorts import NOW, PROPERTY_DEFINITIONS, SETS, TIMEZONE  # noqa: E402

from cohort_pipeline.engine import evaluate as ev  # noqa: E402
from cohort_pipeline.engine.behavior import BehaviorPlanner  # noqa: E402
from cohort_pipeline.engine.behaviors.event_matching import EventColumns  # noqa: E402
from cohort_pipeline.engine.behaviors.plan import PERSON, FusedPlan, _utc_timestamps  # noqa: E402
from cohort_pipeline.engine.operators import EvaluationContext  # noqa: E402
from cohort_pipeline.engine.property_types import resolve_property_types  # noqa: E402
from cohort_pipeline.sources.readers import load_project  # noqa: E402

TIMINGS: list[tuple[str, float, float, str]] = []


@contextmanager
def phase(name: str, note: str = ""):
    """Time a phase: wall clock, and CPU time of this process (all threads; less sensitive to other load)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    box: dict = {"note": note}
    yield box
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    TIMINGS.append((name, elapsed, cpu, box["note"]))
    print(f"{elapsed:8.2f} s wall {cpu:8.2f} s CPU  {name}  {box['note']}", flush=True)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="M")
    parser.add_argument("--cohorts", default="12", choices=sorted(SETS))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--memory-probe", choices=["full", "aggregates-only", "branches-only"],
                        help="run only that part of the fused plan (in a fresh process) and print its peak RSS")
    args = parser.parse_args()
    data_dir = args.data_dir or BENCH / "data" / args.size
    cohorts = [c.posthog() for c in SETS[args.cohorts]()]
    print(f"Polars {pl.__version__}, {pl.thread_pool_size()} threads; {data_dir}; {len(cohorts)} cohorts")

    with phase("load_project (schema + uniqueness checks)"):
        project = load_project(data_dir, 1)

    # --- the plan, built as evaluate_cohorts_detailed builds it ---------------------------------------------------
    with phase("compile cohorts (parse, leaves, person property types)"):
        definitions, _ = ev._parse_definitions(cohorts)
        ctx = EvaluationContext(now=NOW, timezone=TIMEZONE)
        keys = ev._person_keys([d.effective_filters() for d in definitions.values()])
        property_types = resolve_property_types(project.persons, keys, PROPERTY_DEFINITIONS)
        behaviors = BehaviorPlanner(ctx, (), PROPERTY_DEFINITIONS)
        builder = ev._PlanBuilder(definitions, ctx, property_types, {}, {}, None, behaviors)
        members = builder.build_all()
    plan = FusedPlan(EventColumns(ctx, behaviors.property_types(project.events)))
    for name, leaf in behaviors._leaves.values():
        leaf.contribute(name, plan)
    predicate = plan._scan_predicate()
    needed = ["event", "distinct_id", "timestamp"] + (["properties"] if plan.columns.needs_properties else [])
    print(f"behaviour leaves {len(behaviors._leaves)}, aggregates {len(plan._aggregates)}, branches "
          f"{[type(b).__name__ for b in plan._branches.values()]}, row predicates "
          f"{sum(len(level) for level in plan.columns._levels)}, JSON keys {sorted(plan.columns._properties)}")

    if args.memory_probe:
        memory_probe(args.memory_probe, plan, project, builder, members)
        return

    # --- the full fused evaluation, for reference --------------------------------------------------------------------
    with phase("REFERENCE: evaluate_cohorts, whole fused plan (collect)") as box:
        result = ev._collect(project.persons, project.person_distinct_ids, project.events, builder, members)
        box["note"] = f"{result.height:,} membership rows; peak RSS so far {rss_mib():,.0f} MiB"
    del result

    # --- stage by stage ----------------------------------------------------------------------------------------------
    events = _utc_timestamps(project.events)
    with phase("1 scan events + filter (names, widest window)") as box:
        rows1 = events.select(needed).filter(predicate).collect()
        box["note"] = f"{rows1.height:,} rows kept, {rows1.estimated_size() / 2**20:,.0f} MiB"
    with phase("1b same scan without the properties column") as box:
        n = events.select(["event", "distinct_id", "timestamp"]).filter(predicate).select(pl.len()).collect().item()
    pdi = project.person_distinct_ids.select("distinct_id", PERSON).collect()
    with phase("2 join rows -> person_distinct_ids (string key)") as box:
        rows2 = rows1.lazy().join(pdi.lazy(), on="distinct_id", how="inner").collect()
        box["note"] = f"{rows2.height:,} rows"
    with phase("2b   same join without the properties column (string key)") as box:
        rows1.drop("properties", strict=False).lazy().join(pdi.lazy(), on="distinct_id", how="inner").collect()
    with phase("3 extract JSON property texts") as box:
        rows3 = plan.columns.extract(rows2.lazy()).collect()
        box["note"] = f"keys {sorted(plan.columns._properties)}"
    with phase("4 row predicates (event names, filters, windows)") as box:
        lazy = rows3.lazy()
        for stage in plan.columns.stages():
            lazy = lazy.with_columns(stage)
        rows4 = lazy.collect()
        box["note"] = f"{rows4.width - rows3.width} boolean columns"
    with phase("5 group_by person: all aggregates") as box:
        frame = rows4.lazy().group_by(PERSON).agg(
            pl.len().alias("__events"), *[expr.alias(name) for name, expr in plan._aggregates.values()]).collect()
        box["note"] = f"{len(plan._aggregates)} aggregates, {frame.height:,} persons"
    for branch in plan._branches.values():
        with phase(f"6 branch {type(branch).__name__}") as box:
            out = branch.frame(rows4.lazy()).collect()
            box["note"] = f"{len(branch.leaves)} leaves, {out.height:,} persons"
    del rows3

    # persons side: what _collect does after the behaviour frame
    per_person = frame.lazy()
    for branch in plan._branches.values():
        per_person = per_person.join(branch.frame(rows4.lazy()), on=PERSON, how="left")
    per_person = per_person.select(PERSON, *[e.fill_null(False).alias(n) for n, e in plan.outputs.items()]).collect()
    with phase("7 persons side: person-property leaves, join behaviours, unpivot") as box:
        out = (project.persons.join(per_person.lazy(), left_on="id", right_on=PERSON, how="left")
               .with_columns([pl.col(n).fill_null(False) for n in behaviors.columns])
               .with_columns([expr.alias(name) for name, expr in builder.person_columns.values()])
               .select(pl.col("id").alias("person_id"), *[e.alias(f"cohort_{c}") for c, e in members.items()])
               .unpivot(index="person_id", variable_name="cohort", value_name="member")
               .filter(pl.col("member")).select("cohort", "person_id").unique().sort("cohort", "person_id")
               .collect())
        box["note"] = f"{out.height:,} rows"
    with phase("7a   of which person-property leaves alone") as box:
        project.persons.select([expr.alias(name) for name, expr in builder.person_columns.values()]).collect()
        box["note"] = f"{len(builder.person_columns)} leaves"
    with phase("7b   of which unpivot + unique + sort of the memberships") as box:
        out.lazy().unique().sort("cohort", "person_id").collect()

    # --- alternatives on the same rows (evidence for the optimisations) -------------------------------------
    print("\nalternatives:")
    codes = pdi.with_row_index("did_code").with_columns(
        pl.col(PERSON).rank("dense").cast(pl.UInt32).alias("person_code"))
    with phase("A0 one-off: integer-code distinct ids of the scanned rows (dictionary join)") as box:
        coded = rows1.lazy().join(codes.lazy().select("distinct_id", "did_code"), on="distinct_id", how="left") \
            .drop("distinct_id").collect()
    coded_pdi = codes.select("did_code", "person_code")
    with phase("A1 join on integer-coded distinct ids (vs 2)") as box:
        joined = coded.lazy().join(coded_pdi.lazy(), on="did_code", how="inner").collect()
        box["note"] = f"{joined.height:,} rows"
    with phase("A2 group_by person: string person_id (count + 1 any)") as box:
        rows4.lazy().group_by(PERSON).agg(pl.len(), pl.col("timestamp").max()).collect()
    with phase("A3 group_by person: integer person code (count + 1 any)") as box:
        joined.lazy().group_by("person_code").agg(pl.len(), pl.col("timestamp").max()).collect()
    names = sorted(rows1["event"].unique().to_list())
    tests = [pl.col("event") == name for name in names] * 3
    with phase(f"B1 {len(tests)} event-name comparisons on String") as box:
        rows1.lazy().select(tests[i].alias(f"t{i}") for i in range(len(tests))).collect()
    as_enum = rows1.with_columns(pl.col("event").cast(pl.Enum(names)))
    with phase(f"B2 {len(tests)} event-name comparisons on Enum (categorical)") as box:
        as_enum.lazy().select(tests[i].alias(f"t{i}") for i in range(len(tests))).collect()
    with phase("C1 join 2 + group_by person (the current order)") as box:
        rows1.lazy().join(pdi.lazy(), on="distinct_id").group_by(PERSON).agg(
            pl.len().alias("n"), pl.col("timestamp").min().alias("first")).collect()
    with phase("C2 group_by distinct id first, join the aggregate, re-aggregate per person") as box:
        per_did = rows1.lazy().group_by("distinct_id").agg(pl.len().alias("n"), pl.col("timestamp").min().alias("first"))
        per_did.join(pdi.lazy(), on="distinct_id").group_by(PERSON).agg(
            pl.col("n").sum(), pl.col("first").min()).collect()
    with phase("D0 extract JSON before the join, then join the narrow rows (vs 2 + 3)") as box:
        plan.columns.extract(rows1.lazy()).drop("properties", strict=False).join(
            pdi.lazy(), on="distinct_id", how="inner").collect()
    person_keys = sorted(ev._person_keys([d.effective_filters() for d in definitions.values()]))
    with phase("7c person leaves: one JSON extraction per key, shared (vs 7a)") as box:
        from cohort_pipeline.engine.property_types import property_text
        project.persons.select(property_text(pl.col("properties"), key).alias(key) for key in person_keys).collect()
        box["note"] = f"{len(person_keys)} keys (extraction only)"
    with phase("D1 JSON: one json_path_match over all kept rows") as box:
        rows1.lazy().select(pl.col("properties").str.json_path_match('$["feature"]')).collect()
    event_keys = sorted(plan.columns._properties)
    with phase(f"D2 JSON: one json_decode into a struct of the {len(event_keys)} keys, all kept rows (vs 3)") as box:
        rows1.lazy().select(pl.col("properties").str.json_decode(
            pl.Struct({key: pl.String for key in event_keys})).struct.unnest()).collect()
    with phase(f"D3 persons: one json_decode into a struct of the {len(person_keys)} person keys (vs 7c)") as box:
        project.persons.select(pl.col("properties").str.json_decode(
            pl.Struct({key: pl.String for key in person_keys})).struct.unnest()).collect()
    pdi_codes = codes.select("distinct_id", "person_code")
    with phase("E1 join rows -> distinct ids carrying an integer person code, group_by code (vs C1)") as box:
        rows1.lazy().join(pdi_codes.lazy(), on="distinct_id").group_by("person_code").agg(
            pl.len().alias("n"), pl.col("timestamp").min().alias("first")).collect()
    for branch in plan._branches.values():
        if type(branch).__name__ != "SequenceBranch":
            continue
        for name, first, second, in_window, within in branch.leaves:
            with phase("F1 sequence leaf as join_asof (next B at or after each A, by person; vs 6)") as box:
                step = rows4.lazy().filter(in_window).select(PERSON, "timestamp", first.alias("a"), second.alias("b"))
                a = step.filter("a").select(PERSON, "timestamp").sort("timestamp")
                b = step.filter("b").select(PERSON, pl.col("timestamp").alias("b_ts")).sort("b_ts")
                hits = a.join_asof(b, left_on="timestamp", right_on="b_ts", by=PERSON, strategy="forward").filter(
                    (pl.col("b_ts") - pl.col("timestamp")) <= pl.duration(seconds=within)).select(PERSON).unique()
                box["note"] = f"{hits.collect().height:,} persons (valid when A and B are different events)"
    print(f"\npeak RSS of this process {rss_mib():,.0f} MiB")
    print(f"\nphase table (load average now {'/'.join(f'{x:.2f}' for x in os.getloadavg())}):")
    print("| phase | wall s | CPU s | note |\n|---|---:|---:|---|")
    for name, seconds, cpu, note in TIMINGS:
        print(f"| {name} | {seconds:.2f} | {cpu:.2f} | {note} |")


def memory_probe(part: str, plan: FusedPlan, project, builder, members) -> None:
    """Peak RSS of one part of the fused plan: the whole evaluation, the single group-by without the branches (and
    so without the cache), or the branches alone over the cached rows."""
    with phase(f"memory probe: {part}") as box:
        if part == "full":
            ev._collect(project.persons, project.person_distinct_ids, project.events, builder, members)
        else:
            events = _utc_timestamps(project.events)
            needed = ["event", "distinct_id", "timestamp"] + (["properties"] if plan.columns.needs_properties else [])
            rows = events.select(needed).filter(plan._scan_predicate())
            rows = plan.columns.extract(rows.join(project.person_distinct_ids.select("distinct_id", PERSON),
                                                  on="distinct_id", how="inner"))
            for stage in plan.columns.stages():
                rows = rows.with_columns(stage)
            if part == "aggregates-only":
                rows.group_by(PERSON).agg(pl.len(), *[e.alias(n) for n, e in plan._aggregates.values()]).collect()
            else:
                rows = rows.cache()
                frames = [branch.frame(rows) for branch in plan._branches.values()]
                pl.collect_all(frames)
        box["note"] = f"peak RSS {rss_mib():,.0f} MiB"


if __name__ == "__main__":
    main()
