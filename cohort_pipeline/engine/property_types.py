"""Property definitions: which type each property key has (spec decision 2, clarification 11).

PostHog types a property by its project's *property definition*, not by the value in a row. Keys without a
declared definition get one inferred from the data the way PostHog's ingestion would: JSON numbers -> Numeric,
JSON booleans -> Boolean, anything else -> String. Mixed keys are Numeric only when every non-null value is a JSON
number or a numeric string (with at least one real number), Boolean only when every value is a JSON boolean.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

import polars as pl

from cohort_pipeline.errors import CohortValidationError


class PropertyType(StrEnum):
    STRING = "String"
    NUMERIC = "Numeric"
    DATETIME = "DateTime"
    BOOLEAN = "Boolean"


def parse_property_type(value: str) -> PropertyType:
    """Accept PostHog's spellings (``Numeric``, ``numeric``) and fail with the list of allowed types."""
    for member in PropertyType:
        if value.strip().lower() == member.value.lower():
            return member
    allowed = ", ".join(m.value for m in PropertyType)
    raise CohortValidationError(
        f"Unknown property type '{value}'. Allowed types: {allowed}.", attr="property_definitions"
    )


def normalize_definitions(definitions: Mapping[str, str | PropertyType] | None) -> dict[str, PropertyType]:
    """Declared definitions as ``{key: PropertyType}``; ``None`` means "nothing declared"."""
    return {key: parse_property_type(str(value)) for key, value in (definitions or {}).items()}


def json_path(key: str) -> str:
    """A JSONPath selecting one top-level key, whatever characters it contains (``$``, dots, quotes, non-ASCII).

    Polars' JSONPath reads the bracketed name literally except for ``\\"``, so the key must *not* be JSON-escaped
    (``json.dumps("café")`` would look for ``caf\\u00e9`` and find nothing). Keys with a backslash cannot be
    written in that syntax at all; :func:`property_text` reads those in Python.
    """
    return '$["' + key.replace('"', '\\"') + '"]'


def _python_text(document: str | None, key: str) -> str | None:
    """``property_text`` for one document, in Python (keys Polars' JSONPath cannot address)."""
    if document is None:
        return None
    try:
        value = json.loads(document).get(key)
    except (ValueError, AttributeError):
        return None
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def property_text(properties: pl.Expr, key: str) -> pl.Expr:
    """The key's value as PostHog reads it: unquoted text; numbers/booleans as their JSON text; JSON objects as
    minified JSON. A missing key and a JSON ``null`` are null; ``""`` stays a value (clarification 10)."""
    if "\\" in key:
        return properties.map_elements(lambda doc: _python_text(doc, key), return_dtype=pl.String,
                                       skip_nulls=False)
    return properties.str.json_path_match(json_path(key))


# ---- many rows: a regex extraction where that gives property_text's exact text, the JSON path elsewhere --------

_WS = r"[ \t\n\r]*"
_PLAIN_STRING = r'"[^"\\\x00-\x1f]*"'
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_PLAIN_INTEGER = r"^(?:0|-?[1-9][0-9]{0,17})$"
"""A number whose text the path gives as written (others are respelled: ``1.50`` reads ``"1.5"``, ``1e2``
``"100.0"``)."""
_MEMBER = rf"{_WS}{_PLAIN_STRING}{_WS}:{_WS}(?:{_PLAIN_STRING}|{_NUMBER}|true|false|null){_WS}"
FLAT_OBJECT = rf"^{_WS}\{{(?:{_MEMBER}(?:,{_MEMBER})*)?\}}{_WS}$"
"""A JSON object of strings without escapes, numbers, booleans and nulls. In such a document a member name is
spelled literally, and a string's text is what lies between its quotes."""

_NOT_IN_FLAT_NAMES = re.compile(r'["\\\x00-\x1f]')
"""Characters a member name of a :data:`FLAT_OBJECT` never holds: keys containing them always read the path."""


def regex_literal(text: str) -> str:
    """``text`` as a regex matching itself (every character that is not a letter, digit or ``_`` as ``\\x{..}``)."""
    return "".join(char if char.isalnum() or char == "_" else f"\\x{{{ord(char):X}}}" for char in text)


def _flat_value(document: pl.Expr, key: str) -> pl.Expr:
    """The value of ``key`` in a :data:`FLAT_OBJECT` document naming it at most once, as a struct: field ``1`` a
    string's inner text, ``2`` a number as written, ``3`` ``true`` / ``false`` (all null for ``null`` or a missing
    key). A flat document's strings hold no quotes, so ``"key":`` can only match at a member name."""
    return document.str.extract_groups(
        f'"{regex_literal(key)}"{_WS}:{_WS}(?:"([^"]*)"|({_NUMBER})|(true|false))'
    )


