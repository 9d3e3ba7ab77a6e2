"""CSV parsing rules of spec 7.2, one table row per rule.

Expected values are worked out by hand from the spec (and, for the message the spec elides with "…", from
PostHog's ``CSVConfig.ErrorMessages``), never copied from the parser's output.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from cohort_pipeline.errors import CSVImportError, CohortValidationError
from cohort_pipeline.static import csv_import
from cohort_pipeline.static.csv_import import ParsedCSV, parse_cohort_csv

# PostHog's messages, typed out from the spec (section 7.2); NO_VALID_IDS completes the spec's "…".
EMPTY = "CSV file is empty. Please upload a CSV file with at least one row of data."
ENCODING = "CSV file encoding is not supported. Please save your file as UTF-8 and try again."
FORMAT = "CSV file format is invalid. Please check your file format and try again."
GENERIC = (
    "An error occurred while processing your CSV file. Please try again or contact support if the problem persists."
)
NO_VALID_IDS = (
    "CSV file contains no valid person IDs, distinct IDs, or email addresses. "
    "Please ensure your file has data rows with person IDs, distinct IDs, or email addresses."
)
MISSING_PREFIX = (
    "Multi-column CSV must contain at least one column with a supported ID header: 'person_id', "
    "'Person .id' (PostHog export format), 'distinct_id', 'distinct-id', or 'email'. Found columns: "
)

BOM = "\ufeff"
UUID1 = "0190b5a1-0000-7000-8000-00000000a001"


def parsed(
    id_type: str, ids: list[str], rows_total: int, rows_skipped: int, email_property_key: str | None = None
) -> ParsedCSV:
    """Shorthand for an expected result."""
    return ParsedCSV(id_type, ids, rows_total, rows_skipped, email_property_key)  # type: ignore[arg-type]


ACCEPTED = [
    # --- single column without a recognised header: every row is a distinct id -------------------------------
    ("headerless_distinct_ids", "legacy_user\nanother_user\n", parsed("distinct_id", ["legacy_user", "another_user"], 2, 0)),
    ("literal_distinct_id_header_is_data", "distinct_id\nuser123\nuser456\n",
     parsed("distinct_id", ["distinct_id", "user123", "user456"], 3, 0)),
    ("distinct-id_dash_header_is_data_too", "distinct-id\nu1\n", parsed("distinct_id", ["distinct-id", "u1"], 2, 0)),
    ("no_trailing_newline", "a\nb", parsed("distinct_id", ["a", "b"], 2, 0)),
    ("duplicates_kept_in_order", "d2\nd1\nd2\nd1\n", parsed("distinct_id", ["d2", "d1", "d2", "d1"], 4, 0)),
    # --- single column with a person-id header ----------------------------------------------------------------
    ("person_id_header", "person_id\nu1\nu2\n", parsed("person_id", ["u1", "u2"], 2, 0)),
    ("person-id_header", "person-id\nu1\n", parsed("person_id", ["u1"], 1, 0)),
    ("posthog_export_header", "Person .id\nu1\n", parsed("person_id", ["u1"], 1, 0)),
    ("export_header_case_insensitive", "PERSON .ID\nu1\n", parsed("person_id", ["u1"], 1, 0)),
    ("person_header_trimmed_and_cased", "  Person_ID \t\nu1\n", parsed("person_id", ["u1"], 1, 0)),
    # --- single column with an email header -------------------------------------------------------------------
    ("email_header", "email\na@x.com\n", parsed("email", ["a@x.com"], 1, 0, "email")),
    ("e-mail_header_keeps_its_text", "E-Mail\na@x.com\n", parsed("email", ["a@x.com"], 1, 0, "E-Mail")),
    ("email_header_text_trimmed", "  Email  \na@x.com\n", parsed("email", ["a@x.com"], 1, 0, "Email")),
    # --- single column: only the first cell counts, values trimmed, blanks skipped and counted ----------------
    ("only_first_cell_of_later_rows", "person_id\nu1,extra,cells\nu2\n", parsed("person_id", ["u1", "u2"], 2, 0)),
    ("values_trimmed_blanks_skipped", "email\n  a@x.com  \n\n   \nb@x.com\n",
     parsed("email", ["a@x.com", "b@x.com"], 4, 2, "email")),
    ("blank_first_cell_later_row_skipped", "person_id\n,u9\nu1\n", parsed("person_id", ["u1"], 2, 1)),
    ("trailing_blank_lines_are_skipped_rows", "person_id\nu1\n\n\n", parsed("person_id", ["u1"], 3, 2)),
    # --- the single-column test looks at non-blank cells anywhere, the header test at the first cell ----------
    ("one_non_blank_cell_not_first", ",person_id\nu1\n", parsed("distinct_id", ["u1"], 2, 1)),
    ("header_with_trailing_empty_cells", "person_id,,\nu1,,\n", parsed("person_id", ["u1"], 1, 0)),
    ("row_of_blank_cells_is_not_empty", ",\nabc\n", parsed("distinct_id", ["abc"], 2, 1)),
    # --- leading empty rows ------------------------------------------------------------------------------------
    ("leading_empty_rows_then_header", "\n\n\nperson_id\nu1\n", parsed("person_id", ["u1"], 1, 0)),
    ("leading_empty_rows_then_data", "\r\n\nabc\n", parsed("distinct_id", ["abc"], 1, 0)),
    ("leading_empty_rows_then_multi_column", "\n\nname,distinct_id\nx,d1\n", parsed("distinct_id", ["d1"], 1, 0)),
    # --- line endings: the text is split with str.splitlines() before csv.reader ------------------------------
    ("crlf", "person_id\r\nu1\r\nu2\r\n", parsed("person_id", ["u1", "u2"], 2, 0)),
    ("crlf_multi_column", "name,email\r\nA,a@x.com\r\n", parsed("email", ["a@x.com"], 1, 0, "email")),
    ("lone_cr", "person_id\ru1\ru2", parsed("person_id", ["u1", "u2"], 2, 0)),
    ("unicode_line_separator", "person_id\u2028u1\x0bu2", parsed("person_id", ["u1", "u2"], 2, 0)),
    ("line_break_inside_quotes_is_lost", 'person_id\n"u\n1"\n', parsed("person_id", ["u1"], 1, 0)),
    # --- quoting -------------------------------------------------------------------------------------------------
    ("quoted_values_with_commas",
     'name,distinct_id,email\n"John Doe","user,123","john@example.com"\n"Jane Smith","user,456,special","jane@example.com"\n',
     parsed("distinct_id", ["user,123", "user,456,special"], 2, 0)),
    ("quoted_single_column_value_with_comma", '"a,b"\n"c"\n', parsed("distinct_id", ["a,b", "c"], 2, 0)),
    ("escaped_double_quotes", 'distinct_id,n\n"say ""hi""",1\n', parsed("distinct_id", ['say "hi"'], 1, 0)),
    ("quoted_header", '"person_id","name"\n"u1","x"\n', parsed("person_id", ["u1"], 1, 0)),
    ("quoted_spaces_are_trimmed_too", 'email\n"  a@x.com  "\n', parsed("email", ["a@x.com"], 1, 0, "email")),
    # --- BOM is not stripped: it sticks to the first cell ------------------------------------------------------
    ("bom_hides_single_column_header", BOM + "person_id\nu1\n",
     parsed("distinct_id", [BOM + "person_id", "u1"], 2, 0)),
    ("bom_kept_on_first_distinct_id", BOM + "user1\nuser2\n", parsed("distinct_id", [BOM + "user1", "user2"], 2, 0)),
    ("bom_hides_person_id_so_email_wins", BOM + "person_id,email\nu1,a@x.com\n",
     parsed("email", ["a@x.com"], 1, 0, "email")),
    ("bom_on_non_id_first_column_is_harmless", BOM + "name,person_id\nx,u1\n", parsed("person_id", ["u1"], 1, 0)),
    # --- multi-column: header priority person_id > distinct_id > email, first matching column -------------------
    ("person_id_beats_email", f"name,person_id,email\nJohn,{UUID1},john@example.com\n", parsed("person_id", [UUID1], 1, 0)),
    ("person_id_beats_earlier_columns", "email,distinct_id,person_id\na@x.com,d1,u1\n", parsed("person_id", ["u1"], 1, 0)),
    ("distinct_id_beats_email", "email,distinct-id\na@x.com,d1\n", parsed("distinct_id", ["d1"], 1, 0)),
    ("dash_distinct_id_header", "name,distinct-id,email\nJohn,user123,j@x.com\nZero,0,z@x.com\n",
     parsed("distinct_id", ["user123", "0"], 2, 0)),
    ("person-id_dash_header", "name,person-id\nJohn,u1\n", parsed("person_id", ["u1"], 1, 0)),
    ("export_header_multi_column", "Person .id,name\nu1,John\n", parsed("person_id", ["u1"], 1, 0)),
    ("email_when_nothing_else", "name,email\nJohn,j@x.com\n", parsed("email", ["j@x.com"], 1, 0, "email")),
    ("email_column_text_kept", "name, E-mail \nJohn,j@x.com\n", parsed("email", ["j@x.com"], 1, 0, "E-mail")),
    ("first_of_two_person_headers", "Person .id,person_id\nA,B\n", parsed("person_id", ["A"], 1, 0)),
    ("multi_headers_trimmed_case_insensitive", " Distinct_ID ,name\n d1 ,x\n", parsed("distinct_id", ["d1"], 1, 0)),
    ("longer_rows_fine", "a,person_id\n1,2,3,4\n", parsed("person_id", ["2"], 1, 0)),
    # --- multi-column: short rows and blank ids skipped and counted --------------------------------------------
    ("short_rows_skipped", "name,email,person_id\na,b,c\nshort,row\nx\n\nd,e,f\n", parsed("person_id", ["c", "f"], 5, 3)),
    ("blank_person_ids_skipped",
     f"name,person_id,email\nJohn Doe,{UUID1},john@example.com\nEmpty Person,,empty@example.com\nJane Smith,   ,jane@example.com\n",
     parsed("person_id", [UUID1], 3, 2)),
    ("multi_column_values_trimmed", "name,distinct_id\nx,\t d1 \n", parsed("distinct_id", ["d1"], 1, 0)),
    ("multi_column_duplicates_kept", "distinct_id,n\nd1,1\nd1,2\n", parsed("distinct_id", ["d1", "d1"], 2, 0)),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_accepted_files(text: str, expected: ParsedCSV) -> None:
    assert parse_cohort_csv(text.encode("utf-8")) == expected


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_text_input_reads_like_bytes(text: str, expected: ParsedCSV) -> None:
    assert parse_cohort_csv(text) == expected


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=["bytes", "bytearray", "memoryview"])
def test_bytes_like_inputs(wrap: type) -> None:
    assert parse_cohort_csv(wrap(b"person_id\nu1\n")) == parsed("person_id", ["u1"], 1, 0)


