"""Lifecycle behaviours (spec 5.3, clarification 15): first time, stopped, restarted.

All three are combinations of per-person aggregates of the fused group-by:

* ``performed_event_first_time``: the person's earliest-ever target event up to the window's upper bound,
  ignoring ``event_filters``, lies in ``Wd`` and is itself a filtered match - i.e. it equals the earliest
  filtered match (PostHog: ``HAVING min_timestamp == min_timestamp_with_condition``). Needs the full history.
* ``stopped_performing_event``: a matching event in ``Wd(time)`` and none in ``Wd(seq)``; ``event_filters``
  apply to both windows.
* ``restarted_performing_event``: a target event in the recent window ``R``, none in the gap ``G`` (``R`` and
  ``G`` overlap on the day of ``now - seq``, so an event that day excludes the person), and an earlier one
  before ``R`` (otherwise ``R`` holds their first-ever occurrence). ``event_filters`` are ignored, as PostHog's
  query builds its series without them. Needs the full history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cohort_pipeline.engine.behaviors import windows
from cohort_pipeline.engine.behaviors.event_matching import (
    EventFilters,
    FilteredTarget,
    LeafResolver,
    Target,
    property_keys,
)
from cohort_pipeline.engine.behaviors.plan import FusedPlan
from cohort_pipeline.engine.behaviors.windows import Window


@dataclass(frozen=True)
class PerformedEventFirstTime(FilteredTarget):
    target: Target
    filters: EventFilters | None
    window: Window

    @classmethod
    def prepare(cls, leaf: Any, resolver: LeafResolver) -> PerformedEventFirstTime:
        return cls(resolver.target(leaf.event_type, leaf.key), resolver.filters(leaf.event_filters),
                   windows.day_aligned(leaf, resolver.ctx))

    def contribute(self, name: str, plan: FusedPlan) -> None:
        window = self.window
        plan.read(self.target, window, self.filters)
        plan.read_history(self.target, window.lower)
        match = plan.match(self.target)
        # the earliest-ever occurrence lies in the window: one in the window, none before it
        member = plan.any_in(match, window) & ~plan.any_before(match, window.lower)
        if self.filters is not None:
            # ... and is itself a filtered match (at least one of the events at the earliest timestamp)
            passes = plan.match(self.target, self.filters)
            member = member & plan.first_passes(match, passes, window).fill_null(False)
        plan.output(name, member)


@dataclass(frozen=True)
class StoppedPerformingEvent(FilteredTarget):
    target: Target
    filters: EventFilters | None
    look_back: Window
    recent: Window

    @classmethod
    def prepare(cls, leaf: Any, resolver: LeafResolver) -> StoppedPerformingEvent:
        look_back, recent = windows.stopped_windows(leaf, resolver.ctx)
        return cls(resolver.target(leaf.event_type, leaf.key), resolver.filters(leaf.event_filters), look_back,
                   recent)

    def contribute(self, name: str, plan: FusedPlan) -> None:
        plan.read(self.target, self.look_back, self.filters)
        plan.read(self.target, self.recent, self.filters)
        match = plan.match(self.target, self.filters)
        plan.output(name, plan.any_in(match, self.look_back) & ~plan.any_in(match, self.recent))


@dataclass(frozen=True)
class RestartedPerformingEvent:
    target: Target
    recent: Window
    gap: Window

    @classmethod
    def prepare(cls, leaf: Any, resolver: LeafResolver) -> RestartedPerformingEvent:
        recent, gap = windows.restarted_windows(leaf, resolver.ctx)
        return cls(resolver.target(leaf.event_type, leaf.key), recent, gap)

    @property
    def targets(self) -> list[Target]:
        return [self.target]

    @property
    def property_keys(self) -> set[str]:
        return property_keys([self.target], [])

    def contribute(self, name: str, plan: FusedPlan) -> None:
        plan.read(self.target, self.recent)
        plan.read(self.target, self.gap)
        plan.read_history(self.target, self.recent.lower)
        match = plan.match(self.target)
        plan.output(name, plan.any_in(match, self.recent) & ~plan.any_in(match, self.gap)
                    & plan.any_before(match, self.recent.lower))
