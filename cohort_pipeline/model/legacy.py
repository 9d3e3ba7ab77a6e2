"""Legacy ``groups`` -> ``filters`` conversion, exactly as PostHog's ``Cohort.properties`` does it (spec 6.5).

PostHog keeps reading the deprecated ``groups`` field whenever ``filters`` is empty, so stored cohorts (and a few
PostHog tests, conformance 048-060 and 076) still depend on it. Each group becomes one child of a root ``OR``:

* ``properties`` as a list: every item whose ``type`` is missing or ``"event"`` is re-typed ``"person"`` (a
  PostHog kludge for a faulty type once saved); the list becomes an ``AND`` group.
* ``properties`` as the old dict form ``{"key": "value", ...}`` (no ``type``/``values``): one person leaf per
  entry, without operator (the engine reads that as ``exact``); also an ``AND`` group.
* ``properties`` as a property group (``type`` + ``values``): used as it is (PostHog's ``Filter`` does the same).
* ``action_id`` / ``event_id``: one behavioural leaf in an ``AND`` group (see :func:`_behavioral_leaf`).
* anything else: the **whole cohort** becomes empty (``AND`` of nothing), PostHog's "invalid state".

Divergence: PostHog's model manager raises ``ValueError("Cohort group needs properties or action_id or
event_id")`` for such a group when a cohort is created, which surfaces as an HTTP 500. This project answers 400
with the same message when ``strict=True`` (create / update), and keeps PostHog's "empty cohort" reading when
converting stored definitions for the engine (``strict=False``). Strict mode also rejects keys PostHog's
``Group`` does not know (a ``TypeError``, again a 500 in PostHog).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from cohort_pipeline.errors import CohortValidationError

INVALID_GROUP_MESSAGE: Final[str] = "Cohort group needs properties or action_id or event_id"

#: Keyword arguments of PostHog's legacy ``Group`` ([M] ``Group.__init__``); ``label`` and the dates are stored
#: but ignored by the conversion.
LEGACY_GROUP_KEYS: Final[frozenset[str]] = frozenset(
    {"properties", "action_id", "event_id", "days", "count", "count_operator", "start_date", "end_date", "label"}
)

#: The converted definition of a cohort whose groups are unusable, and of one without groups.
EMPTY_PROPERTIES: Final[Mapping[str, Any]] = {"type": "AND", "values": []}

#: Look-back used when an action/event group has no (or a zero) ``days``.
DEFAULT_LEGACY_DAYS: Final[int] = 365


def _invalid(strict: bool, index: int, detail: str = INVALID_GROUP_MESSAGE) -> None:
    if strict:
        raise CohortValidationError(f"groups[{index}]: {detail}", attr="groups")


def _legacy_count(raw: Any) -> int:
    """``max(0, int(count or 0))``, and 0 when the count does not parse (PostHog catches ``ValueError``; a value
    of another JSON type, which would be a ``TypeError`` there, is treated the same way here)."""
    try:
        return max(0, int(raw or 0))
    except (TypeError, ValueError):
        return 0


def _behavioral_leaf(group: Mapping[str, Any]) -> dict[str, Any]:
    """An ``action_id``/``event_id`` group as one behavioural leaf.

    ``time_value`` is ``days`` or 365; ``operator`` is ``count_operator`` (omitted when absent, as PostHog's
    ``exclude_none`` dump does) and ``operator_value`` the parsed count, kept even when it is 0: a count of 0
    means ``performed_event``, which ignores the operator.
    """
    count = _legacy_count(group.get("count"))
    leaf: dict[str, Any] = {
        "type": "behavioral",
        "key": group.get("action_id") or group.get("event_id"),
        "event_type": "actions" if group.get("action_id") else "events",
        "value": "performed_event_multiple" if count else "performed_event",
        "time_interval": "day",
        "time_value": group.get("days") or DEFAULT_LEGACY_DAYS,
        "operator_value": count,
    }
    if group.get("count_operator") is not None:
        leaf["operator"] = group["count_operator"]
    return leaf


def _properties_group(properties: Any) -> dict[str, Any] | None:
    """The AND group for a ``properties`` value, or ``None`` when its shape is not one PostHog converts."""
    if isinstance(properties, list):
        items = []
        for item in properties:
            if isinstance(item, Mapping):
                item = dict(item)
                if item.get("type", "event") == "event":
                    item["type"] = "person"
            items.append(item)
        return {"type": "AND", "values": items}
    if isinstance(properties, Mapping):
        if "type" in properties and "values" in properties:
            return dict(properties)
        if "type" not in properties and "values" not in properties:
            return {
                "type": "AND",
                "values": [{"key": key, "value": value, "type": "person"} for key, value in properties.items()],
            }
    return None


def convert_legacy_groups(groups: list[dict[str, Any]], *, strict: bool = False) -> dict[str, Any]:
    """``{"properties": <group JSON>}`` for legacy ``groups`` (spec 6.5); the input is not modified.

    With ``strict=True`` an unusable group raises :class:`CohortValidationError` (``attr="groups"``) instead of
    emptying the cohort (see the module docstring). No groups at all converts to an empty ``AND`` group, PostHog's
    reading of a cohort without ``filters`` and ``groups``.
    """
    if not groups:
        return {"properties": copy.deepcopy(dict(EMPTY_PROPERTIES))}
    children: list[dict[str, Any]] = []
    for index, group in enumerate(copy.deepcopy(list(groups))):
        if not isinstance(group, Mapping):
            _invalid(strict, index, "Cohort group must be an object")
            return {"properties": copy.deepcopy(dict(EMPTY_PROPERTIES))}
        if strict:
            unknown = sorted(set(group) - LEGACY_GROUP_KEYS)
            if unknown:
                _invalid(strict, index, f"Extra inputs are not permitted (key '{unknown[0]}')")
        if group.get("properties"):
            child = _properties_group(group["properties"])
            if child is None:
                _invalid(strict, index, "Cohort group properties must be a list of filters, a property group, "
                                        "or an object of key/value pairs")
                return {"properties": copy.deepcopy(dict(EMPTY_PROPERTIES))}
            children.append(child)
        elif group.get("action_id") or group.get("event_id"):
            children.append({"type": "AND", "values": [_behavioral_leaf(group)]})
        else:
            _invalid(strict, index)
            return {"properties": copy.deepcopy(dict(EMPTY_PROPERTIES))}
    return {"properties": {"type": "OR", "values": children}}