def property_text_stages(column: str, names: Mapping[str, str]) -> list[list[pl.Expr]]:
    """``with_columns`` stages giving every key of ``names`` its :func:`property_text` as column ``names[key]``.

    ``json_path_match`` parses the whole document for every key it reads: on person documents of a dozen keys
    that is several times the cost of a regex extraction. So the key's value in a :data:`FLAT_OBJECT` document
    naming it once (a duplicated name reads its last value through the path) is extracted with
    :func:`_flat_value`, and its text taken as is unless it is a number the path respells; only those rows, the
    other documents, and keys that cannot occur in a flat document go through :func:`property_text`. (Event
    documents are short and read on a few rows each; there the path alone is cheaper, see ``bench/RESULTS.md``.)
    The stages leave helper columns named ``__json_*`` behind.
    """
    document = pl.col(column)
    flat_keys = [key for key in names if not _NOT_IN_FLAT_NAMES.search(key)]
    texts = [property_text(document, key).alias(names[key]) for key in names if key not in flat_keys]
    if not flat_keys:
        return [texts]
    values = []
    for index, key in enumerate(flat_keys):
        once = pl.when("__json_flat").then(document).str.count_matches(f'"{key}"', literal=True).le(1)
        values += [once.fill_null(False).alias(f"__json_once{index}"),
                   _flat_value(document, key).alias(f"__json_value{index}")]
    for index, key in enumerate(flat_keys):
        value = pl.col(f"__json_value{index}").struct
        number = value.field("2")
        extracted = pl.col(f"__json_once{index}") & (number.is_null() | number.str.contains(_PLAIN_INTEGER))
        # the path costs nothing on a null, so it is handed only the documents the extraction cannot read
        texts.append(
            pl.when(extracted).then(pl.coalesce(value.field("1"), number, value.field("3")))
            .otherwise(property_text(pl.when(~extracted).then(document), key))
            .alias(names[key])
        )
    return [[document.str.contains(FLAT_OBJECT).fill_null(False).alias("__json_flat")], values, texts]


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                  "\r": "\\r", "\t": "\\t"}


def _raw_char_pattern(char: str) -> str:
    """Every way JSON text may spell one character of a key: literally, as a short escape or as ``\\uXXXX``."""
    code = ord(char)
    if code > 0xFFFF:  # a UTF-16 surrogate pair when escaped
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        escaped = f"\\\\u(?i:{high:04x})\\\\u(?i:{low:04x})"
    else:
        escaped = f"\\\\u(?i:{code:04x})"
    if 0x20 <= code < 0x7F and char not in ('"', "\\", "/"):
        return re.escape(char)  # printable ASCII: nobody writes ``a`` as ``\\u0061`` (and alternations are slow)
    options = [escaped]
    if char in _SHORT_ESCAPES:
        options.append(re.escape(_SHORT_ESCAPES[char]))
    if char not in ('"', "\\") and code >= 0x20:
        options.append(re.escape(char))
    return "(?:" + "|".join(options) + ")"


def _key_pattern(key: str) -> str:
    """A regex matching the key as an object member name in raw JSON text, capturing the value's first character.

    A member name always follows ``{`` or ``,`` (plus whitespace); a quote inside a string value is escaped, so
    text that merely *looks* like ``"key":`` inside a string is not matched. Nested objects can still hold the
    same key, which :func:`infer_property_types` resolves in Python.
    """
    return r'[{,]\s*"' + "".join(_raw_char_pattern(char) for char in key) + r'"\s*:\s*(.)'


def _json_kind(properties: pl.Expr, key: str) -> pl.Expr:
    """First character of the key's raw JSON value: ``"`` string, ``t``/``f`` boolean, digit or ``-`` number.

    Only consulted for values whose text looks like a number or a boolean, where the text alone cannot tell
    ``5`` from ``"5"``. It reads the first occurrence of the member name, so rows where the name occurs more than
    once (a nested object with the same key) are classified in Python instead.
    """
    return properties.str.extract(_key_pattern(key), 1)


def _python_kind(document: str, key: str) -> str:
    """``number``, ``bool``, ``string`` or ``other`` for the top-level value of ``key`` (exact, in Python)."""
    try:
        value = json.loads(document).get(key)
    except (ValueError, AttributeError):
        return "other"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


