"""Evaluate many cohorts in one Polars plan (ARCHITECTURE: "one fused plan").

Every distinct leaf of every selected cohort becomes one boolean column over the persons frame, computed in a
single ``with_columns`` over one scan of persons (each person's property JSON is read once for all keys;
behavioural leaves come from one scan of the events, keyed by an integer person code; distinct-id leaves are
aggregated from the distinct-id table and joined once). Each cohort is then a boolean expression over those
columns, built with the negation algebra of :mod:`.conditions`, and the result is turned into ``(cohort_id,
person_id)`` rows, ordered by cohort and person. Referenced cohorts that this run computes are inlined (same data
snapshot, decision 5); others are read from the static or published memberships passed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from cohort_pipeline.engine.behavior import BehaviorPlanner
from cohort_pipeline.engine.behaviors.plan import PERSON
from cohort_pipeline.engine.conditions import Condition, build_condition, root_members
from cohort_pipeline.engine.operators import EvaluationContext, PropertyOperand, compile_operator
from cohort_pipeline.engine.property_types import PropertyType, property_text_stages, resolve_property_types
from cohort_pipeline.errors import CalculationError, CohortValidationError
from cohort_pipeline.model import CohortDefinition, parse_cohort
from cohort_pipeline.model.filters import FilterGroup, PersonFilter, parse_filters

MEMBERSHIP_SCHEMA = {"cohort_id": pl.Int64, "person_id": pl.String}
COHORT_LEAF_TYPES = ("cohort", "static-cohort", "precalculated-cohort", "dynamic-cohort")
LOOP = "Cohorts cannot reference other cohorts in a loop."

Memberships = Mapping[int, Iterable[str]] | pl.DataFrame | None


@dataclass
class EvaluationResult:
    """Members of every cohort that could be calculated, and why the others could not."""

    memberships: pl.DataFrame
    errors: dict[int, CalculationError] = field(default_factory=dict)

    def counts(self) -> dict[int, int]:
        counted = self.memberships.group_by("cohort_id").len()
        return dict(zip(counted["cohort_id"].to_list(), counted["len"].to_list(), strict=True))


def _as_sets(memberships: Memberships) -> dict[int, pl.Series]:
    """``{cohort_id: Series of person ids}`` from either a mapping or a ``(cohort_id, person_id)`` frame."""
    if memberships is None:
        return {}
    if isinstance(memberships, pl.DataFrame):
        return {
            int(key[0]): group["person_id"].cast(pl.String)
            for key, group in memberships.group_by("cohort_id", maintain_order=True)
        }
    return {int(cid): pl.Series("person_id", list(ids), dtype=pl.String) for cid, ids in memberships.items()}


def _in_set(members: pl.Series) -> pl.Expr:
    """Is the person one of ``members``? (One hash lookup per person.)"""
    return pl.col("id").is_in(members.implode())


def _lazy(frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def _leaf_key(leaf: Any) -> str:
    """Leaves that differ only in negation share one column (negation is applied by the algebra)."""
    return json.dumps(leaf.model_dump(exclude={"negation"}, mode="json"), sort_keys=True, default=str)


class _PlanBuilder:
    """Collects the leaf columns of all cohorts and builds each cohort's membership expression once."""

    def __init__(
        self,
        definitions: dict[int, CohortDefinition],
        ctx: EvaluationContext,
        property_types: Mapping[str, PropertyType],
        static_sets: dict[int, pl.Series],
        published_sets: dict[int, pl.Series],
        test_account_filters: FilterGroup | None,
        behaviors: BehaviorPlanner,
    ) -> None:
        self.definitions = definitions
        self.ctx = ctx
        self.property_types = property_types
        self.static_sets = static_sets
        self.published_sets = published_sets
        self.test_account_filters = test_account_filters
        self.behaviors = behaviors
        self.person_columns: dict[str, tuple[str, pl.Expr]] = {}
        self.person_texts: dict[str, str] = {}  # property key -> its text column, extracted once per person
        self.distinct_id_columns: dict[str, tuple[str, pl.Expr]] = {}
        self.members: dict[int, pl.Expr] = {}
        self.errors: dict[int, CalculationError] = {}
        self._in_progress: list[int] = []

    # ---- leaves ------------------------------------------------------------------------------------------

    def _column(self, registry: dict[str, tuple[str, pl.Expr]], prefix: str, leaf: Any, expr_fn) -> pl.Expr:
        key = _leaf_key(leaf)
        if key not in registry:
            registry[key] = (f"__{prefix}{len(registry)}", expr_fn())
        return pl.col(registry[key][0])

    def _person_leaf(self, leaf: Any) -> pl.Expr:
        if leaf.type == "person_metadata":
            operand = PropertyOperand(
                text=pl.col("created_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z"),
                type=PropertyType.DATETIME,
                instant=pl.col("created_at"),
            )
            return self._column(self.person_columns, "p", leaf,
                                lambda: compile_operator(leaf.operator, leaf.value, operand, self.ctx))
        if leaf.key == "distinct_id":
            operand = PropertyOperand(text=pl.col("distinct_id"), type=PropertyType.STRING)
            predicate = compile_operator(leaf.operator, leaf.value, operand, self.ctx)
            if predicate.meta.is_literal():
                return predicate  # e.g. an empty list: true for every person, even one without distinct ids
            return self._column(self.distinct_id_columns, "d", leaf, lambda: predicate)
        text = self.person_texts.setdefault(leaf.key, f"__pt{len(self.person_texts)}")
        operand = PropertyOperand(text=pl.col(text), type=self.property_types.get(leaf.key, PropertyType.STRING))
        return self._column(self.person_columns, "p", leaf,
                            lambda: compile_operator(leaf.operator, leaf.value, operand, self.ctx))

    def _cohort_leaf(self, leaf: Any) -> Condition:
        target = int(leaf.value)
        if target in self.definitions:
            return Condition(self.cohort_members(target), leaf.negation)
        members = self.static_sets.get(target)
        if members is None:
            members = self.published_sets.get(target)
        if members is None:
            # clarification 17: an unknown cohort matches nobody, and so does its negation
            return Condition(pl.lit(False), False)
        return Condition(_in_set(members), leaf.negation)

    def compile_leaf(self, leaf: Any) -> Condition:
        if leaf.type in COHORT_LEAF_TYPES:
            return self._cohort_leaf(leaf)
        if leaf.type in ("person", "person_metadata"):
            return Condition(self._person_leaf(leaf), leaf.negation)
        if leaf.type == "behavioral":
            return Condition(pl.col(self.behaviors.register(leaf)), leaf.negation)
        raise CalculationError(f"Unknown filter type '{leaf.type}'", error_code="validation_error")

    # ---- cohorts -----------------------------------------------------------------------------------------

    def cohort_members(self, cohort_id: int) -> pl.Expr:
        """The membership expression of a cohort of this run, dependencies compiled (and memoized) first."""
        if cohort_id in self.members:
            return self.members[cohort_id]
        if cohort_id in self.errors:
            raise CalculationError(f"Referenced cohort {cohort_id} failed: {self.errors[cohort_id].message}",
                                   error_code=self.errors[cohort_id].error_code)
        if cohort_id in self._in_progress:
            raise CalculationError(LOOP, error_code="validation_error")
        self._in_progress.append(cohort_id)
        try:
            members = self._build(self.definitions[cohort_id])
        finally:
            self._in_progress.pop()
        self.members[cohort_id] = members
        return members

    def _build(self, definition: CohortDefinition) -> pl.Expr:
        if definition.is_static and definition.id in self.static_sets:
            return _in_set(self.static_sets[definition.id])
        root = definition.effective_filters()
        if root is None or not root.values:
            return pl.lit(False)  # zero leaves: nobody (PostHog's `no_properties`)
        if self.test_account_filters is not None and definition.filters is not None \
                and definition.filters.filterTestAccounts:
            root = FilterGroup(type="AND", values=[root, self.test_account_filters])
        return root_members(build_condition(root, self.compile_leaf))

    def build_all(self) -> dict[int, pl.Expr]:
        for cohort_id in self.definitions:
            try:
                self.cohort_members(cohort_id)
            except CalculationError as error:
                error.cohort_id = cohort_id
                self.errors[cohort_id] = error
        return {cid: expr for cid, expr in self.members.items()}


