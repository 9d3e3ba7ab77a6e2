"""Parse a static-cohort CSV upload into a list of ids, exactly as PostHog does (spec 7.2).

PostHog's rules are reproduced on purpose, quirks included, so a file that PostHog accepts yields the same ids
here and a file it rejects is rejected with the same message:

* The upload is decoded as strict UTF-8, split with ``str.splitlines()`` and fed line by line to ``csv.reader``
  (comma delimiter, double quotes). Because the lines are split *before* the CSV reader sees them, a line break
  inside a quoted field is lost (``"a<LF>b"`` reads as ``ab``), and every line boundary ``str.splitlines`` knows
  (``\\r``, ``\\n``, ``\\r\\n``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``, ``\\u2029``) ends a row.
* A UTF-8 byte-order mark is **not** stripped: it stays glued to the first cell, so ``<BOM>person_id`` is not a
  recognised header (in a one-column file it becomes a distinct id that matches nobody; in a multi-column file
  another column's header may win). ``str.strip()`` does not remove it either (U+FEFF is not whitespace).
* Cell values and headers are trimmed with ``str.strip()`` (Unicode whitespace), headers compared lower-cased.

Accounting (PostHog's ``CohortCSVImport`` parse stage): ``rows_total`` counts every row the reader yields after
the header row (or from the first non-empty row when the file has no header), blank lines in the middle or at
the end included; ``rows_skipped`` counts those of them that gave no id (too short for the id column, or a blank
id cell). Leading empty rows are discarded before the header is looked for and are not counted. Hence
``rows_total == len(ids) + rows_skipped`` always holds.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, NoReturn

from cohort_pipeline.errors import CSVImportError

IdType = Literal["person_id", "distinct_id", "email"]

#: Recognised header spellings per id type, in PostHog's priority order (``CSVConfig`` in ``posthog/api/cohort.py``).
#: A multi-column file uses the first type of this tuple that has a matching header.
HEADER_SPELLINGS: tuple[tuple[IdType, tuple[str, ...]], ...] = (
    ("person_id", ("person_id", "person-id", "Person .id")),
    ("distinct_id", ("distinct_id", "distinct-id")),
    ("email", ("email", "e-mail")),
)

#: Header types that a one-column file may start with. ``distinct_id`` is deliberately absent: PostHog treats a
#: one-column file without a person-id / email header as a header-less list of distinct ids (backward
#: compatibility), so a literal ``distinct_id`` first line is submitted as an id and simply matches nobody.
SINGLE_COLUMN_HEADER_TYPES: tuple[IdType, ...] = ("person_id", "email")

#: The id type of a one-column file whose first cell is not a recognised header.
HEADERLESS_ID_TYPE: IdType = "distinct_id"

#: PostHog's user-facing messages (``CSVConfig.ErrorMessages``), verbatim. ``missing_id_column`` takes ``columns``.
MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "empty": "CSV file is empty. Please upload a CSV file with at least one row of data.",
        "missing_id_column": (
            "Multi-column CSV must contain at least one column with a supported ID header: 'person_id', "
            "'Person .id' (PostHog export format), 'distinct_id', 'distinct-id', or 'email'. Found columns: {columns}"
        ),
        "no_valid_ids": (
            "CSV file contains no valid person IDs, distinct IDs, or email addresses. Please ensure your file has "
            "data rows with person IDs, distinct IDs, or email addresses."
        ),
        "encoding": "CSV file encoding is not supported. Please save your file as UTF-8 and try again.",
        "format": "CSV file format is invalid. Please check your file format and try again.",
        "generic": (
            "An error occurred while processing your CSV file. Please try again or contact support if the problem "
            "persists."
        ),
    }
)

#: Machine codes stored with a failed import (PostHog's ``CohortCSVImport.error_code``); anything else is a
#: ``parse_error``.
ERROR_CODES: Mapping[str, str] = MappingProxyType({"no_valid_ids": "no_valid_ids"})
DEFAULT_ERROR_CODE = "parse_error"

#: What "Found columns:" says when the header row has no non-blank cell.
NO_COLUMNS_TEXT = "none"

_LOWERED_SPELLINGS: Mapping[IdType, frozenset[str]] = MappingProxyType(
    {id_type: frozenset(s.lower() for s in spellings) for id_type, spellings in HEADER_SPELLINGS}
)


@dataclass(frozen=True)
class ParsedCSV:
    """The ids read from one upload and how they were read.

    ``ids`` keeps the submission order and every duplicate: deduplication belongs to matching (spec 7.4), and
    the raw list is what PostHog hands to its import task. ``email_property_key`` is the trimmed header text of
    the email column (``None`` unless ``id_type == "email"``); PostHog records it but matches on ``email``.
    """

    id_type: IdType
    ids: list[str]
    rows_total: int
    rows_skipped: int
    email_property_key: str | None = None


@dataclass(frozen=True)
class _IdColumn:
    """Where the ids are: column index, what they are, and whether the first row is a header."""

    index: int
    id_type: IdType
    header: str | None  # trimmed header text, None when the first row is data


def parse_cohort_csv(data: bytes | bytearray | memoryview | str) -> ParsedCSV:
    """Read the ids of a static-cohort CSV upload (spec 7.2).

    ``data`` is the raw upload (decoded as strict UTF-8) or already-decoded text (which must be encodable as
    UTF-8, so both forms accept the same files). Every rejection is a ``CSVImportError`` carrying PostHog's exact
    message; a failure nobody planned for becomes PostHog's generic message, with the original exception chained
    as ``__cause__`` for the logs. A UTF-8 BOM is kept as part of the first cell, as in PostHog (see module doc).

    Beyond PostHog: a NUL character anywhere is rejected as an invalid format. Python's ``csv`` module raised on
    NUL before 3.11 and accepts it since; ids containing NUL cannot be stored (PostgreSQL text rejects them), so
    the upload is refused up front instead of failing later in the import.

    Raises ``TypeError`` (not a CSV error: it is a programming mistake) when ``data`` is neither text nor bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"CSV data must be bytes or str, not {type(data).__name__}")
    try:
        return _parse_text(_decode(data))
    except CSVImportError:
        raise
    except csv.Error as exc:
        _reject("format", cause=exc)
    except Exception as exc:  # noqa: BLE001 - PostHog's catch-all: any other failure gets the generic message
        _reject("generic", cause=exc)


