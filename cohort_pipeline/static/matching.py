"""Resolve submitted ids (distinct ids, person ids or emails) to persons for a static cohort (spec 7.3, 7.4).

Everything is one vectorised Polars plan per call: the submitted ids become a frame, the project's lookup for
the id type becomes a ``(key, person_id)`` frame, and joins give both the members and the unmatched ids. No
Python loop touches a row, so a million-id upload costs a few hash joins.

Rules (PostHog's, spec 7.3):

* ``distinct_id``: exact, case-sensitive match on ``person_distinct_ids.distinct_id``; several distinct ids of
  one person collapse to one member.
* ``person_id``: exact match on ``persons.id`` (the person UUID as stored; no UUID normalisation).
* ``email``: exact, case-sensitive match on the ``email`` key of the person's ``properties`` JSON; every person
  carrying that email is a member. The CSV header's ``email_property_key`` is ignored, as in PostHog.
* Members are always persons present in ``persons`` (deleted persons are absent from it, data contract), so a
  distinct id whose person is gone matches nobody. Unknown ids are dropped silently but counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import get_args

import polars as pl

from cohort_pipeline.static.csv_import import IdType

FrameLike = pl.LazyFrame | pl.DataFrame

#: How many unmatched ids an import keeps for user feedback (PostHog's ``UNMATCHED_SAMPLE_CAP``).
UNMATCHED_SAMPLE_CAP = 50

#: The JSON path of the person property that email ids are matched against.
EMAIL_JSON_PATH = "$.email"

_ID = "id"  # column of submitted ids
_POS = "position"  # first position of a submitted id, for submission order
_KEY = "key"  # column of lookup keys
_PERSON = "person_id"  # column of resolved person ids


@dataclass(frozen=True)
class StaticMatch:
    """The persons a list of ids resolved to, with PostHog's import accounting.

    ``person_ids`` are the unique members, sorted; ``ids_submitted`` counts unique submitted ids;
    ``persons_matched`` unique persons (``len(person_ids)``); ``unmatched_count`` the unique submitted ids that
    matched nobody; ``unmatched_sample`` the first ``UNMATCHED_SAMPLE_CAP`` of those, in submission order.
    """

    person_ids: list[str]
    ids_submitted: int
    persons_matched: int
    unmatched_count: int
    unmatched_sample: list[str]


def match_ids(
    id_type: IdType,
    ids: Iterable[str],
    persons: FrameLike,
    person_distinct_ids: FrameLike | None = None,
) -> StaticMatch:
    """Resolve ``ids`` of one ``id_type`` to the project's persons (frames as in docs/data_contract.md).

    ``person_distinct_ids`` is needed only for ``distinct_id``. Null entries in ``ids`` are ignored (the CSV
    parser never produces them). Raises ``ValueError`` for an unknown ``id_type`` or a missing distinct-id frame.
    """
    lookup_builder = _LOOKUPS.get(id_type)
    if lookup_builder is None:
        raise ValueError(f"unknown id_type {id_type!r}; expected one of {', '.join(get_args(IdType))}")
    return _resolve(_submitted_frame(ids), lookup_builder(persons, person_distinct_ids))


def match_person_ids(person_ids: Iterable[str], persons: FrameLike) -> StaticMatch:
    """Resolve ``_create_static_person_ids`` (person UUIDs) to existing persons; unknown ones are dropped."""
    return match_ids("person_id", person_ids, persons)


def _lazy(frame: FrameLike) -> pl.LazyFrame:
    """Accept eager or lazy input alike."""
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def _person_ids_frame(persons: FrameLike) -> pl.LazyFrame:
    """The ids of the project's (non-deleted) persons, as text."""
    return _lazy(persons).select(pl.col("id").cast(pl.String).alias(_PERSON))


def _distinct_id_lookup(persons: FrameLike, person_distinct_ids: FrameLike | None) -> pl.LazyFrame:
    """``distinct_id -> person_id`` from the distinct-id table, for persons that still exist."""
    if person_distinct_ids is None:
        raise ValueError("matching distinct ids needs the person_distinct_ids frame")
    mapping = _lazy(person_distinct_ids).select(
        pl.col("distinct_id").cast(pl.String).alias(_KEY), pl.col("person_id").cast(pl.String).alias(_PERSON)
    )
    return mapping.join(_person_ids_frame(persons), on=_PERSON, how="semi")


def _person_id_lookup(persons: FrameLike, _person_distinct_ids: FrameLike | None) -> pl.LazyFrame:
    """``person id -> itself``: a person id matches the person with that id."""
    return _lazy(persons).select(
        pl.col("id").cast(pl.String).alias(_KEY), pl.col("id").cast(pl.String).alias(_PERSON)
    )


def _email_lookup(persons: FrameLike, _person_distinct_ids: FrameLike | None) -> pl.LazyFrame:
    """``email property -> person id``; persons without an email (missing key, null, bad JSON) are left out."""
    return (
        _lazy(persons)
        .select(
            pl.col("properties").str.json_path_match(EMAIL_JSON_PATH).alias(_KEY),
            pl.col("id").cast(pl.String).alias(_PERSON),
        )
        .filter(pl.col(_KEY).is_not_null())
    )


_LookupBuilder = Callable[[FrameLike, FrameLike | None], pl.LazyFrame]

#: Which lookup table resolves each id type.
_LOOKUPS: Mapping[str, _LookupBuilder] = MappingProxyType(
    {"distinct_id": _distinct_id_lookup, "person_id": _person_id_lookup, "email": _email_lookup}
)


def _submitted_frame(ids: Iterable[str]) -> pl.LazyFrame:
    """Unique submitted ids with the position of their first occurrence."""
    series = pl.Series(_ID, ids if isinstance(ids, (list, tuple)) else list(ids), dtype=pl.String)
    return (
        series.to_frame()
        .lazy()
        .with_row_index(_POS)
        .drop_nulls(_ID)
        .group_by(_ID)
        .agg(pl.col(_POS).min())
    )


def _resolve(submitted: pl.LazyFrame, lookup: pl.LazyFrame) -> StaticMatch:
    """Join submitted ids to the lookup: members, and the submitted ids that found nobody."""
    members = (
        lookup.join(submitted, left_on=_KEY, right_on=_ID, how="semi").select(_PERSON).unique().sort(_PERSON)
    )
    unmatched = submitted.join(lookup.select(_KEY), left_on=_ID, right_on=_KEY, how="anti")
    members_df, counts_df, sample_df = pl.collect_all(
        [
            members,
            pl.concat(
                [submitted.select(pl.len().alias("n")), unmatched.select(pl.len().alias("n"))], how="vertical"
            ),
            unmatched.sort(_POS).head(UNMATCHED_SAMPLE_CAP).select(_ID),
        ]
    )
    ids_submitted, unmatched_count = counts_df["n"].to_list()
    person_ids = members_df[_PERSON].to_list()
    return StaticMatch(
        person_ids=person_ids,
        ids_submitted=ids_submitted,
        persons_matched=len(person_ids),
        unmatched_count=unmatched_count,
        unmatched_sample=sample_df[_ID].to_list(),
    )
