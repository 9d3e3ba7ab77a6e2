"""The validation rules of the filter grammar, kept as data tables.

Spec sections 4.3 (operators), 5.1 and 5.3 (behavioural leaves). The pydantic models in :mod:`.filters` only
decide *which* table row applies; the rows themselves live here so that a reader finds the rule for an operator
or a behaviour by its name, and so that the engine and the docs can read the same tables.

Every check returns ``None`` when the input is fine and the user-facing message otherwise; the caller decides how
to raise it (inside pydantic, so the error carries the JSON path of the offending leaf).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

# --------------------------------------------------------------------------------------------------------------
# Operators (spec 4.3)
# --------------------------------------------------------------------------------------------------------------

#: Every operator of spec 4.3 a person / person_metadata leaf or an event filter may use. PostHog's API accepts
#: any string here ("accept any legacy operator") and fails at calculation time; this project rejects unknown
#: operators when a cohort is created or updated. ``flag_evaluates_to`` is left out on purpose: the spec marks it
#: "flags only" (it compiles to TRUE), so in a cohort it could only be a mistake.
PERSON_OPERATORS: Final[tuple[str, ...]] = (
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "icontains_multi",
    "not_icontains_multi",
    "regex",
    "not_regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "min",
    "max",
    "between",
    "not_between",
    "is_set",
    "is_not_set",
    "in",
    "not_in",
    "is_date_before",
    "is_date_after",
    "is_date_exact",
    "is_cleaned_path_exact",
    "semver_eq",
    "semver_neq",
    "semver_gt",
    "semver_gte",
    "semver_lt",
    "semver_lte",
    "semver_tilde",
    "semver_caret",
    "semver_wildcard",
)

#: Operators whose ``value`` is ignored, so a leaf may omit it (spec 2.1, "unless operator is is_set/is_not_set").
VALUELESS_OPERATORS: Final[frozenset[str]] = frozenset({"is_set", "is_not_set"})

#: The operator the engine uses when a stored / legacy person leaf has none (clarification 16, spec 6.5).
DEFAULT_OPERATOR: Final[str] = "exact"

DATE_VALUE_HINT: Final[str] = (
    "Expected a relative date (e.g., '-7d', '30d') or an ISO 8601 date (e.g., '2024-01-15')."
)


def _items(value: Any) -> list[Any]:
    """A list value is an OR over its items (clarification 12/13): each item must be valid on its own."""
    return list(value) if isinstance(value, list) else [value]


def _check_date(operator: str, value: Any) -> str | None:
    """PostHog [API] ``_validate_date_value``: relative (``-7d``) or absolute dates only, checked at save time."""
    from cohort_pipeline.engine.dates import is_valid_date_filter_value

    for item in _items(value):
        if not is_valid_date_filter_value(item):
            return f"Invalid date value '{item}' for operator '{operator}'. {DATE_VALUE_HINT}"
    return None


def regex_error(pattern: str) -> str | None:
    """Compile ``pattern`` with Polars' (Rust) regex engine, the one the engine evaluates with (decision 8).

    Python's ``re`` is deliberately not used: the two dialects differ (Rust has no look-around or
    back-references, Python has no ``\\p{…}`` classes), and a pattern that Python accepts but Rust rejects would
    pass validation and then match nobody.
    """
    import polars as pl

    try:
        pl.select(pl.lit("").str.contains(pattern))
    except Exception as error:  # polars raises ComputeError (older versions: other subclasses)
        match = re.search(r"^\s*error: (.+)$", str(error), re.MULTILINE)
        return match.group(1).strip() if match else str(error).splitlines()[0]
    return None


def _check_regex(operator: str, value: Any) -> str | None:
    for item in _items(value):
        if isinstance(item, (dict, list)):
            return f"Invalid value for operator {operator}: expected a regular expression string"
        problem = regex_error(str(item))
        if problem is not None:
            return f"Invalid regular expression '{item}' for operator '{operator}': {problem}"
    return None


def _as_number(item: Any) -> float:
    """A bound of ``between``: a JSON number or a numeric string; booleans are not numbers."""
    if isinstance(item, bool) or not isinstance(item, (int, float, str)):
        raise ValueError(item)
    return float(item)


def _check_range(operator: str, value: Any) -> str | None:
    """Spec 4.3: ``c`` must be a 2-element list of numbers with ``c[0] <= c[1]`` (wording of PostHog's flag API)."""
    if not isinstance(value, list) or len(value) != 2:
        return f"{operator} operator requires a two-element array [min, max]"
    try:
        low, high = (_as_number(item) for item in value)
    except ValueError:
        return f"{operator} operator requires numeric values"
    if low > high:
        return f"{operator} operator requires min value to be less than or equal to max value"
    return None


def _check_list(operator: str, value: Any) -> str | None:
    """Spec 4.3 / clarification 13: ``in`` / ``not_in`` need a real list (an empty list is allowed)."""
    return None if isinstance(value, list) else f"{operator} operator requires a list of values"


def _check_semver(operator: str, value: Any) -> str | None:
    """Spec 4.3 ``parse_semver``; a wildcard value loses its trailing ``.*`` parts first (PostHog's flag API)."""
    from cohort_pipeline.engine.semver import parse_semver

    for item in _items(value):
        if not isinstance(item, str):
            return f"Invalid value for operator {operator}: expected a semver string"
        text = item.rstrip(".*") if operator == "semver_wildcard" else item
        try:
            parse_semver(text)
        except (ValueError, IndexError, TypeError):
            return f"Invalid semver value for operator {operator}: {item}"
    return None


_SEMVER_OPERATORS = tuple(op for op in PERSON_OPERATORS if op.startswith("semver_"))

#: operator -> check of its value, applied when a client creates or updates a cohort. Operators not listed take
#: any value (the engine's one-item-list / empty-list rules of clarification 13 apply). ``is_date_exact`` is not
#: checked, as in PostHog (spec 4.3, last paragraph).
OPERATOR_VALUE_CHECKS: Final[Mapping[str, Callable[[str, Any], str | None]]] = {
    "is_date_before": _check_date,
    "is_date_after": _check_date,
    "regex": _check_regex,
    "not_regex": _check_regex,
    "between": _check_range,
    "not_between": _check_range,
    "in": _check_list,
    "not_in": _check_list,
    **{op: _check_semver for op in _SEMVER_OPERATORS},
}


def person_leaf_problem(noun: str, operator: str | None, value: Any, *, client: bool) -> str | None:
    """The first rule a person-like leaf breaks (missing keys, unknown operator, bad value), or ``None``.

    ``noun`` is the word PostHog uses in the message (``person``, ``person_metadata``, ``event``...). With
    ``client=False`` (stored / legacy definitions handed to the engine) only structure is checked: the engine
    treats a missing operator as ``exact`` and turns bad values into calculation errors, as PostHog does.
    """
    if not client:
        return None
    missing = []
    if value is None and operator not in VALUELESS_OPERATORS:
        missing.append("value")
    if operator is None:
        missing.append("operator")
    if missing:
        return f"Missing required keys for {noun} filter: {', '.join(missing)}"
    return operator_problem(noun, operator, value)


def operator_problem(noun: str, operator: str | None, value: Any) -> str | None:
    """Unknown operator, or a value the operator cannot use (client input only)."""
    if operator is None:
        return None
    if operator not in PERSON_OPERATORS:
        return (
            f"Unknown operator '{operator}' for {noun} filter. "
            f"Supported operators: {', '.join(PERSON_OPERATORS)}."
        )
    check = OPERATOR_VALUE_CHECKS.get(operator)
    if check is None or operator in VALUELESS_OPERATORS:
        return None
    return check(operator, value)


# --------------------------------------------------------------------------------------------------------------
# Person metadata (spec 2.1, Rust mirror PERSON_METADATA_FIELDS)
# --------------------------------------------------------------------------------------------------------------

PERSON_METADATA_FIELDS: Final[tuple[str, ...]] = ("created_at",)

# --------------------------------------------------------------------------------------------------------------
# Behavioural leaves (spec 5.1, 5.3)
# --------------------------------------------------------------------------------------------------------------

Interval = Literal["minute", "hour", "day", "week", "month", "year"]
EventType = Literal["events", "actions"]
BehaviorName = Literal[
    "performed_event",
    "performed_event_multiple",
    "performed_event_first_time",
    "performed_event_sequence",
    "performed_event_regularly",
    "stopped_performing_event",
    "restarted_performing_event",
]

INTERVALS: Final[tuple[str, ...]] = ("minute", "hour", "day", "week", "month", "year")
EVENT_TYPES: Final[tuple[str, ...]] = ("events", "actions")
BEHAVIORS: Final[tuple[str, ...]] = BehaviorName.__args__  # type: ignore[attr-defined]

#: Seconds per unit for comparing two windows (spec 5.3 sequence row; clarification 15: months are 30 days,
#: years 365). ``minute`` is a real minute in this project (decision 3).
INTERVAL_SECONDS: Final[Mapping[str, int]] = {
    "minute": 60,
    "hour": 3_600,
    "day": 86_400,
    "week": 604_800,
    "month": 2_592_000,
    "year": 31_536_000,
}

EVENT_TYPE_MESSAGE: Final[str] = "Event type must be 'events' or 'actions'"

#: The time window: ``time_value`` + ``time_interval``, or an explicit lower bound instead (spec 5.1).
TIME_WINDOW: Final[tuple[str, str]] = ("time_value", "time_interval")
SEQ_WINDOW: Final[tuple[str, str]] = ("seq_time_value", "seq_time_interval")


@dataclass(frozen=True)
class BehaviorRule:
    """What one behaviour (``value`` of a behavioural leaf) needs.

    ``required`` keys must be present; ``window`` says how the look-back window is given (``explicit`` allows
    ``explicit_datetime`` instead of ``time_value``/``time_interval``); ``positive`` are the integer keys that
    must be > 0 when present; ``operators`` (``None`` = not checked) is the allowed count-operator set and
    ``operator_message`` the error for anything else; ``flat_event_filters`` restricts ``event_filters`` to a
    flat list of ``event``/``hogql`` filters; ``seq_within_time`` rejects a second window longer than the first;
    ``periods`` checks ``min_periods <= total_periods``.
    """

    required: tuple[str, ...] = ()
    window: Literal["explicit", "time"] = "explicit"
    positive: tuple[str, ...] = ("time_value", "seq_time_value")
    operators: frozenset[str | None] | None = None
    operator_message: str = ""
    flat_event_filters: bool = False
    seq_within_time: bool = False
    periods: bool = False


MULTIPLE_OPERATORS: Final[frozenset[str | None]] = frozenset({None, "eq", "exact", "gte", "lte", "gt", "lt"})
REGULARLY_OPERATORS: Final[frozenset[str | None]] = frozenset({None, "gte", "lte", "exact", "eq"})

BEHAVIOR_RULES: Final[Mapping[str, BehaviorRule]] = {
    "performed_event": BehaviorRule(),
    "performed_event_multiple": BehaviorRule(
        required=("operator_value",),
        positive=("time_value", "seq_time_value", "operator_value"),
        operators=MULTIPLE_OPERATORS,
        operator_message="count_operator must be gt(e), lt(e), exact, or None",
        flat_event_filters=True,
    ),
    "performed_event_first_time": BehaviorRule(),
    "performed_event_sequence": BehaviorRule(
        required=("seq_event", "seq_event_type", "seq_time_value", "seq_time_interval"),
        seq_within_time=True,
    ),
    "performed_event_regularly": BehaviorRule(
        required=("operator_value", "min_periods", "total_periods"),
        window="time",
        positive=("time_value", "seq_time_value", "operator_value", "min_periods", "total_periods"),
        operators=REGULARLY_OPERATORS,
        operator_message="performed_event_regularly operator must be gte, lte, exact (or eq), or None",
        periods=True,
    ),
    "stopped_performing_event": BehaviorRule(
        required=("seq_time_value", "seq_time_interval"), window="time", seq_within_time=True
    ),
    "restarted_performing_event": BehaviorRule(
        required=("seq_time_value", "seq_time_interval"), window="time", seq_within_time=True
    ),
}

#: Event-filter types allowed by performed_event_multiple (spec 5.3: ``element`` -> "Property type not supported").
FLAT_EVENT_FILTER_TYPES: Final[frozenset[str]] = frozenset({"event", "hogql"})


def window_seconds(value: int, interval: str) -> int:
    """Length of ``value`` × ``interval`` in seconds (spec 5.3 table; clarification 15)."""
    return value * INTERVAL_SECONDS[interval]


def behavior_problem(leaf: Any) -> str | None:
    """The first rule of spec 5.1 / 5.3 that a behavioural leaf breaks, or ``None``.

    Checked in both client and internal mode: PostHog's query builder raises these as ``ValueError`` when it
    calculates (conformance 008), so a stored definition that breaks them cannot be calculated either.
    """
    rule = BEHAVIOR_RULES[leaf.value]
    missing = [name for name in rule.required if getattr(leaf, name) is None]
    has_time = leaf.time_value is not None and leaf.time_interval is not None
    if rule.window == "time" or leaf.explicit_datetime is None:
        missing = [name for name in TIME_WINDOW if getattr(leaf, name) is None] + missing
    if missing:
        return f"Missing required keys for behavioral filter: {', '.join(missing)}"
    for name in rule.positive:
        number = getattr(leaf, name)
        if number is not None and number <= 0:
            return f"{name} must be greater than 0"
    if rule.operators is not None and leaf.operator not in rule.operators:
        return rule.operator_message
    if rule.periods and leaf.min_periods > leaf.total_periods:
        return f"min_periods ({leaf.min_periods}) cannot be greater than total_periods ({leaf.total_periods})"
    if rule.flat_event_filters and leaf.event_filters is not None:
        if not isinstance(leaf.event_filters, list):
            return "Property groups are not supported in this behavioral cohort type"
        if any(item.type not in FLAT_EVENT_FILTER_TYPES for item in leaf.event_filters):
            return "Property type not supported"
    if (
        rule.seq_within_time
        and has_time
        and window_seconds(leaf.seq_time_value, leaf.seq_time_interval)
        > window_seconds(leaf.time_value, leaf.time_interval)
    ):
        return "seq_date must be more recent than date"
    return None


#: Event-filter types the engine evaluates. ``element`` needs an elements chain the event data does not carry and
#: ``hogql`` a HogQL compiler; both are refused when a cohort is saved rather than failing every calculation.
ENGINE_EVENT_FILTER_TYPES: Final[frozenset[str]] = frozenset({"event"})


def _event_filter_leaves(node: Any) -> list[Any]:
    if node is None:
        return []
    if isinstance(node, list):
        return [leaf for item in node for leaf in _event_filter_leaves(item)]
    if hasattr(node, "values") and isinstance(node.values, list):
        return _event_filter_leaves(node.values)
    return [node]


def _is_action_id(key: Any) -> bool:
    return (isinstance(key, int) and not isinstance(key, bool)) or (isinstance(key, str) and key.isdigit())


def client_behavior_problem(leaf: Any) -> str | None:
    """Rules this project adds when a client saves a behavioural leaf, so that what saves can be calculated:
    action ids are integers, event filters are ``event`` filters, and explicit dates only go with the
    behaviours that read them (spec 5.1: performed_event, multiple, first_time, sequence)."""
    for key_name, type_name in (("key", "event_type"), ("seq_event", "seq_event_type")):
        key = getattr(leaf, key_name)
        if getattr(leaf, type_name) == "actions" and key is not None and not _is_action_id(key):
            return f"{key_name} must be an action id (an integer) when {type_name} is 'actions', got '{key}'"
    for item in _event_filter_leaves(leaf.event_filters):
        if item.type not in ENGINE_EVENT_FILTER_TYPES:
            return f"Event filters of type '{item.type}' are not supported; use 'event' property filters"
    if BEHAVIOR_RULES[leaf.value].window == "time":
        for name in ("explicit_datetime", "explicit_datetime_to"):
            if getattr(leaf, name) is not None:
                return f"{name} is not supported for {leaf.value}; use time_value and time_interval"
    return None

