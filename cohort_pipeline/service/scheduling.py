"""What to recalculate, and when: the decisions behind the Dagster sensors and the stale-cohort schedule.

Three triggers, each a pure decision over the store (plus a cursor the caller keeps):

* :func:`cohort_changes`: cohorts that are new in the store (a partition must be registered; dynamic ones and
  never-populated static ones are calculated), dynamic cohorts whose definition was edited, and dynamic cohorts
  whose referenced cohort was published after them (the dependency chain of spec 9.2: dependencies first, then
  their dependents). On its first call (no cursor) it adopts the current state as its baseline: it registers every
  existing cohort and requests nothing, so switching the sensor on never floods the pipeline; cohorts that were
  never calculated are left to the stale-cohort schedule, a batch per tick.
* :func:`data_changes`: a project's event files changed -> its dynamic cohorts with behavioural filters (and every
  cohort referencing one); its person files changed -> all its dynamic cohorts, and its static cohorts with an id
  list to match again ("again only when persons are added").
* :func:`stale_cohorts`: spec 9.2 / 9.4: reset cohorts stuck calculating for over an hour, then pick dynamic cohorts
  last calculated more than ``max_age`` ago (15 minutes, PostHog's MAX_AGE_MINUTES), respecting the back-off of
  ``30 min x 2^errors`` and never after 20 consecutive errors (the store's query).

:func:`request_versions` then bumps ``pending_version`` for every chosen cohort *when the run is requested*
(spec 1.3 step 1), and :func:`partition_ranges` groups partition keys into the contiguous ranges one run can take.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cohort_pipeline.service.cohort_graph import ProjectCohorts, stored_definition
from cohort_pipeline.service.cohort_keys import CohortKey
from cohort_pipeline.service.data_files import table_fingerprints
from cohort_pipeline.service.definitions_snapshot import DefinitionsSnapshot
from cohort_pipeline.service.recalculation import reimportable
from cohort_pipeline.store import MAX_AGE, MAX_ERRORS_CALCULATING, STUCK_AFTER, CohortRecord, CohortStore, NotFoundError

STUCK_RESETS_PER_TICK = 3
"""Spec 8.3: stuck cohorts reset per scheduler tick."""
STALE_BATCH = 50
"""Stale cohorts recalculated per schedule tick (PostHog: 5 per tick, one Celery task each; here they share one
fused evaluation, so a tick can take more)."""


def _key(record: CohortRecord) -> CohortKey:
    return CohortKey(record.project_id, record.id)


def _all_cohorts(store: CohortStore) -> list[CohortRecord]:
    return [c for p in store.list_projects() for c in store.list_cohorts(p.id, include_deleted=True)]


# --- cohorts in the store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortChanges:
    """``new_partitions`` to register (in this order), cohorts ``to_calculate`` with the reason, the next cursor."""

    new_partitions: list[str]
    to_calculate: dict[CohortKey, str]
    cursor: str
    baseline: bool


def _read_cursor(cursor: str | None) -> tuple[datetime, set[int]] | None:
    if not cursor:
        return None
    state = json.loads(cursor)
    return datetime.fromisoformat(state["updated_at"]), set(state.get("ids", []))


def _write_cursor(records: Sequence[CohortRecord], previous: tuple[datetime, set[int]] | None) -> str:
    """The newest ``updated_at`` seen and the ids updated at exactly that instant (so ties are never missed or
    seen twice)."""
    if not records:
        if previous is None:
            return json.dumps({"updated_at": datetime.min.isoformat() + "+00:00", "ids": []})
        return json.dumps({"updated_at": previous[0].isoformat(), "ids": sorted(previous[1])})
    newest = max(r.updated_at for r in records)
    if previous is not None and previous[0] > newest:
        return json.dumps({"updated_at": previous[0].isoformat(), "ids": sorted(previous[1])})
    ids = {r.id for r in records if r.updated_at == newest}
    if previous is not None and previous[0] == newest:
        ids |= previous[1]
    return json.dumps({"updated_at": newest.isoformat(), "ids": sorted(ids)})


def _changed_since(record: CohortRecord, since: tuple[datetime, set[int]]) -> bool:
    return record.updated_at > since[0] or (record.updated_at == since[0] and record.id not in since[1])


def _stale_dependents(records: Sequence[CohortRecord]) -> dict[CohortKey, str]:
    """Dynamic cohorts whose referenced cohort was published (or re-imported) after their own last calculation.

    Only healthy, idle cohorts are chained: one that is calculating will read the new version anyway, and one that
    keeps failing is left to the schedule's back-off.
    """
    by_id = {r.id: r for r in records if not r.deleted}
    chained: dict[CohortKey, str] = {}
    for record in by_id.values():
        if record.is_static or record.is_calculating or record.errors_calculating or record.last_calculation is None:
            continue
        for ref in sorted(stored_definition(record).referenced_cohort_ids()):
            dependency = by_id.get(ref)
            if (dependency is not None and dependency.project_id == record.project_id
                    and dependency.last_calculation is not None
                    and dependency.last_calculation > record.last_calculation):
                chained[_key(record)] = f"cohort {ref} it references was recalculated"
                break
    return chained


def cohort_changes(store: CohortStore, known_partitions: Collection[str], cursor: str | None) -> CohortChanges:
    """New, edited and chained cohorts since ``cursor`` (see the module docstring)."""
    records = _all_cohorts(store)
    known = set(known_partitions)
    live = [r for r in records if not r.deleted]
    new = sorted((r for r in live if str(_key(r)) not in known), key=_key)
    since = _read_cursor(cursor)
    next_cursor = _write_cursor(records, since)
    new_partitions = [str(_key(r)) for r in new]
    if since is None:
        return CohortChanges(new_partitions, {}, next_cursor, baseline=True)
    to_calculate: dict[CohortKey, str] = {}
    for record in new:
        if not record.is_static:
            to_calculate[_key(record)] = "new cohort"
        elif record.version is None:
            to_calculate[_key(record)] = "new static cohort (first population)"
    for record in live:
        key = _key(record)
        if key in to_calculate or record.is_static or str(key) not in known:
            continue
        if _changed_since(record, since):
            to_calculate[key] = "definition edited"
    for key, reason in _stale_dependents(records).items():
        to_calculate.setdefault(key, reason)
    return CohortChanges(new_partitions, to_calculate, next_cursor, baseline=False)


# --- new data ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataChanges:
    """Which tables changed per project, the cohorts to recalculate with the reason, and the next cursor."""

    changed_tables: dict[int, list[str]]
    to_calculate: dict[CohortKey, str]
    cursor: str
    baseline: bool


def data_changes(store: CohortStore, data_dir: Path, snapshot: DefinitionsSnapshot, cursor: str | None,
                 max_errors: int = MAX_ERRORS_CALCULATING) -> DataChanges:
    """Compare the data files of every project in the store with ``cursor`` (see the module docstring)."""
    previous: dict[str, dict[str, str]] = json.loads(cursor) if cursor else {}
    current = {str(p.id): table_fingerprints(data_dir, p.id) for p in store.list_projects()}
    next_cursor = json.dumps(current, sort_keys=True)
    if not cursor:
        return DataChanges({}, {}, next_cursor, baseline=True)
    changed: dict[int, list[str]] = {}
    for project, tables in current.items():
        before = previous.get(project, {})
        names = [t for t, fingerprint in tables.items() if before.get(t) != fingerprint]
        if names:
            changed[int(project)] = names
    to_calculate: dict[CohortKey, str] = {}
    for project_id, tables in changed.items():
        graph = ProjectCohorts(store, project_id)
        live = {cid: r for cid, r in graph.records.items()
                if not r.deleted and r.errors_calculating <= max_errors}
        persons_changed = bool({"persons", "person_distinct_ids"} & set(tables))
        if persons_changed:
            file_project = snapshot.project(project_id)
            sources = {c.id: c for c in file_project.cohorts} if file_project else {}
            for cid, record in sorted(live.items()):
                if not record.is_static:
                    to_calculate[_key(record)] = "new person data"
                elif record.version is not None and reimportable(sources.get(cid)):
                    to_calculate[_key(record)] = "persons were added: match the id list again"
        if "events" in tables:
            for cid in sorted(graph.behavioral_ids() & live.keys()):
                if not live[cid].is_static:
                    to_calculate.setdefault(_key(live[cid]), "new event data")
    return DataChanges(changed, to_calculate, next_cursor, baseline=False)


# --- the schedule ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaleCohorts:
    reset: list[int]
    to_calculate: list[CohortKey]


def stale_cohorts(
    store: CohortStore,
    known_partitions: Collection[str],
    *,
    now: datetime,
    max_age: timedelta = MAX_AGE,
    max_errors: int = MAX_ERRORS_CALCULATING,
    limit: int = STALE_BATCH,
) -> StaleCohorts:
    """Reset stuck cohorts, then the oldest dynamic cohorts due for a periodic recalculation (spec 9.2, 9.4)."""
    reset = store.reset_stuck(older_than=STUCK_AFTER, now=now, limit=STUCK_RESETS_PER_TICK)
    known = set(known_partitions)
    due = [_key(r) for r in store.stale_dynamic_cohorts(now=now, max_age=max_age, max_errors=max_errors)
           if str(_key(r)) in known]
    return StaleCohorts(reset, due[:limit])


# --- requesting runs ---------------------------------------------------------------------------------------


def request_versions(store: CohortStore, keys: Iterable[CohortKey]) -> dict[CohortKey, int]:
    """Spec 1.3 step 1 for every key (``pending_version + 1``; dynamic cohorts start calculating); deleted or
    vanished cohorts are left out."""
    versions = {}
    for key in sorted(set(keys)):
        try:
            versions[key] = store.request_calculation(key.cohort_id)
        except NotFoundError:
            continue
    return versions


def partition_ranges(ordered_partitions: Sequence[str], selected: Iterable[str]) -> list[list[str]]:
    """``selected`` keys grouped into runs of consecutive partitions (in Dagster's partition order).

    A single run can only take a contiguous range of a partitioned asset, so each group becomes one run; keys not
    in ``ordered_partitions`` are ignored.
    """
    wanted = set(selected)
    groups: list[list[str]] = []
    current: list[str] = []
    for key in ordered_partitions:
        if key in wanted:
            current.append(key)
        elif current:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def versions_for(group: Sequence[str], versions: Mapping[CohortKey, int]) -> dict[str, int]:
    """The requested versions of one group of partition keys, keyed by partition key (for run config)."""
    return {key: versions[CohortKey.parse(key)] for key in group if CohortKey.parse(key) in versions}


__all__ = [
    "STALE_BATCH",
    "STUCK_RESETS_PER_TICK",
    "CohortChanges",
    "DataChanges",
    "StaleCohorts",
    "cohort_changes",
    "data_changes",
    "partition_ranges",
    "request_versions",
    "stale_cohorts",
    "versions_for",
]
