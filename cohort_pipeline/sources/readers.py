"""Read person, distinct-id and event files into the canonical LazyFrames of docs/data_contract.md.

Every file, whatever its format, leaves this module with the contract's exact column names and dtypes, so the
engine has one code path. A malformed file fails here, at load, with a ``DataSourceError`` naming the file and
the problem, instead of deep inside a later cohort query. The checks are chosen to be cheap: the schema is read
from the file's header/footer, and only the columns whose values can break the contract (required ids, text
timestamps, unique keys) are scanned once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from cohort_pipeline.errors import DataSourceError
from cohort_pipeline.sources.contract import (
    CONTRACT,
    EVENTS_SCHEMA,
    TABLES,
    UTC_MICROS,
    ContractColumn,
    TableName,
)

_ROW = "__cohort_pipeline_row__"
"""Row-index column added at scan time: row numbers for error messages and row-based event uuids."""

_PROJECT_DIR = re.compile(r"^project_(\d+)$")


# --------------------------------------------------------------------------------------------------------------
# File formats: extension -> scanner. Each scanner returns the raw columns plus the row index.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFormat:
    """A supported on-disk format: its display name and how to scan it lazily."""

    name: str
    scan: Callable[[Path, TableName], pl.LazyFrame]


def _scan_parquet(path: Path, table: TableName) -> pl.LazyFrame:
    """Parquet keeps its own dtypes; ``glob=False`` so a path containing ``[`` or ``*`` is taken literally."""
    return pl.scan_parquet(path, glob=False, row_index_name=_ROW)


def _scan_csv(path: Path, table: TableName) -> pl.LazyFrame:
    """CSV is read all-text: inference would turn id "007" into 7, and timestamps are parsed by our own rules."""
    return pl.scan_csv(path, glob=False, infer_schema=False, row_index_name=_ROW)


def _scan_ndjson(path: Path, table: TableName) -> pl.LazyFrame:
    """NDJSON with the contract's columns forced to text.

    Forcing text matters for ``properties``: Polars would otherwise infer a struct from the first rows and coerce
    a JSON number 42 and a string "42" into one type, losing the distinction the cohort engine relies on
    (spec clarification 11). As text, an object is kept as (re-serialised) JSON and a JSON-string value is kept
    as the string's content. Keys outside the contract are never parsed into columns. An empty file is an
    empty table: NDJSON has no header, so that is the only way to write zero rows.
    """
    if path.stat().st_size == 0:
        return pl.LazyFrame(schema={column.name: pl.String for column in CONTRACT[table]} | {_ROW: pl.UInt32})
    present = set(pl.scan_ndjson(path).collect_schema().names())
    schema = {column.name: pl.String for column in CONTRACT[table] if column.name in present}
    return pl.scan_ndjson(path, schema=schema, row_index_name=_ROW)


FORMATS: dict[str, FileFormat] = {
    ".parquet": FileFormat("Parquet", _scan_parquet),
    ".csv": FileFormat("CSV", _scan_csv),
    ".ndjson": FileFormat("NDJSON", _scan_ndjson),
    ".jsonl": FileFormat("NDJSON", _scan_ndjson),
}
"""Supported extensions, in the order ``find_table_file`` lists them."""


# --------------------------------------------------------------------------------------------------------------
# Column normalisation: (contract kind, source dtype) -> expression, as tables of rules.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueCheck:
    """A condition no row may meet. ``problem`` is formatted with the first offending ``value`` and ``row``.

    Finding the offending row is the expensive part (``is_duplicated`` hashes every value twice over), so checks
    are first settled in bulk: ``clean`` is an aggregate that is true when no row is bad (default: ``bad`` holds
    nowhere), and a check with ``nulls_of`` only finds nulls in that source column, which a Parquet footer whose
    statistics count none there settles without reading the data."""

    bad: pl.Expr
    value: pl.Expr
    problem: str
    clean: pl.Expr | None = None
    nulls_of: str | None = None


@dataclass(frozen=True)
class Normalised:
    """A column's canonical expression plus the value checks its conversion needs (e.g. text that must parse)."""

    expr: pl.Expr
    checks: tuple[ValueCheck, ...] = ()


Converter = Callable[[str, pl.DataType], Normalised]


@dataclass(frozen=True)
class DtypeRule:
    """Applies ``convert`` to a source column whose dtype satisfies ``matches``."""

    matches: Callable[[pl.DataType], bool]
    convert: Converter


class _Rejected(Exception):
    """A source dtype this column cannot take; the caller adds the file path."""


def _is(*dtypes: type[pl.DataType]) -> Callable[[pl.DataType], bool]:
    """Matcher for dtype classes (``pl.String``, ``pl.Datetime`` ...), ignoring parameters such as time units."""
    return lambda dtype: dtype.base_type() in dtypes


def _as_is(name: str, dtype: pl.DataType) -> Normalised:
    return Normalised(pl.col(name))


def _cast_to(target: pl.DataType) -> Converter:
    return lambda name, dtype: Normalised(pl.col(name).cast(target))


def _reject(problem: str) -> Converter:
    def convert(name: str, dtype: pl.DataType) -> Normalised:
        raise _Rejected(f"column {name!r} has dtype {dtype}; {problem}")

    return convert


def _datetime_to_utc(name: str, dtype: pl.DataType) -> Normalised:
    """Any unit, any zone -> microseconds in UTC; a naive datetime is taken to be UTC already.

    An already-canonical column is passed through untouched so filters on it still push down into the scan.
    """
    if dtype == UTC_MICROS:
        return Normalised(pl.col(name))
    column = pl.col(name)
    in_utc = column.dt.convert_time_zone("UTC") if dtype.time_zone else column.dt.replace_time_zone("UTC")
    return Normalised(in_utc.dt.cast_time_unit("us"))


def _date_to_utc(name: str, dtype: pl.DataType) -> Normalised:
    """A calendar date is midnight UTC of that day."""
    return Normalised(pl.col(name).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))


