"""The last valid definitions file, kept beside the store: what calculations read for project settings.

The store holds cohort definitions (synced from the definitions file, or written by the HTTP API), but three things
a calculation needs exist only in the file: each project's declared ``property_definitions``, its ``actions``, and
the population source of file-defined static cohorts (a CSV upload or a list of person ids). ``sync_definitions``
validates the file, makes the store hold its projects and cohorts, and then writes a self-contained snapshot (the
file, with every CSV copied next to it) into ``<state_dir>/definitions/``. Calculations read that snapshot, never
the live file, so a broken edit of the file is refused once (by the sync) and changes nothing: every cohort keeps
being calculated from the last valid definitions.

Layout: ``definitions/current.json`` names the snapshot folder and the fingerprint of the source it was made from;
it is replaced atomically, so a reader never sees half a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cohort_pipeline.service.definitions_file import ProjectSpec, load_definitions
from cohort_pipeline.service.publish import sync_project
from cohort_pipeline.store import CohortStore

SNAPSHOT_FOLDER = "definitions"
POINTER = "current.json"
DEFINITIONS_FILE = "cohorts.json"
KEEP_SNAPSHOTS = 2
"""Snapshot folders kept (the current one and its predecessor, which a reader may still be loading)."""


def definitions_fingerprint(path: Path) -> str | None:
    """A hash of the definitions file and every CSV it names; ``None`` when the file does not exist.

    Used to notice edits (of the file or of an upload) without parsing or validating anything: a file that does
    not parse still has a fingerprint, so a broken edit is noticed (and refused by the sync) exactly once.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(data)
    for csv in sorted(_csv_names(data)):
        digest.update(b"\0" + csv.encode())
        try:
            digest.update(hashlib.sha256((path.parent / csv).read_bytes()).digest())
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()


def _csv_names(data: bytes) -> set[str]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    projects = document.get("projects") if isinstance(document, dict) else None
    for project in projects if isinstance(projects, list) else []:
        cohorts = project.get("cohorts") if isinstance(project, dict) else None
        for cohort in cohorts if isinstance(cohorts, list) else []:
            if isinstance(cohort, dict) and isinstance(cohort.get("csv"), str):
                names.add(cohort["csv"])
    return names


@dataclass(frozen=True)
class DefinitionsSnapshot:
    """The validated definitions a calculation uses, and the fingerprint of the source they came from."""

    projects: dict[int, ProjectSpec]
    fingerprint: str | None
    source: str | None
    synced_at: datetime | None

    def project(self, project_id: int) -> ProjectSpec | None:
        return self.projects.get(project_id)

    @classmethod
    def empty(cls) -> DefinitionsSnapshot:
        """No definitions file was ever synced: projects and cohorts come from the store alone."""
        return cls({}, None, None, None)


@dataclass(frozen=True)
class SyncReport:
    projects: list[ProjectSpec]
    fingerprint: str | None
    snapshot_dir: Path

    @property
    def cohort_count(self) -> int:
        return sum(len(p.cohorts) for p in self.projects)


def sync_definitions(store: CohortStore, definitions_path: Path, state_dir: Path) -> SyncReport:
    """Validate the definitions file, sync it into the store and snapshot it; an invalid file changes nothing.

    Raises the file's ``DefinitionsFileError`` (naming project and cohort) before the first write.
    """
    definitions_path = Path(definitions_path)
    fingerprint = definitions_fingerprint(definitions_path)
    projects = load_definitions(definitions_path)
    for project in projects:
        sync_project(store, project)
    folder = write_snapshot(Path(state_dir), projects, source=definitions_path, fingerprint=fingerprint)
    return SyncReport(projects, fingerprint, folder)


def write_snapshot(state_dir: Path, projects: list[ProjectSpec], *, source: Path, fingerprint: str | None) -> Path:
    """Write the projects (and their CSV uploads) as a new snapshot folder and point ``current.json`` at it."""
    root = state_dir / SNAPSHOT_FOLDER
    folder = root / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    (folder / "uploads").mkdir(parents=True)
    document: dict[str, Any] = {"projects": []}
    for project in projects:
        cohorts = []
        for cohort in project.cohorts:
            raw = dict(cohort.raw)
            if cohort.csv is not None:
                name = f"uploads/c{cohort.id}/{Path(cohort.csv_name or 'upload.csv').name}"
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(cohort.csv)
                raw["csv"] = name
            cohorts.append(raw)
        document["projects"].append({
            "id": project.id, "name": project.name, "timezone": project.timezone,
            "test_account_filters": project.test_account_filters,
            "property_definitions": project.property_definitions, "actions": project.actions, "cohorts": cohorts,
        })
    (folder / DEFINITIONS_FILE).write_text(json.dumps(document, indent=1), encoding="utf-8")
    pointer = {"folder": folder.name, "fingerprint": fingerprint, "source": str(Path(source).resolve()),
               "synced_at": datetime.now(UTC).isoformat()}
    temporary = root / f".{POINTER}.{uuid.uuid4().hex}"
    temporary.write_text(json.dumps(pointer), encoding="utf-8")
    os.replace(temporary, root / POINTER)
    _remove_old_snapshots(root, keep=folder.name)
    return folder


def _remove_old_snapshots(root: Path, keep: str) -> None:
    folders = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    for old in [f for f in folders if f.name != keep][: max(0, len(folders) - KEEP_SNAPSHOTS)]:
        shutil.rmtree(old, ignore_errors=True)


def _pointer(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(state_dir) / SNAPSHOT_FOLDER / POINTER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def synced_fingerprint(state_dir: Path) -> str | None:
    """The fingerprint of the source the current snapshot was made from (``None``: never synced)."""
    pointer = _pointer(state_dir)
    return None if pointer is None else pointer.get("fingerprint")


def load_snapshot(state_dir: Path) -> DefinitionsSnapshot:
    """The current snapshot (re-validated by the same loader as the file), or an empty one if never synced."""
    pointer = _pointer(state_dir)
    if pointer is None:
        return DefinitionsSnapshot.empty()
    projects = load_definitions(Path(state_dir) / SNAPSHOT_FOLDER / pointer["folder"] / DEFINITIONS_FILE)
    synced_at = datetime.fromisoformat(pointer["synced_at"]) if pointer.get("synced_at") else None
    return DefinitionsSnapshot({p.id: p for p in projects}, pointer.get("fingerprint"), pointer.get("source"),
                               synced_at)


__all__ = [
    "DefinitionsSnapshot",
    "SyncReport",
    "definitions_fingerprint",
    "load_snapshot",
    "sync_definitions",
    "synced_fingerprint",
    "write_snapshot",
]