def _person_keys(nodes: Iterable[Any]) -> set[str]:
    keys: set[str] = set()
    for node in nodes:
        if node is None:
            continue
        if hasattr(node, "values") and isinstance(node.values, list) and node.type in ("AND", "OR"):
            keys |= _person_keys(node.values)
        elif node.type == "person" and node.key != "distinct_id":
            keys.add(node.key)
    return keys


def _test_account_group(filters: Sequence[Mapping[str, Any]]) -> FilterGroup | None:
    """The project's person-type test-account filters as one AND group (decision 6)."""
    person_filters = [f for f in filters if f.get("type", "person") == "person"]
    if not person_filters:
        return None
    return parse_filters({"properties": {"type": "AND", "values": person_filters}}, internal=True).properties


def _parse_definitions(cohorts: Iterable[Mapping[str, Any] | CohortDefinition]) -> tuple[
        dict[int, CohortDefinition], dict[int, CalculationError]]:
    definitions: dict[int, CohortDefinition] = {}
    errors: dict[int, CalculationError] = {}
    for raw in cohorts:
        cohort_id = raw.id if isinstance(raw, CohortDefinition) else raw.get("id")
        if cohort_id is None:
            raise CohortValidationError("Every cohort passed to evaluate_cohorts needs an 'id'.", attr="id")
        try:
            definitions[int(cohort_id)] = raw if isinstance(raw, CohortDefinition) else parse_cohort(
                dict(raw), internal=True)
        except CohortValidationError as error:
            errors[int(cohort_id)] = CalculationError(str(error), error_code="validation_error",
                                                      cohort_id=int(cohort_id))
    return definitions, errors


