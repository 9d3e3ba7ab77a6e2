"""The fused behavioural plan: one event scan, one join to persons, one group-by per person for all leaves.

Every behaviour family contributes to a :class:`FusedPlan`:

* row columns (targets, filter sets and their combinations) through :class:`EventColumns`;
* *aggregates* of the single ``group_by(person_id)`` (conditional any / count / min), de-duplicated by key, so
  two leaves reading the same event in the same window share one aggregate;
* *outputs*: each leaf's boolean, an expression over those aggregates;
* *branches* for the two behaviours that need more than one value per person (sequences, regularity); a branch
  reads the same row frame and yields ``(person_id, <leaf columns>)``;
* what it reads: the targets and windows, and which targets need their whole history (first-time and restarted
  look for the earliest-ever occurrence).

:meth:`FusedPlan.build` turns that into one LazyFrame: the event source is projected to the columns it needs,
filtered by the union of the event names and the widest window (plus, for the names whose history matters,
everything before it), joined to ``person_distinct_ids`` (events of unknown distinct ids drop out; several
distinct ids of one person become one group), and aggregated. The branches share the row frame through one
explicit cache; they filter it on computed columns only (:meth:`FusedPlan.within`), so the optimiser cannot push
a branch's predicate below the cache into a second scan of the source.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import polars as pl

from cohort_pipeline.engine.behaviors.event_matching import EventColumns, EventFilters, Target
from cohort_pipeline.engine.behaviors.windows import Window

TIMESTAMP = pl.col("timestamp")
PERSON = "person_id"
EVENTS_SCHEMA = {"uuid": pl.String, "event": pl.String, "distinct_id": pl.String,
                 "timestamp": pl.Datetime("us", "UTC"), "properties": pl.String}


class Branch(Protocol):
    """A per-person computation of its own (sequences, regularity) over the shared row frame."""

    def frame(self, rows: pl.LazyFrame) -> pl.LazyFrame: ...


class FusedPlan:
    def __init__(self, columns: EventColumns) -> None:
        self.columns = columns
        self._aggregates: dict[str, tuple[str, pl.Expr]] = {}
        self.outputs: dict[str, pl.Expr] = {}
        self._reads: list[tuple[Target, Window]] = []
        self._history: list[tuple[Target, datetime]] = []
        self._branches: dict[type, Branch] = {}

    # ---- what the families call -----------------------------------------------------------------------------

    def match(self, target: Target, filters: EventFilters | None = None) -> pl.Expr:
        """The row column "this event is the target and passes the filters"."""
        columns = self.columns
        hit = columns.predicate(target.key, lambda: target.expr(columns), level=0)
        if filters is None:
            return hit
        for key in filters.property_keys:
            columns.require(key, target.event_names)
        passes = columns.predicate(f"filters:{filters.key}", lambda: filters.expr(columns), level=0)
        return columns.predicate(f"{target.key}&{filters.key}", lambda: hit & passes, level=1)

    def within(self, match: pl.Expr, window: Window) -> pl.Expr:
        """The row column "``match`` and inside ``window``", for the branches: they filter the shared rows on
        computed columns only, so no branch predicate can be pushed below the shared rows into a scan of its own."""
        return self.columns.predicate(f"within|{match.meta.output_name()}|{window.key}",
                                      lambda: match & window.contains(TIMESTAMP), level=2)

    def read(self, target: Target, window: Window) -> None:
        """Declare that a leaf reads ``target`` events in ``window`` (drives the scan's predicate)."""
        self._reads.append((target, window))

    def read_history(self, target: Target, upper: datetime) -> None:
        """Declare that a leaf needs every ``target`` event up to ``upper``, however old."""
        self._history.append((target, upper))

    def aggregate(self, key: str, make: Callable[[], pl.Expr]) -> pl.Expr:
        """A per-person aggregate of the single group-by, shared by every leaf asking for the same key."""
        if key not in self._aggregates:
            self._aggregates[key] = (f"__ea{len(self._aggregates)}", make())
        return pl.col(self._aggregates[key][0])

    def any_in(self, match: pl.Expr, window: Window) -> pl.Expr:
        return self.aggregate(f"any|{match.meta.output_name()}|{window.key}",
                              lambda: (match & window.contains(TIMESTAMP)).any())

    def count_in(self, match: pl.Expr, window: Window) -> pl.Expr:
        return self.aggregate(f"count|{match.meta.output_name()}|{window.key}",
                              lambda: (match & window.contains(TIMESTAMP)).sum())

    def first_until(self, match: pl.Expr, upper: datetime) -> pl.Expr:
        """The person's earliest matching timestamp at or before ``upper`` (null when none)."""
        return self.aggregate(f"min|{match.meta.output_name()}|{upper.isoformat()}",
                              lambda: TIMESTAMP.filter(match & (TIMESTAMP <= upper)).min())

    def output(self, name: str, expr: pl.Expr) -> None:
        self.outputs[name] = expr

    def branch(self, kind: type, make: Callable[[], Branch]) -> Branch:
        if kind not in self._branches:
            self._branches[kind] = make()
        return self._branches[kind]

    # ---- building -------------------------------------------------------------------------------------------

    def _scan_predicate(self) -> pl.Expr | None:
        if not self._reads and not self._history:
            return None
        targets = [t for t, _ in self._reads] + [t for t, _ in self._history]
        names = _union_names(targets)
        upper = max([w.upper for _, w in self._reads] + [u for _, u in self._history])
        predicate = TIMESTAMP <= upper
        if self._reads:
            recent = TIMESTAMP >= min(w.lower for _, w in self._reads)
            if self._history:
                history_names = _union_names([t for t, _ in self._history])
                recent = pl.lit(True) if history_names is None else recent | _event_in(history_names)
            predicate = predicate & recent
        if names is not None:
            predicate = predicate & _event_in(names)
        return predicate

    def build(self, events: pl.LazyFrame | None, distinct_ids: pl.LazyFrame) -> pl.LazyFrame:
        """``(person_id, <one boolean column per output>)`` for every person with at least one read event."""
        events = pl.LazyFrame(schema=EVENTS_SCHEMA) if events is None else _utc_timestamps(events)
        needed = ["event", "distinct_id", "timestamp"] + (["properties"] if self.columns.needs_properties else [])
        rows = events.select(needed)
        predicate = self._scan_predicate()
        if predicate is not None:
            rows = rows.filter(predicate)
        rows = self.columns.extract(
            rows.join(distinct_ids.select("distinct_id", PERSON), on="distinct_id", how="inner"))
        for stage in self.columns.stages():
            rows = rows.with_columns(stage)
        if self._branches:
            # the group-by and every branch read the same rows: one scan, whatever the optimiser prunes per branch
            rows = rows.cache()
        frame = rows.group_by(PERSON).agg(
            pl.len().alias("__events"), *[expr.alias(name) for name, expr in self._aggregates.values()])
        for branch in self._branches.values():
            frame = frame.join(branch.frame(rows), on=PERSON, how="left")
        return frame.select(PERSON, *[expr.fill_null(False).alias(name) for name, expr in self.outputs.items()])


def _utc_timestamps(events: pl.LazyFrame) -> pl.LazyFrame:
    """The contract's ``Datetime("us", "UTC")`` timestamps (a naive column is UTC), so window bounds compare."""
    dtype = events.collect_schema()["timestamp"]
    if dtype == EVENTS_SCHEMA["timestamp"]:
        return events
    column = TIMESTAMP
    if isinstance(dtype, pl.Datetime):
        column = column.dt.convert_time_zone("UTC") if dtype.time_zone else column.dt.replace_time_zone("UTC")
        return events.with_columns(column.dt.cast_time_unit("us"))
    return events.with_columns(column.cast(EVENTS_SCHEMA["timestamp"]))


def _event_in(names: frozenset[str]) -> pl.Expr:
    return pl.col("event").is_in(sorted(names))


def _union_names(targets: list[Target]) -> frozenset[str] | None:
    """Every event name the targets can match, or ``None`` when one of them matches any event."""
    names: set[str] = set()
    for target in targets:
        if target.event_names is None:
            return None
        names |= target.event_names
    return frozenset(names)


class PlannedLeaf(Protocol):
    """A behavioural leaf, validated and resolved (targets, filters, windows), ready to join the fused plan."""

    @property
    def property_keys(self) -> set[str]: ...

    def contribute(self, name: str, plan: FusedPlan) -> None:
        """Add the leaf's reads and aggregates to ``plan`` and its boolean as output ``name``."""
