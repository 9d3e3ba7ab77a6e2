"""Where our engine's time goes, phase by phase, and what the alternatives would buy (evidence for issue 6).

    python bench/profile_engine.py --size M [--cohorts 12|100] [--memory-probe full|aggregates-only|branches-only]

Polars 2.x has no ``LazyFrame.profile()`` (removed with the streaming engine becoming the default), so this
script times phases instead. It builds exactly the plan ``evaluate_cohorts`` builds (the engine's own objects and
methods, read only: nothing in ``cohort_pipeline`` is changed) and runs it stage by stage, materialising each
stage's output so each stage is timed alone:

  persons side (person texts, person leaves, id order and codes) -> scan+filter -> join to the person codes
  -> JSON extraction -> row predicates -> one group-by per target -> branches (sequence, regularity)
  -> laying the per-person frames out by person code -> memberships

then measures alternatives on the same materialised rows (the designs the engine does not use, and why). Each
phase reports wall and CPU seconds of this process; the machine is shared, so CPU is the steadier figure.
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
from cohort_pipeline.engine.behaviors.plan import AGGREGATIONS, PERSON, FusedPlan, _utc_timestamps  # noqa: E402
from cohort_pipeline.engine.operators import EvaluationContext  # noqa: E402
from cohort_pipeline.engine.property_types import (  # noqa: E402
    property_text,
    property_text_stages,
    resolve_property_types,
)
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


def per_target(rows: pl.DataFrame | pl.LazyFrame, plan: FusedPlan) -> list[pl.LazyFrame]:
    """The engine's per-target group-bys (as in ``FusedPlan.frames``) over ``rows``."""
    return [
        rows.lazy().filter(pl.col(hit)).with_columns(row.alias(name) for name, _, row in aggregates)
        .group_by(PERSON).agg(AGGREGATIONS[kind][0](pl.col(name)) for name, kind, _ in aggregates)
        for hit, aggregates in plan.aggregates_by_target().items()
    ]


