"""The benchmark cohort sets: each cohort as PostHog JSON (for our engine) and as hand-written DuckDB SQL.

Every cohort *shape* below is one function that writes both forms side by side, so the two can be read
against each other and against the spec (shared/specs/posthog_cohorts.md 4.3, 5.2, 5.3, 5.6, 6.2):

* the PostHog ``filters`` document, evaluated by ``cohort_pipeline.evaluate_cohorts``;
* one DuckDB query returning the cohort's ``person_id`` column, written the way a warehouse user (or PostHog's
  per-cohort HogQL) would: events joined to ``person_distinct_ids``, the window bounds computed in SQL from
  ``now`` on the wall clock of the project timezone, properties read with ``json_extract_string``, negation
  as set difference. A cohort referencing another reads that cohort's stored result table ``cohort_<id>``
  (PostHog reads the referenced cohort's stored membership, spec 6.1); the runner computes cohorts in id order
  and every reference points to a lower id.

Windows in SQL (spec 5.2, clarifications 18-19): all calendar arithmetic happens on the *local* wall clock
(``now AT TIME ZONE tz`` is a naive local timestamp; ``- INTERVAL`` on it is calendar arithmetic; the result is
turned back into an instant with ``AT TIME ZONE tz``). Sequence gaps are fixed seconds (months 30 d, years 365 d).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 10, 31, 14, 30, tzinfo=UTC)
"""Fixed clock: 15:30 on Saturday 31 Oct 2026 in Berlin. The generated events end at 2026-11-01 00:00 UTC, so
events later "today" (after 23:00 UTC, Berlin's midnight) fall outside every day-aligned window, and 7-day+
windows cross the end of summer time (25 Oct)."""

TIMEZONE = "Europe/Berlin"

PROPERTY_DEFINITIONS = {
    # persons
    "email": "String", "name": "String", "plan": "String", "age": "Numeric", "score": "Numeric",
    "country": "String", "app_version": "String", "signup_date": "String",
    # events
    "$current_url": "String", "$browser": "String", "feature": "String", "amount": "Numeric",
}
"""What a PostHog project's property definitions say about the keys the cohorts read (passed to our engine
unless ``--infer-types``; the SQL author knows the same types). ``score`` holds JSON numbers *and* numeric
strings; as Numeric both compare numerically (decision 2)."""

_UNIT_SQL = {"hour": "HOUR", "day": "DAY", "week": "WEEK", "month": "MONTH", "year": "YEAR"}
_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800, "month": 2_592_000, "year": 31_536_000}
EVENTS = "events e JOIN person_distinct_ids d ON d.distinct_id = e.distinct_id"


# ---- SQL building blocks: time ----------------------------------------------------------------------------------


class Clock:
    """SQL expressions for ``now`` and the windows of spec 5.2, in the project timezone."""

    def __init__(self, now: datetime = NOW, timezone: str = TIMEZONE) -> None:
        self.tz = timezone
        self.now = f"TIMESTAMPTZ '{now.astimezone(UTC).isoformat()}'"
        self.local_now = f"({self.now} AT TIME ZONE '{timezone}')"  # naive wall-clock time

    def instant(self, local: str) -> str:
        """A naive local timestamp expression as an instant (TIMESTAMPTZ)."""
        return f"(({local}) AT TIME ZONE '{self.tz}')"

    def back(self, n: int, unit: str) -> str:
        """``now - n unit`` on the local wall clock (naive local)."""
        return f"({self.local_now} - INTERVAL {n} {_UNIT_SQL[unit]})"

    def end_of_local_day(self, local: str) -> str:
        return self.instant(f"date_trunc('day', {local}) + INTERVAL 1 DAY - INTERVAL 1 MICROSECOND")

    def wd(self, n: int, unit: str) -> tuple[str, str]:
        """Day-aligned window, inclusive: start of the local day (hour for ``hour``) of now - n unit .. end of today."""
        truncate = "hour" if unit == "hour" else "day"
        return self.instant(f"date_trunc('{truncate}', {self.back(n, unit)})"), self.end_of_local_day(self.local_now)

    def we(self, n: int, unit: str) -> tuple[str, str]:
        """Exact window, exclusive: now - n unit .. now + 5 s."""
        return self.instant(self.back(n, unit)), f"({self.now} + INTERVAL 5 SECOND)"

    def local_date(self, ts: str) -> str:
        return f"(({ts}) AT TIME ZONE '{self.tz}')::DATE"


CLOCK = Clock()


# ---- SQL building blocks: properties ----------------------------------------------------------------------------


def _lit(value: Any) -> str:
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def prop(column: str, key: str) -> str:
    return f"json_extract_string({column}, '$.\"{key}\"')"


def predicate(column: str, key: str, operator: str, value: Any = None, numeric: bool = False) -> str:
    """One property leaf of spec 4.3 over a JSON column, for the operators the benchmark uses."""
    v = prop(column, key)
    if numeric:
        v = f"TRY_CAST({v} AS DOUBLE)"
    if operator == "exact":
        if isinstance(value, list):
            return f"{v} IN ({', '.join(_lit(x) for x in value)})"
        return f"{v} = {_lit(value)}"
    if operator == "in":
        return f"{v} IN ({', '.join(_lit(x) for x in value)})"
    if operator == "icontains":
        return f"{v} ILIKE {_lit('%' + value + '%')}"
    if operator == "is_set":
        return f"{v} IS NOT NULL"
    comparison = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[operator]
    return f"{v} {comparison} {_lit(value)}"


def numeric(key: str) -> bool:
    return PROPERTY_DEFINITIONS.get(key) == "Numeric"


def person_leaf(key: str, operator: str, value: Any = None, negation: bool = False) -> dict[str, Any]:
    leaf = {"type": "person", "key": key, "operator": operator, "value": value}
    if operator == "is_set":
        leaf["value"] = "is_set"
    if negation:
        leaf["negation"] = True
    return leaf


def event_filter(key: str, operator: str, value: Any) -> dict[str, Any]:
    return {"type": "event", "key": key, "operator": operator, "value": value}


def filters_sql(filters: list[dict[str, Any]]) -> str:
    return " AND ".join(predicate("e.properties", f["key"], f["operator"], f["value"], numeric(f["key"]))
                        for f in filters) or "TRUE"


def behavioral(value: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"type": "behavioral", "value": value, "key": key, "event_type": "events", **extra}


def group(kind: str, *values: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "values": list(values)}


# ---- the cohort object ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchCohort:
    id: int
    name: str
    properties: dict[str, Any]  # the root group of ``filters.properties``
    sql: str  # returns one column ``person_id``
    shape: str
    depends_on: tuple[int, ...] = field(default=())

    def posthog(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "filters": {"properties": self.properties}}


def persons_where(condition: str) -> str:
    return f"SELECT id AS person_id FROM persons WHERE {condition}"


def persons_in(set_sql: str) -> str:
    """Persons (deleted ones are absent from ``persons``) whose id is in a set of person ids."""
    return f"SELECT id AS person_id FROM persons WHERE id IN ({set_sql})"


# ---- shapes: person properties ----------------------------------------------------------------------------------


def person_exact_icontains(cid: int, plan: str, substring: str) -> BenchCohort:
    props = group("AND", person_leaf("plan", "exact", plan), person_leaf("email", "icontains", substring))
    sql = persons_where(f"{predicate('properties', 'plan', 'exact', plan)} "
                        f"AND {predicate('properties', 'email', 'icontains', substring)}")
    return BenchCohort(cid, f"plan = {plan}, email ~ {substring}", props, sql, "person exact+icontains")


def person_numeric(cid: int, key: str, operator: str, value: float) -> BenchCohort:
    props = group("AND", person_leaf(key, operator, value))
    sql = persons_where(predicate("properties", key, operator, value, numeric=True))
    return BenchCohort(cid, f"{key} {operator} {value}", props, sql, "person numeric")


def person_is_set_in(cid: int, set_key: str, in_key: str, values: list[str]) -> BenchCohort:
    props = group("AND", person_leaf(set_key, "is_set"), person_leaf(in_key, "in", values))
    sql = persons_where(f"{predicate('properties', set_key, 'is_set')} AND {predicate('properties', in_key, 'in', values)}")
    return BenchCohort(cid, f"{set_key} is set, {in_key} in {len(values)}", props, sql, "person is_set+in")


# ---- shapes: behaviours (spec 5.3) ------------------------------------------------------------------------------


def performed_event_leaf_sql(event: str, n: int, unit: str, filters: list[dict[str, Any]]) -> str:
    lo, hi = CLOCK.wd(n, unit)
    return (f"SELECT DISTINCT d.person_id FROM {EVENTS} WHERE e.event = {_lit(event)} "
            f"AND e.timestamp BETWEEN {lo} AND {hi} AND {filters_sql(filters)}")


def performed_event(cid: int, event: str, n: int, unit: str, filters: list[dict[str, Any]] | None = None
                    ) -> BenchCohort:
    filters = filters or []
    leaf = behavioral("performed_event", event, time_value=n, time_interval=unit)
    if filters:
        leaf["event_filters"] = filters
    sql = persons_in(performed_event_leaf_sql(event, n, unit, filters))
    return BenchCohort(cid, f"{event} in {n} {unit}" + (" (filtered)" if filters else ""), group("AND", leaf), sql,
                       "performed_event")


def performed_event_multiple(cid: int, event: str, operator: str, value: int, n: int, unit: str,
                             filters: list[dict[str, Any]] | None = None) -> BenchCohort:
    filters = filters or []
    leaf = behavioral("performed_event_multiple", event, operator=operator, operator_value=value, time_value=n,
                      time_interval=unit)
    if filters:
        leaf["event_filters"] = filters
    lo, hi = CLOCK.we(n, unit)
    comparison = {"gte": ">=", "lte": "<=", "gt": ">", "lt": "<", "exact": "="}[operator]
    # grouping over the person's matching events: a person without any is never a member (count > 0)
    sql = persons_in(f"SELECT d.person_id FROM {EVENTS} WHERE e.event = {_lit(event)} AND e.timestamp > {lo} "
                     f"AND e.timestamp < {hi} AND {filters_sql(filters)} GROUP BY d.person_id "
                     f"HAVING count(*) {comparison} {value}")
    return BenchCohort(cid, f"{event} {operator} {value}x in {n} {unit}", group("AND", leaf), sql,
                       "performed_event_multiple")


def first_time(cid: int, event: str, n: int, unit: str, filters: list[dict[str, Any]] | None = None) -> BenchCohort:
    filters = filters or []
    leaf = behavioral("performed_event_first_time", event, time_value=n, time_interval=unit)
    if filters:
        leaf["event_filters"] = filters
    lo, hi = CLOCK.wd(n, unit)
    having = f"min(e.timestamp) BETWEEN {lo} AND {hi}"
    if filters:  # the earliest-ever occurrence must itself pass the filters
        having += f" AND min(e.timestamp) = min(e.timestamp) FILTER (WHERE {filters_sql(filters)})"
    sql = persons_in(f"SELECT d.person_id FROM {EVENTS} WHERE e.event = {_lit(event)} AND e.timestamp <= {hi} "
                     f"GROUP BY d.person_id HAVING {having}")
    return BenchCohort(cid, f"first {event} in {n} {unit}" + (" (filtered)" if filters else ""), group("AND", leaf),
                       sql, "performed_event_first_time")


def sequence(cid: int, first: str, second: str, n: int, unit: str, seq_n: int, seq_unit: str) -> BenchCohort:
    assert first != second, "the SQL relies on A and B being different events"
    leaf = behavioral("performed_event_sequence", first, time_value=n, time_interval=unit, seq_event=second,
                      seq_event_type="events", seq_time_value=seq_n, seq_time_interval=seq_unit)
    lo, hi = CLOCK.wd(n, unit)
    within_us = seq_n * _SECONDS[seq_unit] * 1_000_000
    # for every A, the nearest B at or after it (ASOF); converts when that B is within the gap (fixed seconds)
    sql = persons_in(
        f"WITH a AS (SELECT d.person_id, e.timestamp AS ts FROM {EVENTS} WHERE e.event = {_lit(first)} "
        f"AND e.timestamp BETWEEN {lo} AND {hi}), "
        f"b AS (SELECT d.person_id, e.timestamp AS ts FROM {EVENTS} WHERE e.event = {_lit(second)} "
        f"AND e.timestamp BETWEEN {lo} AND {hi}) "
        f"SELECT DISTINCT a.person_id FROM a ASOF JOIN b ON a.person_id = b.person_id AND b.ts >= a.ts "
        f"WHERE epoch_us(b.ts) - epoch_us(a.ts) <= {within_us}")
    return BenchCohort(cid, f"{first} then {second} within {seq_n} {seq_unit} ({n} {unit})", group("AND", leaf), sql,
                       "performed_event_sequence")


def regularly(cid: int, event: str, operator: str, value: int, step: int, unit: str, total: int, minimum: int
              ) -> BenchCohort:
    leaf = behavioral("performed_event_regularly", event, operator=operator, operator_value=value, time_value=step,
                      time_interval=unit, total_periods=total, min_periods=minimum)
    if unit == "year":
        unit, step = "month", step * 12
    # span: start of the interval bucket of Wd(total x step, unit)'s lower bound .. 23:59:59.999999 yesterday
    lower = f"date_trunc('day', {CLOCK.back(total * step, unit)})"
    if unit == "week":  # weeks start on Sunday (PostHog's default week_start_day); dayofweek: Sunday = 0
        lower = f"({lower} - INTERVAL (dayofweek({lower})) DAY)"
    elif unit == "month":
        lower = f"date_trunc('month', {lower})"
    yesterday = f"(date_trunc('day', {CLOCK.local_now}) - INTERVAL 1 DAY)"
    end_date = f"{yesterday}::DATE"
    day = "ev.day"
    age = {  # whole elapsed units from the event to the end of yesterday (ClickHouse age())
        "day": f"date_diff('day', {day}, {end_date})",
        "week": f"(date_diff('day', {day}, {end_date}) // 7)",
        "month": f"((year({end_date}) * 12 + month({end_date})) - (year({day}) * 12 + month({day})) "
                 f"- CASE WHEN day({day}) > day({end_date}) THEN 1 ELSE 0 END)",
    }[unit]
    low, high = {"gte": (value, None), "lte": (1, value), "exact": (value, value)}[operator]
    qualifies = f"n >= {low}" + (f" AND n <= {high}" if high is not None else "")
    sql = persons_in(
        f"SELECT person_id FROM ("
        f"SELECT ev.person_id, {age} // {step} AS period, count(*) AS n FROM ("
        f"SELECT d.person_id, {CLOCK.local_date('e.timestamp')} AS day FROM {EVENTS} "
        f"WHERE e.event = {_lit(event)} AND e.timestamp BETWEEN {CLOCK.instant(lower)} "
        f"AND {CLOCK.end_of_local_day(yesterday)}) ev GROUP BY 1, 2) "
        f"WHERE {qualifies} GROUP BY person_id HAVING count(*) >= {minimum}")
    return BenchCohort(cid, f"{event} {operator} {value} per {step} {unit}, {minimum} of {total}", group("AND", leaf),
                       sql, "performed_event_regularly")


def stopped(cid: int, event: str, n: int, unit: str, seq_n: int, seq_unit: str,
            filters: list[dict[str, Any]] | None = None) -> BenchCohort:
    filters = filters or []
    leaf = behavioral("stopped_performing_event", event, time_value=n, time_interval=unit, seq_time_value=seq_n,
                      seq_time_interval=seq_unit)
    if filters:
        leaf["event_filters"] = filters
    # did it in Wd(time), and not in Wd(seq): a set difference, filters on both sides
    sql = persons_in(f"{performed_event_leaf_sql(event, n, unit, filters)} "
                     f"EXCEPT {performed_event_leaf_sql(event, seq_n, seq_unit, filters)}")
    return BenchCohort(cid, f"stopped {event} ({seq_n} {seq_unit} of {n} {unit})", group("AND", leaf), sql,
                       "stopped_performing_event")


def restarted(cid: int, event: str, n: int, unit: str, seq_n: int, seq_unit: str) -> BenchCohort:
    leaf = behavioral("restarted_performing_event", event, time_value=n, time_interval=unit, seq_time_value=seq_n,
                      seq_time_interval=seq_unit)
    recent_lo, hi = CLOCK.wd(seq_n, seq_unit)
    gap_lo, _ = CLOCK.wd(n, unit)
    gap_hi = CLOCK.end_of_local_day(CLOCK.back(seq_n, seq_unit))
    # in R = [recent_lo, hi]; none in G = [gap_lo, end of the day of now - seq]; first-ever one before R
    sql = persons_in(
        f"SELECT d.person_id FROM {EVENTS} WHERE e.event = {_lit(event)} AND e.timestamp <= {hi} "
        f"GROUP BY d.person_id HAVING bool_or(e.timestamp >= {recent_lo}) "
        f"AND NOT bool_or(e.timestamp BETWEEN {gap_lo} AND {gap_hi}) AND min(e.timestamp) < {recent_lo}")
    return BenchCohort(cid, f"restarted {event} ({seq_n} {seq_unit} of {n} {unit})", group("AND", leaf), sql,
                       "restarted_performing_event")


# ---- shapes: cohort references and negation (spec 6.1, 6.2) ------------------------------------------------------


def cohort_ref(target: int, negation: bool = False) -> dict[str, Any]:
    leaf: dict[str, Any] = {"type": "cohort", "key": "id", "value": target}
    if negation:
        leaf["negation"] = True
    return leaf


def in_but_not(cid: int, included: int, excluded: int) -> BenchCohort:
    props = group("AND", cohort_ref(included), cohort_ref(excluded, negation=True))
    sql = f"SELECT person_id FROM cohort_{included} EXCEPT SELECT person_id FROM cohort_{excluded}"
    return BenchCohort(cid, f"in {included}, not in {excluded}", props, sql, "nested + negation", (included, excluded))


def either_of(cid: int, first: int, second: int) -> BenchCohort:
    props = group("OR", cohort_ref(first), cohort_ref(second))
    sql = f"SELECT person_id FROM cohort_{first} UNION SELECT person_id FROM cohort_{second}"
    return BenchCohort(cid, f"in {first} or {second}", props, sql, "nested OR", (first, second))


def mixed_negation(cid: int, plan: str, not_event: str, n: int, ref: int, event: str, m: int, not_ref: int
                   ) -> BenchCohort:
    """OR of two ANDs, each with a negated leaf: person leaf AND NOT performed_event, or in cohort ``ref`` AND
    performed ``event`` AND NOT in cohort ``not_ref``."""
    props = group(
        "OR",
        group("AND", person_leaf("plan", "exact", plan),
              {**behavioral("performed_event", not_event, time_value=n, time_interval="day"), "negation": True}),
        group("AND", cohort_ref(ref), behavioral("performed_event", event, time_value=m, time_interval="day"),
              cohort_ref(not_ref, negation=True)),
    )
    left = (f"(SELECT id AS person_id FROM persons WHERE {predicate('properties', 'plan', 'exact', plan)} "
            f"EXCEPT {performed_event_leaf_sql(not_event, n, 'day', [])})")
    right = (f"((SELECT person_id FROM cohort_{ref} INTERSECT {performed_event_leaf_sql(event, m, 'day', [])}) "
             f"EXCEPT SELECT person_id FROM cohort_{not_ref})")
    sql = persons_in(f"SELECT person_id FROM {left} UNION SELECT person_id FROM {right}")
    return BenchCohort(cid, f"{plan} without {not_event} | in {ref} & {event} & not {not_ref}", props, sql,
                       "nested groups + negation", (ref, not_ref))


# ---- the sets ----------------------------------------------------------------------------------------------------

PRICING_ON_CHROME = [event_filter("$current_url", "icontains", "/pricing"), event_filter("$browser", "exact", "Chrome")]


def twelve() -> list[BenchCohort]:
    """The 12-cohort benchmark set: every person operator and behaviour of the issue, and nested negation."""
    return [
        person_exact_icontains(1, "pro", "GMAIL.com"),
        person_numeric(2, "score", "gt", 50),
        person_is_set_in(3, "email", "country", ["US", "GB", "DE", "FR"]),
        performed_event(4, "$pageview", 7, "day", PRICING_ON_CHROME),
        performed_event_multiple(5, "purchase", "gte", 3, 30, "day"),
        first_time(6, "feature_used", 14, "day", [event_filter("feature", "exact", "cohorts")]),
        sequence(7, "$pageview", "purchase", 30, "day", 3, "day"),
        regularly(8, "feature_used", "gte", 2, 1, "week", 4, 3),
        stopped(9, "feature_used", 30, "day", 7, "day", [event_filter("feature", "exact", "exports")]),
        restarted(10, "purchase", 30, "day", 7, "day"),
        in_but_not(11, 4, 2),
        mixed_negation(12, "free", "purchase", 30, 3, "signed_up", 14, 10),
    ]


_EVENTS = ["$pageview", "$autocapture", "feature_used", "purchase", "$pageleave", "subscription_cancelled",
           "$identify", "signed_up"]
_WINDOWS = [(1, "day"), (24, "hour"), (7, "day"), (2, "week"), (1, "month"), (60, "day"), (14, "day"), (30, "day")]
_FILTER_SETS: list[list[dict[str, Any]]] = [
    [],
    [event_filter("$browser", "exact", "Safari")],
    [event_filter("$current_url", "icontains", "/docs")],
    [event_filter("$browser", "exact", ["Firefox", "Opera"])],
]


def hundred() -> list[BenchCohort]:
    """The 100-cohort set: the 12 above, then 88 variations of the same shapes (ids 13-100)."""
    cohorts = twelve()
    next_id = itertools.count(13)

    def add(make: Callable[..., BenchCohort], *args: Any) -> None:
        cohorts.append(make(next(next_id), *args))

    for plan, substring in itertools.islice(itertools.product(["free", "pro", "enterprise"],
                                                              ["gmail", "acme.io", "OUTLOOK", "@hooli", "_"]), 8):
        add(person_exact_icontains, plan, substring)
    for key, operator, value in [("score", "gt", 10), ("score", "gte", 25.5), ("score", "lt", 75), ("age", "gt", 40),
                                 ("age", "lte", 30), ("score", "gt", 99), ("age", "gte", 65), ("score", "lte", 0)]:
        add(person_numeric, key, operator, value)
    for set_key, values in [("name", ["US"]), ("age", ["GB", "DE"]), ("app_version", ["JP", "AU", "NL"]),
                            ("score", ["US", "CA", "MX"]), ("email", ["IN", "BR"]), ("name", ["SE", "PL", "ES"])]:
        add(person_is_set_in, set_key, "country", values)
    for index in range(12):
        event = _EVENTS[index % 6]
        n, unit = _WINDOWS[index % len(_WINDOWS)]
        filters = _FILTER_SETS[index % len(_FILTER_SETS)]
        if event == "purchase" and index % 2:
            filters = [event_filter("amount", "gt", 100)]
        if event == "feature_used" and (not filters or filters[0]["key"] == "$current_url"):
            filters = [event_filter("feature", "in", ["dashboards", "experiments"])]
        add(performed_event, event, n, unit, filters)
    for index, (operator, value) in enumerate([("gte", 1), ("lte", 2), ("exact", 3), ("lt", 3), ("lte", 10),
                                               ("gte", 5), ("exact", 1), ("lte", 1), ("gte", 20), ("gt", 2)]):
        event = ["$pageview", "purchase", "feature_used", "$autocapture", "subscription_cancelled"][index % 5]
        n, unit = [(7, "day"), (30, "day"), (2, "week"), (1, "month"), (24, "hour")][index % 5]
        filters = [event_filter("$browser", "exact", "Chrome")] if index % 3 == 0 else []
        add(performed_event_multiple, event, operator, value, n, unit, filters)
    for event, n, unit, filters in [
        ("signed_up", 30, "day", []), ("purchase", 14, "day", [event_filter("plan", "exact", "pro")]),
        ("feature_used", 1, "week", [event_filter("feature", "exact", "exports")]), ("subscription_cancelled", 60, "day", []),
        ("$identify", 7, "day", []), ("purchase", 1, "month", [event_filter("amount", "gt", 50)]),
        ("feature_used", 30, "day", []), ("$pageleave", 2, "day", []),
    ]:
        add(first_time, event, n, unit, filters)
    for first, second, n, unit, seq_n, seq_unit in [
        ("signed_up", "purchase", 30, "day", 3, "day"), ("$pageview", "feature_used", 7, "day", 1, "hour"),
        ("feature_used", "subscription_cancelled", 60, "day", 1, "week"), ("$identify", "feature_used", 14, "day", 12, "hour"),
        ("purchase", "subscription_cancelled", 1, "month", 2, "week"), ("$pageview", "purchase", 7, "day", 1, "day"),
        ("$autocapture", "$pageleave", 2, "day", 30, "minute"), ("signed_up", "feature_used", 90, "day", 1, "day"),
    ]:
        add(sequence, first, second, n, unit, seq_n, seq_unit)
    for event, operator, value, step, unit, total, minimum in [
        ("$pageview", "gte", 1, 1, "day", 7, 5), ("purchase", "gte", 1, 1, "week", 8, 2),
        ("feature_used", "lte", 3, 2, "day", 4, 2), ("$autocapture", "exact", 2, 1, "day", 5, 3),
        ("feature_used", "gte", 1, 1, "month", 3, 3), ("$pageview", "gte", 10, 1, "week", 4, 4),
        ("purchase", "exact", 1, 1, "month", 2, 1), ("$pageleave", "lte", 1, 3, "day", 5, 3),
    ]:
        add(regularly, event, operator, value, step, unit, total, minimum)
    for event, n, unit, seq_n, seq_unit, filters in [
        ("purchase", 60, "day", 14, "day", []), ("$pageview", 30, "day", 7, "day", [event_filter("$browser", "exact", "Firefox")]),
        ("feature_used", 2, "month", 1, "month", []), ("subscription_cancelled", 60, "day", 30, "day", []),
        ("$autocapture", 14, "day", 3, "day", []), ("feature_used", 4, "week", 1, "week", [event_filter("feature", "exact", "cohorts")]),
    ]:
        add(stopped, event, n, unit, seq_n, seq_unit, filters)
    for event, n, unit, seq_n, seq_unit in [
        ("feature_used", 30, "day", 7, "day"), ("$pageview", 14, "day", 3, "day"), ("purchase", 60, "day", 14, "day"),
        ("subscription_cancelled", 30, "day", 7, "day"), ("$autocapture", 7, "day", 1, "day"), ("purchase", 2, "month", 2, "week"),
    ]:
        add(restarted, event, n, unit, seq_n, seq_unit)
    for included, excluded in [(5, 1), (7, 2), (13, 4), (30, 3), (45, 8), (60, 9)]:
        add(in_but_not, included, excluded)
    add(either_of, 6, 10)
    add(mixed_negation, "pro", "feature_used", 14, 1, "purchase", 30, 5)
    assert len(cohorts) == 100, len(cohorts)
    return cohorts


SETS: dict[str, Callable[[], list[BenchCohort]]] = {"12": twelve, "100": hundred}
