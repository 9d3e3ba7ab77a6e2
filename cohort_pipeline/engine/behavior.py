"""Behavioural leaves of every cohort in a run, evaluated as one fused plan (ARCHITECTURE "one fused plan").

:class:`BehaviorPlanner` is what :mod:`.evaluate` talks to:

1. while cohorts are compiled, :meth:`BehaviorPlanner.register` takes each behavioural leaf, validates and
   resolves it (targets, actions, ``event_filters``, windows - errors belong to the leaf's cohort), de-duplicates
   it (leaves differing only in ``negation`` share a column) and returns the name of its boolean column;
2. once, :meth:`BehaviorPlanner.build` types the event properties the leaves read, lets each behaviour family
   contribute to one :class:`~.behaviors.plan.FusedPlan`, and returns ``<one boolean column per leaf>``, one row
   per person code, computed from a single scan of the events.

Which behaviour is computed how is the table :data:`BEHAVIORS` (spec 5.3): one row per ``value``, naming the
class that prepares the leaf and contributes it to the plan. The modules under :mod:`.behaviors` hold the
details.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from cohort_pipeline.engine.behaviors.actions import ActionCatalog
from cohort_pipeline.engine.behaviors.event_matching import EventColumns, LeafResolver
from cohort_pipeline.engine.behaviors.lifecycle import (
    PerformedEventFirstTime,
    RestartedPerformingEvent,
    StoppedPerformingEvent,
)
from cohort_pipeline.engine.behaviors.performed import PerformedEvent, PerformedEventMultiple
from cohort_pipeline.engine.behaviors.plan import FusedPlan, PlannedLeaf, union_names
from cohort_pipeline.engine.behaviors.regularity import PerformedEventRegularly
from cohort_pipeline.engine.behaviors.sequence import PerformedEventSequence
from cohort_pipeline.engine.operators import EvaluationContext
from cohort_pipeline.engine.property_types import PropertyType, infer_property_types, normalize_definitions
from cohort_pipeline.errors import CalculationError

#: Spec 5.3, one row per behaviour: ``value`` -> the class preparing and planning such a leaf.
BEHAVIORS: dict[str, Any] = {
    "performed_event": PerformedEvent,
    "performed_event_multiple": PerformedEventMultiple,
    "performed_event_first_time": PerformedEventFirstTime,
    "performed_event_sequence": PerformedEventSequence,
    "performed_event_regularly": PerformedEventRegularly,
    "stopped_performing_event": StoppedPerformingEvent,
    "restarted_performing_event": RestartedPerformingEvent,
}

#: Prefix of the behaviour columns in the persons frame (person leaves use ``__p`` / ``__d``).
COLUMN_PREFIX = "__b"


def leaf_key(leaf: Any) -> str:
    """Leaves that differ only in negation share one column (negation is applied by the algebra)."""
    return json.dumps(leaf.model_dump(exclude={"negation"}, mode="json"), sort_keys=True, default=str)


class BehaviorPlanner:
    """Collects the behavioural leaves of a run and builds their per-person frame (see the module docstring).

    ``actions`` are the project's actions as PostHog JSON (``{"id", "name", "steps"}``); ``property_definitions``
    the declared property types (``key -> String|Numeric|DateTime|Boolean``), which type event properties too.
    Undeclared event-property keys read by ``event_filters`` or action steps are inferred from the events
    (decision 2), in a narrow pre-pass over the ``properties`` column, skipped when every key is declared.
    """

    def __init__(
        self,
        ctx: EvaluationContext,
        actions: Iterable[Mapping[str, Any]] | None = None,
        property_definitions: Mapping[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.resolver = LeafResolver(ctx, ActionCatalog(actions))
        self.declared = normalize_definitions(property_definitions)
        self._leaves: dict[str, tuple[str, PlannedLeaf]] = {}

    @property
    def has_leaves(self) -> bool:
        return bool(self._leaves)

    @property
    def columns(self) -> list[str]:
        return [name for name, _ in self._leaves.values()]

    def register(self, leaf: Any) -> str:
        """Validate and resolve one behavioural leaf; the name of its boolean column in :meth:`build`'s frame.

        Raises :class:`CalculationError` when the leaf cannot be evaluated (unknown behaviour, non-integer action
        id, unsupported ``element`` / ``hogql`` filter or action step, unknown operator, bad explicit date).
        """
        key = leaf_key(leaf)
        if key not in self._leaves:
            row = BEHAVIORS.get(leaf.value)
            if row is None:
                raise CalculationError(f"Invalid behavioral property value for Cohort: {leaf.value}",
                                       error_code="validation_error")
            try:
                prepared = row.prepare(leaf, self.resolver)
            except (OverflowError, ValueError) as error:  # e.g. a window reaching past the calendar
                raise CalculationError(f"Cannot evaluate behavioral filter '{leaf.value}' on '{leaf.key}': {error}",
                                       error_code="validation_error") from error
            self._leaves[key] = (f"{COLUMN_PREFIX}{len(self._leaves)}", prepared)
        return self._leaves[key][0]

    def property_types(self, events: pl.LazyFrame | None) -> dict[str, PropertyType]:
        """The types of the event properties the leaves read: declared, else inferred from the events - first
        from the events the undeclared keys are compared on, then (for the keys those leave undecided) from all
        (see :func:`~.property_types.infer_property_types`)."""
        keys: set[str] = set()
        targets = []
        for _, leaf in self._leaves.values():
            keys |= leaf.property_keys
            if leaf.property_keys - self.declared.keys():
                targets += leaf.targets
        if events is None or not keys - self.declared.keys():
            return {key: self.declared.get(key, PropertyType.STRING) for key in keys}
        names = union_names(targets)
        first_rows = None if names is None else events.filter(pl.col("event").is_in(sorted(names)))
        inferred = infer_property_types(events.select("properties"), keys - self.declared.keys(),
                                        first_rows=None if first_rows is None else first_rows.select("properties"))
        return {key: self.declared.get(key) or inferred[key] for key in keys}

    def plan(self, events: pl.LazyFrame | None) -> FusedPlan:
        """The fused plan of every registered leaf, with the types of the event properties they read."""
        plan = FusedPlan(EventColumns(self.ctx, self.property_types(events)))
        for name, leaf in self._leaves.values():
            leaf.contribute(name, plan)
        return plan

    def build(self, events: pl.LazyFrame | None, codes: pl.LazyFrame, persons: int) -> pl.DataFrame:
        """One boolean column per registered leaf, one row per person: row ``i`` is the person coded ``i`` in
        ``codes`` (``(distinct_id, __person)``, codes ``0 .. persons - 1``); false for a person without any
        relevant event."""
        return self.plan(events).build(events, codes, persons)
