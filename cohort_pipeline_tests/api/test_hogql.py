"""The HogQL subset for static cohorts (service/hogql.py): what is allowed, what is refused and why, property
access, the member column of spec 7.6, and the sandbox (no files, bounded time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohort_pipeline.service.cohorts import project_data
from cohort_pipeline.service.hogql import (
    HogQLQueryError,
    QueryLimits,
    compile_hogql,
    execute_sql,
    run_hogql_query,
)
from cohort_pipeline_tests.api.conftest import NOW, P1, P2, P3, P4, P5


@pytest.fixture(scope="module")
def data(data_dir: Path):  # noqa: ANN201
    return project_data(data_dir, 1)


def run(query: str, data, **limits) -> list[str]:  # noqa: ANN001
    return run_hogql_query(query, data, now=NOW, limits=QueryLimits(**limits) if limits else QueryLimits())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT id FROM persons WHERE properties.plan = 'pro'", [P1, P3]),
        ("SELECT id FROM persons WHERE properties.score > 60", [P1, P4]),  # numeric key typed from the data
        ("SELECT * FROM persons WHERE properties.email LIKE '%example.com'", [P1, P2, P5]),
        ("SELECT person_id FROM events WHERE properties.$browser = 'Chrome'", [P1, P4]),
        ("SELECT person_id FROM events WHERE properties.`$browser` = 'Safari'", [P1]),
        ("SELECT person_id FROM events WHERE timestamp > now() - INTERVAL 7 DAY", [P1, P2]),
        ("SELECT person_id, count() AS c FROM events GROUP BY person_id HAVING c >= 3", [P1]),
        ("SELECT person_id FROM events GROUP BY person_id ORDER BY count() DESC LIMIT 1", [P1]),
        ("SELECT e.person.id FROM events e WHERE e.person.properties.plan = 'enterprise'", [P4]),
        ("SELECT distinct_id FROM events WHERE event = 'purchase'", [P3]),  # events: the event's person
        ("SELECT distinct_id FROM person_distinct_ids WHERE distinct_id IN ('d2', 'd5', 'ghost')", [P2, P5]),
        ("SELECT actor_id FROM (SELECT id AS actor_id FROM persons WHERE properties.plan = 'free')", [P2, P5]),
        ("WITH pro AS (SELECT id FROM persons WHERE properties.plan = 'pro') SELECT id FROM pro", [P1, P3]),
        ("SELECT id FROM persons WHERE properties.plan = 'pro' UNION ALL SELECT person_id FROM events "
         "WHERE event = 'purchase'", [P1, P3]),
        ("SELECT p.id FROM persons p JOIN events e ON e.person_id = p.id WHERE e.event = 'purchase'", [P3]),
        ("SELECT id FROM persons WHERE toFloat(properties.score) BETWEEN 50 AND 80", [P3, P4]),
        ("SELECT id FROM persons WHERE multiIf(properties.plan = 'pro', 1, 0) = 1 AND isNotNull(properties.email)",
         [P1, P3]),
        ("SELECT 'not-a-person' AS person_id FROM persons", []),  # only existing persons become members
    ],
)
def test_allowed_queries(data, query: str, expected: list[str]) -> None:  # noqa: ANN001
    assert run(query, data) == sorted(expected)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "HogQLQuery needs a non-empty 'query' string"),
        ("INSERT INTO persons VALUES ('x')", "Only SELECT queries are allowed, got INSERT"),
        ("CREATE TABLE t (a INT)", "Only SELECT queries are allowed, got CREATE"),
        ("SELECT id FROM persons; DROP TABLE persons", "Only a single SELECT statement is allowed"),
        ("SELECT * FROM file('/etc/passwd')", "Table functions are not allowed (file('/etc/passwd'))"),
        ("SELECT * FROM url('http://example.com')", "Table functions are not allowed (url('http://example.com'))"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Table functions are not allowed"),
        ("SELECT id FROM system.tables", "Unknown table 'system.tables'. Cohort queries may read events, persons, "
                                         "person_distinct_ids"),
        ("SELECT id FROM cohortpeople", "Unknown table 'cohortpeople'. Cohort queries may read events, persons, "
                                        "person_distinct_ids"),
        ("SELECT id FROM persons SETTINGS max_execution_time = 1000", "SETTINGS is not allowed in a cohort query"),
        ("SELECT id FROM persons FINAL", "FINAL is not allowed in a cohort query"),
        ("SELECT person_id FROM events ARRAY JOIN [1, 2] AS x", "ARRAY JOIN is not allowed in a cohort query"),
        ("SELECT id FROM persons WHERE {filters}", "A placeholder ({name}) is not allowed in a cohort query"),
        ("SELECT sleep(5) AS id FROM persons", "Function sleep() is not allowed in a cohort query"),
        ("SELECT id FROM persons WHERE current_setting('x') = 1", "Function current_setting() is not allowed"),
        ("SELECT 1 AS x", "Could not find a person_id, actor_id, id, or distinct_id column in the query"),
        ("SELECT id FROM persons UNION ALL SELECT distinct_id FROM person_distinct_ids",
         "A UNION cannot mix person id and distinct_id columns"),
        ("SELECT p.id FROM persons p, events e WHERE properties.plan = 'pro'", "'properties.plan' is ambiguous"),
        ("SELECT id FROM persons WHERE person.properties.plan = 'x'", "'person.properties.plan' is only available"),
        ("SELECT person.name AS id FROM events", "Unknown person field 'person.name'"),
        ("SELECT FROM WHERE", "Could not parse the query"),
    ],
)
def test_refused_queries_say_what_is_not_allowed(query: str, message: str) -> None:
    with pytest.raises(HogQLQueryError) as raised:
        compile_hogql(query, now=NOW)
    assert raised.value.detail.startswith(message), raised.value.detail
    assert raised.value.attr == "query"


def test_query_length_and_nesting_limits() -> None:
    with pytest.raises(HogQLQueryError, match="longer than the limit of 50 characters"):
        compile_hogql("SELECT id FROM persons WHERE " + "1 = 1 AND " * 10 + "1 = 1", now=NOW,
                      limits=QueryLimits(max_query_chars=50))
    for depth in (70, 1000):  # past the check, and past what the parser itself can take
        nested = "SELECT id FROM persons WHERE " + "(" * depth + "1 = 1" + ")" * depth
        with pytest.raises(HogQLQueryError, match="nested more than 64 levels"):
            compile_hogql(nested, now=NOW)


def test_runtime_errors_are_400s(data) -> None:  # noqa: ANN001
    with pytest.raises(HogQLQueryError, match="The query failed: .*no_such_column"):
        run("SELECT id FROM persons WHERE no_such_column = 1", data)


def test_run_time_is_bounded(data) -> None:  # noqa: ANN001
    explosive = ("SELECT a.id FROM persons a, persons b, persons c, persons d, persons e, persons f, persons g, "
                 "persons h, persons i, persons j WHERE length(a.id || b.id || c.id || d.id || e.id || f.id || g.id "
                 "|| h.id || i.id || j.id) < 0")
    with pytest.raises(HogQLQueryError, match="ran longer than the limit of 0.5 seconds"):
        run(explosive, data, timeout_seconds=0.5)


def test_the_sandbox_has_no_file_access_even_for_raw_sql() -> None:
    """Defence in depth: even SQL that bypassed the checks could not read files."""
    with pytest.raises(HogQLQueryError, match="The query failed"):
        execute_sql("SELECT * FROM read_csv('/etc/passwd')", {}, QueryLimits())


def test_now_is_the_request_clock() -> None:
    sql = compile_hogql("SELECT person_id FROM events WHERE timestamp > now()", now=NOW).sql()
    assert "2026-11-01T12:00:00+00:00" in sql
