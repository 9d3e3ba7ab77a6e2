"""The cohort object (spec 1.1) and the object-level rules of create / update (spec 2.1, 2.2, decision 4).

:func:`parse_cohort` is the single entry point: the API, the CLI and Dagster call it with client input
(``internal=False``) and get the same :class:`CohortValidationError` for the same mistake; the engine calls it
with ``internal=True`` for stored or legacy definitions (lenient: see :mod:`.filters`).

Rules that need other cohorts (cycles, ``Invalid Cohort ID in filter``, the ``cohort_type`` classifier) live in
:mod:`.references` and :mod:`.cohort_type`; the caller passes them the project's cohorts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model._errors import TAG_PREFIX, Loc, json_path
from cohort_pipeline.model.filters import (
    COHORT_LEAF_TYPES,
    BehavioralFilter,
    CohortFilter,
    CohortFilters,
    FilterGroup,
    Leaf,
    filters_have_values,
    iter_leaves,
    parse_filters,
)
from cohort_pipeline.model.legacy import convert_legacy_groups

CohortTypeName = Literal["static", "person_property", "behavioral", "realtime", "analytical"]
COHORT_TYPES: Final[tuple[str, ...]] = CohortTypeName.__args__  # type: ignore[attr-defined]

NAME_MAX_LENGTH: Final[int] = 400
DESCRIPTION_MAX_LENGTH: Final[int] = 1000
QUERY_KINDS: Final[tuple[str, ...]] = ("ActorsQuery", "HogQLQuery")

ROOT_NEGATED_MESSAGE: Final[str] = "Top level condition cannot be negated"
EMPTY_GROUP_MESSAGE: Final[str] = "Cohort has a property group with no condition"
QUERY_AND_FILTERS_MESSAGE: Final[str] = "Cannot set both query and filters at the same time."
DYNAMIC_WITH_QUERY_MESSAGE: Final[str] = "Cannot create a dynamic cohort with a query. Set is_static to true."
QUERY_NOT_DICT_MESSAGE: Final[str] = "Query must be a dictionary."

#: Read-only fields of PostHog's serializer (spec 1.1). A client that sends a cohort back as it read it must not
#: fail, so these are ignored, as DRF ignores them; any other unknown key is a 400.
READ_ONLY_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "version",
        "pending_version",
        "is_calculating",
        "created_by",
        "created_at",
        "last_calculation",
        "last_backfill_person_properties_at",
        "last_backfill_events_at",
        "errors_calculating",
        "last_error_at",
        "last_error_message",
        "last_calculation_duration_ms",
        "count",
        "experiment_set",
        "search_match_type",
        "condition_type",
        "kind",
        "team",
        "team_id",
        # the CSV of a static cohort arrives as a multipart file and is handled by the static-cohort code
        "csv",
    }
)


class CohortDefinition(BaseModel):
    """A cohort as stored and as written by clients (spec 1.1; read-only server state lives in the store).

    ``filters`` has priority over the deprecated ``groups`` (PostHog ``Cohort.properties``); use
    :meth:`effective_filters` rather than reading either directly.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: int | None = None
    name: str | None = Field(default=None, max_length=NAME_MAX_LENGTH)
    description: str = Field(default="", max_length=DESCRIPTION_MAX_LENGTH)
    is_static: bool = False
    filters: CohortFilters | None = None
    query: dict[str, Any] | None = None
    groups: list[Any] = Field(default_factory=list)
    deleted: bool = False
    cohort_type: CohortTypeName | None = None
    create_static_person_ids: list[str] = Field(default_factory=list, alias="_create_static_person_ids")
    create_in_folder: str | None = Field(default=None, alias="_create_in_folder")

    _legacy_filters: FilterGroup | None = PrivateAttr(default=None)

    def effective_filters(self) -> FilterGroup | None:
        """The filter tree the engine evaluates: ``filters``, else the converted legacy ``groups``, else ``None``."""
        if self.filters is not None:
            return self.filters.properties
        if not self.groups:
            return None
        if self._legacy_filters is None:
            self._legacy_filters = _parse_legacy(self.groups, strict=False).properties
        return self._legacy_filters

    def leaves(self) -> Iterator[Leaf]:
        """Every leaf of :meth:`effective_filters`, depth-first in document order."""
        return iter_leaves(self.effective_filters())

    def referenced_cohort_ids(self) -> set[int]:
        """Ids of every cohort this one references (``cohort`` and the internal cohort leaf types)."""
        return {leaf.value for leaf in self.leaves() if isinstance(leaf, CohortFilter)}

    def has_behavioral_leaves(self) -> bool:
        return any(isinstance(leaf, BehavioralFilter) for leaf in self.leaves())


