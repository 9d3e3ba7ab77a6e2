"""The fused behavioural plan: one event scan, one join to persons, one small group-by per target for all leaves.

Every behaviour family contributes to a :class:`FusedPlan`:

* row columns (targets, filter sets and their combinations) through :class:`EventColumns`;
* *aggregates* per person (conditional any / count / min), de-duplicated by key, so two leaves reading the same
  event in the same window share one aggregate;
* *outputs*: each leaf's boolean, an expression over those aggregates;
* *branches* for the two behaviours that need more than one value per person (sequences, regularity); a branch
  reads the same row frame and yields ``(__person, <leaf columns>)``;
* what it reads: the targets, windows and filters (which drive the scan's predicate and where property JSON is
  parsed), and which targets need their history (first-time and restarted look before their windows).

:meth:`FusedPlan.build` turns that into one evaluation: the event source is projected to the columns it needs,
filtered by the union of the event names and the widest window (plus, for the names whose history matters,
everything before it), joined to the distinct ids, which carry an integer person code (events of unknown distinct
ids drop out; several distinct ids of one person become one code), and aggregated: one group-by per target over
that target's rows, plus the branches' frames, collected together and laid out by code (the codes are dense: a
person's values sit at their code's row, no join). They all share the row frame through one explicit cache; the
branches filter it on computed columns only (:meth:`FusedPlan.within`), so the optimiser cannot push a branch's
predicate below the cache into a second scan of the source.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import polars as pl

from cohort_pipeline.engine.behaviors.event_matching import EventColumns, EventFilters, Target, event_named
from cohort_pipeline.engine.behaviors.windows import Window

TIMESTAMP = pl.col("timestamp")
PERSON = "__person"
"""The person column of the row frame and of every per-person frame inside the plan: a dense ``UInt32`` code of
``person_id`` (hashing, joining and sorting integers is several times cheaper than 36-character strings)."""
EVENTS_SCHEMA = {"uuid": pl.String, "event": pl.String, "distinct_id": pl.String,
                 "timestamp": pl.Datetime("us", "UTC"), "properties": pl.String}


#: How a per-person aggregate is taken over its row column, and its value for a person without target events.
AGGREGATIONS: dict[str, tuple[Callable[[pl.Expr], pl.Expr], bool | int | None]] = {
    "any": (lambda column: column.any(), False),
    "count": (lambda column: column.sum(), 0),
    "min": (lambda column: column.min(), None),
}


class Branch(Protocol):
    """A per-person computation of its own (sequences, regularity) over the shared row frame."""

    def frame(self, rows: pl.LazyFrame) -> pl.LazyFrame: ...


class FusedPlan:
    def __init__(self, columns: EventColumns) -> None:
        self.columns = columns
        self._aggregates: dict[str, tuple[str, str, pl.Expr, str]] = {}
        self._hits: dict[str, str] = {}
        self.outputs: dict[str, pl.Expr] = {}
        self._reads: list[tuple[Target, Window]] = []
        self._history: list[tuple[Target, datetime]] = []
        self._branches: dict[type, Branch] = {}

    # ---- what the families call -----------------------------------------------------------------------------

    def match(self, target: Target, filters: EventFilters | None = None) -> pl.Expr:
        """The row column "this event is the target and passes the filters"."""
        columns = self.columns
        hit = columns.predicate(target.key, lambda: target.expr(columns), level=0)
        self._hits[hit.meta.output_name()] = hit.meta.output_name()
        if filters is None:
            return hit
        passes = columns.predicate(f"filters:{filters.key}", lambda: filters.expr(columns), level=0)
        match = columns.predicate(f"{target.key}&{filters.key}", lambda: hit & passes, level=1)
        self._hits[match.meta.output_name()] = hit.meta.output_name()
        return match

    def within(self, match: pl.Expr, window: Window) -> pl.Expr:
        """The row column "``match`` and inside ``window``", for the branches: they filter the shared rows on
        computed columns only, so no branch predicate can be pushed below the shared rows into a scan of its own."""
        return self.columns.predicate(f"within|{match.meta.output_name()}|{window.key}",
                                      lambda: match & window.contains(TIMESTAMP), level=2)

    def read(self, target: Target, window: Window, filters: EventFilters | None = None) -> None:
        """Declare that a leaf reads ``target`` events (narrowed by ``filters``) in ``window``: drives the scan's
        predicate and where the properties they compare are parsed. A leaf must declare every window in which it
        reads a :meth:`match` column."""
        self._reads.append((target, window))
        self._require(target, filters, window.lower, window.upper)

    def read_history(self, target: Target, upper: datetime) -> None:
        """Declare that a leaf needs every ``target`` event up to ``upper``, however old."""
        self._history.append((target, upper))
        self._require(target, None, None, upper)

    def _require(self, target: Target, filters: EventFilters | None, lower: datetime | None,
                 upper: datetime) -> None:
        for key, events in target.property_reads:
            self.columns.require(key, events, lower, upper)
        for key in filters.property_keys if filters is not None else ():
            witnesses = filters.witnesses(key, self.columns.property_types)
            self.columns.require(key, target.event_names, lower, upper, witnesses)

    def aggregate(self, key: str, kind: str, match: pl.Expr, make_row: Callable[[], pl.Expr]) -> pl.Expr:
        """A per-person aggregate, shared by every leaf asking for the same key: the row column ``make_row()``
        (false / null unless ``match``, a :meth:`match` column) aggregated by ``kind`` (see :data:`AGGREGATIONS`).
        It is taken over the rows of ``match``'s target only."""
        if key not in self._aggregates:
            hit = self._hits[match.meta.output_name()]
            self._aggregates[key] = (f"__ea{len(self._aggregates)}", kind, make_row(), hit)
        return pl.col(self._aggregates[key][0])

    def any_in(self, match: pl.Expr, window: Window) -> pl.Expr:
        """Whether the person has a matching event inside ``window``."""
        return self.aggregate(f"any|{match.meta.output_name()}|{window.key}", "any", match,
                              lambda: match & window.contains(TIMESTAMP))

    def any_before(self, match: pl.Expr, bound: datetime) -> pl.Expr:
        """Whether the person has a matching event before ``bound`` (however old: declare it with
        :meth:`read_history`)."""
        return self.aggregate(f"any|{match.meta.output_name()}|<{bound.isoformat()}", "any", match,
                              lambda: match & (TIMESTAMP < bound))

    def count_in(self, match: pl.Expr, window: Window) -> pl.Expr:
        return self.aggregate(f"count|{match.meta.output_name()}|{window.key}", "count", match,
                              lambda: match & window.contains(TIMESTAMP))

    def first_passes(self, match: pl.Expr, passes: pl.Expr, window: Window) -> pl.Expr:
        """Whether one of the person's earliest ``match`` events inside ``window`` also ``passes`` (null when
        there is no match): one minimum over ``2 * timestamp + (0 if it passes else 1)``, so at equal timestamps
        an event that passes comes first."""
        earliest = self.aggregate(
            f"min|{match.meta.output_name()}|{passes.meta.output_name()}|{window.key}", "min", match,
            lambda: pl.when(match & window.contains(TIMESTAMP)).then(
                TIMESTAMP.dt.epoch("us") * 2 + (~passes).cast(pl.Int64)))
        return earliest % 2 == 0

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
        names = union_names(targets)
        upper = max([w.upper for _, w in self._reads] + [u for _, u in self._history])
        predicate = TIMESTAMP <= upper
        if self._reads:
            recent = TIMESTAMP >= min(w.lower for _, w in self._reads)
            if self._history:
                history_names = union_names([t for t, _ in self._history])
                recent = pl.lit(True) if history_names is None else recent | event_named(history_names)
            predicate = predicate & recent
        if names is not None:
            predicate = predicate & event_named(names)
        return predicate

    def build(self, events: pl.LazyFrame | None, codes: pl.LazyFrame, persons: int) -> pl.DataFrame:
        """One boolean column per output, one row per person code: row ``i`` is person ``i`` of ``codes``
        (``(distinct_id, __person)``, codes ``0 .. persons - 1``), so the caller lines it up with its persons
        without a join. A person without any read event is false everywhere."""
        frames = self.frames(events, codes)
        return self.per_person(pl.collect_all(frames) if frames else [], persons)

    def rows(self, events: pl.LazyFrame | None, codes: pl.LazyFrame) -> pl.LazyFrame:
        """The row frame: the events the leaves read (one scan, projected and filtered), with their person code
        (``codes``: ``(distinct_id, __person)``), property texts and every row column."""
        events = pl.LazyFrame(schema=EVENTS_SCHEMA) if events is None else _utc_timestamps(events)
        needed = ["event", "distinct_id", "timestamp"] + (["properties"] if self.columns.needs_properties else [])
        rows = events.select(needed)
        predicate = self._scan_predicate()
        if predicate is not None:
            rows = rows.filter(predicate)
        rows = self.columns.extract(rows.join(codes, on="distinct_id", how="inner"))
        for stage in self.columns.stages():
            rows = rows.with_columns(stage)
        return rows

    def aggregates_by_target(self) -> dict[str, list[tuple[str, str, pl.Expr]]]:
        """``{target row column: [(name, kind, row column)]}``: the aggregates taken over each target's rows."""
        by_target: dict[str, list[tuple[str, str, pl.Expr]]] = {}
        for name, kind, row, hit in self._aggregates.values():
            by_target.setdefault(hit, []).append((name, kind, row))
        return by_target

    def frames(self, events: pl.LazyFrame | None, codes: pl.LazyFrame) -> list[pl.LazyFrame]:
        """``(__person, <aggregates or branch columns>)`` per target and per branch: one group-by per target, over
        that target's rows only (an aggregate costs in proportion to the rows of its own event, not of every
        event the plan reads), and each branch's frame. Collected together, they read the events once."""
        rows = self.rows(events, codes)
        by_target = self.aggregates_by_target()
        if len(by_target) + len(self._branches) > 1:
            # every group-by and branch reads the same rows: one scan, whatever the optimiser prunes per reader
            rows = rows.cache()
        frames = [
            rows.filter(pl.col(hit)).with_columns(row.alias(name) for name, _, row in aggregates)
            .group_by(PERSON).agg(AGGREGATIONS[kind][0](pl.col(name)) for name, kind, _ in aggregates)
            for hit, aggregates in by_target.items()
        ]
        return frames + [branch.frame(rows) for branch in self._branches.values()]

    def per_person(self, frames: list[pl.DataFrame], persons: int) -> pl.DataFrame:
        """The outputs of ``persons`` persons (row ``i``: person code ``i``) from the collected :meth:`frames`.

        The codes are dense, so each frame's columns are scattered into full-length columns by code (direct
        indexing) rather than joined on it: with many cohorts the per-person frames hold dozens of columns, and
        joining them by a hash of the code cost several times more than the aggregates themselves. A person a
        frame does not hold gets that aggregate's "none" value (no match, zero events; a branch column: null)."""
        none = {name: AGGREGATIONS[kind][1] for name, kind, _, _ in self._aggregates.values()}
        present = pl.repeat(False, persons, dtype=pl.Boolean, eager=True)
        columns: dict[str, pl.Series] = {}
        for frame in frames:
            codes = frame[PERSON]
            present = present.scatter(codes, True)
            for column in frame.drop(PERSON).iter_columns():
                full = pl.repeat(none.get(column.name), persons, dtype=column.dtype, eager=True).alias(column.name)
                columns[column.name] = full.scatter(codes, column)
        dense = pl.DataFrame([present.alias("__has_rows"), *columns.values()])
        return dense.select(
            (pl.col("__has_rows") & expr.fill_null(False)).alias(name) for name, expr in self.outputs.items())


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


def union_names(targets: list[Target]) -> frozenset[str] | None:
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
    def targets(self) -> list[Target]: ...

    @property
    def property_keys(self) -> set[str]: ...

    def contribute(self, name: str, plan: FusedPlan) -> None:
        """Add the leaf's reads and aggregates to ``plan`` and its boolean as output ``name``."""
