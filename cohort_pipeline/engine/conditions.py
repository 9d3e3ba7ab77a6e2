"""PostHog's negation algebra (spec 6.2), over per-person boolean columns.

PostHog has no universe of "all persons": every leaf is a set of person ids and negation travels as a flag that
the parent resolves by union, intersection or subtraction. Here a set is a boolean expression over the persons
frame ("is this person in the set?"), so union is ``|``, intersection ``&`` and subtraction ``& ~``. The rules
are applied literally, flag for flag, so the corner cases (a mixed OR, an all-negated AND) come out exactly as
PostHog's, including the error for a negated root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any

import polars as pl

from cohort_pipeline.errors import CalculationError

ROOT_NEGATED = "Top level condition cannot be negated"
EMPTY_GROUP = "Cohort has a property group with no condition"


@dataclass(frozen=True)
class Condition:
    """A set of persons (as a boolean expression) and whether the parent must treat it as negated."""

    members: pl.Expr
    negated: bool


def is_group(node: Any) -> bool:
    """Spec 3.1: an object with both ``type`` and ``values`` is a group; anything else is a leaf."""
    return hasattr(node, "values") and getattr(node, "type", None) in ("AND", "OR") and isinstance(node.values, list)


def combine_group(group_type: str, children: list[Condition]) -> Condition:
    """One group of spec 6.2: OR of positives is a union; OR of negatives is a negated intersection; a mixed OR
    becomes a negated AND of the flipped children; an AND intersects positives, subtracts negatives, and unions
    when every child is negated (keeping the negated flag)."""
    if not children:
        raise CalculationError(EMPTY_GROUP, error_code="validation_error")
    all_negated = all(child.negated for child in children)
    any_negated = any(child.negated for child in children)
    if group_type == "OR":
        if not any_negated:
            return Condition(reduce(lambda a, b: a | b, (c.members for c in children)), False)
        if all_negated:
            return Condition(reduce(lambda a, b: a & b, (c.members for c in children)), True)
        children = [Condition(c.members, not c.negated) for c in children]  # a ∨ ¬b = ¬(¬a ∧ b)
        result_negated = True
    else:
        result_negated = all_negated
    ordered = sorted(children, key=lambda c: c.negated)  # positives first (stable)
    members = ordered[0].members
    for child in ordered[1:]:
        if all_negated:
            members = members | child.members
        elif child.negated:
            members = members & ~child.members
        else:
            members = members & child.members
    return Condition(members, result_negated)


def build_condition(node: Any, compile_leaf: Callable[[Any], Condition]) -> Condition:
    """Fold a filter tree bottom-up; ``compile_leaf`` turns one leaf into its (set, negation) pair."""
    if is_group(node):
        return combine_group(node.type, [build_condition(child, compile_leaf) for child in node.values])
    return compile_leaf(node)


def root_members(condition: Condition) -> pl.Expr:
    """The cohort's membership; a negated root has no universe to subtract from, so it is an error."""
    if condition.negated:
        raise CalculationError(ROOT_NEGATED, error_code="validation_error")
    return condition.members
