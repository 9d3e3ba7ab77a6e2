"""Cohort-to-cohort references: cycle detection (spec 6.3) and dependency order (spec 9.2, decision 5).

A cohort's dependencies are the ids of its ``cohort`` leaves (and the engine-only cohort leaf types). The graph
is given as ``{cohort_id: CohortDefinition}`` or, when the caller already knows the edges, ``{cohort_id: set of
referenced ids}``; the two may be mixed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Final, Union

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model.cohort import CohortDefinition

LOOP_MESSAGE: Final[str] = "Cohorts cannot reference other cohorts in a loop."
INVALID_ID_MESSAGE: Final[str] = "Invalid Cohort ID in filter"

CohortGraph = Mapping[int, Union[CohortDefinition, Set[int]]]


def references_of(item: CohortDefinition | Set[int]) -> set[int]:
    """The ids a graph entry points at."""
    return item.referenced_cohort_ids() if isinstance(item, CohortDefinition) else set(item)


def _edges(cohorts: CohortGraph) -> dict[int, list[int]]:
    """Sorted out-edges of every node, restricted to nodes of the graph (a dangling id has no edges to follow)."""
    return {cid: sorted(ref for ref in references_of(item) if ref in cohorts) for cid, item in cohorts.items()}


def find_cycle(cohorts: CohortGraph) -> list[int] | None:
    """A reference loop as the list of ids along it, first id repeated at the end (``[5, 5]`` for a
    self-reference, ``[1, 2, 1]`` for two cohorts referencing each other); ``None`` when there is none.

    References to ids outside ``cohorts`` are ignored here (they cannot close a loop). Nodes and edges in
    ascending id order, so the answer is deterministic.
    """
    edges = _edges(cohorts)
    done: set[int] = set()
    for start in sorted(edges):
        if start not in done and (loop := _loop_from(start, edges.__getitem__, done)) is not None:
            return loop
    return None


def validate_no_cycles(
    cohort_id: int | None,
    new_definition: CohortDefinition | Set[int],
    existing: Mapping[int, CohortDefinition | Set[int]],
) -> None:
    """The update-path check of [API] ``will_create_loops`` (spec 2.3, 6.3), with ``new_definition`` replacing
    ``existing[cohort_id]``.

    Walks the references reachable from the edited cohort depth-first: reaching a cohort already on the current
    path (the edited cohort itself included, so a self-reference counts) raises "Cohorts cannot reference other
    cohorts in a loop."; reaching an id that is not in ``existing`` raises "Invalid Cohort ID in filter".
    ``existing`` should hold every cohort of the project (PostHog looks ids up project-wide, deleted ones
    included). PostHog does not run this on create (a new cohort cannot be referenced yet, and unknown ids
    simply match nobody), so ``cohort_id=None`` is a no-op.
    """
    if cohort_id is None:
        return
    graph: dict[int, CohortDefinition | Set[int]] = {**existing, cohort_id: new_definition}

    def children(node: int) -> list[int]:
        if node not in graph:
            raise CohortValidationError(INVALID_ID_MESSAGE)
        return sorted(references_of(graph[node]))

    if _loop_from(cohort_id, children, set()) is not None:
        raise CohortValidationError(LOOP_MESSAGE)


def _loop_from(start: int, children: Callable[[int], Iterable[int]], done: set[int]) -> list[int] | None:
    """Depth-first from ``start``: the first loop met, as ids along it with the first repeated at the end, or
    ``None``. ``children(node)`` is called once, when the walk enters ``node`` (it may raise for an unknown id);
    nodes already in ``done`` are skipped and every node the walk finishes is added to it. Iterative, so deep
    chains cannot overflow the stack."""
    path: list[int] = [start]
    on_path: set[int] = {start}
    iterators = [iter(children(start))]
    while iterators:
        child = next(iterators[-1], None)
        if child is None:
            iterators.pop()
            node = path.pop()
            on_path.discard(node)
            done.add(node)
            continue
        if child in on_path:
            return path[path.index(child):] + [child]
        if child not in done:
            iterators.append(iter(children(child)))
            path.append(child)
            on_path.add(child)
    return None


def dependency_order(cohorts: CohortGraph) -> list[int]:
    """Every id of ``cohorts``, each after the cohorts it references (dependencies first).

    Kahn's algorithm with a min-heap, so independent cohorts come in ascending id order and the order is the same
    on every run. References to ids outside ``cohorts`` are dropped (PostHog's ``sort_cohorts_topologically``
    drops ids missing from its cache; such a cohort is read from its last published version, decision 5). A loop,
    self-references included, raises "Cohorts cannot reference other cohorts in a loop."
    """
    edges = _edges(cohorts)
    waiting = {cid: len(refs) for cid, refs in edges.items()}
    dependents: dict[int, list[int]] = {cid: [] for cid in edges}
    for cid, refs in edges.items():
        for ref in refs:
            dependents[ref].append(cid)
    ready = [cid for cid, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        cid = heapq.heappop(ready)
        order.append(cid)
        for dependent in dependents[cid]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) != len(edges):
        raise CohortValidationError(LOOP_MESSAGE)
    return order
