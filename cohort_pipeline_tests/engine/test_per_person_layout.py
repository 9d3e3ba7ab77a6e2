"""FusedPlan.build lays the behaviours out by person code: row ``i`` is person ``i``, whatever rows a person has.

The layout replaced joins on the code, so what the joins gave for free is pinned here: a person a frame does not
hold gets that aggregate's "none" value, and a person without any read event is false in every output, even one
whose expression would hold on the "none" values (a count compared with ``<=``)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from cohort_pipeline.engine.behaviors.event_matching import EventColumns, EventTarget
from cohort_pipeline.engine.behaviors.plan import PERSON, FusedPlan
from cohort_pipeline.engine.behaviors.windows import Window
from cohort_pipeline.engine.operators import EvaluationContext

NOW = datetime(2026, 10, 31, 12, tzinfo=UTC)
WINDOW = Window(datetime(2026, 10, 1, tzinfo=UTC), NOW)


def _plan() -> FusedPlan:
    plan = FusedPlan(EventColumns(EvaluationContext(now=NOW, timezone="UTC"), {}))
    for name in ("a", "b"):
        target = EventTarget(name)
        plan.read(target, WINDOW)
        count = plan.count_in(plan.match(target), WINDOW)
        plan.output(f"at_most_one_{name}", count <= 1)  # holds on the "none" count 0: absent persons must not
        plan.output(f"did_{name}", plan.any_in(plan.match(target), WINDOW))
    return plan


def test_rows_follow_the_person_codes_and_absent_persons_are_false():
    events = pl.LazyFrame({
        "event": ["a", "a", "b", "b", "b"],
        "distinct_id": ["p3", "p3", "p1", "p1", "p3"],
        "timestamp": [datetime(2026, 10, 20, tzinfo=UTC)] * 5,
        "properties": ["{}"] * 5,
        "uuid": [str(i) for i in range(5)],
    })
    # codes 0..4: p0 and p2 and p4 never appear in the events; p1 only did b, p3 did both
    codes = pl.LazyFrame({"distinct_id": [f"p{i}" for i in range(5)], PERSON: list(range(5))},
                         schema={"distinct_id": pl.String, PERSON: pl.UInt32})
    out = _plan().build(events, codes, persons=5)
    assert out.height == 5
    assert out.to_dict(as_series=False) == {
        "at_most_one_a": [False, True, False, False, False],   # p1: 0 a's but has rows -> count 0 <= 1
        "did_a": [False, False, False, True, False],
        "at_most_one_b": [False, False, False, True, False],   # p1 did b twice; p3 once
        "did_b": [False, True, False, True, False],
    }


def test_no_events_gives_one_false_row_per_person():
    codes = pl.LazyFrame({"distinct_id": ["x", "y"], PERSON: [0, 1]}, schema={"distinct_id": pl.String,
                                                                              PERSON: pl.UInt32})
    out = _plan().build(None, codes, persons=3)
    assert out.height == 3 and not out.select(pl.any_horizontal(pl.all()).any()).item()