_ISO_CANONICAL = "%Y-%m-%dT%H:%M:%S%.f%z"
"""The one shape text timestamps are parsed in; ``_ISO_REWRITES`` bring every accepted shape to it."""

_ISO_REWRITES: tuple[tuple[str, str], ...] = (
    (r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00:00"),  # date only -> midnight
    (r"^(\d{4}-\d{2}-\d{2})[ tT](\d{2}:\d{2})([^:\d]|$)", "${1}T${2}:00${3}"),  # no seconds -> ":00"
    (r"^(\d{4}-\d{2}-\d{2})[ t]", "${1}T"),  # space (or "t") between date and time -> "T"
    (r"[Zz]$", "+00:00"),  # chrono's %z does not take "Z"
    (r"(T\d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2})$", "${1}:00"),  # "+05" -> "+05:00"
    (r"(T\d{2}:\d{2}:\d{2}(?:\.\d+)?)$", "${1}+00:00"),  # naive -> UTC
)


def parse_iso_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO-8601 text -> Datetime("us", "UTC"); offsets are honoured, naive values are UTC, failures are null.

    Accepted: ``YYYY-MM-DD``, then optionally ``T`` or a space, ``HH:MM[:SS[.fraction]]`` and an offset (``Z``,
    ``+HH``, ``+HHMM``, ``+HH:MM``). Rather than trying one format after another on every row, the text is
    rewritten to one canonical shape and parsed once, which keeps a 30M-row CSV affordable.
    """
    canonical = text.str.strip_chars()
    for pattern, replacement in _ISO_REWRITES:
        canonical = canonical.str.replace(pattern, replacement)
    return canonical.str.to_datetime(_ISO_CANONICAL, time_unit="us", strict=False).dt.convert_time_zone("UTC")


def _text_to_utc(name: str, dtype: pl.DataType) -> Normalised:
    raw = pl.col(name)
    parsed = parse_iso_timestamp(raw)
    check = ValueCheck(
        bad=raw.is_not_null() & parsed.is_null(),
        value=raw,
        problem=f"column {name!r}: {{value!r}} (row {{row}}) is not an ISO-8601 timestamp",
    )
    return Normalised(parsed, (check,))


def _struct_to_json(name: str, dtype: pl.DataType) -> Normalised:
    """Struct properties are re-encoded as JSON text so the engine has one code path; a null struct is "{}"."""
    column = pl.col(name)
    return Normalised(pl.when(column.is_not_null()).then(column.struct.json_encode()))


_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.Int128, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64, pl.UInt128)

RULES: dict[str, tuple[DtypeRule, ...]] = {
    "text": (
        DtypeRule(_is(pl.String), _as_is),
        DtypeRule(_is(pl.Categorical, pl.Enum, pl.Null, *_INTEGERS), _cast_to(pl.String())),
    ),
    "timestamp": (
        DtypeRule(_is(pl.Datetime), _datetime_to_utc),
        DtypeRule(_is(pl.String), _text_to_utc),
        DtypeRule(_is(pl.Date), _date_to_utc),
        DtypeRule(_is(pl.Null), _cast_to(UTC_MICROS)),
        DtypeRule(
            _is(*_INTEGERS, pl.Float32, pl.Float64),
            _reject(
                "numeric epoch timestamps are ambiguous (seconds, milliseconds, microseconds?); "
                "store a Parquet timestamp or ISO-8601 text"
            ),
        ),
    ),
    "properties": (
        DtypeRule(_is(pl.String), _as_is),
        DtypeRule(_is(pl.Struct), _struct_to_json),
        DtypeRule(_is(pl.Null), _cast_to(pl.String())),
    ),
}
"""Accepted source dtypes per contract kind. A dtype no rule matches is rejected with ``EXPECTED``'s wording."""

EXPECTED: dict[str, str] = {
    "text": "expected text (integers are accepted and converted)",
    "timestamp": "expected a datetime or ISO-8601 text",
    "properties": "expected JSON object text or a struct",
}

FILLS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "null": lambda expr: expr,
    "{}": lambda expr: expr.fill_null("{}"),
    "row": lambda expr: expr.fill_null(pl.format("row-{}", pl.col(_ROW) + 1)),
}
"""What an optional column's null or absent values become (``ContractColumn.fill``)."""


