"""Benchmark: validate_membership on 1M candidate rows in 100 cohorts against 1.2M known persons."""
import statistics, sys, time
import numpy as np
import polars as pl
t0 = time.perf_counter()
from cohort_pipeline.quality import validate_membership
from cohort_pipeline.quality.gx_runtime import gx_runtime

N_PERSONS, N_ROWS, N_COHORTS = 1_200_000, 1_000_000, 100
rng = np.random.default_rng(7)
persons = pl.Series("id", [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(N_PERSONS)])
# 100 cohorts of 10,000 distinct persons each
picks = np.concatenate([rng.choice(N_PERSONS, N_ROWS // N_COHORTS, replace=False) for _ in range(N_COHORTS)])
candidate = pl.DataFrame({"cohort_id": np.repeat(np.arange(1, N_COHORTS + 1), N_ROWS // N_COHORTS), "person_id": persons.gather(picks)})
counts = dict(candidate.group_by("cohort_id").len().iter_rows())
previous = {c: (None if c % 10 == 0 else int(n * 0.9)) for c, n in counts.items()}
kw = dict(known_person_ids=persons, expected_counts=counts, previous_counts=previous, realtime_cohort_ids=set(range(1, 51)))

t = time.perf_counter(); gx_runtime(); print(f"GX import + context (once per process): {time.perf_counter() - t:.2f} s")
times = []
for _ in range(5):
    t = time.perf_counter(); v = validate_membership(candidate, **kw); times.append(time.perf_counter() - t)
assert v.success and not v.warnings, v.summary()
print(f"clean, {candidate.height:,} rows / {N_COHORTS} cohorts: median {statistics.median(times):.2f} s (runs: {', '.join(f'{x:.2f}' for x in times)})")

broken = candidate.with_columns(pl.when(pl.col("cohort_id") == 3).then(pl.lit("ghost-") + pl.col("person_id")).otherwise(pl.col("person_id")).alias("person_id"))
t = time.perf_counter(); v = validate_membership(broken, **kw); dt = time.perf_counter() - t
print(f"one cohort of unknown persons (10,000 rows): {dt:.2f} s, failed={sorted(v.failed_cohort_ids)}")
stale = candidate.with_columns((pl.lit("ghost-") + pl.col("person_id")).alias("person_id"))
t = time.perf_counter(); v = validate_membership(stale, **kw); dt = time.perf_counter() - t
print(f"every row an unknown person (1M failing rows): {dt:.2f} s, failed cohorts={len(v.failed_cohort_ids)}")
print(v.check("members_are_known_persons").description[:200])
