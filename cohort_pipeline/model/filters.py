"""PostHog's cohort filter grammar (spec section 3) as pydantic models, with every 400-class rule on leaves.

Two parsing modes, chosen by :func:`parse_filters` through the validation context:

* **client** (``internal=False``, the default): what the API, the CLI and Dagster accept when a cohort is created
  or updated. Unknown keys are rejected everywhere (PostHog's ``extra="forbid"``), the internal leaf types are
  refused, a person leaf needs ``operator`` and (except ``is_set``/``is_not_set``) ``value``, operators must be
  known and their values well formed (dates, regexes, ranges, lists, semvers).
* **internal** (``internal=True``): stored or legacy definitions handed to the engine. The internal leaf types
  ``static-cohort`` / ``precalculated-cohort`` / ``dynamic-cohort`` are accepted, a missing person operator
  means ``exact`` (clarification 16), unknown operators and odd values are kept (the engine turns them into a
  calculation error, as PostHog does), and unknown keys are dropped (PostHog's ``Property`` ignores them).

Both modes enforce what the engine itself cannot work around: integer cohort ids (never interpolated into
anything, conformance 076), the behaviour table of spec 5.3, intervals, event types and the
``person_metadata`` key. Models built directly in Python (no context) behave like internal parsing.

PostHog's server-added leaf keys ``bytecode``, ``bytecode_error`` and ``conditionHash`` (spec 3.4) are accepted
and dropped in both modes, so a definition read back from PostHog can be sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, ClassVar, Final, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model._errors import (
    GROUP_TAG,
    LEAF_TAG,
    LIST_TAG,
    TAG_PREFIX,
    Loc,
    format_validation_error,
    rule_error,
)
from cohort_pipeline.model.rules import (
    BEHAVIORS,
    DATE_VALUE_HINT,
    DEFAULT_OPERATOR,
    EVENT_TYPE_MESSAGE,
    EVENT_TYPES,
    INTERVALS,
    PERSON_METADATA_FIELDS,
    PERSON_OPERATORS,
    BehaviorName,
    EventType,
    Interval,
    behavior_problem,
    client_behavior_problem,
    operator_problem,
    person_leaf_problem,
)

__all__ = [
    "PERSON_OPERATORS",
    "CLIENT_LEAF_TYPES",
    "INTERNAL_LEAF_TYPES",
    "COHORT_LEAF_TYPES",
    "PersonFilter",
    "PersonMetadataFilter",
    "CohortFilter",
    "EventPropertyFilter",
    "EventFilterGroup",
    "BehavioralFilter",
    "FilterGroup",
    "CohortFilters",
    "Leaf",
    "parse_filters",
    "iter_leaves",
    "is_group",
    "filters_have_values",
    "PROPERTIES_REQUIRED_MESSAGE",
]

#: Leaf types a client may send (spec 3.2).
CLIENT_LEAF_TYPES: Final[tuple[str, ...]] = ("behavioral", "cohort", "person", "person_metadata")
#: Leaf types only the engine's own paths produce (spec 3.2, 6.1, 6.4).
INTERNAL_LEAF_TYPES: Final[tuple[str, ...]] = ("static-cohort", "precalculated-cohort", "dynamic-cohort")
#: Every leaf type that references another cohort by id.
COHORT_LEAF_TYPES: Final[tuple[str, ...]] = ("cohort", *INTERNAL_LEAF_TYPES)

#: Keys PostHog's server adds to each stored leaf (spec 3.4); accepted and ignored.
SERVER_ADDED_KEYS: Final[frozenset[str]] = frozenset({"bytecode", "bytecode_error", "conditionHash"})

PROPERTIES_REQUIRED_MESSAGE: Final[str] = "Must contain a 'properties' key with type and values"


# --------------------------------------------------------------------------------------------------------------
# Parsing mode, read from the pydantic validation context
# --------------------------------------------------------------------------------------------------------------


def _context(info: ValidationInfo) -> Mapping[str, Any]:
    return info.context if isinstance(info.context, Mapping) else {}


def _is_client(info: ValidationInfo) -> bool:
    """Client rules apply only when :func:`parse_filters` asked for them; direct construction is trusted."""
    return _context(info).get("internal") is False


def _defaults_operator(info: ValidationInfo) -> bool:
    """A missing person operator means ``exact`` for internal parsing and for converted legacy groups (6.5)."""
    ctx = _context(info)
    return ctx.get("internal") is not False or bool(ctx.get("legacy"))


# --------------------------------------------------------------------------------------------------------------
# Field validators with PostHog's messages
# --------------------------------------------------------------------------------------------------------------


def _one_of(allowed: tuple[str, ...], message: Any) -> BeforeValidator:
    """Reject a value outside ``allowed`` with ``message`` (a string or ``value -> string``) instead of pydantic's
    generic literal error."""

    def check(value: Any) -> Any:
        if value not in allowed:
            raise rule_error(message(value) if callable(message) else message)
        return value

    return BeforeValidator(check)


def _cohort_id(value: Any) -> int:
    """A cohort id is an int or a string of digits; anything else (``"0 OR 1=1"``, floats, booleans) is refused.

    The id is only ever compared with other ids, never pasted into a query, but refusing junk early gives the
    user a clear message instead of a cohort that silently matches nobody (conformance 076).
    """
    if isinstance(value, bool):
        raise rule_error(f"Cohort id must be an integer, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise rule_error(f"Cohort id must be an integer, got {value!r}")


IntervalField = Annotated[Interval, _one_of(INTERVALS, lambda v: f"Invalid interval: {v}")]
EventTypeField = Annotated[EventType, _one_of(EVENT_TYPES, EVENT_TYPE_MESSAGE)]
BehaviorField = Annotated[
    BehaviorName,
    _one_of(BEHAVIORS, lambda v: f"Invalid behavioral filter value '{v}'. Expected one of: {', '.join(BEHAVIORS)}"),
]
CohortIdField = Annotated[int, BeforeValidator(_cohort_id)]


# --------------------------------------------------------------------------------------------------------------
# Base model
# --------------------------------------------------------------------------------------------------------------


class _Node(BaseModel):
    """Common configuration: unknown keys are errors for clients, dropped for internal parsing."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        if _is_client(info):
            return {k: v for k, v in data.items() if k not in SERVER_ADDED_KEYS}
        return {k: v for k, v in data.items() if k in cls.model_fields}


