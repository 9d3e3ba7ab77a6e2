"""Property typing (spec decision 2, 4.1, clarifications 10 and 11), written from the spec text.

Every expected type below was worked out by hand from clarification 11:
  * Numeric  - the key holds JSON numbers and every other non-null value is a numeric string;
  * Boolean  - every non-null value is a JSON boolean;
  * String   - anything else (including "no non-null value at all");
  * a missing key and a JSON null are ignored; ``""`` is a real (non-numeric) value (clarification 10);
  * declared definitions override inferred ones.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from cohort_pipeline.engine.property_types import (
    PropertyType,
    infer_property_types,
    json_path,
    normalize_definitions,
    parse_property_type,
    property_text,
    property_text_stages,
    resolve_property_types,
)
from cohort_pipeline.errors import CohortValidationError

NUMERIC, BOOLEAN, STRING, DATETIME = (PropertyType.NUMERIC, PropertyType.BOOLEAN, PropertyType.STRING,
                                      PropertyType.DATETIME)


def _frame(*documents: dict | str, ensure_ascii: bool = False) -> pl.LazyFrame:
    """Persons' ``properties`` column as JSON text; a ``str`` document is used verbatim (raw JSON)."""
    texts = [d if isinstance(d, str) else json.dumps(d, ensure_ascii=ensure_ascii) for d in documents]
    return pl.LazyFrame({"properties": texts}, schema={"properties": pl.String})


def _infer(key: str, *values: object, ensure_ascii: bool = False) -> PropertyType:
    """Infer ``key`` from one person per value; ``MISSING`` leaves the key out of that person."""
    documents = [{} if value is MISSING else {key: value} for value in values]
    return infer_property_types(_frame(*documents, ensure_ascii=ensure_ascii), [key])[key]


MISSING = object()

# ---- clarification 11, one rule per row ------------------------------------------------------------------------

INFERENCE_CASES = [
    pytest.param((1, 2, 3), NUMERIC, id="json-integers"),
    pytest.param((1.5, -2, 0, 1e3, -0.25), NUMERIC, id="json-floats-negatives-exponents"),
    pytest.param((1, "5", "2.5", "-3"), NUMERIC, id="numbers-plus-numeric-strings"),
    pytest.param(("5", "6"), STRING, id="only-numeric-strings-no-json-number"),
    pytest.param((1, "abc"), STRING, id="number-plus-non-numeric-string"),
    pytest.param((1, ""), STRING, id="number-plus-empty-string (clar 10: '' is a value)"),
    pytest.param((1, None, MISSING, 2), NUMERIC, id="nulls-and-missing-ignored-numeric"),
    pytest.param((True, False, True), BOOLEAN, id="json-booleans"),
    pytest.param((True, None, MISSING), BOOLEAN, id="booleans-with-null-and-missing"),
    pytest.param((True, "true"), STRING, id="boolean-plus-string-true"),
    pytest.param(("true", "false"), STRING, id="only-boolean-looking-strings"),
    pytest.param((1, True), STRING, id="number-plus-boolean"),
    pytest.param((None, None), STRING, id="only-nulls"),
    pytest.param((MISSING, MISSING), STRING, id="key-never-present"),
    pytest.param(({"a": 1},), STRING, id="json-object"),
    pytest.param(([1, 2],), STRING, id="json-array"),
    pytest.param((1, {"a": 1}), STRING, id="number-plus-object"),
    pytest.param(("2024-01-01", "2024-02-01"), STRING, id="date-strings-are-not-inferred-datetime"),
    pytest.param((1704888000, 1704888001), NUMERIC, id="unix-timestamps-are-numbers"),
    pytest.param(("hello",), STRING, id="plain-string"),
]


@pytest.mark.parametrize(("values", "expected"), INFERENCE_CASES)
def test_infer_property_types_rules(values, expected):
    assert _infer("k", *values) == expected


# ---- keys with special characters: the same rules must hold whatever the key looks like ---------------------

SPECIAL_KEYS = ["$browser", "utm.source", "a.b.c", 'quo"te', "it's", "sp ace", "br]ck[et", "café", "日本語",
                "*", "@x", "?q", "$", "tab\tkey", "back\\slash", "per%cent_under"]


@pytest.mark.parametrize("key", SPECIAL_KEYS)
@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["utf8-json", "ascii-escaped-json"])
def test_infer_special_character_keys(key, ensure_ascii):
    assert _infer(key, 1, "2", MISSING, ensure_ascii=ensure_ascii) == NUMERIC
    assert _infer(key, True, False, ensure_ascii=ensure_ascii) == BOOLEAN
    assert _infer(key, 1, "x", ensure_ascii=ensure_ascii) == STRING
    assert _infer(key, "5", ensure_ascii=ensure_ascii) == STRING


