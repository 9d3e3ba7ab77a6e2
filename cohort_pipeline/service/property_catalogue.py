"""A project's property definitions as the pipeline sees them: declared in the definitions file, else inferred.

PostHog keeps a ``PropertyDefinition`` row per property key seen at ingestion, with its type; filters compare
values by that type (decision 2). Here the types are declared per project in the definitions file and every other
key is inferred from the data with the engine's own rules (:func:`~cohort_pipeline.engine.property_types.
infer_property_types`: JSON numbers -> Numeric, JSON booleans -> Boolean, else String; mixed data per
clarification 11). The catalogue lists every key found in the persons' and the events' ``properties`` documents.

The engine infers undeclared types itself, from the same data, in the same pass that evaluates the cohorts; this
catalogue is the published, inspectable view of those types (why did ``plan`` compare as a string?), not a second
source of truth. Keys are discovered from the first ``DISCOVERY_ROWS`` rows of each table (decoding every JSON
document in Python would not scale); their types are inferred over all rows.

Inferring a type reads every row (1-2 s per undeclared key of a million persons), and the data rarely changes
between two runs. :class:`CatalogueCache` therefore keeps each project's catalogue with a key made of what it was
computed from: the persons' and events' file fingerprints (name, size, modification time: the data sensor's
notion of "new data"), the declared types, and the source of the inference rules and of this module. Any change
to one of them computes the catalogue again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from cohort_pipeline.engine import property_types
from cohort_pipeline.engine.property_types import infer_property_types, normalize_definitions
from cohort_pipeline.service.data_files import table_fingerprints
from cohort_pipeline.sources import ProjectData, load_project

DISCOVERY_ROWS = 50_000

SCHEMA = {"project_id": pl.Int64, "table": pl.String, "key": pl.String, "property_type": pl.String,
          "source": pl.String}


def _keys(frame: pl.LazyFrame) -> set[str]:
    keys: set[str] = set()
    for (document,) in frame.select("properties").head(DISCOVERY_ROWS).collect().iter_rows():
        try:
            decoded = json.loads(document) if document else {}
        except ValueError:
            continue
        if isinstance(decoded, dict):
            keys.update(str(k) for k in decoded)
    return keys


def property_catalogue(project_id: int, data: ProjectData, declared: Mapping[str, str]) -> pl.DataFrame:
    """One row per (table, key): its type and whether it was declared or inferred, sorted by table and key."""
    declared_types = normalize_definitions(declared)
    rows = []
    for table, frame in (("persons", data.persons), ("events", data.events)):
        keys = _keys(frame)
        inferred = infer_property_types(frame.select("properties"), keys - declared_types.keys())
        for key in sorted(keys | declared_types.keys()):
            if key in declared_types:
                rows.append((project_id, table, key, str(declared_types[key]), "declared"))
            else:
                rows.append((project_id, table, key, str(inferred[key]), "inferred"))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


RULES_SOURCES = (Path(property_types.__file__), Path(__file__))
"""The code a catalogue depends on besides the data: the inference rules and the key discovery here."""


def catalogue_key(data_dir: Path, project_id: int, declared: Mapping[str, str]) -> str:
    """What a project's catalogue is computed from, as one hash (see the module docstring)."""
    fingerprints = table_fingerprints(data_dir, project_id)
    inputs = {
        "persons": fingerprints["persons"],
        "events": fingerprints["events"],
        "declared": {key: str(kind) for key, kind in sorted(normalize_definitions(declared).items())},
        "discovery_rows": DISCOVERY_ROWS,
    }
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode())
    for path in RULES_SOURCES:
        digest.update(path.read_bytes())
    return digest.hexdigest()


class CatalogueCache:
    """Each project's last catalogue with its :func:`catalogue_key`, in one JSON file.

    ``catalogue()`` returns the stored rows when the key still matches, else loads the project's data, computes
    the catalogue and remembers it; ``save()`` writes the file atomically (a concurrent run reads the old or the
    new file, never half of one). Only computed catalogues are stored, so a project whose data failed to load is
    tried again next time. An unreadable file counts as empty.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reused: list[int] = []
        self._entries: dict[str, dict[str, Any]] = {}
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                self._entries = {k: v for k, v in loaded.items() if isinstance(v, dict)}
        except (OSError, ValueError):
            pass

    def catalogue(self, data_dir: Path, project_id: int, declared: Mapping[str, str]) -> pl.DataFrame:
        key = catalogue_key(data_dir, project_id, declared)
        entry = self._entries.get(str(project_id))
        if entry is not None and entry.get("key") == key:
            try:
                frame = pl.DataFrame(entry["rows"], schema=SCHEMA, orient="row")
            except (KeyError, TypeError, ValueError, pl.exceptions.PolarsError):
                pass  # a damaged entry: compute it again
            else:
                self.reused.append(project_id)
                return frame
        frame = property_catalogue(project_id, load_project(data_dir, project_id), declared)
        self._entries[str(project_id)] = {"key": key, "rows": [list(row) for row in frame.iter_rows()]}
        return frame

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(self._entries, sort_keys=True))
        os.replace(partial, self.path)


def catalogue_markdown(frame: pl.DataFrame, limit: int = 60) -> str:
    lines = ["| project | table | key | type | source |", "|---:|---|---|---|---|"]
    for row in frame.head(limit).iter_rows(named=True):
        lines.append(f"| {row['project_id']} | {row['table']} | `{row['key']}` | {row['property_type']} | "
                     f"{row['source']} |")
    if frame.height > limit:
        lines.append(f"| | | ... {frame.height - limit} more | | |")
    return "\n".join(lines)


__all__ = ["DISCOVERY_ROWS", "CatalogueCache", "catalogue_key", "catalogue_markdown", "property_catalogue"]