def evaluate_cohorts_detailed(
    cohorts: Iterable[Mapping[str, Any] | CohortDefinition],
    persons: pl.LazyFrame | pl.DataFrame,
    person_distinct_ids: pl.LazyFrame | pl.DataFrame,
    events: pl.LazyFrame | pl.DataFrame | None = None,
    *,
    now: datetime | None = None,
    timezone: str = "UTC",
    property_definitions: Mapping[str, str] | None = None,
    test_account_filters: Sequence[Mapping[str, Any]] = (),
    static_memberships: Memberships = None,
    published_memberships: Memberships = None,
    actions: Sequence[Mapping[str, Any]] = (),
) -> EvaluationResult:
    """Like :func:`evaluate_cohorts`, but a cohort that cannot be calculated is reported in ``errors`` while
    every other cohort is still computed (a failed dependency fails its dependents only)."""
    definitions, errors = _parse_definitions(cohorts)
    ctx = EvaluationContext(now=(now or datetime.now(UTC)).astimezone(UTC), timezone=timezone)
    persons_lf = _lazy(persons)
    tests = _test_account_group(test_account_filters)
    keys = _person_keys([d.effective_filters() for d in definitions.values()] + [tests])
    property_types = resolve_property_types(persons_lf, keys, property_definitions)
    behaviors = BehaviorPlanner(ctx, actions, property_definitions)
    builder = _PlanBuilder(definitions, ctx, property_types, _as_sets(static_memberships),
                           _as_sets(published_memberships), tests, behaviors)
    members = builder.build_all()
    errors.update(builder.errors)
    events_lf = None if events is None else _lazy(events)
    return EvaluationResult(_collect(persons_lf, _lazy(person_distinct_ids), events_lf, builder, members), errors)


