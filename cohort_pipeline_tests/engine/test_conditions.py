"""PostHog's negation algebra (spec 6.2), tested directly on sets.

Universe U = {1..8}. Three leaf sets, chosen so every Venn region is populated:
    A = {1, 2, 3, 4}    B = {3, 4, 5, 6}    C = {2, 4, 6, 7}     (8 is in none)
Each case gives the tree, then the expected (set, negated) pair worked out by hand from the rules of 6.2:
  OR all positive -> (union, F); OR all negated -> (intersection, T); OR mixed -> flip every child, AND, flag T;
  AND: positives first, then intersect positives / subtract negatives; all-negated AND -> (union, T).
The end-to-end consequences through ``evaluate_cohorts`` are in test_operators.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import polars as pl
import pytest

from cohort_pipeline.engine.conditions import (
    EMPTY_GROUP,
    ROOT_NEGATED,
    Condition,
    build_condition,
    combine_group,
    is_group,
    root_members,
)
from cohort_pipeline.errors import CalculationError

U = set(range(1, 9))
SETS = {"A": {1, 2, 3, 4}, "B": {3, 4, 5, 6}, "C": {2, 4, 6, 7}}
FRAME = pl.DataFrame({"id": sorted(U), **{name: [i in members for i in sorted(U)] for name, members in
                                           SETS.items()}})


def leaf(name: str, negation: bool = False) -> SimpleNamespace:
    return SimpleNamespace(type="person", key=name, negation=negation)


def group(kind: str, *children) -> SimpleNamespace:
    return SimpleNamespace(type=kind, values=list(children))


def compile_leaf(node) -> Condition:
    return Condition(pl.col(node.key), node.negation)


def as_set(expr: pl.Expr) -> set[int]:
    return set(FRAME.filter(expr)["id"].to_list())


def evaluate(tree) -> tuple[set[int], bool]:
    condition = build_condition(tree, compile_leaf)
    return as_set(condition.members), condition.negated


A, B, C = SETS["A"], SETS["B"], SETS["C"]

ALGEBRA_CASES = [
    # leaves
    pytest.param(leaf("A"), (A, False), id="leaf"),
    pytest.param(leaf("A", True), (A, True), id="negated-leaf-keeps-its-set"),
    # OR
    pytest.param(group("OR", leaf("A"), leaf("B")), (A | B, False), id="OR-positive-union"),
    pytest.param(group("OR", leaf("A", True), leaf("B", True)), (A & B, True), id="OR-all-negated-intersection"),
    pytest.param(group("OR", leaf("A"), leaf("B", True)), (B - A, True), id="OR-mixed-becomes-negated-AND"),
    pytest.param(group("OR", leaf("B", True), leaf("A")), (B - A, True), id="OR-mixed-order-irrelevant"),
    pytest.param(group("OR", leaf("A"), leaf("B", True), leaf("C", True)), ((B & C) - A, True),
                 id="OR-one-positive-two-negated"),
    pytest.param(group("OR", leaf("A"), leaf("C"), leaf("B", True)), (B - A - C, True),
                 id="OR-two-positive-one-negated"),
    # AND
    pytest.param(group("AND", leaf("A"), leaf("B")), (A & B, False), id="AND-positive-intersection"),
    pytest.param(group("AND", leaf("A"), leaf("B", True)), (A - B, False), id="AND-subtracts-negated"),
    pytest.param(group("AND", leaf("B", True), leaf("A")), (A - B, False), id="AND-negated-first-still-subtracts"),
    pytest.param(group("AND", leaf("A"), leaf("B", True), leaf("C", True)), (A - B - C, False),
                 id="AND-one-positive-two-negated"),
    pytest.param(group("AND", leaf("A"), leaf("B"), leaf("C", True)), ((A & B) - C, False),
                 id="AND-two-positive-one-negated"),
    pytest.param(group("AND", leaf("A", True), leaf("B", True)), (A | B, True), id="AND-all-negated-union"),
    pytest.param(group("AND", leaf("A", True)), (A, True), id="AND-single-negated"),
    pytest.param(group("OR", leaf("A", True)), (A, True), id="OR-single-negated"),
    # nesting
    pytest.param(group("AND", leaf("C"), group("OR", leaf("A"), leaf("B", True))), (C - (B - A), False),
                 id="mixed-OR-under-AND"),
    pytest.param(group("AND", leaf("C"), group("AND", leaf("A", True), leaf("B", True))), (C - (A | B), False),
                 id="all-negated-AND-under-positive-AND"),
    pytest.param(group("AND", leaf("C"), group("OR", leaf("A", True), leaf("B", True))), (C - (A & B), False),
                 id="all-negated-OR-under-positive-AND"),
    pytest.param(group("OR", group("AND", leaf("A"), leaf("B", True)), leaf("C")), ((A - B) | C, False),
                 id="positive-AND-with-negation-under-OR"),
    pytest.param(group("OR", group("AND", leaf("A", True), leaf("B", True)), leaf("C")), ((A | B) - C, True),
                 id="negated-AND-mixed-into-OR"),
    pytest.param(group("AND", group("OR", leaf("A"), leaf("B")), group("OR", leaf("B"), leaf("C"))),
                 ((A | B) & (B | C), False), id="AND-of-ORs"),
]


@pytest.mark.parametrize(("tree", "expected"), ALGEBRA_CASES)
def test_negation_algebra(tree, expected):
    assert evaluate(tree) == expected


@pytest.mark.parametrize(("tree", "meaning"), [
    # whenever the algebra yields a positive set it must equal the boolean meaning of the tree
    (group("AND", leaf("C"), group("OR", leaf("A"), leaf("B", True))), C & (A | (U - B))),
    (group("AND", leaf("C"), group("AND", leaf("A", True), leaf("B", True))), C & (U - A) & (U - B)),
    (group("AND", leaf("C"), group("OR", leaf("A", True), leaf("B", True))), C & ((U - A) | (U - B))),
    (group("AND", leaf("A"), leaf("B", True), leaf("C", True)), A & (U - B) & (U - C)),
    (group("OR", group("AND", leaf("A"), leaf("B", True)), leaf("C")), (A & (U - B)) | C),
])
def test_positive_results_match_boolean_meaning(tree, meaning):
    members, negated = evaluate(tree)
    assert not negated
    assert members == meaning


def test_root_members_of_positive_root():
    assert as_set(root_members(build_condition(group("AND", leaf("A"), leaf("B", True)), compile_leaf))) == A - B


@pytest.mark.parametrize("tree", [
    leaf("A", True),
    group("AND", leaf("A", True)),
    group("AND", leaf("A", True), leaf("B", True)),
    group("OR", leaf("A", True), leaf("B", True)),
    group("OR", leaf("A"), leaf("B", True)),  # a root OR mixing a positive and a negated child
    group("OR", group("AND", leaf("A", True), leaf("B", True)), leaf("C")),
], ids=["leaf", "AND-single", "AND-all-negated", "OR-all-negated", "OR-mixed", "OR-with-negated-AND"])
def test_negated_root_is_an_error(tree):
    with pytest.raises(CalculationError) as error:
        root_members(build_condition(tree, compile_leaf))
    assert error.value.message == ROOT_NEGATED == "Top level condition cannot be negated"


def test_empty_group_is_an_error():
    with pytest.raises(CalculationError) as error:
        build_condition(group("AND", leaf("A"), group("OR")), compile_leaf)
    assert error.value.message == EMPTY_GROUP == "Cohort has a property group with no condition"
    with pytest.raises(CalculationError):
        combine_group("AND", [])


def test_is_group_distinguishes_groups_from_leaves():
    assert is_group(group("AND", leaf("A")))
    assert is_group(group("OR"))
    assert not is_group(leaf("A"))
    # a leaf whose `type` happens to be AND/OR but has no `values` list is still a leaf
    assert not is_group(SimpleNamespace(type="AND", value=[1]))
    assert not is_group(SimpleNamespace(type="person", values=[leaf("A")]))