def _normalise(column: ContractColumn, dtype: pl.DataType) -> Normalised:
    """Convert one present source column to its contract dtype, adding the null/unique checks the contract asks."""
    rule = next((rule for rule in RULES[column.kind] if rule.matches(dtype)), None)
    converted = (rule.convert if rule else _reject(EXPECTED[column.kind]))(column.name, dtype)
    expr = FILLS[column.fill](converted.expr)
    checks = converted.checks + _contract_checks(column, expr)
    return Normalised(expr.alias(column.name), checks)


def _contract_checks(column: ContractColumn, expr: pl.Expr) -> tuple[ValueCheck, ...]:
    required = ValueCheck(
        bad=pl.col(column.name).is_null(),
        value=pl.lit(None),
        problem=f"column {column.name!r} is required but row {{row}} is null",
        clean=pl.col(column.name).null_count() == 0,
        nulls_of=column.name,
    )
    unique = ValueCheck(
        bad=expr.is_duplicated(),
        value=expr,
        problem=f"column {column.name!r} must be unique but {{value!r}} appears more than once (row {{row}})",
        clean=unique_hashes(expr),
    )
    return (required,) * column.required + (unique,) * column.unique


def unique_hashes(expr: pl.Expr) -> pl.Expr:
    """True when the 64-bit hashes of ``expr`` are all different, which proves its values are. Counting distinct
    hashes is about twice as fast as counting distinct texts (10M UUIDs: 1.6 s CPU instead of 3.0 s): a set of
    integers stays smaller and compares without reading the texts. Two different values sharing a hash (for ten
    million values, about 3 chances in a million) only make the check look for the duplicate row, find none and
    pass."""
    return expr.hash().n_unique() == pl.len()


def _absent(column: ContractColumn) -> Normalised:
    """An optional column the file does not have: all values are its fill (null, "{}" or row-based ids)."""
    return Normalised(FILLS[column.fill](pl.lit(None, column.dtype)).alias(column.name))


