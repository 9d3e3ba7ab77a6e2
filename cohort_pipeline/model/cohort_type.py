"""``cohort_type``: PostHog's two unrelated mechanisms behind one field (spec 1.2).

* :func:`compute_cohort_type` is the value the server stores for a dynamic cohort: ``"realtime"`` when every
  leaf could be evaluated by PostHog's realtime pipeline (spec 8.1), else ``None``. Clients cannot choose it.
* :func:`required_cohort_type` / :func:`validate_cohort_type` are the validation classifier of spec 1.2(a),
  run only when a client sends a non-empty ``cohort_type``. It never yields ``realtime``, so sending
  ``"realtime"`` is always rejected; clients should omit the field.

Both are table-driven: one entry per leaf type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model.cohort import CohortDefinition
from cohort_pipeline.model.filters import (
    PERSON_OPERATORS,
    BehavioralFilter,
    CohortFilter,
    Leaf,
    PersonFilter,
    iter_leaves,
)

REALTIME: Final = "realtime"
REALTIME_COHORT_MAX_PERSON_COUNT: Final[int] = 20_000_000
REALTIME_BEHAVIORS: Final[frozenset[str]] = frozenset({"performed_event", "performed_event_multiple"})

# ---------------------------------------------------------------------------------------------- realtime (8.1)


def _person_realtime(leaf: PersonFilter, referenced: Mapping[int, str | None]) -> bool:
    """Any operator the property compiler supports; an unknown operator (kept by internal parsing) fails it."""
    return leaf.operator is None or leaf.operator in PERSON_OPERATORS


def _behavioral_realtime(leaf: BehavioralFilter, referenced: Mapping[int, str | None]) -> bool:
    """Only performed_event / performed_event_multiple on a named event, with a flat list of event filters.

    PostHog compiles ``event = key AND event_filters``; actions have no bytecode. An ``event_filters`` group is
    not compiled by PostHog (it would be silently dropped), so it disqualifies here.
    """
    return (
        leaf.value in REALTIME_BEHAVIORS
        and leaf.event_type == "events"
        and isinstance(leaf.key, str)
        and bool(leaf.key)
        and (leaf.event_filters is None or isinstance(leaf.event_filters, list))
    )


def _cohort_realtime(leaf: CohortFilter, referenced: Mapping[int, str | None]) -> bool:
    """Only a ``cohort`` reference to a cohort that is itself realtime (missing -> not)."""
    return leaf.type == "cohort" and referenced.get(leaf.value) == REALTIME


def _never(leaf: Any, referenced: Mapping[int, str | None]) -> bool:
    return False


#: leaf type -> can this leaf run in the realtime pipeline? ``person_metadata`` reads a persons-table column the
#: realtime tables do not carry; the engine-only cohort types never reach PostHog's compiler.
REALTIME_LEAF_RULES: Final[Mapping[str, Callable[[Any, Mapping[int, str | None]], bool]]] = {
    "person": _person_realtime,
    "behavioral": _behavioral_realtime,
    "cohort": _cohort_realtime,
    "person_metadata": _never,
}


def compute_cohort_type(
    definition: CohortDefinition,
    referenced_types: Mapping[int, str | None],
    count: int | None = None,
) -> Literal["realtime"] | None:
    """The ``cohort_type`` the server stores (spec 1.2(b), 8.1): ``"realtime"`` or ``None``.

    ``referenced_types`` maps referenced cohort ids to their stored ``cohort_type``; ``count`` is the cohort's
    last member count (above 20 000 000 it is never realtime).

    Not realtime: static cohorts; cohorts without ``filters`` (PostHog only computes this when filters are
    saved; a cohort defined by legacy ``groups`` alone is left ``None`` here); ``filterTestAccounts`` (the
    realtime docs list "Filter out internal and test users" as disqualifying); any leaf that fails
    :data:`REALTIME_LEAF_RULES`. A filter tree without leaves is realtime, as in PostHog (every leaf compiles).
    """
    if definition.is_static or definition.filters is None or definition.filters.filterTestAccounts:
        return None
    if count is not None and count > REALTIME_COHORT_MAX_PERSON_COUNT:
        return None
    leaves = iter_leaves(definition.filters.properties)
    if all(REALTIME_LEAF_RULES.get(leaf.type, _never)(leaf, referenced_types) for leaf in leaves):
        return REALTIME
    return None


# ------------------------------------------------------------------------------------------ classifier (1.2a)

#: Behaviours that make a cohort ``analytical`` wherever they appear (checked before anything else).
ANALYTICAL_BEHAVIORS: Final[frozenset[str]] = frozenset(
    {
        "performed_event_first_time",
        "performed_event_regularly",
        "performed_event_sequence",
        "stopped_performing_event",
        "restarted_performing_event",
    }
)

#: Complexity order; a cohort's type is the maximum over its leaves.
TYPE_PRIORITY: Final[Mapping[str, int]] = {"static": 0, "person_property": 1, "behavioral": 2, "analytical": 3}

#: Leaf types with a fixed type. ``cohort`` takes the referenced cohort's type; any other type is an error.
LEAF_COHORT_TYPES: Final[Mapping[str, str]] = {"person": "person_property", "behavioral": "behavioral"}

NO_FILTERS_MESSAGE: Final[str] = "Cannot determine type: no valid filters found"

CohortLookup = Mapping[int, CohortDefinition] | Callable[[int], CohortDefinition | None]


def _error(detail: str) -> CohortValidationError:
    return CohortValidationError(detail, attr="cohort_type")


def _lookup(lookup: CohortLookup, cohort_id: int) -> CohortDefinition | None:
    return lookup.get(cohort_id) if isinstance(lookup, Mapping) else lookup(cohort_id)


def _leaf_type(leaf: Leaf, lookup: CohortLookup, visited: frozenset[int]) -> str:
    if leaf.type in LEAF_COHORT_TYPES:
        return LEAF_COHORT_TYPES[leaf.type]
    if leaf.type != "cohort":
        raise _error(f"Unknown property type: {leaf.type}")
    cohort_id = leaf.value
    if not cohort_id:
        raise _error("Cohort filter has no value")
    if cohort_id in visited:
        raise _error("Circular cohort reference detected")
    referenced = _lookup(lookup, cohort_id)
    if referenced is None:
        raise _error(f"Referenced cohort {cohort_id} not found")
    return _required(referenced, lookup, visited | {cohort_id})


def _required(definition: CohortDefinition, lookup: CohortLookup, visited: frozenset[int]) -> str:
    if definition.is_static:
        return "static"
    if definition.query:
        return "analytical"
    if definition.filters is None:
        raise _error(NO_FILTERS_MESSAGE)
    leaves = list(iter_leaves(definition.filters.properties))
    if any(leaf.type == "behavioral" and leaf.value in ANALYTICAL_BEHAVIORS for leaf in leaves):
        return "analytical"
    types = [_leaf_type(leaf, lookup, visited) for leaf in leaves]
    if not types:
        raise _error(NO_FILTERS_MESSAGE)
    return max(types, key=TYPE_PRIORITY.__getitem__)


def required_cohort_type(definition: CohortDefinition, lookup: CohortLookup) -> str:
    """The type PostHog's classifier requires for ``definition`` ([V] ``CohortTypeValidationSerializer``).

    ``static`` if static; ``analytical`` if it has a query or any analytical behaviour; else the maximum of its
    leaves: person -> ``person_property``, other behavioural -> ``behavioral``, cohort -> the referenced cohort's
    own type (recursively, looked up with ``lookup``, a mapping or a function). Only ``filters`` count (legacy
    ``groups`` are not read, as in PostHog). Raises with the messages of spec 2.1 (``attr="cohort_type"``).

    Divergence: the cohort's own id starts as "visited", so a self-reference is reported as circular at once
    (PostHog would recurse into the stored, pre-update version first).
    """
    visited = frozenset({definition.id}) if definition.id is not None else frozenset()
    return _required(definition, lookup, visited)


def validate_cohort_type(definition: CohortDefinition, lookup: CohortLookup) -> None:
    """Spec 1.2(a): when the client sent a ``cohort_type``, it must equal :func:`required_cohort_type`."""
    if not definition.cohort_type:
        return
    required = required_cohort_type(definition, lookup)
    if definition.cohort_type != required:
        raise _error(
            f"Cohort type '{definition.cohort_type}' does not match the filters. Expected type: '{required}'"
        )
