"""The members of a static cohort created from a ``query`` (spec 7.6): ``HogQLQuery`` or ``ActorsQuery``.

PostHog validates the query with its schema models and runs it in a background task. Here the query is checked
and run synchronously, before the cohort is written, so a query that is not allowed (or fails, or runs too long)
is a 400 and leaves nothing behind.

``ActorsQuery`` is supported for the shape the cohort use-case needs: persons filtered by ``properties`` and
``fixedProperties`` (person, person_metadata and cohort filters, ANDed; an operator-less person filter means
``exact`` as PostHog's persons endpoint assumes), an optional ``search`` (case-insensitive match on the email or
name property, or an exact person id or distinct id), and ``limit`` / ``offset`` over persons ordered by id. A
``source`` insight is not supported (this project has no insights).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import polars as pl

from cohort_pipeline.engine.evaluate import evaluate_cohorts_detailed
from cohort_pipeline.engine.property_types import property_text
from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model import parse_filters
from cohort_pipeline.service.hogql import DEFAULT_LIMITS, HogQLQueryError, QueryLimits, run_hogql_query
from cohort_pipeline.sources import ProjectData

HOGQL_QUERY_KEYS: Final[frozenset[str]] = frozenset(
    {"kind", "query", "values", "variables", "modifiers", "filters", "name", "tags", "response", "version",
     "explain", "connectionId", "sendRawQuery"}
)
"""Keys of PostHog's ``HogQLQuery`` schema; others are a 400 (its model forbids extra keys)."""

ACTORS_QUERY_KEYS: Final[frozenset[str]] = frozenset(
    {"kind", "select", "properties", "fixedProperties", "search", "limit", "offset", "orderBy", "source",
     "modifiers", "response", "tags", "version"}
)
"""Keys of PostHog's ``ActorsQuery`` schema."""

ACTORS_LEAF_TYPES: Final[frozenset[str]] = frozenset({"person", "person_metadata", "cohort"})
QUERY_EVALUATION_ID: Final[int] = -1
"""The id the engine gives the ActorsQuery's filter while evaluating it (never a stored cohort's id)."""


