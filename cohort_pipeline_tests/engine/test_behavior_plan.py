"""The fused behavioural plan on the sample data: one scan, order independence, and an independent oracle.

* **One scan**: evaluating 24 behavioural cohorts (every behaviour, actions, event filters, negation, nesting)
  reads the event source exactly once - counted by a Polars IO source that records every time it is read, and
  seen in the optimised plan of a Parquet scan (one ``Parquet SCAN``, shared through a cache).
* **Order independence**: each cohort evaluated alone gives the members it gets when all are evaluated together.
* **Oracle**: every leaf of the battery is recomputed by a deliberately naive per-person Python reading of spec
  5.2 / 5.3 (independent of the engine's window helpers) and must give the same members.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from dateutil.relativedelta import relativedelta
from polars.io.plugins import register_io_source

from cohort_pipeline import evaluate_cohorts
from cohort_pipeline.engine.behavior import BehaviorPlanner
from cohort_pipeline.engine.behaviors.plan import PERSON
from cohort_pipeline.engine.operators import EvaluationContext
from cohort_pipeline.model import parse_cohort
from cohort_pipeline.sources import load_project
from cohort_pipeline_tests.engine.test_behavior import behavioral, group, person_leaf

SAMPLE = Path(__file__).parents[2] / "data" / "sample"
TIMEZONE = "Europe/Berlin"  # project 1's timezone
NOW = datetime(2026, 10, 20, 15, 45, 30, tzinfo=UTC)  # inside the sample's 90 days: events after now exist too
ACTIONS = [
    {"id": 1, "name": "Viewed pricing", "steps": [{"event": "$pageview", "url": "/pricing"}]},
    {"id": 2, "name": "Paid or upgraded", "steps": [
        {"event": "purchase", "properties": [{"key": "amount", "operator": "gt", "value": 20, "type": "event"}]},
        {"event": "$pageview", "url": "https://app.example.com/settings/billing", "url_matching": "exact"},
    ]},
]
DECLARED = {"amount": "Numeric", "$browser": "String", "plan": "String", "feature": "String"}


def chrome() -> list[dict[str, Any]]:
    return [{"type": "event", "key": "$browser", "operator": "exact", "value": "Chrome"}]


#: (leaf, oracle) pairs; the oracle reads the leaf itself. Keys of actions are oracle-evaluated too.
BATTERY: list[dict[str, Any]] = [
    behavioral("performed_event", time_value=7, time_interval="day"),
    behavioral("performed_event", key="purchase", time_value=30, time_interval="day", event_filters=chrome()),
    behavioral("performed_event", key="$autocapture", time_value=12, time_interval="hour"),
    behavioral("performed_event", key=1, event_type="actions", time_value=14, time_interval="day"),
    behavioral("performed_event", key="signed_up", explicit_datetime="-3w", explicit_datetime_to="-1w"),
    behavioral("performed_event_multiple", key="feature_used", operator="gte", operator_value=5, time_value=14,
               time_interval="day"),
    behavioral("performed_event_multiple", key="purchase", operator="lt", operator_value=2, time_value=30,
               time_interval="day"),
    behavioral("performed_event_multiple", key=2, event_type="actions", operator="exact", operator_value=1,
               time_value=3, time_interval="week"),
    behavioral("performed_event_first_time", key="signed_up", time_value=30, time_interval="day"),
    behavioral("performed_event_first_time", time_value=2, time_interval="month", event_filters=chrome()),
    behavioral("performed_event_sequence", time_value=30, time_interval="day", seq_event="purchase",
               seq_event_type="events", seq_time_value=1, seq_time_interval="hour"),
    behavioral("performed_event_sequence", key="feature_used", time_value=7, time_interval="day",
               seq_event="feature_used", seq_event_type="events", seq_time_value=10, seq_time_interval="minute"),
    behavioral("performed_event_sequence", key=1, event_type="actions", time_value=60, time_interval="day",
               seq_event=2, seq_event_type="actions", seq_time_value=2, seq_time_interval="day"),
    behavioral("performed_event_regularly", operator="gte", operator_value=2, time_value=1, time_interval="day",
               min_periods=3, total_periods=7),
    behavioral("performed_event_regularly", key="feature_used", operator="gte", operator_value=1, time_value=1,
               time_interval="week", min_periods=2, total_periods=4),
    behavioral("performed_event_regularly", key="purchase", operator="lte", operator_value=1, time_value=1,
               time_interval="month", min_periods=2, total_periods=3),
    behavioral("performed_event_regularly", key="$pageleave", operator="exact", operator_value=1, time_value=3,
               time_interval="day", min_periods=2, total_periods=5),
    behavioral("stopped_performing_event", time_value=60, time_interval="day", seq_time_value=14,
               seq_time_interval="day"),
    behavioral("stopped_performing_event", key="feature_used", time_value=8, time_interval="week",
               seq_time_value=10, seq_time_interval="day", event_filters=chrome()),
    behavioral("restarted_performing_event", key="purchase", time_value=60, time_interval="day",
               seq_time_value=14, seq_time_interval="day"),
    behavioral("restarted_performing_event", key="feature_used", time_value=3, time_interval="week",
               seq_time_value=5, seq_time_interval="day"),
]


def battery_cohorts() -> list[dict[str, Any]]:
    """One cohort per battery leaf, plus combinations: negation in AND, OR with person leaves, nesting."""
    cohorts = [{"id": 100 + i, "filters": {"properties": group("AND", leaf)}} for i, leaf in enumerate(BATTERY)]
    cohorts += [
        {"id": 200, "filters": {"properties": group("AND", BATTERY[0], {**BATTERY[5], "negation": True})}},
        {"id": 201, "filters": {"properties": group("OR", BATTERY[1], person_leaf("plan", "enterprise"))}},
        {"id": 202, "filters": {"properties": group("AND", {"type": "cohort", "key": "id", "value": 201},
                                                    {**BATTERY[17], "negation": True})}},
    ]
    return cohorts


@pytest.fixture(scope="module")
def sample():
    return load_project(SAMPLE, 1)


def evaluate(cohorts: list[dict[str, Any]], data: Any, events: Any = None) -> dict[int, set[str]]:
    result = evaluate_cohorts(cohorts, data.persons, data.person_distinct_ids,
                              data.events if events is None else events, now=NOW, timezone=TIMEZONE,
                              actions=ACTIONS, property_definitions=DECLARED)
    members: dict[int, set[str]] = {c["id"]: set() for c in cohorts}
    for cohort_id, person_id in result.iter_rows():
        members[cohort_id].add(person_id)
    return members


# ---- one scan --------------------------------------------------------------------------------------------------


def counting_source(frame: pl.DataFrame) -> tuple[pl.LazyFrame, list[tuple[list[str] | None, Any]]]:
    """A LazyFrame over ``frame`` that records every read (the projected columns and the pushed predicate)."""
    reads: list[tuple[list[str] | None, Any]] = []

    def read(with_columns, predicate, n_rows, batch_size):
        reads.append((with_columns, predicate))
        out = frame if with_columns is None else frame.select(with_columns)
        if predicate is not None:
            out = out.filter(predicate)
        yield out if n_rows is None else out.head(n_rows)

    return register_io_source(read, schema=frame.schema, is_pure=True), reads


def test_twenty_four_behavioural_cohorts_scan_the_events_once(sample):
    cohorts = battery_cohorts()
    assert len(cohorts) >= 20
    events, reads = counting_source(sample.events.collect())
    members = evaluate(cohorts, sample, events)
    assert len(reads) == 1
    columns, predicate = reads[0]
    assert set(columns) == {"event", "distinct_id", "timestamp", "properties"}  # projection: no uuid
    assert predicate is not None  # the widest window and the event names are pushed into the scan
    assert any(members.values())


def test_undeclared_event_property_keys_add_one_narrow_typing_pass(sample):
    events, reads = counting_source(sample.events.collect())
    result = evaluate_cohorts([{"id": 1, "filters": {"properties": group("AND", BATTERY[1])}}], sample.persons,
                              sample.person_distinct_ids, events, now=NOW, timezone=TIMEZONE)
    assert len(reads) == 2  # decision 2: the type of $browser is inferred from the events first
    columns, predicate = reads[0]  # ... read on the events it is compared on (purchase), where it is a plain string
    assert set(columns) == {"event", "properties"} and predicate is not None
    assert result.height > 0


def test_the_optimised_plan_holds_one_parquet_scan(sample):
    planner = BehaviorPlanner(EvaluationContext(now=NOW, timezone=TIMEZONE), ACTIONS, DECLARED)
    for cohort in battery_cohorts():
        for leaf in parse_cohort(cohort, internal=True).leaves():
            if leaf.type == "behavioral":
                planner.register(leaf)
    events = pl.scan_parquet(SAMPLE / "project_1" / "events.parquet")
    ids = pl.scan_parquet(SAMPLE / "project_1" / "person_distinct_ids.parquet")
    codes = ids.select("distinct_id", (pl.col("person_id").rank("dense") - 1).cast(pl.UInt32).alias(PERSON))
    plan = pl.explain_all(planner.plan(events).frames(events, codes))  # what build() collects, together
    assert plan.count("events.parquet") == 1
    assert len(planner.columns) == len(BATTERY)  # the combinations reuse the battery's leaf columns


# ---- order independence ----------------------------------------------------------------------------------------


def test_cohort_by_cohort_equals_all_together(sample):
    cohorts = battery_cohorts()
    together = evaluate(cohorts, sample)
    by_id = {c["id"]: c for c in cohorts}
    for cohort in cohorts:
        needed = [cohort] + ([by_id[201]] if cohort["id"] == 202 else [])
        assert evaluate(needed, sample)[cohort["id"]] == together[cohort["id"]], cohort["id"]


# ---- oracle ----------------------------------------------------------------------------------------------------

ZONE = ZoneInfo(TIMEZONE)
DELTA = {"minute": "minutes", "hour": "hours", "day": "days", "week": "weeks", "month": "months", "year": "years"}
SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000, "year": 31536000}


def wall_back(n: int, unit: str) -> datetime:
    """now - n units on the local wall clock, as UTC."""
    wall = NOW.astimezone(ZONE).replace(tzinfo=None) - relativedelta(**{DELTA[unit]: n})
    return wall.replace(tzinfo=ZONE).astimezone(UTC)


def local_midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(ZONE).date(), time.min, tzinfo=ZONE).astimezone(UTC)


def local_day_end(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(ZONE).date(), time.max, tzinfo=ZONE).astimezone(UTC)


def wd(n: int, unit: str) -> tuple[datetime, datetime]:
    back = wall_back(n, unit)
    lower = back.astimezone(ZONE).replace(minute=0, second=0, microsecond=0).astimezone(UTC) if unit == "hour" \
        else local_midnight(back)
    return lower, local_day_end(NOW)


def relative(value: str) -> tuple[int, str]:
    units = {"d": "day", "w": "week", "m": "month", "y": "year", "h": "hour"}
    return int(value.strip("-")[:-1]), units[value[-1]]


def matches(leaf_key: Any, event_type: str, event: dict[str, Any]) -> bool:
    if event_type == "events":
        return event["event"] == leaf_key
    action = next(a for a in ACTIONS if a["id"] == int(leaf_key))
    for step in action["steps"]:
        url = event["properties"].get("$current_url")
        if step.get("event") and event["event"] != step["event"]:
            continue
        if step.get("url"):
            if url is None:
                continue
            if step.get("url_matching") == "exact" and url != step["url"]:
                continue
            if step.get("url_matching") != "exact" and step["url"] not in url:
                continue
        if all(event["properties"].get(p["key"]) is not None and event["properties"][p["key"]] > p["value"]
               for p in step.get("properties", [])):
            return True
    return False


def passes(leaf: dict[str, Any], event: dict[str, Any]) -> bool:
    return all(event["properties"].get(f["key"]) == f["value"] for f in leaf.get("event_filters") or [])


def oracle_member(leaf: dict[str, Any], events: list[dict[str, Any]]) -> bool:  # noqa: C901 - a spec reading
    value = leaf["value"]
    hits = sorted((e for e in events if matches(leaf["key"], leaf["event_type"], e)), key=lambda e: e["ts"])
    good = [e for e in hits if passes(leaf, e)]
    if value == "performed_event":
        if "explicit_datetime" in leaf:
            lower = local_midnight(wall_back(*relative(leaf["explicit_datetime"])))
            upper = local_day_end(wall_back(*relative(leaf["explicit_datetime_to"])))
        else:
            lower, upper = wd(leaf["time_value"], leaf["time_interval"])
        return any(lower <= e["ts"] <= upper for e in good)
    if value == "performed_event_multiple":
        lower, upper = wall_back(leaf["time_value"], leaf["time_interval"]), NOW + timedelta(seconds=5)
        count = sum(lower < e["ts"] < upper for e in good)
        compare = {"gte": count >= leaf["operator_value"], "lt": count < leaf["operator_value"],
                   "exact": count == leaf["operator_value"]}[leaf["operator"]]
        return count > 0 and compare
    if value == "performed_event_first_time":
        lower, upper = wd(leaf["time_value"], leaf["time_interval"])
        before = [e for e in hits if e["ts"] <= upper]
        if not before:
            return False
        first = before[0]["ts"]
        return lower <= first <= upper and any(e["ts"] == first and passes(leaf, e) for e in before)
    if value == "performed_event_sequence":
        lower, upper = wd(leaf["time_value"], leaf["time_interval"])
        within = timedelta(seconds=leaf["seq_time_value"] * SECONDS[leaf["seq_time_interval"]])
        inside = [e for e in events if lower <= e["ts"] <= upper]
        firsts = [e for e in inside if matches(leaf["key"], leaf["event_type"], e)]
        seconds = [e for e in inside if matches(leaf["seq_event"], leaf["seq_event_type"], e)]
        return any(a is not b and timedelta(0) <= b["ts"] - a["ts"] <= within for a in firsts for b in seconds)
    if value == "performed_event_regularly":
        unit, step = leaf["time_interval"], leaf["time_value"]
        end = local_day_end(NOW.astimezone(ZONE) - timedelta(days=1))  # 23:59:59.999999 yesterday
        lower = local_midnight(wall_back(step * leaf["total_periods"], unit))
        local_lower = lower.astimezone(ZONE)
        if unit == "week":  # start of the (Sunday) week
            lower = local_midnight(local_lower - timedelta(days=(local_lower.weekday() + 1) % 7))
        if unit == "month":
            lower = local_midnight(local_lower.replace(day=1))
        periods: dict[int, int] = defaultdict(int)
        end_local = end.astimezone(ZONE)
        for e in hits:
            if not lower <= e["ts"] <= end:
                continue
            local = e["ts"].astimezone(ZONE)
            days = (end_local.date() - local.date()).days
            age = {"day": days, "week": days // 7,
                   "month": (end_local.year - local.year) * 12 + end_local.month - local.month
                   - (local.day > end_local.day)}[unit]
            periods[age // step] += 1
        op = {"gte": lambda n: n >= leaf["operator_value"], "lte": lambda n: n <= leaf["operator_value"],
              "exact": lambda n: n == leaf["operator_value"]}[leaf["operator"]]
        return sum(op(n) for n in periods.values()) >= leaf["min_periods"]
    if value == "stopped_performing_event":
        long_lower, upper = wd(leaf["time_value"], leaf["time_interval"])
        recent_lower, _ = wd(leaf["seq_time_value"], leaf["seq_time_interval"])
        return any(long_lower <= e["ts"] <= upper for e in good) and not any(
            recent_lower <= e["ts"] <= upper for e in good)
    if value == "restarted_performing_event":
        recent_lower, upper = wd(leaf["seq_time_value"], leaf["seq_time_interval"])
        gap_lower, _ = wd(leaf["time_value"], leaf["time_interval"])
        gap_upper = local_day_end(wall_back(leaf["seq_time_value"], leaf["seq_time_interval"]))
        return (any(recent_lower <= e["ts"] <= upper for e in hits)
                and not any(gap_lower <= e["ts"] <= gap_upper for e in hits)
                and any(e["ts"] < recent_lower for e in hits))
    raise AssertionError(value)


@pytest.fixture(scope="module")
def events_by_person(sample):
    rows = sample.events.join(sample.person_distinct_ids, on="distinct_id").collect()
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows.iter_rows(named=True):
        by_person[row["person_id"]].append(
            {"event": row["event"], "ts": row["timestamp"], "properties": json.loads(row["properties"])})
    return by_person


@pytest.mark.parametrize("index", range(len(BATTERY)), ids=lambda i: f"{i}-{BATTERY[i]['value']}")
def test_engine_agrees_with_a_naive_reading_of_the_spec(sample, events_by_person, index):
    leaf = BATTERY[index]
    expected = {person for person, events in events_by_person.items() if oracle_member(leaf, events)}
    got = evaluate([{"id": 1, "filters": {"properties": group("AND", leaf)}}], sample)[1]
    assert got == expected
