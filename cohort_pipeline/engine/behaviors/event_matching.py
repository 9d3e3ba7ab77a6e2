"""What a behavioural leaf matches on one event: a *target* (an event name or an action) and ``event_filters``.

Both become boolean columns of the event frame, compiled once per distinct target, filter set and combination
however many leaves use them (:class:`EventColumns`). Property values are read from the events' ``properties``
JSON once per key into a text column, typed by the project's property definitions (declared, else inferred from
the events), and compared with the same operator table as person properties (:mod:`..operators`).

``event_filters`` entries of type ``event`` support every operator of spec 4.3. ``element`` filters need
PostHog's ``elements_chain`` and ``hogql`` filters a HogQL compiler; neither exists here, so a leaf using them is
rejected with a :class:`CalculationError` (never silently ignored).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from datetime import datetime
from typing import Any

import polars as pl

from cohort_pipeline.engine.behaviors.actions import CURRENT_URL, Action, ActionCatalog, action_id, like_pattern
from cohort_pipeline.engine.operators import (
    EvaluationContext,
    PropertyOperand,
    RawWitnesses,
    compile_operator,
    raw_witnesses,
    regex_is_valid,
)
from cohort_pipeline.engine.property_types import PropertyType, property_text
from cohort_pipeline.errors import CalculationError
from cohort_pipeline.model.filters import EventFilterGroup, EventPropertyFilter

EVENT = pl.col("event")
_FEW_NAMES = 6
"""Up to this many names, a test of the event name is a chain of equalities: a string ``is_in`` hashes every
row's text (0.2 s CPU per test on 30M rows, against 0.03 s per equality; bench/RESULTS.md)."""


def event_named(names: Iterable[str]) -> pl.Expr:
    """``event`` is one of ``names``."""
    names = sorted(set(names))
    if len(names) > _FEW_NAMES:
        return EVENT.is_in(names)
    return pl.any_horizontal(EVENT == name for name in names) if names else pl.lit(False)
TIMESTAMP = pl.col("timestamp")