def test_bom_bytes_are_not_stripped() -> None:
    """The raw UTF-8 BOM (EF BB BF) decodes to U+FEFF and stays in the first id."""
    result = parse_cohort_csv(b"\xef\xbb\xbfemail\na@x.com\n")
    assert result == parsed("distinct_id", [BOM + "email", "a@x.com"], 2, 0)


def test_non_ascii_ids_survive() -> None:
    assert parse_cohort_csv("email\nzoë@exämple.com\n用户\n".encode()) == parsed(
        "email", ["zoë@exämple.com", "用户"], 2, 0, "email"
    )


def test_accounting_invariant() -> None:
    result = parse_cohort_csv("name,person_id\na,1\nb\n\nc,\nd,2\n")
    assert result.rows_total == len(result.ids) + result.rows_skipped == 5


REJECTED = [
    # --- empty -----------------------------------------------------------------------------------------------
    ("empty_bytes", b"", EMPTY, "parse_error"),
    ("only_newlines", b"\n\n\r\n\r", EMPTY, "parse_error"),
    # --- encoding ----------------------------------------------------------------------------------------------
    ("latin1_bytes", "person_id\ncafé\n".encode("latin-1"), ENCODING, "parse_error"),
    ("utf16_file", "person_id\nu1\n".encode("utf-16"), ENCODING, "parse_error"),
    ("truncated_utf8_sequence", b"person_id\nu\xe2\x82\n", ENCODING, "parse_error"),
    ("utf8_encoded_surrogate", b"person_id\n\xed\xb2\x80\n", ENCODING, "parse_error"),
    # --- missing id column (multi-column); PostHog lists the non-blank headers as written --------------------
    ("no_id_header", b"name,age\nx,1\n", MISSING_PREFIX + "name, age", "parse_error"),
    ("blank_headers_not_listed", b"name,,age,\nx,,1,\n", MISSING_PREFIX + "name, age", "parse_error"),
    ("headers_listed_untrimmed", b" name , ,age\n", MISSING_PREFIX + " name , age", "parse_error"),
    ("near_miss_spellings", b"person id,distinct id,mail,user_id\n", MISSING_PREFIX + "person id, distinct id, mail, user_id",
     "parse_error"),
    ("header_only_multi_column_without_id", b"name,age\n", MISSING_PREFIX + "name, age", "parse_error"),
    # --- no ids ----------------------------------------------------------------------------------------------
    ("header_only_person_id", b"person_id\n", NO_VALID_IDS, "no_valid_ids"),
    ("header_only_email", b"email\n", NO_VALID_IDS, "no_valid_ids"),
    ("header_only_multi_column", b"name,distinct_id\n", NO_VALID_IDS, "no_valid_ids"),
    ("blank_ids_only", b"person_id,email\n,a@x.com\n  ,b@x.com\n", NO_VALID_IDS, "no_valid_ids"),
    ("short_rows_only", b"name,email,distinct_id\na,b\nc\n", NO_VALID_IDS, "no_valid_ids"),
    ("whitespace_only_file", b"   \n\t\n", NO_VALID_IDS, "no_valid_ids"),
    ("blank_cells_only", b",\n,,\n", NO_VALID_IDS, "no_valid_ids"),
    # --- invalid format ----------------------------------------------------------------------------------------
    ("nul_byte", b"person_id\nu\x001\n", FORMAT, "parse_error"),
    ("nul_in_header", b"\x00\n", FORMAT, "parse_error"),
    ("field_over_csv_size_limit", b"person_id\n" + b"x" * 200_000 + b"\n", FORMAT, "parse_error"),
]


