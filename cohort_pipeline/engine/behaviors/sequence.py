"""``performed_event_sequence`` (spec 5.3, clarification 14): a two-step funnel per person.

A person is a member when two *distinct* events A (the leaf's ``key``) and B (``seq_event``) both lie in the
day-aligned window with ``B.ts >= A.ts`` and ``B.ts - A.ts <= seq window`` (inclusive; ``seq_time_value`` x
seconds of ``seq_time_interval``, months = 30 days, years = 365). Events at the same timestamp count in either
order; one event never fills both steps. ``event_filters`` are ignored, as PostHog's funnel series carries none.

All sequence leaves of a run are one branch of the fused plan, vectorised in long form:

1. the row frame's A/B events in each leaf's window become rows ``(person, leaf, ts, is_a, is_b)``;
2. per ``(person, leaf, ts)``: ``n_a``, ``n_b`` and ``n_ab`` (events that are both). A same-timestamp pair of
   distinct events exists iff ``n_a > 0``, ``n_b > 0`` and ``n_a + n_b - n_ab >= 2`` (A ∪ B holds two events);
3. sorted by ``(person, leaf, ts)``, each timestamp learns the next *later* timestamp with a B event (a shift and
   a backward fill over the partition); an A timestamp converts when that is within the window;
4. one group-by per person turns the rows into one boolean column per leaf.
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
    def property_keys(self) -> set[str]:
        return property_keys([self.first, self.second], [])

    def contribute(self, name: str, plan: FusedPlan) -> None:
        plan.read(self.first, self.window)
        plan.read(self.second, self.window)
        first, second = plan.match(self.first), plan.match(self.second)
        branch = plan.branch(SequenceBranch, SequenceBranch)
        branch.add(name, first, second, plan.within(first, self.window) | plan.within(second, self.window),
                   self.within_seconds)
        plan.output(name, pl.col(name))


@dataclass
class SequenceBranch:
    """Every sequence leaf of the run, evaluated together (see the module docstring)."""

    leaves: list[tuple[str, pl.Expr, pl.Expr, pl.Expr, int]] = field(default_factory=list)

    def add(self, name: str, first: pl.Expr, second: pl.Expr, in_window: pl.Expr, within_seconds: int) -> None:
        """``first`` / ``second``: the row columns of steps A and B; ``in_window``: either step in the window."""
        self.leaves.append((name, first, second, in_window, within_seconds))

    def frame(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        parts = [
            rows.filter(in_window).select(
                PERSON,
                TIMESTAMP,
                pl.lit(index, dtype=pl.Int32).alias("leaf"),
                pl.lit(within, dtype=pl.Int64).alias("within"),
                first.alias("is_a"),
                second.alias("is_b"),
            )
            for index, (_, first, second, in_window, within) in enumerate(self.leaves)
        ]
        partition = [PERSON, "leaf"]
        at_timestamp = (
            pl.concat(parts)
            .group_by(PERSON, "leaf", "within", "timestamp")
            .agg(
                pl.col("is_a").sum().alias("n_a"),
                pl.col("is_b").sum().alias("n_b"),
                (pl.col("is_a") & pl.col("is_b")).sum().alias("n_ab"),
            )
            .sort(PERSON, "leaf", "timestamp")
            .with_columns(
                pl.when(pl.col("n_b") > 0).then(TIMESTAMP).shift(-1).backward_fill().over(partition)
                .alias("next_b")
            )
        )
        same_time = (pl.col("n_b") > 0) & (pl.col("n_a") + pl.col("n_b") - pl.col("n_ab") >= 2)
        later = (pl.col("next_b") - TIMESTAMP) <= pl.duration(seconds=pl.col("within"))
        converts = (pl.col("n_a") > 0) & (same_time | later.fill_null(False))
        return at_timestamp.group_by(PERSON).agg(
            (converts & (pl.col("leaf") == index)).any().alias(name)
            for index, (name, *_) in enumerate(self.leaves)
        )