# --------------------------------------------------------------------------------------------------------------
# Leaves
# --------------------------------------------------------------------------------------------------------------


class _PersonLike(_Node):
    """Shared rules of ``person`` and ``person_metadata`` leaves (PostHog ``PersonValueValidationMixin``)."""

    _noun: ClassVar[str]

    type: str  # narrowed by each subclass; declared here so that ``type`` comes first in dumps
    key: str
    operator: str | None = None
    value: Any = None
    negation: bool = False

    @model_validator(mode="after")
    def _check_operator_and_value(self, info: ValidationInfo) -> Any:
        if self.operator is None and _defaults_operator(info):
            self.operator = DEFAULT_OPERATOR
        problem = person_leaf_problem(self._noun, self.operator, self.value, client=_is_client(info))
        if problem is not None:
            raise rule_error(problem)
        return self


class PersonFilter(_PersonLike):
    """A person-property condition (spec 3.2, operators 4.3). ``key`` ``distinct_id`` means the person's ids."""

    _noun: ClassVar[str] = "person"
    type: Literal["person"]


class PersonMetadataFilter(_PersonLike):
    """A condition on a persons-table column instead of a property; only ``created_at`` exists (spec 2.1)."""

    _noun: ClassVar[str] = "person_metadata"
    type: Literal["person_metadata"]

    @model_validator(mode="after")
    def _check_key(self) -> Any:
        if self.key not in PERSON_METADATA_FIELDS:
            allowed = ", ".join(sorted(PERSON_METADATA_FIELDS))
            raise rule_error(f"Unsupported person_metadata key '{self.key}'. Allowed keys: {allowed}.")
        return self


