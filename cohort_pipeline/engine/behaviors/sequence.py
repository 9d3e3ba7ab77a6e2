"""``performed_event_sequence`` (spec 5.3, clarification 14): a two-step funnel per person.

A person is a member when two *distinct* events A (the leaf's ``key``) and B (``seq_event``) both lie in the
day-aligned window with ``B.ts >= A.ts`` and ``B.ts - A.ts <= seq window`` (inclusive; ``seq_time_value`` x
seconds of ``seq_time_interval``, months = 30 days, years = 365). Events at the same timestamp count in either
order; one event never fills both steps. ``event_filters`` are ignored, as PostHog's funnel series carries none.

All sequence leaves of a run are one branch of the fused plan. Each leaf is two sorted as-of joins, not a
per-person pairing:

1. the row frame's A and B events inside the leaf's window are split into the A rows ``(person, ts)`` and the B
   rows ``(person, ts)``, each sorted by time;
2. for every A row, ``join_asof(strategy="forward")`` by person finds the nearest B at or after it; the A row
   converts when that B lies within the seq window. A B at the same timestamp counts (either order);
3. when one event can be both A and B (the same event name, or actions sharing one), such a row must pair with
   *another* event. The B rows are then counted per timestamp, ``(person, ts, n_b)``, and an A row that is a B
   itself converts with a second B at its own timestamp (``n_b >= 2``) or with the nearest B strictly after it
   (a second as-of join, ``allow_exact_matches=False``). Targets that cannot match the same event (different
   event names) skip this step;
4. the converting persons of every leaf are stacked as ``(person, leaf)`` and turned into one boolean column per
   leaf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cohort_pipeline.engine.behaviors import windows
from cohort_pipeline.engine.behaviors.event_matching import LeafResolver, Target, property_keys
from cohort_pipeline.engine.behaviors.plan import PERSON, TIMESTAMP, FusedPlan
from cohort_pipeline.engine.behaviors.windows import Window
from cohort_pipeline.model.rules import window_seconds


@dataclass(frozen=True)
class PerformedEventSequence:
    first: Target
    second: Target
    window: Window
    within_seconds: int

    @classmethod
    def prepare(cls, leaf: Any, resolver: LeafResolver) -> PerformedEventSequence:
        return cls(resolver.target(leaf.event_type, leaf.key), resolver.target(leaf.seq_event_type, leaf.seq_event),
                   windows.day_aligned(leaf, resolver.ctx),
                   window_seconds(leaf.seq_time_value, leaf.seq_time_interval))

    @property
    def targets(self) -> list[Target]:
        return [self.first, self.second]

    @property
    def property_keys(self) -> set[str]:
        return property_keys([self.first, self.second], [])

    @property
    def overlapping(self) -> bool:
        """Whether one event can match both steps (unless both name disjoint sets of events)."""
        first, second = self.first.event_names, self.second.event_names
        return first is None or second is None or bool(first & second)

    def contribute(self, name: str, plan: FusedPlan) -> None:
        plan.read(self.first, self.window)
        plan.read(self.second, self.window)
        first, second = plan.match(self.first), plan.match(self.second)
        branch = plan.branch(SequenceBranch, SequenceBranch)
        branch.add(name, first, second, plan.within(first, self.window) | plan.within(second, self.window),
                   self.within_seconds, self.overlapping)
        plan.output(name, pl.col(name))


@dataclass
class SequenceBranch:
    """Every sequence leaf of the run, evaluated together (see the module docstring)."""

    leaves: list[tuple[str, pl.Expr, pl.Expr, pl.Expr, int, bool]] = field(default_factory=list)

    def add(self, name: str, first: pl.Expr, second: pl.Expr, in_window: pl.Expr, within_seconds: int,
            overlapping: bool = True) -> None:
        """``first`` / ``second``: the row columns of steps A and B; ``in_window``: either step in the window;
        ``overlapping``: whether one event can match both steps."""
        self.leaves.append((name, first, second, in_window, within_seconds, overlapping))

    def frame(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        converting = [
            _converting_persons(rows.filter(in_window), first, second, within, overlapping)
            .with_columns(pl.lit(index, dtype=pl.Int32).alias("leaf"))
            for index, (_, first, second, in_window, within, overlapping) in enumerate(self.leaves)
        ]
        return pl.concat(converting).group_by(PERSON).agg(
            (pl.col("leaf") == index).any().alias(name) for index, (name, *_) in enumerate(self.leaves)
        )


def _next_b(a_rows: pl.LazyFrame, b_times: pl.LazyFrame, *, exact: bool) -> pl.LazyFrame:
    """``a_rows`` with ``b_ts``/``n_b``: the person's nearest B timestamp at (``exact``) or after each A row."""
    return a_rows.join_asof(b_times, left_on="timestamp", right_on="b_ts", by=PERSON, strategy="forward",
                            allow_exact_matches=exact, check_sortedness=False)


def _converting_persons(steps: pl.LazyFrame, first: pl.Expr, second: pl.Expr, within_seconds: int,
                        overlapping: bool) -> pl.LazyFrame:
    """``(person)``: once each person with two distinct events A then B within ``within_seconds`` among ``steps``
    (the rows of one leaf's window)."""
    within = pl.duration(seconds=within_seconds)
    b_rows = steps.filter(second).select(PERSON, TIMESTAMP.alias("b_ts"))
    if not overlapping:
        a_rows = steps.filter(first).select(PERSON, TIMESTAMP).sort("timestamp")
        hits = _next_b(a_rows, b_rows.sort("b_ts"), exact=True).filter(pl.col("b_ts") - TIMESTAMP <= within)
        return hits.select(PERSON).unique()
    b_times = b_rows.group_by(PERSON, "b_ts").agg(pl.len().alias("n_b")).sort("b_ts")
    a_rows = steps.filter(first).select(PERSON, TIMESTAMP, second.alias("also_b")).sort("timestamp")
    nearest = _next_b(a_rows, b_times, exact=True)
    # an A row that is a B itself finds its own timestamp first: it converts when another B shares it
    paired = pl.when(pl.col("also_b")).then(pl.col("n_b") >= 2).otherwise(pl.col("b_ts") - TIMESTAMP <= within)
    later = _next_b(a_rows.filter("also_b").drop("also_b"), b_times, exact=False)
    return pl.concat([
        nearest.filter(paired).select(PERSON),
        later.filter(pl.col("b_ts") - TIMESTAMP <= within).select(PERSON),
    ]).unique()