@pytest.mark.parametrize("key", SPECIAL_KEYS)
@pytest.mark.parametrize("ensure_ascii", [False, True], ids=["utf8-json", "ascii-escaped-json"])
def test_property_text_special_character_keys(key, ensure_ascii):
    frame = _frame({key: "v", "other": 1}, {"other": 2}, ensure_ascii=ensure_ascii)
    texts = frame.select(property_text(pl.col("properties"), key)).collect().to_series().to_list()
    assert texts == ["v", None]


def test_a_plain_key_spelled_with_escapes_is_still_read():
    # the raw text never spells "amount" literally in the first document; the type must still see its "x"
    assert infer_property_types(_frame('{"\\u0061mount": "x"}', '{"amount": 5}'), ["amount"]) == {"amount": STRING}


def test_special_keys_inferred_together_in_one_pass():
    frame = _frame({"$browser": "Chrome", "a.b": 1, 'q"k': True, "café": 5},
                   {"$browser": "Firefox", "a.b": "2", 'q"k': False, "café": "6"})
    assert infer_property_types(frame, ["$browser", "a.b", 'q"k', "café"]) == {
        "$browser": STRING, "a.b": NUMERIC, 'q"k': BOOLEAN, "café": NUMERIC}


def test_similar_key_names_do_not_leak_into_each_other():
    # "n" must not be confused with "n2", "xn" or "N"
    frame = _frame({"n": "a", "n2": 1, "xn": 2, "N": 3}, {"n": "b"})
    assert infer_property_types(frame, ["n", "n2", "xn", "N"]) == {
        "n": STRING, "n2": NUMERIC, "xn": NUMERIC, "N": NUMERIC}


def test_nested_key_with_the_same_name_does_not_decide_the_type():
    # Only the top-level value counts. Here every top-level value is the *string* "1" (no JSON number), so the
    # key is String even though a nested object holds a number under the same name before it.
    assert infer_property_types(_frame({"meta": {"n": 1}, "n": "1"}), ["n"]) == {"n": STRING}
    # ... and the other way round: a top-level JSON number after a nested string of the same name is a number.
    assert infer_property_types(_frame({"meta": {"n": "x"}, "n": 1}, {"n": "2"}), ["n"]) == {"n": NUMERIC}
    # a nested boolean does not make a top-level string "true" a JSON boolean
    assert infer_property_types(_frame({"meta": {"b": True}, "b": "true"}), ["b"]) == {"b": STRING}


def test_key_name_appearing_inside_a_string_value_is_ignored():
    frame = _frame({"note": 'he said "n": 5', "n": "5"})
    assert infer_property_types(frame, ["n"]) == {"n": STRING}


def test_whitespace_in_raw_json_does_not_matter():
    frame = _frame('{"n" : 5 , "b" :true}', '{ "n":"6","b": false }')
    assert infer_property_types(frame, ["n", "b"]) == {"n": NUMERIC, "b": BOOLEAN}


def test_infer_many_keys_at_once_and_no_keys():
    frame = _frame({"a": 1, "b": "x", "c": True}, {"a": 2.5, "b": "y", "c": False})
    assert infer_property_types(frame, ["a", "b", "c", "absent"]) == {
        "a": NUMERIC, "b": STRING, "c": BOOLEAN, "absent": STRING}
    assert infer_property_types(frame, []) == {}


def test_infer_on_empty_persons_frame():
    frame = pl.LazyFrame({"properties": []}, schema={"properties": pl.String})
    assert infer_property_types(frame, ["a"]) == {"a": STRING}


# ---- declared definitions ---------------------------------------------------------------------------------------

def test_declared_definitions_override_inferred():
    frame = _frame({"n": 1, "s": "x", "b": True, "d": "2024-01-01"}, {"n": 2, "s": "5", "b": False})
    declared = {"n": "String", "s": "Numeric", "b": "String", "d": "DateTime"}
    assert resolve_property_types(frame, ["n", "s", "b", "d", "other"], declared) == {
        "n": STRING, "s": NUMERIC, "b": STRING, "d": DATETIME, "other": STRING}


def test_declared_definition_for_key_not_in_data():
    assert resolve_property_types(_frame({}), ["x"], {"x": "Boolean"}) == {"x": BOOLEAN}


def test_declared_definitions_only_for_requested_keys():
    result = resolve_property_types(_frame({"a": 1}), ["a"], {"zzz": "Numeric"})
    assert result == {"a": NUMERIC}