# --------------------------------------------------------------------------------------------------------------
# Negation algebra (spec 6.2) and empty groups (spec 3.1)
# --------------------------------------------------------------------------------------------------------------

#: How a group's ``negated`` flag follows from its children's (spec 6.2). AND: negated only when every child is
#: (an all-negated AND is a negated union). OR: all positive -> positive; all negated -> a negated intersection;
#: mixed -> flipped into a negated AND. So an OR is negated as soon as any child is.
NEGATION_COMBINERS: Final[Mapping[str, Callable[[list[bool]], bool]]] = {"AND": all, "OR": any}


def negation_flag(node: FilterGroup | Leaf, *, attr: str = "filters") -> bool:
    """The ``negated`` flag the batch engine computes for ``node`` (spec 6.2), bottom-up.

    A group without children cannot be evaluated ("Cohort has a property group with no condition").
    """
    if not isinstance(node, FilterGroup):
        return node.negation
    if not node.values:
        raise CohortValidationError(EMPTY_GROUP_MESSAGE, attr=attr)
    return NEGATION_COMBINERS[node.type]([negation_flag(child, attr=attr) for child in node.values])


def check_root_not_negated(group: FilterGroup | None, *, attr: str = "filters") -> None:
    """Decision 4: reject at create/update what PostHog would only fail at calculation time.

    A root whose flag is negated has no universe of persons to subtract from ("Top level condition cannot be
    negated": a negated leaf alone, NOT-in-cohort alone, an all-negated AND, a root OR mixing positive and
    negated children). A nested group without children is rejected too. A root without any child is allowed: it
    matches nobody and the calculation records ``no_properties`` (spec 3.1).
    """
    if group is None or not group.values:
        return
    if negation_flag(group, attr=attr):
        raise CohortValidationError(ROOT_NEGATED_MESSAGE, attr=attr)


# --------------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------------


def _legacy_path(groups: list[Any]) -> Callable[[Loc], str]:
    """Map an error path inside the converted tree back into ``groups``: root ``values[i]`` is ``groups[i]``;
    inside a properties group ``values[j]`` is ``groups[i].properties[j]`` (the lone leaf of an action/event
    group is the group itself)."""

    def render(loc: Loc) -> str:
        parts = [p for p in loc if not (isinstance(p, str) and p.startswith(TAG_PREFIX))]
        if len(parts) < 3 or parts[:2] != ["properties", "values"] or not isinstance(parts[2], int):
            return json_path("groups", tuple(parts))
        index, rest = parts[2], parts[3:]
        group = groups[index] if index < len(groups) and isinstance(groups[index], Mapping) else {}
        if rest[:1] == ["values"] and len(rest) >= 2:
            if group.get("properties"):
                return json_path(f"groups[{index}].properties", tuple(rest[1:]))
            return json_path(f"groups[{index}]", tuple(rest[2:]))
        return json_path(f"groups[{index}]", tuple(rest))

    return render


def _parse_legacy(groups: list[Any], *, strict: bool) -> CohortFilters:
    converted = convert_legacy_groups(groups, strict=strict)
    return parse_filters(
        converted, internal=not strict, legacy=True, attr="groups", render_path=_legacy_path(groups)
    )


def _check_query(query: Any) -> None:
    """[API] ``validate_query``: an object of kind ``ActorsQuery`` or ``HogQLQuery``. (The query's own schema is
    checked by the static-cohort code that runs it.)"""
    if not isinstance(query, Mapping):
        raise CohortValidationError(QUERY_NOT_DICT_MESSAGE, attr="query")
    if query.get("kind") not in QUERY_KINDS:
        raise CohortValidationError(
            f"Query must be an ActorsQuery or HogQLQuery. Got: {query.get('kind')}", attr="query"
        )