def _reject(kind: str, *, cause: BaseException | None = None, **fmt: str) -> NoReturn:
    """Raise the ``CSVImportError`` of one message kind (see ``MESSAGES``)."""
    message = MESSAGES[kind].format(**fmt) if fmt else MESSAGES[kind]
    raise CSVImportError(message, code=ERROR_CODES.get(kind, DEFAULT_ERROR_CODE)) from cause


def _decode(data: bytes | bytearray | memoryview | str) -> str:
    """Strict UTF-8 text of the upload, BOM kept; NUL refused (see ``parse_cohort_csv``)."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        if isinstance(data, str):
            text.encode("utf-8")  # lone surrogates cannot come from a UTF-8 file: same rejection as for bytes
    except UnicodeError as exc:
        _reject("encoding", cause=exc)
    if "\x00" in text:
        _reject("format")
    return text


def _parse_text(text: str) -> ParsedCSV:
    """Find the header (if any) and the id column, then collect the ids below it."""
    reader = csv.reader(text.splitlines())
    first_row = _first_non_empty_row(reader)
    column = _single_column_layout(first_row) if _is_single_column(first_row) else _multi_column_layout(first_row)
    data_rows: Iterator[list[str]] = reader if column.header is not None else _chain_first(first_row, reader)
    ids, rows_total = _collect_ids(data_rows, column.index)
    if not ids:
        _reject("no_valid_ids")
    return ParsedCSV(
        id_type=column.id_type,
        ids=ids,
        rows_total=rows_total,
        rows_skipped=rows_total - len(ids),
        email_property_key=column.header if column.id_type == "email" else None,
    )


def _first_non_empty_row(reader: Iterator[list[str]]) -> list[str]:
    """Skip leading empty rows (blank lines); an upload with nothing else is empty.

    A row of blank cells (``","`` or ``"  "``) is not empty: PostHog only skips rows with no cells at all.
    """
    for row in reader:
        if row:
            return row
    _reject("empty")


def _is_single_column(first_row: list[str]) -> bool:
    """PostHog's test: the first row has at most one non-blank cell (wherever it is)."""
    return sum(1 for cell in first_row if cell.strip()) <= 1


def _header_type(cell: str, candidates: tuple[IdType, ...]) -> IdType | None:
    """The id type that ``cell`` names as a header (trimmed, case-insensitive), or ``None``."""
    normalised = cell.strip().lower()
    return next((id_type for id_type in candidates if normalised in _LOWERED_SPELLINGS[id_type]), None)


def _single_column_layout(first_row: list[str]) -> _IdColumn:
    """One-column file: a person-id or email header in the *first* cell, else no header and distinct ids."""
    id_type = _header_type(first_row[0], SINGLE_COLUMN_HEADER_TYPES)
    if id_type is None:
        return _IdColumn(index=0, id_type=HEADERLESS_ID_TYPE, header=None)
    return _IdColumn(index=0, id_type=id_type, header=first_row[0].strip())


def _multi_column_layout(headers: list[str]) -> _IdColumn:
    """Multi-column file: the first header of the highest-priority id type, or PostHog's missing-column error."""
    for id_type, _spellings in HEADER_SPELLINGS:
        for index, header in enumerate(headers):
            if _header_type(header, (id_type,)) is not None:
                return _IdColumn(index=index, id_type=id_type, header=header.strip())
    found = [header for header in headers if header.strip()]  # PostHog lists them untrimmed
    _reject("missing_id_column", columns=", ".join(found) if found else NO_COLUMNS_TEXT)


def _chain_first(first_row: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    """The rows of a header-less file: its first row is data too."""
    yield first_row
    yield from rest


def _collect_ids(rows: Iterator[list[str]], index: int) -> tuple[list[str], int]:
    """Trimmed non-blank ids of column ``index``, in order, and the number of rows read.

    Rows too short to have the column and rows whose cell is blank give no id (they are the skipped rows).
    """
    ids: list[str] = []
    rows_total = 0
    for row in rows:
        rows_total += 1
        if len(row) > index:
            value = row[index].strip()
            if value:
                ids.append(value)
    return ids, rows_total
