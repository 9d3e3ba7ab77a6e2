"""PostHog actions (spec 5.1 "Action matching"): an action is an OR of steps, each matching one event.

An action arrives as PostHog's JSON: ``{"id", "name", "steps": [{"event", "url", "url_matching", "properties",
...}]}`` (``steps_json`` is accepted as a synonym of ``steps``, the name of the stored column). A step matches an
event when every condition it sets holds (PostHog ``action_to_expr``):

* ``event``: the event name; absent or empty means any event;
* ``url`` with ``url_matching``: ``exact`` compares ``$current_url`` for equality, ``regex`` searches it with the
  pattern (unanchored; an invalid pattern matches nothing, decision 8), anything else (``contains``, PostHog's
  default) is ClickHouse ``LIKE '%url%'``: case-sensitive, with ``%`` and ``_`` inside ``url`` acting as
  wildcards;
* ``properties``: event-property filters, ANDed (every operator of spec 4.3).

An action without steps matches every event, as in PostHog. Element matching (``selector``, ``tag_name``,
``href``, ``text`` on ``$autocapture`` steps) needs PostHog's ``elements_chain``, which the event data contract
does not carry, so such a step is rejected with a :class:`CalculationError` rather than silently widened; so is a
step property filter of a type other than ``event``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cohort_pipeline.errors import CalculationError
from cohort_pipeline.model.filters import EventPropertyFilter

AUTOCAPTURE_EVENT = "$autocapture"
CURRENT_URL = "$current_url"
URL_MATCHINGS = ("exact", "contains", "regex")
ELEMENT_STEP_KEYS = ("selector", "tag_name", "href", "text")


def _error(message: str) -> CalculationError:
    return CalculationError(message, error_code="validation_error")


@dataclass(frozen=True)
class ActionStep:
    """One step: every condition that is set must hold."""

    event: str | None = None
    url: str | None = None
    url_matching: str = "contains"
    properties: tuple[EventPropertyFilter, ...] = ()

    @property
    def property_keys(self) -> set[str]:
        keys = {f.key for f in self.properties}
        return keys  # the URL is compared as text: it needs no type


@dataclass(frozen=True)
class Action:
    id: int
    name: str | None
    steps: tuple[ActionStep, ...]

    @property
    def event_names(self) -> frozenset[str] | None:
        """The event names the action can match, or ``None`` when it can match any event."""
        if not self.steps or any(not step.event for step in self.steps):
            return None
        return frozenset(step.event for step in self.steps if step.event)

    @property
    def property_keys(self) -> set[str]:
        return set().union(*(step.property_keys for step in self.steps)) if self.steps else set()


def like_pattern(url: str) -> str:
    """ClickHouse ``LIKE '%url%'`` as a regex search: case-sensitive, ``%`` / ``_`` are wildcards."""
    body = "".join({"%": ".*", "_": "."}.get(char, re.escape(char)) for char in url)
    return f"(?s){body}"


def _step_property(raw: Any, action_id: int) -> EventPropertyFilter:
    if not isinstance(raw, Mapping):
        raise _error(f"Action {action_id}: a step property filter must be an object, got {raw!r}")
    kind = raw.get("type") or "event"
    if kind != "event":
        raise _error(f"Action {action_id}: step property filters of type '{kind}' are not supported "
                     "(only 'event' properties can be matched on events)")
    try:
        return EventPropertyFilter.model_validate({**raw, "type": "event"})
    except ValidationError as error:
        raise _error(f"Action {action_id}: invalid step property filter {raw!r}: {error.errors()[0]['msg']}") from None


def _step(raw: Any, action_id: int) -> ActionStep:
    if not isinstance(raw, Mapping):
        raise _error(f"Action {action_id}: a step must be an object, got {raw!r}")
    event = raw.get("event") or None
    if event == AUTOCAPTURE_EVENT and any(raw.get(key) not in (None, "") for key in ELEMENT_STEP_KEYS):
        raise _error(f"Action {action_id}: element matching ({', '.join(ELEMENT_STEP_KEYS)}) needs the elements "
                     "chain of $autocapture events, which the event data does not carry")
    matching = raw.get("url_matching") or "contains"
    if matching not in URL_MATCHINGS:
        raise _error(f"Action {action_id}: url_matching must be one of {', '.join(URL_MATCHINGS)}, got {matching!r}")
    properties = raw.get("properties") or []
    if not isinstance(properties, list):
        raise _error(f"Action {action_id}: step properties must be a list of filters")
    return ActionStep(
        event=None if event is None else str(event),
        url=raw.get("url") or None,
        url_matching=matching,
        properties=tuple(_step_property(item, action_id) for item in properties),
    )


def parse_action(raw: Mapping[str, Any], action_id: int) -> Action:
    steps = raw.get("steps", raw.get("steps_json")) or []
    if not isinstance(steps, list):
        raise _error(f"Action {action_id}: steps must be a list")
    return Action(action_id, raw.get("name"), tuple(_step(step, action_id) for step in steps))


def action_id(key: Any) -> int:
    """A behavioural key naming an action: an int or a string of digits (PostHog ``int(prop.key)``)."""
    if isinstance(key, bool):
        raise _error(f"Action id must be an integer, got {key!r}")
    if isinstance(key, int):
        return key
    text = str(key).strip()
    if text.isascii() and text.lstrip("-").isdigit():
        return int(text)
    raise _error(f"Action id must be an integer, got {key!r}")


class ActionCatalog:
    """A project's actions by id, parsed when first used (a malformed action fails only the cohorts using it)."""

    def __init__(self, actions: Iterable[Mapping[str, Any]] | None = None) -> None:
        self._raw: dict[int, Mapping[str, Any]] = {}
        self._parsed: dict[int, Action] = {}
        for raw in actions or ():
            if not isinstance(raw, Mapping) or raw.get("id") is None:
                raise ValueError(f"Every action needs an 'id', got {raw!r}")
            try:
                self._raw[action_id(raw["id"])] = raw
            except CalculationError as error:
                raise ValueError(error.message) from None

    def get(self, key: Any) -> Action | None:
        """The action with this id, or ``None`` when the project has none (it then matches nobody)."""
        identifier = action_id(key)
        if identifier not in self._parsed:
            raw = self._raw.get(identifier)
            if raw is None:
                return None
            self._parsed[identifier] = parse_action(raw, identifier)
        return self._parsed[identifier]