class EventColumns:
    """The row-level columns of the event frame: extracted property texts, then predicates in dependency levels.

    Every column is registered under a de-duplication key and gets a short generated name; asking twice for the
    same key returns the same column, so N leaves on ``$pageview`` compare the event name once.

    Reading a property means parsing the row's JSON, by far the most expensive per-event step, so a key is only
    read on the rows where it can matter: :meth:`require` records, per key, the event names of the targets it is
    compared for (``None``: any event) and the time span in which a leaf reads those comparisons; other rows hold
    a null there. (A leaf reads the columns built from a key only inside the windows it declared with
    :meth:`.plan.FusedPlan.read` / ``read_history``, which are what call :meth:`require`.)
    """

    def __init__(self, ctx: EvaluationContext, property_types: Mapping[str, PropertyType]) -> None:
        self.ctx = ctx
        self.property_types = property_types
        self._properties: dict[str, str] = {}
        self._needed_for: dict[str, dict[tuple[frozenset[str] | None, tuple[str, ...] | None],
                                          tuple[datetime | None, datetime]]] = {}
        self._levels: list[dict[str, tuple[str, pl.Expr]]] = []
        self._count = 0

    def prop(self, key: str) -> pl.Expr:
        """The text of one event property (``None`` when missing or JSON null), extracted once per key."""
        if key not in self._properties:
            self._properties[key] = f"__ep{len(self._properties)}"
        return pl.col(self._properties[key])

    def require(self, key: str, events: frozenset[str] | None, lower: datetime | None, upper: datetime,
                witnesses: RawWitnesses | None = None) -> None:
        """Property ``key`` is compared on events named ``events`` (``None``: on every event) with timestamps in
        ``[lower, upper]`` (``lower`` ``None``: however old), and, when ``witnesses`` are given, only where the raw
        document holds one of them or an escape (elsewhere the comparisons answer as for a missing property:
        :func:`~..operators.raw_witnesses`). Spans of one set of names and witnesses merge into their hull."""
        spans = self._needed_for.setdefault(key, {})
        where = (events, witnesses)
        if where in spans:
            old_lower, old_upper = spans[where]
            lower = None if lower is None or old_lower is None else min(lower, old_lower)
            upper = max(upper, old_upper)
        spans[where] = (lower, upper)

    def _read_rows(self, key: str, searches: dict[str, pl.Expr] | None = None) -> pl.Expr | None:
        """Where ``key`` must be read (``None``: everywhere, when nothing was required). A span with witnesses
        searches the raw documents of its own rows; with ``searches``, each search becomes a column computed
        before the masks (registered there under a generated name), rather than an expression inside them."""
        spans = self._needed_for.get(key)
        if not spans:
            return None
        terms = []
        for (events, witnesses), (lower, upper) in spans.items():
            term = TIMESTAMP <= upper
            if lower is not None:
                term = term & (TIMESTAMP >= lower)
            if events is not None:
                term = term & event_named(events)
            if witnesses is not None:
                term = witnesses.search(pl.when(term).then(pl.col("properties"))).fill_null(False)
                if searches is not None:
                    name = f"__es{len(searches)}"
                    searches[name] = term
                    term = pl.col(name)
            terms.append(term)
        return pl.any_horizontal(terms)

    def operand(self, key: str) -> PropertyOperand:
        return PropertyOperand(text=self.prop(key), type=self.property_types.get(key, PropertyType.STRING))

    def predicate(self, key: str, make: Callable[[], pl.Expr], level: int = 0) -> pl.Expr:
        """A boolean column computed at ``level`` (a level may use the columns of lower levels)."""
        while len(self._levels) <= level:
            self._levels.append({})
        for registry in self._levels:
            if key in registry:
                return pl.col(registry[key][0])
        name = f"__em{self._count}"
        self._count += 1
        self._levels[level][key] = (name, make().fill_null(False))
        return pl.col(name)

    @property
    def needs_properties(self) -> bool:
        return bool(self._properties)

    def extract(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """``rows`` with one text column per property key, parsed only where :meth:`require` asked for it: the
        JSON document is blanked (null) on the other rows first, and a null document costs nothing to parse."""
        if not self._properties:
            return rows
        searches: dict[str, pl.Expr] = {}
        where = {key: self._read_rows(key, searches) for key in self._properties}
        document = pl.col("properties")
        if searches:
            rows = rows.with_columns(**searches)
        rows = rows.with_columns(
            property_text(document if where[key] is None else pl.when(where[key]).then(document), key).alias(name)
            for key, name in self._properties.items()
        )
        return rows.drop(list(searches))

    def stages(self) -> list[list[pl.Expr]]:
        """``with_columns`` stages of the predicates, level by level (after :meth:`extract`)."""
        return [stage for stage in ([e.alias(n) for n, e in level.values()] for level in self._levels) if stage]


# ---- event_filters ---------------------------------------------------------------------------------------------


def _filter_leaves(node: Any) -> list[EventPropertyFilter]:
    if isinstance(node, list):
        return [leaf for item in node for leaf in _filter_leaves(item)]
    if isinstance(node, EventFilterGroup):
        return _filter_leaves(node.values)
    return [node]


def compile_event_property(item: EventPropertyFilter, operand: PropertyOperand, ctx: EvaluationContext) -> pl.Expr:
    """One ``event`` filter through the operator table; other types are rejected (see the module docstring)."""
    if item.type == "element":
        raise CalculationError(
            f"Event filters of type 'element' (key '{item.key}') are not supported: events carry no elements chain",
            error_code="validation_error")
    if item.type == "hogql":
        raise CalculationError(f"Event filters of type 'hogql' ('{item.key}') are not supported by this engine",
                               error_code="validation_error")
    return compile_operator(item.operator, item.value, operand, ctx)


@dataclass(frozen=True)
class EventFilters:
    """A leaf's ``event_filters``: a flat list (AND) or a property group, nested to any depth."""

    node: Any

    @classmethod
    def of(cls, event_filters: Any) -> EventFilters | None:
        if event_filters is None or (isinstance(event_filters, list) and not event_filters):
            return None
        return cls(event_filters)

    @property
    def key(self) -> str:
        items = self.node if isinstance(self.node, list) else [self.node]
        return json.dumps([item.model_dump(mode="json") for item in items], sort_keys=True, default=str)

    @property
    def property_keys(self) -> set[str]:
        return {leaf.key for leaf in _filter_leaves(self.node)}

    def witnesses(self, key: str, property_types: Mapping[str, PropertyType]) -> RawWitnesses | None:
        """What a document holds wherever these filters' comparisons of ``key`` can answer otherwise than for a
        missing property (``None``: anything); see :func:`~..operators.raw_witnesses`."""
        found = [raw_witnesses(leaf.operator, leaf.value, property_types.get(key, PropertyType.STRING))
                 for leaf in _filter_leaves(self.node) if leaf.key == key]
        if not found or any(witnesses is None for witnesses in found):
            return None
        return reduce(lambda left, right: left | right, found)

    def validate(self, ctx: EvaluationContext) -> None:
        """Raise now, when the cohort is compiled, for anything :meth:`expr` would raise later."""
        probe = PropertyOperand(text=pl.lit(None, dtype=pl.String))
        for leaf in _filter_leaves(self.node):
            compile_event_property(leaf, probe, ctx)

    def expr(self, columns: EventColumns) -> pl.Expr:
        return self._compile(self.node, columns)

    def _compile(self, node: Any, columns: EventColumns) -> pl.Expr:
        if isinstance(node, list):
            parts = [self._compile(item, columns) for item in node]
            return pl.all_horizontal(parts) if parts else pl.lit(True)
        if isinstance(node, EventFilterGroup):
            parts = [self._compile(item, columns) for item in node.values]
            if not parts:
                return pl.lit(True)
            return pl.all_horizontal(parts) if node.type == "AND" else pl.any_horizontal(parts)
        return compile_event_property(node, columns.operand(node.key), columns.ctx)


# ---- targets: the event or action a leaf counts ----------------------------------------------------------------


@dataclass(frozen=True)
class EventTarget:
    """``event_type: "events"``: events with this name."""

    name: str

    @property
    def key(self) -> str:
        return f"event:{self.name}"

    @property
    def event_names(self) -> frozenset[str] | None:
        return frozenset({self.name})

    @property
    def property_keys(self) -> set[str]:
        return set()

    @property
    def property_reads(self) -> list[tuple[str, frozenset[str] | None]]:
        return []

    def expr(self, columns: EventColumns) -> pl.Expr:
        return EVENT == self.name


@dataclass(frozen=True)
class ActionTarget:
    """``event_type: "actions"``: events matching any step of the action; an unknown id matches nothing."""

    id: int
    action: Action | None

    @property
    def key(self) -> str:
        return f"action:{self.id}"

    @property
    def event_names(self) -> frozenset[str] | None:
        return frozenset() if self.action is None else self.action.event_names

    @property
    def property_keys(self) -> set[str]:
        return set() if self.action is None else self.action.property_keys

    @property
    def property_reads(self) -> list[tuple[str, frozenset[str] | None]]:
        """``(key, event names)``: each property a step reads (its URL included) on the events of that step."""
        reads = []
        for step in self.action.steps if self.action else ():
            events = frozenset({step.event}) if step.event else None
            reads += [(key, events) for key in sorted(step.property_keys | ({CURRENT_URL} if step.url else set()))]
        return reads

    def validate(self, ctx: EvaluationContext) -> None:
        probe = PropertyOperand(text=pl.lit(None, dtype=pl.String))
        for step in self.action.steps if self.action else ():
            for item in step.properties:
                compile_event_property(item, probe, ctx)

    def expr(self, columns: EventColumns) -> pl.Expr:
        if self.action is None:
            return pl.lit(False)
        if not self.action.steps:
            return pl.lit(True)  # PostHog: an action without steps matches every event
        return pl.any_horizontal([self._step(step, columns) for step in self.action.steps])

    @staticmethod
    def _step(step: Any, columns: EventColumns) -> pl.Expr:
        parts: list[pl.Expr] = []
        if step.event:
            parts.append(EVENT == step.event)
        if step.url:
            url = columns.prop(CURRENT_URL)
            if step.url_matching == "exact":
                parts.append(url == step.url)
            elif step.url_matching == "regex":
                parts.append(url.str.contains(step.url) if regex_is_valid(step.url) else pl.lit(False))
            else:
                parts.append(url.str.contains(like_pattern(step.url)))
        parts += [compile_event_property(item, columns.operand(item.key), columns.ctx) for item in step.properties]
        return pl.all_horizontal(parts).fill_null(False) if parts else pl.lit(True)


Target = EventTarget | ActionTarget


def resolve_target(event_type: str, key: Any, actions: ActionCatalog, ctx: EvaluationContext) -> Target:
    """The target of a leaf's ``key`` (or ``seq_event``) under its event type."""
    if event_type == "actions":
        identifier = action_id(key)
        target = ActionTarget(identifier, actions.get(identifier))
        target.validate(ctx)
        return target
    if event_type == "events":
        return EventTarget(str(key))
    raise CalculationError("Event type must be 'events' or 'actions'", error_code="validation_error")


class LeafResolver:
    """Resolves and validates what a leaf names - targets and filters - when its cohort is compiled, so a bad
    leaf fails its own cohort with a clear message instead of the whole run later."""

    def __init__(self, ctx: EvaluationContext, actions: ActionCatalog) -> None:
        self.ctx = ctx
        self.actions = actions

    def target(self, event_type: str, key: Any) -> Target:
        return resolve_target(event_type, key, self.actions, self.ctx)

    def filters(self, event_filters: Any) -> EventFilters | None:
        filters = EventFilters.of(event_filters)
        if filters is not None:
            filters.validate(self.ctx)
        return filters


def property_keys(targets: list[Target], filters: list[EventFilters | None]) -> set[str]:
    """The event-property keys that targets and filters read."""
    keys: set[str] = set()
    for target in targets:
        keys |= target.property_keys
    for item in filters:
        if item is not None:
            keys |= item.property_keys
    return keys


class FilteredTarget:
    """Mixin of behaviours that match ``target`` events narrowed by ``event_filters`` (declared as dataclass
    fields ``target`` and ``filters`` by each behaviour)."""

    target: Target
    filters: EventFilters | None

    @property
    def targets(self) -> list[Target]:
        return [self.target]

    @property
    def property_keys(self) -> set[str]:
        return property_keys([self.target], [self.filters])