@pytest.mark.parametrize(("data", "message", "code"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_rejected_files(data: bytes, message: str, code: str) -> None:
    with pytest.raises(CSVImportError) as excinfo:
        parse_cohort_csv(data)
    error = excinfo.value
    assert error.detail == message
    assert error.code == code
    assert error.attr == "csv"


def test_empty_text_input() -> None:
    with pytest.raises(CSVImportError) as excinfo:
        parse_cohort_csv("")
    assert excinfo.value.detail == EMPTY


def test_text_with_lone_surrogate_is_an_encoding_error() -> None:
    """A str that no UTF-8 file could have produced is refused like undecodable bytes."""
    with pytest.raises(CSVImportError) as excinfo:
        parse_cohort_csv("person_id\nu\udc801\n")
    assert excinfo.value.detail == ENCODING


def test_rejection_body_is_posthogs() -> None:
    """400 body ``{"csv": [message]}`` in PostHog; here the error knows its field and code."""
    with pytest.raises(CSVImportError) as excinfo:
        parse_cohort_csv(b"")
    assert isinstance(excinfo.value, CohortValidationError)
    assert excinfo.value.to_dict() == {"type": "validation_error", "code": "parse_error", "detail": EMPTY, "attr": "csv"}


def test_unexpected_failure_gets_the_generic_message(monkeypatch: pytest.MonkeyPatch) -> None:
    boom = RuntimeError("disk on fire")

    def explode(*_args: object) -> None:
        raise boom

    monkeypatch.setattr(csv_import, "_collect_ids", explode)
    with pytest.raises(CSVImportError) as excinfo:
        parse_cohort_csv(b"person_id\nu1\n")
    assert excinfo.value.detail == GENERIC
    assert excinfo.value.code == "parse_error"
    assert excinfo.value.__cause__ is boom


def test_encoding_error_keeps_its_cause() -> None:
    with pytest.raises(CSVImportError) as excinfo:
        parse_cohort_csv(b"\xff")
    assert isinstance(excinfo.value.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize("data", [None, 123, ["person_id", "u1"], Path("ids.csv"), {"csv": "x"}],
                         ids=["none", "int", "list", "path", "dict"])
def test_non_text_input_is_a_type_error(data: object) -> None:
    with pytest.raises(TypeError):
        parse_cohort_csv(data)  # type: ignore[arg-type]


def test_result_is_frozen() -> None:
    result = parse_cohort_csv(b"person_id\nu1\n")
    with pytest.raises(FrozenInstanceError):
        result.id_type = "email"  # type: ignore[misc]


def test_large_file() -> None:
    """No row limit (spec 7.2): 200 000 rows parse whole, in order."""
    rows = "".join(f"n{i},d{i}\n" for i in range(200_000))
    result = parse_cohort_csv(("name,distinct_id\n" + rows).encode())
    assert result.rows_total == 200_000 and result.rows_skipped == 0
    assert result.ids[0] == "d0" and result.ids[-1] == "d199999" and len(result.ids) == 200_000
