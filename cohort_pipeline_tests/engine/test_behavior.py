"""Behavioural leaves (spec 5.2, 5.3, 5.6), through ``evaluate_cohorts``, with a frozen ``now``.

Every expected member list is worked out by hand from the spec. Boundary tests put one event a microsecond
inside and one a microsecond outside each bound; the person names say which (``in_low``, ``out_high``...).
Actions are in test_behavior_actions.py, the fused scan and whole-data checks in test_behavior_plan.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from cohort_pipeline import evaluate_cohorts, evaluate_cohorts_detailed
from cohort_pipeline.errors import CalculationError

US = timedelta(microseconds=1)
NY = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def behavioral(value: str, key: Any = "$pageview", event_type: str = "events", **extra: Any) -> dict[str, Any]:
    return {"type": "behavioral", "key": key, "event_type": event_type, "value": value, **extra}


def person_leaf(key: str, value: Any, operator: str = "exact", **extra: Any) -> dict[str, Any]:
    return {"type": "person", "key": key, "value": value, "operator": operator, **extra}


def group(kind: str, *values: Any) -> dict[str, Any]:
    return {"type": kind, "values": list(values)}


@dataclass
class World:
    """Persons, their distinct ids and events, built up by a test; evaluated with a frozen ``now``."""

    now: datetime
    timezone: str = "UTC"
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    distinct_ids: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    property_definitions: dict[str, str] | None = None

    def person(self, person_id: str, *distinct_ids: str, **properties: Any) -> World:
        self.persons[person_id] = properties
        for distinct_id in distinct_ids or (person_id,):
            self.distinct_ids[distinct_id] = person_id
        return self

    def event(self, distinct_id: str, at: datetime, event: str = "$pageview", **properties: Any) -> World:
        """An event of ``distinct_id``; a person of that id is created on first use unless it is ``ghost...``."""
        if distinct_id not in self.distinct_ids and not distinct_id.startswith("ghost"):
            self.person(distinct_id)
        self.events.append({"distinct_id": distinct_id, "timestamp": at, "event": event, "properties": properties})
        return self

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        persons = pl.DataFrame(
            {"id": list(self.persons), "created_at": [self.now] * len(self.persons),
             "properties": [json.dumps(p) for p in self.persons.values()]},
            schema={"id": pl.String, "created_at": pl.Datetime("us", "UTC"), "properties": pl.String},
        )
        ids = pl.DataFrame({"distinct_id": list(self.distinct_ids), "person_id": list(self.distinct_ids.values())},
                           schema={"distinct_id": pl.String, "person_id": pl.String})
        events = pl.DataFrame(
            {"uuid": [f"e{i}" for i in range(len(self.events))],
             "event": [e["event"] for e in self.events],
             "distinct_id": [e["distinct_id"] for e in self.events],
             "timestamp": [e["timestamp"] for e in self.events],
             "properties": [json.dumps(e["properties"]) for e in self.events]},
            schema={"uuid": pl.String, "event": pl.String, "distinct_id": pl.String,
                    "timestamp": pl.Datetime("us", "UTC"), "properties": pl.String},
        )
        return persons, ids, events

    def evaluate(self, cohorts: list[dict[str, Any]]) -> dict[int, set[str]]:
        persons, ids, events = self.frames()
        result = evaluate_cohorts(cohorts, persons, ids, events, now=self.now, timezone=self.timezone,
                                  actions=self.actions, property_definitions=self.property_definitions)
        return {cid: set(result.filter(pl.col("cohort_id") == cid)["person_id"].to_list())
                for cid in (c["id"] for c in cohorts)}

    def members(self, *values: Any, kind: str = "AND") -> set[str]:
        return self.evaluate([{"id": 1, "filters": {"properties": group(kind, *values)}}])[1]

    def errors(self, *values: Any) -> dict[int, CalculationError]:
        persons, ids, events = self.frames()
        return evaluate_cohorts_detailed([{"id": 1, "filters": {"properties": group("AND", *values)}}], persons, ids,
                                         events, now=self.now, timezone=self.timezone, actions=self.actions).errors


# --------------------------------------------------------------------------------------------------------------
# Spec 5.6, worked example: UTC, now = 2025-03-15 14:30:00. One test per row of the table.
# --------------------------------------------------------------------------------------------------------------

NOW = utc(2025, 3, 15, 14, 30)


def world(now: datetime = NOW, timezone: str = "UTC") -> World:
    return World(now=now, timezone=timezone)


def test_performed_event_30_days_spans_31_calendar_days_up_to_the_end_of_today():
    # [2025-02-13 00:00:00, 2025-03-15 23:59:59.999999], both inclusive
    w = world()
    w.event("in_low", utc(2025, 2, 13)).event("out_low", utc(2025, 2, 13) - US)
    w.event("in_high", utc(2025, 3, 16) - US).event("out_high", utc(2025, 3, 16))
    w.event("other_event", utc(2025, 3, 1), event="$identify")
    assert w.members(behavioral("performed_event", time_value=30, time_interval="day")) == {"in_low", "in_high"}


def test_performed_event_24_hours_starts_at_the_start_of_the_hour():
    # [2025-03-14 14:00:00, 2025-03-15 23:59:59.999999]
    w = world()
    w.event("in_low", utc(2025, 3, 14, 14)).event("out_low", utc(2025, 3, 14, 14) - US)
    w.event("in_high", utc(2025, 3, 16) - US).event("out_high", utc(2025, 3, 16))
    assert w.members(behavioral("performed_event", time_value=24, time_interval="hour")) == {"in_low", "in_high"}


def test_performed_event_multiple_counts_in_the_exact_rolling_window():
    # (2025-02-13 14:30:00, 2025-03-15 14:30:05), both exclusive; two events safely inside plus one at a bound
    w = world()
    for name, at in {
        "out_low": utc(2025, 2, 13, 14, 30),
        "in_low": utc(2025, 2, 13, 14, 30) + US,
        "in_high": utc(2025, 3, 15, 14, 30, 5) - US,
        "out_high": utc(2025, 3, 15, 14, 30, 5),
    }.items():
        w.event(name, utc(2025, 3, 1)).event(name, utc(2025, 3, 2)).event(name, at)
    w.event("two_only", utc(2025, 3, 1)).event("two_only", utc(2025, 3, 2))
    leaf = behavioral("performed_event_multiple", operator="gte", operator_value=3, time_value=30,
                      time_interval="day")
    assert w.members(leaf) == {"in_low", "in_high"}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gte", 2, {"two", "three"}),
        ("gt", 2, {"three"}),
        ("lte", 2, {"one", "two"}),  # zero events never count, even for lte
        ("lt", 2, {"one"}),
        ("exact", 2, {"two"}),
        ("eq", 2, {"two"}),
        (None, 2, {"two"}),
    ],
)
def test_performed_event_multiple_operators_and_zero_events(operator, value, expected):
    w = world().person("none")
    for name, count in {"one": 1, "two": 2, "three": 3}.items():
        for i in range(count):
            w.event(name, utc(2025, 3, 10, i))
    w.event("none", utc(2025, 3, 10), event="$identify")
    leaf = behavioral("performed_event_multiple", operator=operator, operator_value=value, time_value=30,
                      time_interval="day")
    assert w.members(leaf) == expected


def test_performed_event_first_time_uses_the_earliest_ever_occurrence():
    # window [2025-02-13 00:00, 2025-03-15 23:59:59.999999]; the first ever $pageview must lie in it and pass the
    # event filters itself
    w = world()
    w.event("in_low", utc(2025, 2, 13), plan="pro").event("in_low", utc(2025, 3, 1), plan="pro")
    w.event("out_low", utc(2025, 2, 13) - US, plan="pro").event("out_low", utc(2025, 3, 1), plan="pro")
    w.event("in_high", utc(2025, 3, 16) - US, plan="pro")
    w.event("out_high", utc(2025, 3, 16), plan="pro")
    w.event("first_fails_filter", utc(2025, 3, 1), plan="free").event("first_fails_filter", utc(2025, 3, 2),
                                                                     plan="pro")
    w.event("tie_at_first", utc(2025, 3, 1), plan="free").event("tie_at_first", utc(2025, 3, 1), plan="pro")
    w.event("years_ago", utc(2020, 1, 1), plan="free").event("years_ago", utc(2025, 3, 1), plan="pro")
    w.event("other_event_before", utc(2020, 1, 1), event="$identify").event("other_event_before",
                                                                            utc(2025, 3, 1), plan="pro")
    leaf = behavioral("performed_event_first_time", time_value=30, time_interval="day",
                      event_filters=[{"type": "event", "key": "plan", "operator": "exact", "value": "pro"}])
    assert w.members(leaf) == {"in_low", "in_high", "tie_at_first", "other_event_before"}
    no_filters = behavioral("performed_event_first_time", time_value=30, time_interval="day")
    assert w.members(no_filters) == {"in_low", "in_high", "first_fails_filter", "tie_at_first",
                                     "other_event_before"}


def test_performed_event_sequence_two_distinct_events_within_the_window():
    # A = $pageview, B = purchase, both in [2025-02-13 00:00, end of 2025-03-15], B within 86 400 s after A
    w = world()
    a = utc(2025, 3, 1, 10)
    w.event("exactly_one_day", a).event("exactly_one_day", a + timedelta(days=1), event="purchase")
    w.event("one_day_and_a_us", a).event("one_day_and_a_us", a + timedelta(days=1) + US, event="purchase")
    w.event("wrong_order", a, event="purchase").event("wrong_order", a + timedelta(hours=1))
    w.event("same_time", a).event("same_time", a, event="purchase")
    w.event("a_before_window", utc(2025, 2, 13) - US).event("a_before_window", utc(2025, 2, 13, 0, 0, 1),
                                                            event="purchase")
    w.event("a_at_window_start", utc(2025, 2, 13)).event("a_at_window_start", utc(2025, 2, 13, 0, 0, 1),
                                                         event="purchase")
    w.event("b_after_window", utc(2025, 3, 15, 23)).event("b_after_window", utc(2025, 3, 16), event="purchase")
    w.event("b_at_window_end", utc(2025, 3, 15, 23)).event("b_at_window_end", utc(2025, 3, 16) - US,
                                                           event="purchase")
    leaf = behavioral("performed_event_sequence", time_value=30, time_interval="day", seq_event="purchase",
                      seq_event_type="events", seq_time_value=1, seq_time_interval="day")
    assert w.members(leaf) == {"exactly_one_day", "same_time", "a_at_window_start", "b_at_window_end"}


def test_performed_event_sequence_of_one_event_name_needs_two_events():
    w = world()
    w.event("single", utc(2025, 3, 1))
    w.event("two_same_time", utc(2025, 3, 1)).event("two_same_time", utc(2025, 3, 1))
    w.event("two_apart", utc(2025, 3, 1)).event("two_apart", utc(2025, 3, 3))
    w.event("too_far", utc(2025, 3, 1)).event("too_far", utc(2025, 3, 4) + US)
    leaf = behavioral("performed_event_sequence", time_value=30, time_interval="day", seq_event="$pageview",
                      seq_event_type="events", seq_time_value=2, seq_time_interval="day")
    assert w.members(leaf) == {"two_same_time", "two_apart"}


def test_performed_event_sequence_window_units_are_fixed_seconds():
    # months are 30 days in the sequence window (spec 5.3): A then B after 30 days converts, after 31 not
    w = world()
    w.event("thirty_days", utc(2025, 1, 20)).event("thirty_days", utc(2025, 2, 19), event="purchase")
    w.event("thirty_one_days", utc(2025, 1, 20)).event("thirty_one_days", utc(2025, 2, 20), event="purchase")
    leaf = behavioral("performed_event_sequence", time_value=3, time_interval="month", seq_event="purchase",
                      seq_event_type="events", seq_time_value=1, seq_time_interval="month")
    assert w.members(leaf) == {"thirty_days"}


def test_performed_event_regularly_counts_days_before_today():
    # gte 1 per 1 day for 3 of the last 5 periods: days 03-10 .. 03-14 (span [03-10 00:00, 03-14 23:59:59.999999])
    w = world()
    for at in (utc(2025, 3, 10), utc(2025, 3, 12), utc(2025, 3, 15) - timedelta(microseconds=1)):
        w.event("in_bounds", at)
    for at in (utc(2025, 3, 10) - US, utc(2025, 3, 12), utc(2025, 3, 14)):
        w.event("first_before_span", at)
    for at in (utc(2025, 3, 12), utc(2025, 3, 14), utc(2025, 3, 15)):
        w.event("one_today", at)
    for hour in range(5):
        w.event("one_busy_day", utc(2025, 3, 12, hour))
    leaf = behavioral("performed_event_regularly", operator="gte", operator_value=1, time_value=1,
                      time_interval="day", min_periods=3, total_periods=5)
    assert w.members(leaf) == {"in_bounds"}


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("gte", {"twice_daily", "mixed"}), ("lte", {"once_daily", "twice_daily", "mixed"}), ("exact", {"twice_daily"}),
     ("eq", {"twice_daily"})],
)
def test_performed_event_regularly_operators(operator, expected):
    # 2 per day for 2 of the last 3 days (03-12 .. 03-14)
    w = world()
    for day in (12, 13, 14):
        w.event("once_daily", utc(2025, 3, day, 9))
        w.event("twice_daily", utc(2025, 3, day, 9)).event("twice_daily", utc(2025, 3, day, 10))
    # mixed: 3 events on 03-12, 1 on 03-13, 2 on 03-14 -> gte 2 on two days, lte 2 on two days, exactly 2 once
    for day, count in ((12, 3), (13, 1), (14, 2)):
        for hour in range(count):
            w.event("mixed", utc(2025, 3, day, hour))
    leaf = behavioral("performed_event_regularly", operator=operator, operator_value=2, time_value=1,
                      time_interval="day", min_periods=2, total_periods=3)
    assert w.members(leaf) == expected


def test_performed_event_regularly_multi_day_periods_count_back_from_yesterday():
    # periods of 3 days, 2 periods: P0 = 03-12..03-14, P1 = 03-09..03-11 (span starts 03-09 00:00)
    w = world()
    w.event("both", utc(2025, 3, 9)).event("both", utc(2025, 3, 14, 23))
    w.event("same_period", utc(2025, 3, 12)).event("same_period", utc(2025, 3, 14))
    w.event("too_early", utc(2025, 3, 9) - US).event("too_early", utc(2025, 3, 13))
    w.event("p1_end_p0_start", utc(2025, 3, 12) - US).event("p1_end_p0_start", utc(2025, 3, 12))
    leaf = behavioral("performed_event_regularly", operator="gte", operator_value=1, time_value=3,
                      time_interval="day", min_periods=2, total_periods=2)
    assert w.members(leaf) == {"both", "p1_end_p0_start"}


def test_performed_event_regularly_monthly_periods_are_calendar_months():
    # 1 month periods, 2 of the last 2; end = 2025-03-14 23:59:59.999999. A month period counts whole months
    # back from it: P0 = (02-14 .., 03-14], i.e. events from 02-15 00:00; P1 from 01-15 00:00. The scan starts at
    # the start of the bucket of 01-15 (01-01), which adds a P2 (01-01 .. 01-14) that counts too.
    w = world()
    w.event("p0_p1", utc(2025, 2, 15)).event("p0_p1", utc(2025, 2, 14, 23))
    w.event("p0_only", utc(2025, 2, 15)).event("p0_only", utc(2025, 3, 14))
    w.event("p0_bucket_p2", utc(2025, 3, 1)).event("p0_bucket_p2", utc(2025, 1, 1))
    w.event("before_bucket", utc(2025, 3, 1)).event("before_bucket", utc(2025, 1, 1) - US)
    leaf = behavioral("performed_event_regularly", operator="gte", operator_value=1, time_value=1,
                      time_interval="month", min_periods=2, total_periods=2)
    assert w.members(leaf) == {"p0_p1", "p0_bucket_p2"}


def test_stopped_performing_event_last_occurrence_between_the_windows():
    # time 30 day, seq 7 day: did it in [02-13 00:00, end 03-15] but not in [03-08 00:00, end 03-15]
    w = world()
    w.event("in_high", utc(2025, 3, 8) - US)
    w.event("out_high", utc(2025, 2, 20)).event("out_high", utc(2025, 3, 8))
    w.event("in_low", utc(2025, 2, 13))
    w.event("out_low", utc(2025, 2, 13) - US)
    w.event("recent_fails_filters", utc(2025, 2, 20), plan="pro").event("recent_fails_filters", utc(2025, 3, 10),
                                                                        plan="free")
    leaf = behavioral("stopped_performing_event", time_value=30, time_interval="day", seq_time_value=7,
                      seq_time_interval="day")
    assert w.members(leaf) == {"in_high", "in_low"}
    filtered = {**leaf, "event_filters": [{"type": "event", "key": "plan", "operator": "exact", "value": "pro"}]}
    assert w.members(filtered) == {"recent_fails_filters"}


def test_restarted_performing_event_recent_window_gap_and_history():
    # time 30 day, seq 7 day: R = [03-08 00:00, end 03-15], G = [02-13 00:00, 03-08 23:59:59.999999]
    w = world()
    w.event("restarted", utc(2025, 2, 13) - US).event("restarted", utc(2025, 3, 9))
    w.event("overlap_day", utc(2025, 1, 1)).event("overlap_day", utc(2025, 3, 8, 12))
    w.event("first_time", utc(2025, 3, 10))
    w.event("in_gap", utc(2025, 1, 1)).event("in_gap", utc(2025, 2, 13)).event("in_gap", utc(2025, 3, 10))
    w.event("late_today", utc(2025, 1, 1)).event("late_today", utc(2025, 3, 16) - US)
    w.event("not_in_recent", utc(2025, 1, 1))
    leaf = behavioral("restarted_performing_event", time_value=30, time_interval="day", seq_time_value=7,
                      seq_time_interval="day")
    expected = {"restarted", "late_today"}
    assert w.members(leaf) == expected
    # restarted ignores event_filters (clarification 15)
    never = [{"type": "event", "key": "plan", "operator": "exact", "value": "nobody has this"}]
    assert w.members({**leaf, "event_filters": never}) == expected


# --------------------------------------------------------------------------------------------------------------
# Units, explicit bounds, calendar arithmetic
# --------------------------------------------------------------------------------------------------------------


def test_minute_means_minutes():
    # decision 3: 30 minute; the exact window is (14:00:00, 14:30:05); Wd starts at the start of today
    w = world()
    w.event("in", utc(2025, 3, 15, 14, 0) + US).event("out", utc(2025, 3, 15, 14, 0))
    multiple = behavioral("performed_event_multiple", operator="gte", operator_value=1, time_value=30,
                          time_interval="minute")
    assert w.members(multiple) == {"in"}
    w.event("today", utc(2025, 3, 15)).event("yesterday", utc(2025, 3, 15) - US)
    performed = behavioral("performed_event", time_value=30, time_interval="minute")
    assert w.members(performed) == {"in", "out", "today"}


def test_months_and_years_are_calendar_arithmetic():
    # now 2025-03-31: one month back is 02-28; one year back from 2024-02-29 is 2023-02-28
    w = world(now=utc(2025, 3, 31, 12))
    w.event("in", utc(2025, 2, 28)).event("out", utc(2025, 2, 28) - US)
    assert w.members(behavioral("performed_event", time_value=1, time_interval="month")) == {"in"}
    w = world(now=utc(2024, 2, 29, 12))
    w.event("in", utc(2023, 2, 28)).event("out", utc(2023, 2, 28) - US)
    assert w.members(behavioral("performed_event", time_value=1, time_interval="year")) == {"in"}


def test_explicit_datetime_bounds_of_the_day_aligned_window():
    # absolute lower bound keeps its time; explicit_datetime_to is pushed to the end of its day
    w = world()
    w.event("in_low", utc(2025, 3, 1, 10, 30)).event("out_low", utc(2025, 3, 1, 10, 30) - US)
    w.event("in_high", utc(2025, 3, 6) - US).event("out_high", utc(2025, 3, 6))
    leaf = behavioral("performed_event", explicit_datetime="2025-03-01T10:30:00Z",
                      explicit_datetime_to="2025-03-05T08:00:00Z")
    assert w.members(leaf) == {"in_low", "in_high"}


def test_explicit_relative_lower_bound_is_truncated_to_the_day():
    # -1w from 2025-03-15 14:30 -> 2025-03-08 00:00 (conformance 002 relies on this)
    w = world()
    w.event("in", utc(2025, 3, 8)).event("out", utc(2025, 3, 8) - US).event("later_today", utc(2025, 3, 15, 23))
    assert w.members(behavioral("performed_event", explicit_datetime="-1w")) == {"in", "later_today"}
    # -3h: truncated to the start of the hour -> 11:00
    w = world()
    w.event("in", utc(2025, 3, 15, 11)).event("out", utc(2025, 3, 15, 11) - US)
    assert w.members(behavioral("performed_event", explicit_datetime="-3h")) == {"in"}


def test_explicit_bounds_of_the_exact_window_are_exclusive_and_not_truncated():
    # performed_event_multiple: ts > explicit_datetime and ts < explicit_datetime_to; a date means its midnight
    w = world()
    w.event("out_low", utc(2025, 3, 1)).event("in_low", utc(2025, 3, 1) + US)
    w.event("in_high", utc(2025, 3, 5) - US).event("out_high", utc(2025, 3, 5))
    leaf = behavioral("performed_event_multiple", operator="gte", operator_value=1,
                      explicit_datetime="2025-03-01", explicit_datetime_to="2025-03-05")
    assert w.members(leaf) == {"in_low", "in_high"}
    # a relative lower bound is now minus the amount, not truncated: -2d -> 2025-03-13 14:30:00
    w = world()
    w.event("out", utc(2025, 3, 13, 14, 30)).event("in", utc(2025, 3, 13, 14, 30) + US)
    leaf = behavioral("performed_event_multiple", operator="gte", operator_value=1, explicit_datetime="-2d")
    assert w.members(leaf) == {"in"}


def test_invalid_explicit_datetime_fails_the_cohort():
    w = world().person("p")
    errors = w.errors(behavioral("performed_event", explicit_datetime="not a date"))
    assert "explicit_datetime" in errors[1].message


# --------------------------------------------------------------------------------------------------------------
# A non-UTC project timezone across the 2025 spring-forward change (America/New_York, Sunday 2025-03-09 02:00)
# --------------------------------------------------------------------------------------------------------------


def ny(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=NY).astimezone(UTC)


def test_day_aligned_window_in_new_york_across_the_dst_change():
    # now = Tue 2025-03-11 10:00 EDT; 3 days back = Sat 03-08 10:00 EST -> lower 03-08 00:00 EST (05:00 UTC);
    # upper = 03-11 23:59:59.999999 EDT (03-12 03:59:59.999999 UTC)
    w = world(now=ny(2025, 3, 11, 10), timezone="America/New_York")
    w.event("in_low", utc(2025, 3, 8, 5)).event("out_low", utc(2025, 3, 8, 5) - US)
    w.event("in_high", utc(2025, 3, 12, 4) - US).event("out_high", utc(2025, 3, 12, 4))
    assert w.members(behavioral("performed_event", time_value=3, time_interval="day")) == {"in_low", "in_high"}
    assert w.timezone == "America/New_York"
    # the same events in UTC: lower 03-08 00:00 UTC, upper 03-11 23:59:59.999999 UTC
    w.timezone = "UTC"
    assert w.members(behavioral("performed_event", time_value=3, time_interval="day")) == {"in_low", "out_low"}


def test_hour_window_in_new_york_is_wall_clock_arithmetic():
    # now = Mon 2025-03-10 01:30 EDT (05:30 UTC). 24 hours back on the wall clock = Sun 03-09 01:30 EST (06:30 UTC,
    # only 23 real hours earlier), truncated to 01:00 EST = 06:00 UTC (clarification 18, 19)
    w = world(now=ny(2025, 3, 10, 1, 30), timezone="America/New_York")
    w.event("in", utc(2025, 3, 9, 6)).event("out", utc(2025, 3, 9, 6) - US)
    assert w.members(behavioral("performed_event", time_value=24, time_interval="hour")) == {"in"}


def test_exact_window_in_new_york_across_the_dst_change():
    # now = 2025-03-10 01:30 EDT; one day back = 03-09 01:30 EST = 06:30 UTC (exclusive)
    w = world(now=ny(2025, 3, 10, 1, 30), timezone="America/New_York")
    w.event("in", utc(2025, 3, 9, 6, 30) + US).event("out", utc(2025, 3, 9, 6, 30))
    leaf = behavioral("performed_event_multiple", operator="gte", operator_value=1, time_value=1,
                      time_interval="day")
    assert w.members(leaf) == {"in"}


def test_regularity_days_are_local_days_in_new_york():
    # now = 2025-03-11 10:00 EDT; 3 daily periods ending 03-10 23:59:59.999999 EDT: 03-10 (P0), 03-09 (P1, 23 hours
    # long), 03-08 (P2). 03-09 00:00 EST = 05:00 UTC and 03-09 23:59:59.999999 EDT = 03-10 03:59:59.999999 UTC are
    # both P1; 03-10 00:00 EDT = 04:00 UTC is P0.
    w = world(now=ny(2025, 3, 11, 10), timezone="America/New_York")
    w.event("one_local_day", utc(2025, 3, 9, 5)).event("one_local_day", utc(2025, 3, 10, 4) - US)
    w.event("two_local_days", utc(2025, 3, 9, 5)).event("two_local_days", utc(2025, 3, 10, 4))
    w.event("before_span", utc(2025, 3, 8, 5) - US).event("before_span", utc(2025, 3, 9, 5))
    w.event("span_start", utc(2025, 3, 8, 5)).event("span_start", utc(2025, 3, 9, 5))
    leaf = behavioral("performed_event_regularly", operator="gte", operator_value=1, time_value=1,
                      time_interval="day", min_periods=2, total_periods=3)
    assert w.members(leaf) == {"two_local_days", "span_start"}


def test_stopped_and_restarted_in_new_york():
    # now = 2025-03-11 10:00 EDT. time 7 day -> 03-04 00:00 EST (05:00 UTC); seq 2 day -> 03-09 00:00 EST (05:00 UTC)
    w = world(now=ny(2025, 3, 11, 10), timezone="America/New_York")
    w.event("stopped", utc(2025, 3, 9, 5) - US)  # 03-08 23:59:59.999999 EST: before the recent window
    w.event("not_stopped", utc(2025, 3, 5)).event("not_stopped", utc(2025, 3, 9, 5))
    stopped = behavioral("stopped_performing_event", time_value=7, time_interval="day", seq_time_value=2,
                         seq_time_interval="day")
    assert w.members(stopped) == {"stopped"}
    # restarted: G = [03-04 00:00 EST, 03-09 23:59:59.999999 EDT (03-10 03:59:59.999999 UTC)], R from 03-09 05:00 UTC
    w = world(now=ny(2025, 3, 11, 10), timezone="America/New_York")
    w.event("restarted", utc(2025, 3, 4, 5) - US).event("restarted", utc(2025, 3, 10, 4))
    w.event("overlap_day", utc(2025, 3, 1)).event("overlap_day", utc(2025, 3, 10, 4) - US)
    restarted = behavioral("restarted_performing_event", time_value=7, time_interval="day", seq_time_value=2,
                           seq_time_interval="day")
    assert w.members(restarted) == {"restarted"}


# --------------------------------------------------------------------------------------------------------------
# Negation, nesting, identity, event filters, legacy groups
# --------------------------------------------------------------------------------------------------------------


def test_negated_behaviour_inside_an_and_group():
    w = world()
    w.person("pro_active", plan="pro").event("pro_active", utc(2025, 3, 14))
    w.person("pro_idle", plan="pro")  # no events at all: not having done it is true for them
    w.person("pro_old", plan="pro").event("pro_old", utc(2025, 3, 1))
    w.person("free_idle", plan="free")
    did = behavioral("performed_event", time_value=7, time_interval="day", negation=True)
    assert w.members(person_leaf("plan", "pro"), did) == {"pro_idle", "pro_old"}


def test_negated_behaviour_between_two_behaviours():
    # conformance-like: did $new_view in 1 week AND NOT $pageview in 2 weeks
    w = world()
    w.event("new_only", utc(2025, 3, 12), event="$new_view")
    w.event("both", utc(2025, 3, 12), event="$new_view").event("both", utc(2025, 3, 13))
    w.event("old_pageview", utc(2025, 3, 12), event="$new_view").event("old_pageview", utc(2025, 2, 1))
    assert w.members(
        behavioral("performed_event", key="$new_view", time_value=1, time_interval="week"),
        behavioral("performed_event", time_value=2, time_interval="week", negation=True),
    ) == {"new_only", "old_pageview"}


def test_negated_behaviour_alone_is_a_negated_root():
    w = world().person("p")
    errors = w.errors(behavioral("performed_event", time_value=7, time_interval="day", negation=True))
    assert errors[1].message == "Top level condition cannot be negated"


def test_nested_cohorts_mix_behavioural_and_person_leaves():
    # cohort 2 = country DE OR purchased in 30 days; cohort 1 = in cohort 2 AND NOT >= 3 pageviews in 7 days
    w = world()
    w.person("de_quiet", country="DE")
    w.person("de_busy", country="DE")
    for day in (10, 11, 12):
        w.event("de_busy", utc(2025, 3, day))
    w.person("fr_buyer", country="FR").event("fr_buyer", utc(2025, 3, 1), event="purchase")
    w.person("fr_busy_buyer", country="FR").event("fr_busy_buyer", utc(2025, 3, 1), event="purchase")
    for day in (10, 11, 12):
        w.event("fr_busy_buyer", utc(2025, 3, day))
    w.person("fr_nothing", country="FR")
    inner = {"id": 2, "filters": {"properties": group("OR", person_leaf("country", "DE"),
                                                       behavioral("performed_event", key="purchase", time_value=30,
                                                                  time_interval="day"))}}
    outer = {"id": 1, "filters": {"properties": group("AND", {"type": "cohort", "key": "id", "value": 2},
                                                       behavioral("performed_event_multiple", operator="gte",
                                                                  operator_value=3, time_value=7,
                                                                  time_interval="day", negation=True))}}
    result = w.evaluate([outer, inner])
    assert result[2] == {"de_quiet", "de_busy", "fr_buyer", "fr_busy_buyer"}
    assert result[1] == {"de_quiet", "fr_buyer"}


def test_several_distinct_ids_are_one_person_and_unknown_ids_nobody():
    w = world()
    w.person("merged", "anon-1", "user-1", "anon-2")
    w.event("anon-1", utc(2025, 3, 10)).event("user-1", utc(2025, 3, 11)).event("anon-2", utc(2025, 3, 12))
    w.event("anon-1", utc(2025, 3, 12, 1), event="purchase")
    w.person("single", "s-1").event("s-1", utc(2025, 3, 10)).event("s-1", utc(2025, 3, 11))
    for day in (10, 11, 12):
        w.event("ghost-1", utc(2025, 3, day))  # a distinct id no person has
    multiple = behavioral("performed_event_multiple", operator="gte", operator_value=3, time_value=7,
                          time_interval="day")
    assert w.members(multiple) == {"merged"}
    # a sequence may start on one distinct id and finish on another
    sequence = behavioral("performed_event_sequence", time_value=7, time_interval="day", seq_event="purchase",
                          seq_event_type="events", seq_time_value=1, seq_time_interval="day")
    assert w.members(sequence) == {"merged"}
    result = w.evaluate([{"id": 1, "filters": {"properties": group("AND", multiple)}}])
    assert "ghost-1" not in result[1]


def test_event_filters_use_the_operator_table_on_event_properties():
    w = world(now=NOW)
    w.property_definitions = {"amount": "Numeric"}
    w.event("big", utc(2025, 3, 10), event="purchase", amount=250, currency="EUR")
    w.event("small", utc(2025, 3, 10), event="purchase", amount="40", currency="EUR")
    w.event("usd", utc(2025, 3, 10), event="purchase", amount=500, currency="USD")
    w.event("no_amount", utc(2025, 3, 10), event="purchase", currency="EUR")

    def leaf(filters: Any) -> dict[str, Any]:
        return behavioral("performed_event", key="purchase", time_value=7, time_interval="day",
                          event_filters=filters)

    def ev(key: str, operator: str, value: Any = None) -> dict[str, Any]:
        return {"type": "event", "key": key, "operator": operator, "value": value}

    assert w.members(leaf([ev("amount", "gt", 100)])) == {"big", "usd"}
    assert w.members(leaf([ev("amount", "gt", 100), ev("currency", "exact", "EUR")])) == {"big"}
    assert w.members(leaf([ev("amount", "is_not_set")])) == {"no_amount"}
    assert w.members(leaf([ev("currency", "is_not", "EUR")])) == {"usd"}
    assert w.members(leaf([ev("currency", "icontains", "us")])) == {"usd"}
    assert w.members(leaf([ev("currency", "regex", "^E")])) == {"big", "small", "no_amount"}
    assert w.members(leaf([ev("amount", "between", [30, 300])])) == {"big", "small"}
    either = {"type": "OR", "values": [ev("currency", "exact", "USD"), ev("amount", "lt", 50)]}
    assert w.members(leaf(either)) == {"usd", "small"}
    nested = {"type": "AND", "values": [ev("currency", "exact", "EUR"),
                                        {"type": "OR", "values": [ev("amount", "gte", 250),
                                                                  ev("amount", "is_not_set")]}]}
    assert w.members(leaf(nested)) == {"big", "no_amount"}


def test_event_property_types_are_inferred_from_the_events():
    # undeclared: JSON numbers make the key Numeric, so 9 < 10 numerically (as a string "9" > "10")
    w = world()
    w.event("nine", utc(2025, 3, 10), count=9).event("ten", utc(2025, 3, 10), count=10)
    leaf = behavioral("performed_event", time_value=7, time_interval="day",
                      event_filters=[{"type": "event", "key": "count", "operator": "lt", "value": 10}])
    assert w.members(leaf) == {"nine"}


@pytest.mark.parametrize(
    ("event_filter", "message"),
    [
        ({"type": "element", "key": "selector", "operator": "exact", "value": "button"}, "element"),
        ({"type": "hogql", "key": "properties.x = 1"}, "hogql"),
        ({"type": "event", "key": "x", "operator": "no_such_operator", "value": 1}, "no_such_operator"),
    ],
)
def test_unsupported_event_filters_fail_their_cohort_clearly(event_filter, message):
    w = world().person("p")
    errors = w.errors(behavioral("performed_event", time_value=7, time_interval="day",
                                 event_filters=[event_filter]))
    assert message in errors[1].message


def test_an_unsupported_leaf_fails_only_its_own_cohort():
    w = world()
    w.event("p", utc(2025, 3, 10))
    persons, ids, events = w.frames()
    bad = behavioral("performed_event", time_value=7, time_interval="day",
                     event_filters=[{"type": "hogql", "key": "1 = 1"}])
    good = behavioral("performed_event", time_value=7, time_interval="day")
    result = evaluate_cohorts_detailed(
        [{"id": 1, "filters": {"properties": group("AND", bad)}},
         {"id": 2, "filters": {"properties": group("AND", good)}}],
        persons, ids, events, now=NOW)
    assert set(result.errors) == {1}
    assert result.memberships["person_id"].to_list() == ["p"]


def test_legacy_event_and_action_groups():
    # spec 6.5: days (default 365), count > 0 -> performed_event_multiple with count_operator, else performed_event
    w = world()
    w.actions = [{"id": 7, "name": "bought", "steps": [{"event": "purchase"}]}]
    w.event("two_recent", utc(2025, 3, 14)).event("two_recent", utc(2025, 3, 15, 10))
    w.event("one_recent", utc(2025, 3, 14))
    w.event("old", utc(2024, 6, 1))
    w.event("buyer", utc(2025, 3, 14, 15), event="purchase")
    cohorts = [
        {"id": 1, "groups": [{"event_id": "$pageview", "days": 3, "count": 2, "count_operator": "gte"}]},
        {"id": 2, "groups": [{"event_id": "$pageview"}]},  # 365 days, performed_event
        {"id": 3, "groups": [{"action_id": 7, "days": 1}]},
        {"id": 4, "groups": [{"action_id": 8, "days": 30}]},  # unknown action: nobody
        {"id": 5, "groups": [{"event_id": "$pageview", "days": 3, "count": 1, "count_operator": "lte"},
                             {"properties": [{"key": "vip", "value": True}]}]},
    ]
    w.person("vip", vip=True)
    result = w.evaluate(cohorts)
    assert result[1] == {"two_recent"}
    assert result[2] == {"two_recent", "one_recent", "old"}
    assert result[3] == {"buyer"}
    assert result[4] == set()
    assert result[5] == {"one_recent", "vip"}


def test_cohorts_without_events_frame_have_no_behavioural_members():
    w = world().person("p", plan="pro")
    persons, ids, _ = w.frames()
    result = evaluate_cohorts(
        [{"id": 1, "filters": {"properties": group("OR", person_leaf("plan", "pro"),
                                                    behavioral("performed_event", time_value=7,
                                                               time_interval="day"))}},
         {"id": 2, "filters": {"properties": group("AND", behavioral("performed_event", time_value=7,
                                                                     time_interval="day"))}}],
        persons, ids, None, now=NOW)
    assert result.rows() == [(1, "p")]


def test_a_window_beyond_the_calendar_fails_only_its_cohort():
    w = world().person("p")
    errors = w.errors(behavioral("performed_event", time_value=10_000, time_interval="year"))
    assert "performed_event" in errors[1].message


def test_stopped_and_restarted_hour_windows_start_at_the_hour():
    # clarification 19. time 48 hour -> 03-13 14:00; seq 20 hour -> 03-14 18:00 (from 03-14 18:30)
    w = world()
    w.event("stopped", utc(2025, 3, 14, 18) - US)
    w.event("still_going", utc(2025, 3, 13, 15)).event("still_going", utc(2025, 3, 14, 18))
    w.event("too_old", utc(2025, 3, 13, 14) - US)
    stopped = behavioral("stopped_performing_event", time_value=48, time_interval="hour", seq_time_value=20,
                         seq_time_interval="hour")
    assert w.members(stopped) == {"stopped"}
    # restarted: R = [03-14 18:00, end 03-15]; G = [03-13 14:00, end of 03-14] (the day of now - 20 h)
    w = world()
    w.event("restarted", utc(2025, 3, 13, 14) - US).event("restarted", utc(2025, 3, 15, 1))
    w.event("overlap", utc(2025, 3, 13, 14) - US).event("overlap", utc(2025, 3, 14, 19))
    w.event("in_gap", utc(2025, 3, 13, 14)).event("in_gap", utc(2025, 3, 15, 1))
    w.event("first_time", utc(2025, 3, 15, 1))
    restarted = behavioral("restarted_performing_event", time_value=48, time_interval="hour", seq_time_value=20,
                           seq_time_interval="hour")
    assert w.members(restarted) == {"restarted"}


def test_explicit_bounds_for_first_time_and_sequence():
    # window [2025-03-01 00:00, 2025-03-05 23:59:59.999999]
    bounds = {"explicit_datetime": "2025-03-01", "explicit_datetime_to": "2025-03-05T12:00:00"}
    w = world()
    w.event("first_in", utc(2025, 3, 1)).event("first_before", utc(2025, 3, 1) - US)
    w.event("first_before", utc(2025, 3, 2)).event("first_after", utc(2025, 3, 6))
    w.event("first_at_end", utc(2025, 3, 6) - US)
    assert w.members(behavioral("performed_event_first_time", **bounds)) == {"first_in", "first_at_end"}
    w = world()
    w.event("inside", utc(2025, 3, 5, 20)).event("inside", utc(2025, 3, 6) - US, event="purchase")
    w.event("b_outside", utc(2025, 3, 5, 20)).event("b_outside", utc(2025, 3, 6), event="purchase")
    sequence = behavioral("performed_event_sequence", seq_event="purchase", seq_event_type="events",
                          seq_time_value=1, seq_time_interval="day", **bounds)
    assert w.members(sequence) == {"inside"}


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "America/Santiago", "Asia/Kolkata", "UTC"])
@pytest.mark.parametrize(("unit", "step", "total"), [("day", 1, 40), ("day", 3, 20), ("week", 1, 30), ("week", 2, 8),
                                                      ("month", 1, 14), ("hour", 5, 60), ("minute", 90, 50)])
def test_regularity_period_of_every_instant_is_its_local_calendar_age(zone, unit, step, total):
    """The period index (a binary search over the span's local days) against a per-row reference: the local date
    through zoneinfo and ClickHouse's ``age``, every few hours across a year with DST changes (Santiago's at
    midnight), and just before and after each local midnight. Outside the span: null."""
    from cohort_pipeline.engine.behaviors.windows import Regularity
    from cohort_pipeline.engine.operators import EvaluationContext
    from cohort_pipeline.model import parse_cohort

    now = datetime(2026, 11, 1, 15, 30, tzinfo=UTC)
    leaf = behavioral("performed_event_regularly", operator="gte", operator_value=1, time_value=step,
                      time_interval=unit, min_periods=1, total_periods=total)
    parsed = next(iter(parse_cohort({"id": 1, "filters": {"properties": group("AND", leaf)}}, internal=True).leaves()))
    span = Regularity.of(parsed, EvaluationContext(now=now, timezone=zone))
    tz = ZoneInfo(zone)
    instants = [span.window.lower + timedelta(minutes=97 * i) for i in range(6000)]
    midnights = [datetime.combine(span.window.lower.astimezone(tz).date() + timedelta(days=d), datetime.min.time(),
                                  tzinfo=tz).astimezone(UTC) for d in range(400)]
    instants += [m + delta for m in midnights for delta in (timedelta(microseconds=-1), timedelta(0))]
    instants += [span.window.lower - timedelta(microseconds=1), span.window.upper, span.window.upper
                 + timedelta(microseconds=1)]
    end = span.window.upper.astimezone(tz)

    def expected(ts: datetime) -> int | None:
        if not span.window.lower <= ts <= span.window.upper:
            return None
        if unit in ("minute", "hour"):
            elapsed = (span.window.upper - ts) // timedelta(minutes=1 if unit == "minute" else 60)
            return elapsed // step
        local = ts.astimezone(tz).date()
        if unit == "month":
            age = (end.year * 12 + end.month) - (local.year * 12 + local.month) - (local.day > end.day)
        else:
            age = (end.date() - local).days // (7 if unit == "week" else 1)
        return age // step

    frame = pl.DataFrame({"timestamp": instants}, schema={"timestamp": pl.Datetime("us", "UTC")})
    got = frame.select(span.period_index(pl.col("timestamp"))).to_series().to_list()
    assert got == [expected(ts) for ts in instants]