@pytest.mark.parametrize(("spelling", "expected"), [
    ("Numeric", NUMERIC), ("numeric", NUMERIC), ("NUMERIC", NUMERIC), (" Numeric ", NUMERIC),
    ("String", STRING), ("DateTime", DATETIME), ("datetime", DATETIME), ("Boolean", BOOLEAN),
])
def test_parse_property_type_spellings(spelling, expected):
    assert parse_property_type(spelling) == expected


@pytest.mark.parametrize("bad", ["Number", "int", "", "Date"])
def test_parse_property_type_rejects_unknown(bad):
    with pytest.raises(CohortValidationError) as error:
        parse_property_type(bad)
    assert "String" in str(error.value) and "Numeric" in str(error.value)


def test_normalize_definitions():
    assert normalize_definitions(None) == {}
    assert normalize_definitions({"a": "numeric", "b": PropertyType.BOOLEAN}) == {"a": NUMERIC, "b": BOOLEAN}


# ---- property_text: how a value reads (spec 4.1 steps 1-2 and clarification 10) ---------------------------------

def test_property_text_reading_rules():
    frame = _frame({"k": "text"}, {"k": 5}, {"k": 2.5}, {"k": True}, {"k": False}, {"k": None}, {}, {"k": ""},
                   {"k": {"a": 1, "b": [1, 2]}}, {"k": -1})
    texts = frame.select(property_text(pl.col("properties"), "k")).collect().to_series().to_list()
    # strings unquoted; numbers/booleans as JSON text; null and missing are missing; "" stays a value; objects
    # as minified JSON (clarification 13)
    assert texts == ["text", "5", "2.5", "true", "false", None, None, "", '{"a":1,"b":[1,2]}', "-1"]


def test_property_text_top_level_only():
    frame = _frame({"meta": {"k": "nested"}}, {"meta": {"k": "nested"}, "k": "top"})
    texts = frame.select(property_text(pl.col("properties"), "k")).collect().to_series().to_list()
    assert texts == [None, "top"]


def test_json_path_is_a_string():
    assert isinstance(json_path("$browser"), str)


# ---- property_text_stages: a regex on flat documents, the path elsewhere, property_text's text exactly -----------

AWKWARD_DOCUMENTS = [
    '{"a": "x", "b": 1, "c": true}', '{"a": 5.0, "b": 1.50, "c": 1e5}', '{"a": -0, "b": -0.0, "c": 0}',
    '{"a": 123456789012345678, "b": 12345678901234567890, "c": 100000000000000000000000}',
    '{"a":"dup","a":"dup2","b":null}', '{"a": "caf\\u00e9", "b": "line\\nbreak", "c": "\\"q\\""}',
    '{"a": {"z": 1}, "b": [1, 2], "c": "ok"}', '{"x": {"a": "nested"}, "b": "top"}', 'not json', '{"a": "x"',
    '[1, 2]', '"str"', '', '{}', '{ "a" : "spaced" ,\n"b":"\\u00e9" }', '{"a": "", "b": "", "c": ""}',
    '{"a": "café ü 😀", "c": false}', '{"b": "a", "a": "b"}', '{"a\\"": 1, "a": 2}', '{"a": "x\u00a0"}',
    '\u00a0{"a": 1}', '{"a": 1}\u00a0', '{"a": "\\ud83d\\ude00"}', '{"a": 01}', '{"a": 1, "b": tru}',
    '{"a": null, "b": false, "c": -12}', '{"ba": 1, "ab": 2, "b": 3}', '{"a": "b", "b": "a:", "c": "\\"a\\": 1"}',
    '{"$current_url": "https://x.io/a?b=1", "a.b": "dot", "a+": "plus", "(c)": "paren", "ü k": "space"}',
    '{"a.b": 1, "axb": 2}', '{"a": true}  ', '{"a": "x",}', '{"a" "x"}', '{"a": 38.5, "b": "x", "c": 7}',
    '{"a": 1E5, "b": -12.0e-3, "c": 1234567890123456789}', '{"a": -0.5, "b": 0.0, "c": 00}',
]
KEY_SETS = [["a", "b", "c"], ["a", "b"], ["a"], ['a"', "a", "b\\c"], ["$current_url", "a.b", "a+", "(c)", "ü k"]]


@pytest.mark.parametrize("keys", KEY_SETS)
def test_property_text_stages_read_what_property_text_reads(keys):
    frame = pl.LazyFrame({"properties": AWKWARD_DOCUMENTS + [None]})
    names = {key: f"t{index}" for index, key in enumerate(keys)}
    staged = frame
    for stage in property_text_stages("properties", names):
        staged = staged.with_columns(stage)
    got = staged.select(names.values()).collect()
    expected = frame.select(property_text(pl.col("properties"), key).alias(names[key]) for key in keys).collect()
    assert got.to_dicts() == expected.to_dicts()