def _collect(persons: pl.LazyFrame, distinct_ids: pl.LazyFrame, events: pl.LazyFrame | None,
             builder: _PlanBuilder, members: dict[int, pl.Expr]) -> pl.DataFrame:
    if not members:
        return pl.DataFrame(schema=MEMBERSHIP_SCHEMA)
    # every person leaf first (each person's JSON read once for all keys), then the persons in id order, numbered:
    # the behaviours come back one row per number (laid beside the persons, no join), and the membership rows come
    # out ordered by (cohort_id, person_id) without sorting them (ids are unique)
    for stage in property_text_stages("properties", builder.person_texts):
        persons = persons.with_columns(stage)
    persons = (
        persons.with_columns(expr.alias(name) for name, expr in builder.person_columns.values())
        .select("id", *[name for name, _ in builder.person_columns.values()])
        .sort("id")
        .with_row_index(PERSON)
    )
    numbered = persons.collect()
    numbered = numbered.with_columns(_compact(numbered["id"]))
    frame = numbered.lazy()
    if builder.behaviors.has_leaves:
        # one scan of the events for every behavioural leaf of every cohort (engine/behavior.py); the behaviours
        # come back one row per person number, in the persons' order: they are laid beside the persons as they are
        codes = distinct_ids.join(numbered.lazy().select("id", PERSON), left_on="person_id", right_on="id",
                                  how="inner")
        behaviours = builder.behaviors.build(events, codes.select("distinct_id", PERSON), numbered.height)
        frame = numbered.hstack(behaviours).lazy()
    if builder.distinct_id_columns:
        per_person = distinct_ids.group_by("person_id").agg(
            [expr.any().alias(name) for name, expr in builder.distinct_id_columns.values()]
        )
        names = [name for name, _ in builder.distinct_id_columns.values()]
        frame = frame.join(per_person, left_on="id", right_on="person_id", how="left",
                           maintain_order="left").with_columns([pl.col(name).fill_null(False) for name in names])
    cohorts = sorted(members)
    flags = frame.select("id", *[members[cid].alias(f"cohort_{cid}") for cid in cohorts]).collect()
    # one block of rows per cohort, in id order: unique (cohort_id, person_id) rows in sorted order, no sort needed
    return pl.concat([
        flags.lazy().filter(f"cohort_{cid}").select(pl.lit(cid, dtype=pl.Int64).alias("cohort_id"),
                                                   pl.col("id").alias("person_id"))
        for cid in cohorts
    ]).collect()


def _compact(ids: pl.Series) -> pl.Series:
    """``ids`` with their texts copied into one buffer, in their order.

    Sorting a text column moves only the references to the texts, which stay where the file put them; every later
    pass over the sorted ids (the membership rows' order checks, hashing and writes in the service) would then jump
    around memory. At 10M persons one comparison pass over the sorted ids took 0.50 s as sorted and 0.03 s
    compacted, a text search 0.9 s, for 0.6 s to compact them once."""
    return pl.from_arrow(ids.to_arrow()).alias(ids.name)


def evaluate_cohorts(
    cohorts: Iterable[Mapping[str, Any] | CohortDefinition],
    persons: pl.LazyFrame | pl.DataFrame,
    person_distinct_ids: pl.LazyFrame | pl.DataFrame,
    events: pl.LazyFrame | pl.DataFrame | None = None,
    *,
    now: datetime | None = None,
    timezone: str = "UTC",
    property_definitions: Mapping[str, str] | None = None,
    test_account_filters: Sequence[Mapping[str, Any]] = (),
    static_memberships: Memberships = None,
    published_memberships: Memberships = None,
    actions: Sequence[Mapping[str, Any]] = (),
) -> pl.DataFrame:
    """Compute the members of PostHog cohorts as a ``(cohort_id, person_id)`` frame.

    ``cohorts`` are PostHog cohort objects (JSON dicts with ``id``, ``filters`` or legacy ``groups``,
    ``is_static``). ``persons`` / ``person_distinct_ids`` / ``events`` follow docs/data_contract.md. ``now`` and
    ``timezone`` fix the clock and the project timezone for date filters. ``property_definitions`` maps property
    keys to ``String`` / ``Numeric`` / ``DateTime`` / ``Boolean`` (undeclared keys are inferred from the data).
    ``test_account_filters`` are the project's filters ANDed onto cohorts with ``filterTestAccounts``.
    ``static_memberships`` gives the members of static cohorts (uploaded CSVs, person-id lists) and
    ``published_memberships`` the last published members of dynamic cohorts that are referenced but not
    computed in this call; both as ``{cohort_id: person_ids}`` or a ``(cohort_id, person_id)`` frame.
    ``actions`` are the project's actions in PostHog's JSON (``{"id", "name", "steps": [{"event", "url",
    "url_matching", "properties"}]}``) for behavioural leaves with ``event_type: "actions"``; an id not listed
    matches nobody. Every behavioural leaf of every cohort is computed from one scan of ``events``.

    Raises :class:`CalculationError` naming the first cohort that could not be calculated; use
    :func:`evaluate_cohorts_detailed` to keep the others.
    """
    result = evaluate_cohorts_detailed(
        cohorts, persons, person_distinct_ids, events, now=now, timezone=timezone,
        property_definitions=property_definitions, test_account_filters=test_account_filters,
        static_memberships=static_memberships, published_memberships=published_memberships, actions=actions,
    )
    if result.errors:
        raise next(iter(result.errors.values()))
    return result.memberships