# --------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------


def scan_table(path: Path, table: TableName) -> pl.LazyFrame:
    """Scan one table file into the contract's LazyFrame, validating it now rather than at query time.

    The format comes from the extension (``FORMATS``). Extra columns are dropped; optional columns may be absent
    (``persons.created_at`` -> null, ``properties`` -> "{}", ``events.uuid`` -> "row-<n>" with n the 1-based
    data row, which is stable for a given file). Rows in messages are 1-based data rows (a CSV header is not
    counted). Raises ``DataSourceError("<path>: <problem>")`` for a missing
    or unreadable file, a missing required column, a dtype the column cannot take, a null in a required column,
    a duplicate person id or distinct id, or a timestamp text that does not parse.
    """
    path = Path(path)
    if table not in CONTRACT:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
    file_format = _format_of(path)
    raw, schema = _read_schema(path, table, file_format)
    columns = _normalise_columns(path, table, schema)
    fingerprint = _fingerprint(path, table)
    if fingerprint not in _CHECKED:
        _run_checks(path, file_format, raw, columns)
        with _CHECKED_LOCK:
            _CHECKED.add(fingerprint)
    return raw.select([column.expr for column in columns])


def find_table_file(project_dir: Path, table: TableName) -> Path:
    """The one file holding ``table`` in a project folder (``<table>.parquet|.csv|.ndjson|.jsonl``).

    Two files for one table are an error rather than a silent pick, because they may disagree.
    """
    found = _find_optional_table_file(Path(project_dir), table)
    if found is None:
        expected = ", ".join(f"{table}{extension}" for extension in FORMATS)
        raise DataSourceError(f"{project_dir}: no {table} file (expected one of {expected})")
    return found


@dataclass(frozen=True)
class ProjectData:
    """One project's canonical tables. Built per project folder, so no frame can hold another project's rows."""

    persons: pl.LazyFrame
    person_distinct_ids: pl.LazyFrame
    events: pl.LazyFrame


def load_project(data_dir: Path, project_id: int) -> ProjectData:
    """Load ``data_dir/project_<id>/``. Persons and distinct ids are required; a missing events file means none."""
    project_dir = Path(data_dir) / f"project_{project_id}"
    if not project_dir.is_dir():
        raise DataSourceError(f"{project_dir}: project directory not found")
    events_file = _find_optional_table_file(project_dir, "events")
    return ProjectData(
        persons=scan_table(find_table_file(project_dir, "persons"), "persons"),
        person_distinct_ids=scan_table(find_table_file(project_dir, "person_distinct_ids"), "person_distinct_ids"),
        events=scan_table(events_file, "events") if events_file else pl.LazyFrame(schema=EVENTS_SCHEMA),
    )


