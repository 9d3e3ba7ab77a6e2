"""The canonical table shapes of docs/data_contract.md, written down once as data.

Readers normalise to these schemas and the generator writes them, so both sides of the contract read the column
list from here instead of repeating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import polars as pl

TableName = Literal["persons", "person_distinct_ids", "events"]
TABLES: tuple[TableName, ...] = get_args(TableName)

ColumnKind = Literal["text", "timestamp", "properties"]
"""How a column is normalised: plain text (ids, names), an instant, or a JSON-object properties document."""

UTC_MICROS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class ContractColumn:
    """One column of a canonical table.

    ``required`` columns must exist in the file and may not hold nulls. Optional columns may be absent from the
    file; ``fill`` says what an absent or null value becomes ("null", "{}" for properties, or "row" for a stable
    row-based id).
    """

    name: str
    kind: ColumnKind
    required: bool = True
    fill: Literal["null", "{}", "row"] = "null"
    unique: bool = False

    @property
    def dtype(self) -> pl.DataType:
        """The column's canonical Polars dtype."""
        return _KIND_DTYPES[self.kind]


_KIND_DTYPES: dict[ColumnKind, pl.DataType] = {
    "text": pl.String(),
    "timestamp": UTC_MICROS,
    "properties": pl.String(),
}

CONTRACT: dict[TableName, tuple[ContractColumn, ...]] = {
    "persons": (
        ContractColumn("id", "text", unique=True),
        ContractColumn("created_at", "timestamp", required=False),
        ContractColumn("properties", "properties", required=False, fill="{}"),
    ),
    "person_distinct_ids": (
        ContractColumn("distinct_id", "text", unique=True),
        ContractColumn("person_id", "text"),
    ),
    "events": (
        ContractColumn("uuid", "text", required=False, fill="row"),
        ContractColumn("event", "text"),
        ContractColumn("distinct_id", "text"),
        ContractColumn("timestamp", "timestamp"),
        ContractColumn("properties", "properties", required=False, fill="{}"),
    ),
}


def table_schema(table: TableName) -> pl.Schema:
    """The exact Polars schema of a canonical table (column order included)."""
    return pl.Schema({column.name: column.dtype for column in CONTRACT[table]})


PERSONS_SCHEMA = table_schema("persons")
PERSON_DISTINCT_IDS_SCHEMA = table_schema("person_distinct_ids")
EVENTS_SCHEMA = table_schema("events")
