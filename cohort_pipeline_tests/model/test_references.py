"""Cohort references: loops (spec 2.3, 6.3, decision 5) and dependency order (spec 9.2)."""

from __future__ import annotations

from typing import Any

import pytest

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model.cohort import CohortDefinition, parse_cohort
from cohort_pipeline.model.references import dependency_order, find_cycle, validate_no_cycles

LOOP = "Cohorts cannot reference other cohorts in a loop."
INVALID = "Invalid Cohort ID in filter"


def cohort(*refs: int, negated: tuple[int, ...] = ()) -> CohortDefinition:
    """A dynamic cohort: a person leaf AND a cohort leaf per reference."""
    values: list[dict[str, Any]] = [{"type": "person", "key": "plan", "operator": "exact", "value": "pro"}]
    values += [{"type": "cohort", "key": "id", "value": ref, "negation": ref in negated} for ref in refs]
    return parse_cohort({"filters": {"properties": {"type": "AND", "values": values}}})


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({}, None),
        ({1: set()}, None),
        ({1: {1}}, [1, 1]),  # self
        ({1: {2}, 2: {1}}, [1, 2, 1]),  # 2-cycle
        ({1: {2}, 2: {3}, 3: {1}}, [1, 2, 3, 1]),  # 3-cycle
        ({1: {2, 3}, 2: {4}, 3: {4}, 4: set()}, None),  # diamond without cycle
        ({1: {2}, 2: {99}}, None),  # a dangling id cannot close a loop
        ({5: {6}, 6: {7}, 7: {6}}, [6, 7, 6]),  # the loop does not include the entry point
        ({1: {2, 3}, 2: {4}, 3: {4}, 4: {1}}, [1, 2, 4, 1]),
    ],
)
def test_find_cycle(graph: dict[int, set[int]], cycle: list[int] | None) -> None:
    assert find_cycle(graph) == cycle


def test_find_cycle_reads_definitions() -> None:
    assert find_cycle({1: cohort(2), 2: cohort(3, negated=(3,)), 3: cohort(1)}) == [1, 2, 3, 1]
    assert find_cycle({1: cohort(2, 3), 2: cohort(4), 3: cohort(4), 4: cohort()}) is None
    assert find_cycle({1: cohort(2), 2: {1}}) == [1, 2, 1]  # definitions and id sets may be mixed


def test_find_cycle_handles_deep_chains() -> None:
    chain = {i: {i + 1} for i in range(5000)}
    assert find_cycle(chain) is None
    chain[5000] = {0}
    assert find_cycle(chain) == [*range(5001), 0]


@pytest.mark.parametrize(
    ("cohort_id", "new_refs", "existing", "expected"),
    [
        (1, {1}, {1: set()}, LOOP),  # self-reference
        (1, {2}, {1: set(), 2: {1}}, LOOP),  # 2-cycle through an existing cohort
        (1, {2}, {1: set(), 2: {3}, 3: {1}}, LOOP),  # 3-cycle
        (1, {2}, {1: set(), 2: {3}, 3: {2}}, LOOP),  # a loop further down is a loop too (PostHog DFS)
        (1, {2, 3}, {1: set(), 2: {4}, 3: {4}, 4: set()}, None),  # diamond
        (1, {2}, {1: {2}, 2: set()}, None),  # unchanged reference
        (1, {2}, {2: {1}}, LOOP),  # the edited cohort need not be in `existing`
        (1, {2}, {1: {3}, 2: set(), 3: {1}}, None),  # the old definition of 1 is replaced
        (1, {77}, {1: set()}, INVALID),  # unknown id (spec 2.3)
        (1, {2}, {1: set(), 2: {77}}, INVALID),  # unknown id reached through another cohort
        (1, set(), {1: set(), 2: {77}}, None),  # unreachable problems are not this cohort's
    ],
)
def test_validate_no_cycles(cohort_id: int, new_refs: set[int], existing: dict[int, set[int]],
                            expected: str | None) -> None:
    if expected is None:
        validate_no_cycles(cohort_id, new_refs, existing)
        return
    with pytest.raises(CohortValidationError) as caught:
        validate_no_cycles(cohort_id, new_refs, existing)
    assert (caught.value.detail, caught.value.attr) == (expected, None)


def test_validate_no_cycles_with_definitions() -> None:
    existing = {1: cohort(), 2: cohort(3), 3: cohort()}
    validate_no_cycles(1, cohort(2), existing)
    with pytest.raises(CohortValidationError, match="in a loop"):
        validate_no_cycles(3, cohort(1), {**existing, 1: cohort(2)})
    with pytest.raises(CohortValidationError, match="in a loop"):
        validate_no_cycles(4, cohort(4), existing)


def test_validate_no_cycles_is_a_no_op_on_create() -> None:
    # PostHog does not run it on create: a new cohort cannot be referenced, and unknown ids match nobody
    validate_no_cycles(None, {77}, {})


@pytest.mark.parametrize(
    ("graph", "order"),
    [
        ({}, []),
        ({3: set(), 1: set(), 2: set()}, [1, 2, 3]),  # independent: ascending ids
        ({1: {2}, 2: {3}, 3: set()}, [3, 2, 1]),  # chain: dependencies first
        ({1: {2, 3}, 2: {4}, 3: {4}, 4: set()}, [4, 2, 3, 1]),  # diamond
        ({10: {2}, 2: set(), 5: set()}, [2, 5, 10]),
        ({1: {99}, 2: {1}}, [1, 2]),  # ids outside the mapping are dropped
    ],
)
def test_dependency_order(graph: dict[int, set[int]], order: list[int]) -> None:
    result = dependency_order(graph)
    assert result == order
    position = {cid: i for i, cid in enumerate(result)}
    assert all(position[ref] < position[cid] for cid, refs in graph.items() for ref in refs if ref in graph)


@pytest.mark.parametrize("graph", [{1: {1}}, {1: {2}, 2: {1}}, {1: {2}, 2: {3}, 3: {1}, 4: set()}])
def test_dependency_order_rejects_loops(graph: dict[int, set[int]]) -> None:
    with pytest.raises(CohortValidationError) as caught:
        dependency_order(graph)
    assert caught.value.detail == LOOP


def test_dependency_order_of_definitions() -> None:
    assert dependency_order({7: cohort(3, 5), 5: cohort(3), 3: cohort()}) == [3, 5, 7]