_NUMBER_TEXT = r"^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def infer_property_types(
    frame: pl.LazyFrame, keys: Iterable[str], *, column: str = "properties", first_rows: pl.LazyFrame | None = None
) -> dict[str, PropertyType]:
    """Infer the type of each key from every row of ``frame[column]`` (JSON text) in one aggregate query.

    ``first_rows`` (a part of ``frame``, e.g. the events a key is compared on) is read first: a key holding a
    plain string there - neither number-like nor ``true`` / ``false`` - is a String whatever the other rows hold,
    so only the other keys are read from the whole of ``frame``, in a second query."""
    keys = sorted(set(keys))
    inferred: dict[str, PropertyType] = {}
    if first_rows is not None and keys:
        counts = _type_counts(first_rows, keys, column)
        inferred = {key: PropertyType.STRING for key in keys if counts[key]["plain"]}
        keys = [key for key in keys if key not in inferred]
    if not keys:
        return inferred
    counts = _type_counts(frame, keys, column)
    for key in keys:
        total, numbers, numeric_strings, booleans = (counts[key][name] for name in ("n", "num", "numstr", "bool"))
        if counts[key]["amb"]:
            numbers, numeric_strings, booleans = _count_ambiguous(frame, key, column, numbers, numeric_strings,
                                                                  booleans)
        if numbers and numbers + numeric_strings == total:
            inferred[key] = PropertyType.NUMERIC
        elif total and booleans == total:
            inferred[key] = PropertyType.BOOLEAN
        else:
            inferred[key] = PropertyType.STRING
    return inferred


def _type_counts(frame: pl.LazyFrame, keys: list[str], column: str) -> dict[str, dict[str, int]]:
    """Per key: values ``n``, JSON numbers ``num``, numeric strings ``numstr``, JSON booleans ``bool``, rows to
    classify in Python ``amb``, and ``plain`` strings (neither number-like nor ``true`` / ``false``)."""
    # stage 1 reads each key's text once (Polars would otherwise re-run the JSON scans for every aggregate that
    # mentions them); stage 2 runs the raw-text regexes, only where the text alone is ambiguous (it looks like a
    # number or a boolean); stage 3 counts
    document = pl.col(column)
    texts: list[pl.Expr] = []
    raw: list[pl.Expr] = []
    aggregates: list[pl.Expr] = []
    for index, key in enumerate(keys):
        # a document without any backslash spells every name literally: one without `"key"` cannot hold the key
        spelled = document.str.contains(f'"{key}"', literal=True) | document.str.contains("\\", literal=True)
        texts.append(property_text(pl.when(spelled).then(document), key).alias(f"t{index}"))
        text = pl.col(f"t{index}")
        numeric_like = text.str.contains(_NUMBER_TEXT)
        bool_like = text.is_in(["true", "false"])
        candidate = pl.when(numeric_like | bool_like).then(document)
        raw += [
            _json_kind(candidate, key).alias(f"k{index}"),
            candidate.str.count_matches(_key_pattern(key)).alias(f"c{index}"),
        ]
        kind = pl.col(f"k{index}")
        # a row naming the key more than once (nested objects) cannot trust the first occurrence: counted in Python
        ambiguous = (numeric_like | bool_like) & (pl.col(f"c{index}") > 1)
        is_json_number = numeric_like & ~ambiguous & kind.is_in(list("-0123456789"))
        is_json_bool = bool_like & ~ambiguous & kind.is_in(["t", "f"])
        aggregates += [
            text.is_not_null().sum().alias(f"n{index}"),
            is_json_number.sum().alias(f"num{index}"),
            (numeric_like & ~ambiguous & ~is_json_number).sum().alias(f"numstr{index}"),
            is_json_bool.sum().alias(f"bool{index}"),
            ambiguous.sum().alias(f"amb{index}"),
            (text.is_not_null() & ~numeric_like & ~bool_like).sum().alias(f"plain{index}"),
        ]
    row = frame.select(document, *texts).with_columns(raw).select(aggregates).collect().row(0, named=True)
    return {key: {name: row[f"{name}{index}"] for name in ("n", "num", "numstr", "bool", "amb", "plain")}
            for index, key in enumerate(keys)}


def _count_ambiguous(
    frame: pl.LazyFrame, key: str, column: str, numbers: int, numeric_strings: int, booleans: int
) -> tuple[int, int, int]:
    """Add the rows whose raw text names ``key`` more than once, classified exactly by decoding them in Python."""
    text = property_text(pl.col(column), key)
    numeric_like = text.str.contains(_NUMBER_TEXT)
    rows = frame.filter(
        (numeric_like | text.is_in(["true", "false"]))
        & (pl.col(column).str.count_matches(_key_pattern(key)) > 1)
    ).select(pl.col(column), numeric_like.alias("numeric_like")).collect()
    for document, is_numeric_like in rows.iter_rows():
        kind = _python_kind(document, key)
        if is_numeric_like:
            numbers += kind == "number"
            numeric_strings += kind == "string"
        else:
            booleans += kind == "bool"
    return numbers, numeric_strings, booleans


def resolve_property_types(
    frame: pl.LazyFrame,
    keys: Iterable[str],
    declared: Mapping[str, str | PropertyType] | None = None,
    *,
    column: str = "properties",
) -> dict[str, PropertyType]:
    """Declared definitions win; every other key is inferred from the data."""
    declared_types = normalize_definitions(declared)
    keys = set(keys)
    inferred = infer_property_types(frame, keys - declared_types.keys(), column=column)
    return {key: declared_types.get(key) or inferred[key] for key in keys}