class CohortFilter(_Node):
    """A reference to another cohort by id (spec 6.1). The three internal types are engine-only."""

    type: Literal["cohort", "static-cohort", "precalculated-cohort", "dynamic-cohort"]
    key: Literal["id"] = "id"
    value: CohortIdField
    negation: bool = False

    @model_validator(mode="before")
    @classmethod
    def _not_in_means_negation(cls, data: Any, info: ValidationInfo) -> Any:
        """Outside cohort definitions PostHog writes "not in cohort" as ``operator: not_in`` (spec 3.5); stored
        filters from those places (test-account filters) keep that meaning when parsed internally."""
        if isinstance(data, dict) and not _is_client(info) and data.get("operator") == "not_in":
            data = {**data, "negation": True}
        return data

    @model_validator(mode="after")
    def _client_types_only(self, info: ValidationInfo) -> Any:
        if self.type != "cohort" and _is_client(info):
            raise rule_error(f"Filter type '{self.type}' is internal and not accepted in cohort filters; "
                             "use type 'cohort'")
        return self


class EventPropertyFilter(_Node):
    """One entry of a behavioural leaf's ``event_filters`` (spec 5.1): ``event``/``element`` with key/operator/
    value, or ``hogql`` with an expression in ``key``. A missing operator means ``exact``."""

    type: Literal["event", "element", "hogql"]
    key: str
    operator: str | None = None
    value: Any = None

    @model_validator(mode="after")
    def _check_operator(self, info: ValidationInfo) -> Any:
        if self.type == "hogql":
            if not self.key.strip():
                raise rule_error("A hogql event filter needs an expression in 'key'")
            return self
        if _is_client(info):
            problem = operator_problem(self.type, self.operator, self.value)
            if problem is not None:
                raise rule_error(problem)
        return self


def _event_node_tag(node: Any) -> str | None:
    if isinstance(node, dict):
        return GROUP_TAG if "values" in node or node.get("type") in ("AND", "OR") else LEAF_TAG
    if isinstance(node, EventFilterGroup):
        return GROUP_TAG
    if isinstance(node, EventPropertyFilter):
        return LEAF_TAG
    return None


class EventFilterGroup(_Node):
    """An AND/OR group of event filters. Allowed in ``event_filters`` of every behaviour except
    ``performed_event_multiple`` (spec 5.3)."""

    type: Literal["AND", "OR"]
    values: list[
        Annotated[
            Union[
                Annotated["EventFilterGroup", Tag(GROUP_TAG)],
                Annotated[EventPropertyFilter, Tag(LEAF_TAG)],
            ],
            Discriminator(_event_node_tag),
        ]
    ]


def _event_filters_tag(value: Any) -> str | None:
    if isinstance(value, list):
        return LIST_TAG
    if isinstance(value, (dict, EventFilterGroup)):
        return GROUP_TAG
    return None


EventFilters = Annotated[
    Union[
        Annotated[list[EventPropertyFilter], Tag(LIST_TAG)],
        Annotated[EventFilterGroup, Tag(GROUP_TAG)],
    ],
    Discriminator(_event_filters_tag),
]


class BehavioralFilter(_Node):
    """A condition on the person's events (spec 5). Which keys a behaviour needs, and the limits on them, are the
    rows of :data:`cohort_pipeline.model.rules.BEHAVIOR_RULES`."""

    type: Literal["behavioral"]
    key: str | int
    value: BehaviorField
    event_type: EventTypeField
    time_value: int | None = None
    time_interval: IntervalField | None = None
    explicit_datetime: str | None = None
    explicit_datetime_to: str | None = None
    operator: str | None = None
    operator_value: int | None = None
    seq_event: str | int | None = None
    seq_event_type: EventTypeField | None = None
    seq_time_value: int | None = None
    seq_time_interval: IntervalField | None = None
    total_periods: int | None = None
    min_periods: int | None = None
    event_filters: EventFilters | None = None
    negation: bool = False

    @model_validator(mode="after")
    def _check_behavior(self, info: ValidationInfo) -> Any:
        problem = behavior_problem(self)
        if problem is None and _is_client(info):
            problem = client_behavior_problem(self) or self._explicit_datetime_problem()
        if problem is not None:
            raise rule_error(problem)
        return self

    def _explicit_datetime_problem(self) -> str | None:
        from cohort_pipeline.engine.dates import is_valid_date_filter_value

        for name in ("explicit_datetime", "explicit_datetime_to"):
            value = getattr(self, name)
            if value is not None and not is_valid_date_filter_value(value):
                return f"Invalid {name} '{value}'. {DATE_VALUE_HINT}"
        return None


Leaf = Union[PersonFilter, PersonMetadataFilter, CohortFilter, BehavioralFilter]