def _check_keys(query: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise HogQLQueryError(f"{query.get('kind')} has unsupported key '{unknown[0]}'")


def referenced_cohort_ids(query: Mapping[str, Any] | None) -> set[int]:
    """Cohort ids an ``ActorsQuery`` filters on (their published members are read when it runs)."""
    if not isinstance(query, Mapping) or query.get("kind") != "ActorsQuery":
        return set()
    ids: set[int] = set()
    for name in ("properties", "fixedProperties"):
        items = query.get(name)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and item.get("type") == "cohort":
                value = item.get("value")
                if isinstance(value, int) and not isinstance(value, bool):
                    ids.add(value)
                elif isinstance(value, str) and value.isascii() and value.isdigit():
                    ids.add(int(value))
    return ids


def _actors_filters(query: Mapping[str, Any]) -> dict[str, Any] | None:
    """``properties`` + ``fixedProperties`` as a cohort filter tree (validated with the cohort grammar)."""
    leaves: list[Any] = []
    for name in ("properties", "fixedProperties"):
        items = query.get(name)
        if items is None:
            continue
        if isinstance(items, Mapping) and "type" in items and "values" in items:
            items = [items]  # a property group
        if not isinstance(items, list):
            raise HogQLQueryError(f"ActorsQuery {name} must be a list of property filters")
        for item in items:
            if not isinstance(item, Mapping):
                raise HogQLQueryError(f"ActorsQuery {name} must be a list of property filters")
            is_group = "values" in item and item.get("type") in ("AND", "OR")
            if not is_group and item.get("type") not in ACTORS_LEAF_TYPES:
                raise HogQLQueryError(
                    f"ActorsQuery {name} supports person, person_metadata and cohort filters only "
                    f"(got type '{item.get('type')}')"
                )
            leaf = dict(item)
            if leaf.get("type") == "person" and "operator" not in leaf:
                leaf["operator"] = "exact"
            leaves.append(leaf)
    if not leaves:
        return None
    filters = {"properties": {"type": "AND", "values": leaves}}
    try:
        parse_filters(filters, attr="query")
    except CohortValidationError as error:
        raise HogQLQueryError(error.detail.replace("query.properties.values", "query.properties")) from None
    return filters


def _bounded_int(query: Mapping[str, Any], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HogQLQueryError(f"ActorsQuery {name} must be a non-negative integer")
    return value


def _search(persons: pl.LazyFrame, distinct_ids: pl.LazyFrame, term: str) -> pl.LazyFrame:
    """PostHog's person search: email or name property contains the term (any case), or an exact id."""
    lowered = term.lower()
    by_property = persons.filter(
        property_text(pl.col("properties"), "email").str.to_lowercase().str.contains(lowered, literal=True)
        | property_text(pl.col("properties"), "name").str.to_lowercase().str.contains(lowered, literal=True)
        | (pl.col("id") == term)
    ).select("id")
    by_distinct_id = distinct_ids.filter(pl.col("distinct_id") == term).select(pl.col("person_id").alias("id"))
    return pl.concat([by_property, by_distinct_id]).unique()


def run_actors_query(
    query: Mapping[str, Any],
    data: ProjectData,
    *,
    now: datetime,
    timezone: str = "UTC",
    published_memberships: pl.DataFrame | None = None,
) -> list[str]:
    """The persons an ``ActorsQuery`` selects (see the module docstring), as sorted person ids."""
    _check_keys(query, ACTORS_QUERY_KEYS)
    if query.get("source") is not None:
        raise HogQLQueryError("ActorsQuery with a 'source' insight is not supported; filter persons with "
                              "'properties' or use a HogQLQuery")
    limit, offset = _bounded_int(query, "limit"), _bounded_int(query, "offset")
    search = query.get("search")
    if search is not None and not isinstance(search, str):
        raise HogQLQueryError("ActorsQuery search must be a string")
    filters = _actors_filters(query)
    persons = data.persons.select(pl.col("id").cast(pl.String), "created_at", "properties")
    if filters is not None:
        result = evaluate_cohorts_detailed(
            [{"id": QUERY_EVALUATION_ID, "filters": filters}], data.persons, data.person_distinct_ids, data.events,
            now=now, timezone=timezone, published_memberships=published_memberships,
        )
        if result.errors:
            raise HogQLQueryError(f"The query failed: {next(iter(result.errors.values())).message}")
        matched = result.memberships.select(pl.col("person_id").alias("id")).lazy()
        persons = persons.join(matched, on="id", how="semi")
    if search:
        persons = persons.join(_search(persons, data.person_distinct_ids, search), on="id", how="semi")
    ordered = persons.select("id").unique().sort("id")
    if offset:
        ordered = ordered.slice(offset)
    if limit is not None:
        ordered = ordered.head(limit)
    return sorted(ordered.collect()["id"].to_list())


def run_cohort_query(
    query: Mapping[str, Any],
    data: ProjectData,
    *,
    now: datetime,
    timezone: str = "UTC",
    published_memberships: pl.DataFrame | None = None,
    limits: QueryLimits = DEFAULT_LIMITS,
) -> list[str]:
    """The person ids of a static cohort's ``query`` (spec 7.6); :class:`HogQLQueryError` (400) otherwise."""
    kind = query.get("kind")
    if kind == "HogQLQuery":
        _check_keys(query, HOGQL_QUERY_KEYS)
        if query.get("values") or query.get("variables"):
            raise HogQLQueryError("Placeholders ('values', 'variables') are not supported in cohort queries")
        return run_hogql_query(query.get("query"), data, now=now, limits=limits)  # type: ignore[arg-type]
    if kind == "ActorsQuery":
        return run_actors_query(query, data, now=now, timezone=timezone,
                                published_memberships=published_memberships)
    raise HogQLQueryError(f"Query must be an ActorsQuery or HogQLQuery. Got: {kind}")


__all__ = ["referenced_cohort_ids", "run_actors_query", "run_cohort_query"]
