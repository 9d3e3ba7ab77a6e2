"""A project's cohorts as a graph: stored records, their parsed definitions, and who references whom.

The create / update rules of spec 2 that look beyond one cohort (cycles, the ``cohort_type`` classifier, realtime
support of references, feature-flag restrictions, "used as criteria in other cohorts") all need the same view of
the project: every cohort (soft-deleted ones included, as PostHog's project-wide lookups do), each parsed once.
Stored definitions are parsed leniently (``internal=True``); one that no longer parses counts as having no
leaves, so it can neither block nor break a rule about another cohort.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Final

from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.model import CohortDefinition, parse_cohort
from cohort_pipeline.store import CohortRecord, CohortStore

MAX_COHORT_ID: Final[int] = 2**63 - 1
"""Ids beyond a 64-bit integer cannot be stored; a reference to one is an unknown cohort."""


def stored_definition(record: CohortRecord) -> CohortDefinition:
    """The definition of a stored cohort, parsed as the engine parses it (lenient; empty when unparseable)."""
    raw = {
        "id": record.id,
        "name": record.name,
        "is_static": record.is_static,
        "filters": record.filters,
        "query": record.query,
        "groups": record.groups,
    }
    try:
        return parse_cohort(raw, internal=True)
    except (CohortValidationError, ValueError, TypeError):
        return CohortDefinition(id=record.id, name=record.name, is_static=record.is_static)


def storable_ids(ids: Iterable[int]) -> list[int]:
    """The ids that can name a stored cohort (positive, 64-bit), sorted."""
    return sorted({i for i in ids if 0 < i <= MAX_COHORT_ID})


class ProjectCohorts:
    """Every cohort of one project (deleted ones included), with parsed definitions and reference helpers."""

    def __init__(self, store: CohortStore, project_id: int) -> None:
        self.project_id = project_id
        self.records: dict[int, CohortRecord] = {
            r.id: r for r in store.list_cohorts(project_id, include_deleted=True)
        }

    @cached_property
    def definitions(self) -> dict[int, CohortDefinition]:
        """``{id: definition}`` of every cohort of the project."""
        return {cid: stored_definition(record) for cid, record in self.records.items()}

    @property
    def types(self) -> dict[int, str | None]:
        """Stored ``cohort_type`` by id (the realtime rule reads the referenced cohorts' own type)."""
        return {cid: record.cohort_type for cid, record in self.records.items()}

    def live(self, cohort_id: int) -> CohortRecord | None:
        """The cohort if it exists in this project and is not soft-deleted."""
        record = self.records.get(cohort_id)
        return record if record is not None and not record.deleted else None

    def name(self, cohort_id: int) -> str:
        record = self.records.get(cohort_id)
        return (record.name if record else None) or "Untitled cohort"

    def dependencies(self, cohort_id: int, *, stop_at_static: bool = True) -> list[int]:
        """Cohorts ``cohort_id`` references, transitively, in discovery order (itself excluded).

        PostHog's ``get_all_cohort_dependencies``: only existing, non-deleted cohorts of the project are followed;
        with ``stop_at_static`` a static cohort is listed but not traversed (its filters are display-only).
        """
        seen: list[int] = []
        stack = [cohort_id]
        while stack:
            current = stack.pop()
            definition = self.definitions.get(current)
            if definition is None or (stop_at_static and definition.is_static and current != cohort_id):
                continue
            for ref in sorted(definition.referenced_cohort_ids(), reverse=True):
                if ref == cohort_id or ref in seen or self.live(ref) is None:
                    continue
                seen.append(ref)
                stack.append(ref)
        return seen

    def dependents(self, cohort_id: int) -> list[CohortRecord]:
        """Live cohorts (other than itself) whose criteria reference ``cohort_id`` directly, by id."""
        return [
            record for cid, record in sorted(self.records.items())
            if cid != cohort_id and not record.deleted and cohort_id in self.definitions[cid].referenced_cohort_ids()
        ]

    def has_behavioral_filters(self, cohort_id: int) -> bool:
        definition = self.definitions.get(cohort_id)
        return definition is not None and definition.has_behavioral_leaves()

    def behavioral_ids(self) -> set[int]:
        """Dynamic cohorts with behavioral filters and every cohort that references one, transitively (the
        list's ``hide_behavioral_cohorts``; static cohorts are never seeds)."""
        seeds = {
            cid for cid, d in self.definitions.items()
            if not d.is_static and d.has_behavioral_leaves()
        }
        hidden = set(seeds)
        changed = True
        while changed:
            changed = False
            for cid, definition in self.definitions.items():
                if cid in hidden or definition.is_static:
                    continue
                if definition.referenced_cohort_ids() & hidden:
                    hidden.add(cid)
                    changed = True
        return hidden

    def lookup(self) -> Mapping[int, CohortDefinition]:
        """For the ``cohort_type`` classifier: every cohort of the project by id."""
        return self.definitions


__all__ = ["MAX_COHORT_ID", "ProjectCohorts", "storable_ids", "stored_definition"]