def main() -> None:  # noqa: PLR0915 - one linear script
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
    by_target = plan.aggregates_by_target()
    print(f"behaviour leaves {len(behaviors._leaves)}, aggregates {len(plan._aggregates)} over {len(by_target)} "
          f"targets, branches {[type(b).__name__ for b in plan._branches.values()]}, row predicates "
          f"{sum(len(level) for level in plan.columns._levels)}, event JSON keys {sorted(plan.columns._properties)}, "
          f"person JSON keys {sorted(builder.person_texts)}")

    if args.memory_probe:
        memory_probe(args.memory_probe, plan, project, builder, members)
        return

    # --- the full fused evaluation, for reference --------------------------------------------------------------------
    with phase("REFERENCE: evaluate_cohorts, whole fused plan (collect)") as box:
        result = ev._collect(project.persons, project.person_distinct_ids, project.events, builder, members)
        box["note"] = f"{result.height:,} membership rows; peak RSS so far {rss_mib():,.0f} MiB"
    del result

    # --- stage by stage ----------------------------------------------------------------------------------------------
    persons = project.persons.collect()
    with phase("P1 persons: property texts (regex extraction from flat documents)") as box:
        texts = persons.lazy()
        for stage in property_text_stages("properties", builder.person_texts):
            texts = texts.with_columns(stage)
        texts = texts.collect()
        box["note"] = f"{len(builder.person_texts)} keys"
    with phase("P2 persons: person leaves") as box:
        leaves = texts.lazy().select("id", *[e.alias(n) for n, e in builder.person_columns.values()]).collect()
        box["note"] = f"{len(builder.person_columns)} leaves"
    with phase("P3 persons: id order + numbering (ids compacted), distinct ids -> person codes") as box:
        numbered = leaves.lazy().sort("id").with_row_index(PERSON).collect()
        numbered = numbered.with_columns(ev._compact(numbered["id"]))
        codes = project.person_distinct_ids.join(numbered.lazy().select("id", PERSON), left_on="person_id",
                                                 right_on="id").select("distinct_id", PERSON).collect()
        box["note"] = f"{codes.height:,} distinct ids"
    events = _utc_timestamps(project.events)
    needed = ["event", "distinct_id", "timestamp"] + (["properties"] if plan.columns.needs_properties else [])
    with phase("1 scan events + filter (names, widest window)") as box:
        rows1 = events.select(needed).filter(plan._scan_predicate()).collect()
        box["note"] = f"{rows1.height:,} rows kept, {rows1.estimated_size() / 2**20:,.0f} MiB"
    with phase("2 join rows -> person codes (string distinct_id key)") as box:
        rows2 = rows1.lazy().join(codes.lazy(), on="distinct_id", how="inner").collect()
        box["note"] = f"{rows2.height:,} rows"
    # how many rows each key is parsed on: counted before the phase, so its searches are not timed twice
    parsed = rows2.select([plan.columns._read_rows(k).sum().alias(k) for k in plan.columns._properties])
    with phase("3 extract event JSON property texts (only where a leaf can read them)") as box:
        rows3 = plan.columns.extract(rows2.lazy()).collect()
        box["note"] = "rows parsed per key " + (", ".join(f"{k} {v:,}" for k, v in parsed.row(0, named=True).items())
                                                 or "-")
    with phase("4 row predicates (event names, filters, windows)") as box:
        lazy = rows3.lazy()
        for stage in plan.columns.stages():
            lazy = lazy.with_columns(stage)
        rows4 = lazy.collect()
        box["note"] = f"{rows4.width - rows3.width} boolean columns"
    del rows2, rows3
    with phase("5 one group-by per target (aggregates over that target's rows)") as box:
        frames = pl.collect_all(per_target(rows4, plan))
        box["note"] = f"{len(plan._aggregates)} aggregates over {len(frames)} targets"
    for branch in plan._branches.values():
        with phase(f"6 branch {type(branch).__name__}") as box:
            frames.append(branch.frame(rows4.lazy()).collect())
            box["note"] = f"{len(branch.leaves)} leaves, {frames[-1].height:,} persons"
    with phase("7 lay the per-person frames out by person code, outputs") as box:
        per_person = plan.per_person(frames, numbered.height)
        box["note"] = f"{len(frames)} frames, {per_person.height:,} persons"
    with phase("8 persons + behaviours -> cohort flags -> membership rows") as box:
        flags = (numbered.hstack(per_person.select(behaviors.columns)).lazy()
                 .select("id", *[members[c].alias(f"cohort_{c}") for c in sorted(members)]).collect())
        out = pl.concat([flags.lazy().filter(f"cohort_{c}").select(pl.lit(c).alias("cohort_id"), "id")
                         for c in sorted(members)]).collect()
        box["note"] = f"{out.height:,} rows"

    # --- alternatives on the same rows (designs the engine does not use) ---------------------------------------------
    print("\nalternatives:")
    with phase("A1 one group-by over all rows, every aggregate (vs 5)"):
        rows4.lazy().with_columns(row.alias(n) for n, _, row, _ in plan._aggregates.values()).group_by(PERSON).agg(
            AGGREGATIONS[k][0](pl.col(n)) for n, k, _, _ in plan._aggregates.values()).collect()
    pdi = project.person_distinct_ids.select("distinct_id", "person_id").collect()
    with phase("A2 string person_id instead of codes: join rows -> person_id (vs 2)"):
        joined_ids = rows1.lazy().select("distinct_id", "timestamp").join(pdi.lazy(), on="distinct_id").collect()
    with phase("A3 group_by string person_id: count + min (vs integer codes, A4)"):
        joined_ids.lazy().group_by("person_id").agg(pl.len(), pl.col("timestamp").min()).collect()
    with phase("A4 group_by integer person code: count + min"):
        rows4.lazy().group_by(PERSON).agg(pl.len(), pl.col("timestamp").min()).collect()
    del joined_ids
    pre_rows = rows1.lazy()
    pre_rows = plan.columns.extract(pre_rows)
    for stage in plan.columns.stages():
        pre_rows = pre_rows.with_columns(stage)
    pre_rows = pre_rows.drop("properties", strict=False).collect()
    with phase("B1 aggregate per distinct id first, join the aggregates, re-aggregate per person (vs 2 + 5)"):
        pl.collect_all([
            pre_rows.lazy().filter(pl.col(hit)).with_columns(row.alias(n) for n, _, row in aggregates)
            .group_by("distinct_id").agg(AGGREGATIONS[k][0](pl.col(n)) for n, k, _ in aggregates)
            .join(codes.lazy(), on="distinct_id").group_by(PERSON)
            .agg(pl.col(n).sum() if k == "count" else AGGREGATIONS[k][0](pl.col(n)) for n, k, _ in aggregates)
            for hit, aggregates in by_target.items()
        ])
    del pre_rows
    with phase("C1 person texts: one json_path_match per key (vs P1)") as box:
        persons.lazy().select(property_text(pl.col("properties"), k).alias(n)
                              for k, n in builder.person_texts.items()).collect()
    with phase("C2 event JSON: every key parsed on every row its events and windows allow, no raw-text witnesses "
               "(vs 3)") as box:
        def read_rows(key: str) -> pl.Expr:
            terms = []
            for (names, _), (lower, upper) in plan.columns._needed_for[key].items():
                term = pl.col("timestamp") <= upper
                term = term if lower is None else term & (pl.col("timestamp") >= lower)
                terms.append(term if names is None else term & pl.col("event").is_in(sorted(names)))
            return pl.any_horizontal(terms)
        rows1.lazy().select(property_text(pl.when(read_rows(k)).then(pl.col("properties")), k).alias(n)
                            for k, n in plan.columns._properties.items()).collect()
    print(f"\npeak RSS of this process {rss_mib():,.0f} MiB")
    print(f"\nphase table (load average now {'/'.join(f'{x:.2f}' for x in os.getloadavg())}):")
    print("| phase | wall s | CPU s | note |\n|---|---:|---:|---|")
    for name, seconds, cpu, note in TIMINGS:
        print(f"| {name} | {seconds:.2f} | {cpu:.2f} | {note} |")


def memory_probe(part: str, plan: FusedPlan, project, builder, members) -> None:
    """Peak RSS of one part of the fused plan: the whole evaluation, the per-target group-bys without the branches,
    or the branches alone over the cached rows."""
    with phase(f"memory probe: {part}") as box:
        if part == "full":
            ev._collect(project.persons, project.person_distinct_ids, project.events, builder, members)
        else:
            numbered = project.persons.select("id").sort("id").with_row_index(PERSON)
            codes = project.person_distinct_ids.join(numbered, left_on="person_id", right_on="id").select(
                "distinct_id", PERSON)
            rows = plan.rows(project.events, codes).cache()
            if part == "aggregates-only":
                frames = per_target(rows, plan)
            else:
                frames = [branch.frame(rows) for branch in plan._branches.values()]
            pl.collect_all(frames)
        box["note"] = f"peak RSS {rss_mib():,.0f} MiB"


if __name__ == "__main__":
    main()
