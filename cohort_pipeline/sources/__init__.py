"""Reading person, distinct-id and event data into the canonical LazyFrames (docs/data_contract.md).

``readers`` loads a project folder (Parquet, CSV or NDJSON) and validates it at load; ``generator`` writes
realistic synthetic data in the same layout for tests, demos and benchmarks.
"""

from cohort_pipeline.sources.contract import (
    CONTRACT,
    EVENTS_SCHEMA,
    PERSON_DISTINCT_IDS_SCHEMA,
    PERSONS_SCHEMA,
    TABLES,
    TableName,
    table_schema,
)
from cohort_pipeline.sources.readers import (
    FORMATS,
    ProjectData,
    find_table_file,
    list_projects,
    load_project,
    parse_iso_timestamp,
    scan_table,
)

__all__ = [
    "CONTRACT",
    "EVENTS_SCHEMA",
    "FORMATS",
    "PERSONS_SCHEMA",
    "PERSON_DISTINCT_IDS_SCHEMA",
    "TABLES",
    "ProjectData",
    "TableName",
    "find_table_file",
    "list_projects",
    "load_project",
    "parse_iso_timestamp",
    "scan_table",
    "table_schema",
]