def _model_error(exc: ValidationError) -> CohortValidationError:
    """The first field error of the cohort object, in DRF's words where PostHog's users know them."""
    error = exc.errors(include_url=False)[0]
    attr = str(error["loc"][0]) if error["loc"] else None
    if error["type"] == "string_too_long":
        detail = f"Ensure this field has no more than {error['ctx']['max_length']} characters."
    elif attr == "cohort_type" and error["type"] == "literal_error":
        detail = f'"{error["input"]}" is not a valid choice.'
    else:
        where = json_path("", tuple(error["loc"][1:]))
        detail = f"{where}: {error['msg']}" if where else error["msg"]
    return CohortValidationError(detail, attr=attr)


def _known_keys() -> frozenset[str]:
    fields = CohortDefinition.model_fields
    return frozenset(fields) | frozenset(f.alias for f in fields.values() if f.alias)


def parse_cohort(data: Mapping[str, Any], *, internal: bool = False) -> CohortDefinition:
    """Validate a cohort object and return it; raise :class:`CohortValidationError` on the first broken rule.

    Client mode (``internal=False``) applies, in PostHog's order: unknown keys; field rules (``name`` and
    ``description`` length, ``query`` shape, ``filters`` through :func:`parse_filters` unless the cohort is static
    and its filters have no values, legacy ``groups`` in strict mode); the object rules of spec 2.2 (query with
    filters, dynamic cohort with query); and decision 4 (:func:`check_root_not_negated`).

    Internal mode (the engine, on stored or legacy definitions) ignores unknown keys, parses filters and groups
    leniently and skips the object rules: a stored negative-only cohort fails at calculation time instead.
    """
    if not isinstance(data, Mapping):
        raise CohortValidationError("A cohort must be a JSON object")
    data = dict(data)
    if not internal:
        unknown = sorted(set(data) - _known_keys() - READ_ONLY_FIELDS)
        if unknown:
            raise CohortValidationError(f"Extra inputs are not permitted (key '{unknown[0]}')", attr=unknown[0])

    raw_filters = data.pop("filters", None)
    raw_query = data.get("query")
    if not internal and raw_query is not None:
        _check_query(raw_query)
    try:
        cohort = CohortDefinition.model_validate(data)
    except ValidationError as exc:
        raise _model_error(exc) from None

    if cohort.is_static and not filters_have_values(raw_filters):
        filters = None  # PostHog skips filter validation for static cohorts without criteria
    elif raw_filters is None or (internal and not raw_filters):
        filters = None  # PostHog: `if self.filters:` falls back to the legacy groups
    elif internal and isinstance(raw_filters, Mapping) and not raw_filters.get("properties"):
        # a stored dynamic cohort with `{"properties": {}}`: PostHog reads an empty AND (matches nobody)
        filters = CohortFilters(properties=FilterGroup(type="AND", values=[]),
                                filterTestAccounts=bool(raw_filters.get("filterTestAccounts")))
    else:
        filters = parse_filters(raw_filters, internal=internal)
    cohort.filters = filters

    if cohort.groups and filters is None:
        cohort._legacy_filters = _parse_legacy(cohort.groups, strict=not internal).properties
    elif cohort.groups and not internal:
        convert_legacy_groups(cohort.groups, strict=True)  # unused while filters exist; shape checked only

    if internal:
        return cohort

    if raw_query and filters_have_values(raw_filters):
        raise CohortValidationError(QUERY_AND_FILTERS_MESSAGE)
    if not cohort.is_static and raw_query is not None:
        raise CohortValidationError(DYNAMIC_WITH_QUERY_MESSAGE)
    check_root_not_negated(cohort.effective_filters(), attr="filters" if filters is not None else "groups")
    return cohort


__all__ = [
    "COHORT_LEAF_TYPES",
    "COHORT_TYPES",
    "CohortDefinition",
    "CohortTypeName",
    "NEGATION_COMBINERS",
    "check_root_not_negated",
    "negation_flag",
    "parse_cohort",
]