def list_projects(data_dir: Path) -> list[int]:
    """Ids of the ``project_<id>`` folders under ``data_dir``, ascending."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataSourceError(f"{data_dir}: data directory not found")
    matches = (_PROJECT_DIR.match(entry.name) for entry in data_dir.iterdir() if entry.is_dir())
    return sorted(int(match.group(1)) for match in matches if match)


# --------------------------------------------------------------------------------------------------------------
# Steps of scan_table
# --------------------------------------------------------------------------------------------------------------


def _format_of(path: Path) -> FileFormat:
    file_format = FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise DataSourceError(f"{path}: unsupported file type {path.suffix!r} (expected {', '.join(FORMATS)})")
    if not path.is_file():
        raise DataSourceError(f"{path}: file not found")
    return file_format


def _read_schema(path: Path, table: TableName, file_format: FileFormat) -> tuple[pl.LazyFrame, pl.Schema]:
    """Open the scan and read its schema (footer or header), turning reader failures into ``DataSourceError``."""
    try:
        raw = file_format.scan(path, table)
        return raw, raw.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataSourceError(f"{path}: cannot read as {file_format.name}: {_first_line(error)}") from error


def _normalise_columns(path: Path, table: TableName, schema: pl.Schema) -> list[Normalised]:
    """Contract columns in contract order; absent required columns are reported all together."""
    contract = CONTRACT[table]
    missing = [column.name for column in contract if column.required and column.name not in schema]
    if missing:
        found = ", ".join(name for name in schema.names() if name != _ROW) or "none"
        raise DataSourceError(f"{path}: missing required column(s) {', '.join(missing)} (found: {found})")
    try:
        return [
            _normalise(column, schema[column.name]) if column.name in schema else _absent(column)
            for column in contract
        ]
    except _Rejected as rejected:
        raise DataSourceError(f"{path}: {rejected}") from None


_CHECKED: set[tuple[str, str, int, int, int]] = set()
"""Files whose value checks passed in this process, by fingerprint: a Dagster run reads the same files in several
steps (data assets, property types, the recalculation), and a long-lived process (the API server, the daemon's
sensors) reads them again and again; a file is checked again once it changes."""
_CHECKED_LOCK = threading.Lock()


def _fingerprint(path: Path, table: TableName) -> tuple[str, str, int, int, int]:
    """The file as it is now: a rewrite changes its size, modification time or inode (a replaced file)."""
    stat = path.stat()
    return (str(path.resolve()), table, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _run_checks(path: Path, file_format: FileFormat, raw: pl.LazyFrame, columns: list[Normalised]) -> None:
    """Settle every value check (one pass of cheap aggregates, after what the file's footer proves) and, only when
    one fails, find and report the first offending row.

    Reading the checked columns also surfaces corrupt data pages and malformed CSV/NDJSON lines now.
    """
    null_free = _parquet_null_free_columns(path) if file_format is FORMATS[".parquet"] else set()
    checks = [check for column in columns for check in column.checks if check.nulls_of not in null_free]
    if not checks:
        return
    try:
        settled = raw.select(
            (~check.bad.any() if check.clean is None else check.clean).alias(f"c{i}") for i, check in enumerate(checks)
        ).collect().row(0)
        if all(settled):
            return
        failing = [check for check, clean in zip(checks, settled, strict=True) if not clean]
        firsts = [
            pl.struct(row=pl.col(_ROW) + 1, value=check.value.cast(pl.String)).filter(check.bad).first().alias(f"c{i}")
            for i, check in enumerate(failing)
        ]
        found = raw.select(firsts).collect().row(0)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataSourceError(f"{path}: cannot read as {file_format.name}: {_first_line(error)}") from error
    for check, hit in zip(failing, found, strict=True):
        if hit is not None:
            raise DataSourceError(f"{path}: {check.problem.format(**hit)}")


def _parquet_null_free_columns(path: Path) -> set[str]:
    """Top-level columns whose every row group's statistics count zero nulls (writers may omit statistics; such
    a column is not proven and gets read)."""
    try:
        metadata = pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return set()  # the scan reports the unreadable file
    proven = set()
    for index in range(metadata.num_columns):
        name = metadata.schema.column(index).path
        if "." in name:
            continue  # a nested leaf, not a top-level column
        stats = [metadata.row_group(group).column(index).statistics for group in range(metadata.num_row_groups)]
        if all(stat is not None and stat.has_null_count and stat.null_count == 0 for stat in stats):
            proven.add(name)
    return proven


def _find_optional_table_file(project_dir: Path, table: TableName) -> Path | None:
    candidates = [project_dir / f"{table}{extension}" for extension in FORMATS]
    found = [candidate for candidate in candidates if candidate.is_file()]
    if len(found) > 1:
        names = ", ".join(candidate.name for candidate in found)
        raise DataSourceError(f"{project_dir}: several {table} files ({names}); keep exactly one")
    return found[0] if found else None


def _first_line(error: BaseException) -> str:
    """Polars errors carry multi-line hints; the first line is the problem."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


__all__ = [
    "FORMATS",
    "FileFormat",
    "ProjectData",
    "find_table_file",
    "list_projects",
    "load_project",
    "parse_iso_timestamp",
    "scan_table",
]