_LEAF_CLASSES: Final[Mapping[str, type[BaseModel]]] = {
    "person": PersonFilter,
    "person_metadata": PersonMetadataFilter,
    "behavioral": BehavioralFilter,
    **{leaf_type: CohortFilter for leaf_type in COHORT_LEAF_TYPES},
}


# --------------------------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------------------------


def _node_tag(node: Any) -> str | None:
    """Spec 3.1: an object with both ``type`` and ``values`` is a group; anything else is a leaf by its ``type``.

    An object typed ``AND``/``OR`` without ``values`` is still read as a group so the error says ``values`` is
    missing rather than "unknown filter type 'AND'".
    """
    if isinstance(node, dict):
        node_type = node.get("type")
        if ("type" in node and "values" in node) or node_type in ("AND", "OR"):
            return GROUP_TAG
        return f"{TAG_PREFIX}{node_type}" if isinstance(node_type, str) else None
    if isinstance(node, FilterGroup):
        return GROUP_TAG
    if isinstance(node, BaseModel):
        return f"{TAG_PREFIX}{getattr(node, 'type', '')}"
    return None


FilterNode = Annotated[
    Union[
        tuple(
            [
                Annotated["FilterGroup", Tag(GROUP_TAG)],
                *(Annotated[cls, Tag(f"{TAG_PREFIX}{leaf_type}")] for leaf_type, cls in _LEAF_CLASSES.items()),
            ]
        )
    ],
    Discriminator(_node_tag),
]


class FilterGroup(_Node):
    """``{"type": "AND"|"OR", "values": [...]}``, nested to any depth (spec 3.1)."""

    type: Literal["AND", "OR"]
    values: list[FilterNode]


class CohortFilters(_Node):
    """The ``filters`` object: ``properties`` plus ``filterTestAccounts`` (decision 6: accepted, and ANDs the
    project's test-account filters)."""

    properties: FilterGroup
    filterTestAccounts: bool = False


FilterGroup.model_rebuild()
EventFilterGroup.model_rebuild()
BehavioralFilter.model_rebuild()
CohortFilters.model_rebuild()


# --------------------------------------------------------------------------------------------------------------
# Entry point and tree helpers
# --------------------------------------------------------------------------------------------------------------


def is_group(node: Any) -> bool:
    return isinstance(node, FilterGroup)


def iter_leaves(node: FilterGroup | Leaf | None) -> Iterator[Leaf]:
    """Leaves of a filter tree, depth-first, in document order."""
    if node is None:
        return
    stack: list[Any] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, FilterGroup):
            stack.extend(reversed(current.values))
        else:
            yield current


def filters_have_values(raw: Any) -> bool:
    """PostHog's ``cohort_filters_have_values``: ``filters.properties.values`` is a non-empty list. A static
    cohort whose filters have no values (the web app sends ``{"properties": {}}``) skips filter validation."""
    if not isinstance(raw, Mapping):
        return False
    properties = raw.get("properties")
    return isinstance(properties, Mapping) and isinstance(properties.get("values"), list) and bool(
        properties["values"]
    )


def parse_filters(
    data: Any,
    *,
    internal: bool = False,
    legacy: bool = False,
    attr: str = "filters",
    render_path: Callable[[Loc], str] | None = None,
) -> CohortFilters:
    """Validate a ``filters`` object; raise :class:`CohortValidationError` (``attr="filters"``) naming the JSON
    path of every problem.

    ``internal=True`` is the engine's path for stored and legacy definitions (see the module docstring).
    ``legacy``, ``attr`` and ``render_path`` are used by :func:`cohort_pipeline.model.cohort.parse_cohort` to
    validate converted legacy ``groups`` with client rules, a default ``exact`` operator (spec 6.5) and error
    paths that point into ``groups``.
    """
    if not isinstance(data, Mapping) or "properties" not in data:
        raise CohortValidationError(PROPERTIES_REQUIRED_MESSAGE, attr=attr)
    supported = CLIENT_LEAF_TYPES + (INTERNAL_LEAF_TYPES if internal else ())
    try:
        return CohortFilters.model_validate(dict(data), context={"internal": internal, "legacy": legacy})
    except ValidationError as exc:
        detail = format_validation_error(exc, root=attr, render_path=render_path, supported_types=supported)
        raise CohortValidationError(detail, attr=attr) from None

