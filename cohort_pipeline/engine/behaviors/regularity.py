"""``performed_event_regularly`` (spec 5.3, decision 7): qualifying periods per person.

The span and the period index come from :class:`..windows.Regularity` (periods counted back from 23:59:59.999999
yesterday; a year is 12 months). A period *qualifies* when the person's target events in it satisfy
``count OP operator_value`` (``gte``, ``lte``, ``exact`` / ``eq`` / none = equality); periods without events never
qualify. A person is a member with at least ``min_periods`` qualifying periods. ``event_filters`` are ignored, as
PostHog's stickiness series carries none.

All regularity leaves of a run are one branch of the fused plan. Each leaf counts its rows (target events in its
span) per person and period - one group-by by person with one count per period, or, for spans of many periods, a
group-by by ``(person, period)`` - and keeps the persons with enough qualifying periods; the persons of every leaf
are stacked as ``(person, leaf)`` and turned into one boolean column per leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cohort_pipeline.engine.behaviors.event_matching import LeafResolver, Target, property_keys
from cohort_pipeline.engine.behaviors.plan import PERSON, TIMESTAMP, FusedPlan
from cohort_pipeline.engine.behaviors.windows import Regularity
from cohort_pipeline.errors import CalculationError

_NO_LIMIT = 2**62

#: Stickiness criteria operators (decision 7) -> the range of event counts with which a period qualifies.
PERIOD_OPERATORS: dict[str | None, Callable[[int], tuple[int, int]]] = {
    None: lambda value: (value, value),
    "exact": lambda value: (value, value),
    "eq": lambda value: (value, value),
    "gte": lambda value: (value, _NO_LIMIT),
    "lte": lambda value: (1, value),
}


@dataclass(frozen=True)
class PerformedEventRegularly:
    target: Target
    span: Regularity
    operator: str | None
    value: int
    min_periods: int

    @classmethod
    def prepare(cls, leaf: Any, resolver: LeafResolver) -> PerformedEventRegularly:
        if leaf.operator not in PERIOD_OPERATORS:
            raise CalculationError("performed_event_regularly operator must be gte, lte, exact (or eq), or None",
                                   error_code="validation_error")
        return cls(resolver.target(leaf.event_type, leaf.key), Regularity.of(leaf, resolver.ctx), leaf.operator,
                   int(leaf.operator_value), int(leaf.min_periods))

    @property
    def targets(self) -> list[Target]:
        return [self.target]

    @property
    def property_keys(self) -> set[str]:
        return property_keys([self.target], [])

    def contribute(self, name: str, plan: FusedPlan) -> None:
        plan.read(self.target, self.span.window)
        in_span = plan.within(plan.match(self.target), self.span.window)
        plan.branch(RegularityBranch, RegularityBranch).add(name, in_span, self)
        plan.output(name, pl.col(name))


@dataclass
class RegularityBranch:
    """Every regularity leaf of the run, evaluated together (see the module docstring)."""

    leaves: list[tuple[str, pl.Expr, PerformedEventRegularly]] = field(default_factory=list)

    def add(self, name: str, in_span: pl.Expr, leaf: PerformedEventRegularly) -> None:
        """``in_span``: the row column "a target event inside the leaf's span"."""
        self.leaves.append((name, in_span, leaf))

    def frame(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        members = [
            _regular_persons(rows.filter(in_span), leaf).with_columns(pl.lit(index, dtype=pl.Int32).alias("leaf"))
            for index, (_, in_span, leaf) in enumerate(self.leaves)
        ]
        return pl.concat(members).group_by(PERSON).agg(
            (pl.col("leaf") == index).any().alias(name) for index, (name, *_) in enumerate(self.leaves)
        )


#: Up to this many periods, a leaf counts each person's events per period in one group-by by person (one sum
#: per period); beyond, it groups by (person, period).
_WIDE_PERIODS = 32


def _regular_persons(rows: pl.LazyFrame, leaf: PerformedEventRegularly) -> pl.LazyFrame:
    """``(person)``: once each person with at least ``min_periods`` qualifying periods among ``rows`` (the leaf's
    target events inside its span)."""
    low, high = PERIOD_OPERATORS[leaf.operator](leaf.value)
    low = max(low, 1)  # a period without events never qualifies
    rows = rows.select(PERSON, leaf.span.period_index(TIMESTAMP).alias("period"))
    periods = pl.select(leaf.span.period_index(pl.lit(leaf.span.window.lower))).item() + 1  # the oldest is last
    if periods <= _WIDE_PERIODS:
        counts = rows.group_by(PERSON).agg((pl.col("period") == index).sum().alias(f"n{index}")
                                           for index in range(periods))
        qualifying = pl.sum_horizontal(pl.col(f"n{index}").is_between(low, high).cast(pl.Int32)
                                       for index in range(periods))
        return counts.filter(qualifying >= leaf.min_periods).select(PERSON)
    counts = rows.group_by(PERSON, "period").agg(pl.len().alias("n"))
    return (counts.filter(pl.col("n").is_between(low, high)).group_by(PERSON).agg(pl.len().alias("qualifying"))
            .filter(pl.col("qualifying") >= leaf.min_periods).select(PERSON))
