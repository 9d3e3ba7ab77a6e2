"""Readable, stable names for cohorts across projects: ``p<project>-c<cohort>`` (e.g. ``p1-c7``).

These are the keys of Dagster's ``cohorts`` dynamic partitions and of the run configuration that carries requested
versions. They are built from ids only, so renaming a cohort never changes its key (and never orphans its
materialization history); the project is part of the key because every calculation runs against one project's
data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

_KEY: Final = re.compile(r"^p(?P<project>[1-9][0-9]*)-c(?P<cohort>[1-9][0-9]*)$")


@dataclass(frozen=True, order=True)
class CohortKey:
    """One cohort of one project; ``str(key)`` is its partition key."""

    project_id: int
    cohort_id: int

    def __str__(self) -> str:
        return f"p{self.project_id}-c{self.cohort_id}"

    @classmethod
    def parse(cls, key: str) -> CohortKey:
        """``"p1-c7"`` -> ``CohortKey(1, 7)``; ``ValueError`` naming the expected shape otherwise."""
        match = _KEY.match(key)
        if match is None:
            raise ValueError(f"'{key}' is not a cohort partition key (expected p<project id>-c<cohort id>, e.g. p1-c7)")
        return cls(int(match["project"]), int(match["cohort"]))


def cohort_key(project_id: int, cohort_id: int) -> str:
    return str(CohortKey(project_id, cohort_id))


def by_project(keys: Iterable[CohortKey]) -> dict[int, list[CohortKey]]:
    """Keys grouped by project (projects and keys in ascending order)."""
    grouped: dict[int, list[CohortKey]] = {}
    for key in sorted(set(keys)):
        grouped.setdefault(key.project_id, []).append(key)
    return grouped


__all__ = ["CohortKey", "by_project", "cohort_key"]
