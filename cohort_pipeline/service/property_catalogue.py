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
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import polars as pl

from cohort_pipeline.engine.property_types import infer_property_types, normalize_definitions
from cohort_pipeline.sources import ProjectData

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


def catalogue_markdown(frame: pl.DataFrame, limit: int = 60) -> str:
    lines = ["| project | table | key | type | source |", "|---:|---|---|---|---|"]
    for row in frame.head(limit).iter_rows(named=True):
        lines.append(f"| {row['project_id']} | {row['table']} | `{row['key']}` | {row['property_type']} | "
                     f"{row['source']} |")
    if frame.height > limit:
        lines.append(f"| | | ... {frame.height - limit} more | | |")
    return "\n".join(lines)


__all__ = ["DISCOVERY_ROWS", "catalogue_markdown", "property_catalogue"]
