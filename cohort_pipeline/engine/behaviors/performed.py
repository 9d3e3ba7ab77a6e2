"""``performed_event`` and ``performed_event_multiple`` (spec 5.3): one aggregate of the per-person group-by each.

* ``performed_event``: at least one matching event (target + ``event_filters``) in the day-aligned window ``Wd``.
* ``performed_event_multiple``: the number of matching events in the exact window ``We`` compared with
  ``operator_value``. The count is taken over the person's events, so a person without any is never a member,
  even for ``lt`` / ``lte`` (PostHog's ``HAVING count() ...`` over an events query; conformance 060).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from cohort_pipeline.engine.behaviors import windows
from cohort_pipeline.engine.behaviors.event_matching import (
    EventFilters,
    FilteredTarget,
    LeafResolver,
    Target,
)
from cohort_pipeline.engine.behaviors.plan import FusedPlan
from cohort_pipeline.engine.behaviors.windows import Window
from cohort_pipeline.errors import CalculationError

#: ``operator`` of performed_event_multiple -> comparison of the count with ``operator_value`` (None = exact).
COUNT_OPERATORS: dict[str | None, Callable[[pl.Expr, int], pl.Expr]] = {
    None: lambda count, value: count == value,
    "eq": lambda count, value: count == value,
    "exact": lambda count, value: count == value,
    "gte": lambda count, value: count >= value,
    "lte": lambda count, value: count <= value,
    "gt": lambda count, value: count > value,
    "lt": lambda count, value: count < value,
}


@dataclass(frozen=True)
class PerformedEvent(FilteredTarget):
    target: Target
    filters: EventFilters | None
    window: Window

    @classmethod
    def prepare(cls, leaf: Any, resolver: LeafResolver) -> PerformedEvent:
        return cls(resolver.target(leaf.event_type, leaf.key), resolver.filters(leaf.event_filters),
                   windows.day_aligned(leaf, resolver.ctx))

    def contribute(self, name: str, plan: FusedPlan) -> None:
        plan.read(self.target, self.window, self.filters)
        plan.output(name, plan.any_in(plan.match(self.target, self.filters), self.window))


@dataclass(frozen=True)
class PerformedEventMultiple(FilteredTarget):
    target: Target
    filters: EventFilters | None
    window: Window
    operator: str | None
    value: int

    @classmethod
    def prepare(cls, leaf: Any, resolver: LeafResolver) -> PerformedEventMultiple:
        if leaf.operator not in COUNT_OPERATORS:
            raise CalculationError("count_operator must be gt(e), lt(e), exact, or None", error_code="validation_error")
        return cls(resolver.target(leaf.event_type, leaf.key), resolver.filters(leaf.event_filters),
                   windows.exact(leaf, resolver.ctx), leaf.operator, int(leaf.operator_value))

    def contribute(self, name: str, plan: FusedPlan) -> None:
        plan.read(self.target, self.window, self.filters)
        count = plan.count_in(plan.match(self.target, self.filters), self.window)
        plan.output(name, (count > 0) & COUNT_OPERATORS[self.operator](count, self.value))
