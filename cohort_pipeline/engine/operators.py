"""The property-operator table (spec 4.2-4.3, clarifications 10-13): one row per PostHog operator.

A leaf ``{key, operator, value}`` becomes a boolean Polars expression in three steps:

1. the property's **operand** is prepared from its JSON text: typed by the property definition (``typed``), the
   raw text (``text``), a parsed instant (``datetime``) or a semver key (handled by :mod:`.semver`);
2. each filter value is **coerced** to the operand's type; a value that cannot be (``"abc"`` against a Numeric
   key) compares as NULL;
3. the comparisons of a list value are **combined** (any / all) and a NULL result - a missing property or an
   uncoercible filter value - becomes the operator's ``missing`` answer (false for positive operators, true for
   negative ones, as ClickHouse's nullable comparisons do).

Everything an operator needs to know is in its :class:`Operator` row; there is no per-operator branching
elsewhere. To find how ``icontains`` works, read its row and the comparison function it names.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import polars as pl

from cohort_pipeline.engine import dates, semver
from cohort_pipeline.engine.property_types import PropertyType, regex_literal
from cohort_pipeline.errors import CalculationError

Operand = Literal["typed", "text", "datetime", "semver", "number"]
Combine = Literal["any", "all"]


@dataclass(frozen=True)
class EvaluationContext:
    """What every comparison may need besides the leaf: the clock and the project timezone."""

    now: datetime
    timezone: str = "UTC"


@dataclass(frozen=True)
class PropertyOperand:
    """The property side of a comparison: its JSON text and its declared/inferred type."""

    text: pl.Expr
    type: PropertyType = PropertyType.STRING
    instant: pl.Expr | None = None  # a native Datetime column (person_metadata.created_at) instead of text


_UNMATCHABLE = object()  # a filter value that cannot be compared with this property type


def _json_text(value: Any) -> str:
    """How a filter value reads against String properties: its text, JSON for non-strings (``true``, ``5``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _as_number(value: Any) -> Any:
    """A filter value as a number, or ``_UNMATCHABLE``. Python's ``float`` is more lenient than the property side
    (:func:`_number_column`): it reads ``1_000`` and ``nan``, which are not numbers to a user (or to Polars)."""
    if isinstance(value, bool):
        return _UNMATCHABLE
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if "_" in text:
            return _UNMATCHABLE
        try:
            number = float(text)
        except ValueError:
            return _UNMATCHABLE
    return _UNMATCHABLE if math.isnan(number) else number


def _number_column(text: pl.Expr) -> pl.Expr:
    """A property's text as a float; unparseable values are NULL (decision 2). ``"NaN"`` is unparseable too:
    Polars orders NaN above every number (so ``"NaN" > 5`` would hold), while no comparison with it is true in
    ClickHouse, and a user would not call it a number."""
    return text.str.strip_chars().cast(pl.Float64, strict=False).fill_nan(None)


def _as_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(str(value).strip().lower(), _UNMATCHABLE)


def typed_property(operand: PropertyOperand, ctx: EvaluationContext) -> pl.Expr:
    """The property value under its definition's type (spec 4.1 step 3); unparseable values become NULL."""
    if operand.instant is not None:
        return operand.instant
    return {
        PropertyType.STRING: lambda t: t,
        PropertyType.NUMERIC: _number_column,
        PropertyType.BOOLEAN: lambda t: t.replace_strict({"true": True, "false": False}, default=None,
                                                         return_dtype=pl.Boolean),
        PropertyType.DATETIME: lambda t: dates.parse_datetime_column(t, ctx.timezone),
    }[operand.type](operand.text)


def coerce_typed(value: Any, operand: PropertyOperand, ctx: EvaluationContext) -> Any:
    """A filter value under the property's type (spec 4.1 step 4, clarification 11)."""
    if operand.instant is not None:
        return _as_instant(value, ctx)
    return {
        PropertyType.STRING: _json_text,
        PropertyType.NUMERIC: _as_number,
        PropertyType.BOOLEAN: _as_boolean,
        PropertyType.DATETIME: lambda v: _as_instant(v, ctx),
    }[operand.type](value)


def _as_instant(value: Any, ctx: EvaluationContext) -> Any:
    parsed = dates.parse_datetime_value(value, now=ctx.now, timezone=ctx.timezone)
    return _UNMATCHABLE if parsed is None else parsed


def _operand_expr(kind: Operand, operand: PropertyOperand, ctx: EvaluationContext) -> pl.Expr:
    if kind == "typed":
        return typed_property(operand, ctx)
    if kind == "datetime":
        if operand.instant is not None:
            return operand.instant
        return dates.parse_datetime_column(operand.text, ctx.timezone)
    if kind == "number":
        return _number_column(operand.text)
    if operand.instant is not None:  # text operators on a native timestamp compare its ISO text
        return operand.instant.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z")
    return operand.text


def _coerce(kind: Operand, value: Any, operand: PropertyOperand, ctx: EvaluationContext) -> Any:
    if kind == "typed":
        return coerce_typed(value, operand, ctx)
    if kind == "datetime":
        return _as_instant(value, ctx)
    if kind == "number":
        return _as_number(value)
    return _json_text(value)


# ---- comparisons: (operand expression, one coerced filter value) -> nullable boolean -------------------------


def _ilike_pattern(value: str) -> str:
    """ClickHouse ``ILIKE '%c%'``: ``%`` and ``_`` inside the value stay wildcards (PostHog does not escape them)."""
    body = "".join({"%": ".*", "_": "."}.get(char, re.escape(char)) for char in value)
    return f"(?is){body}"


def _substring_pattern(value: str) -> str:
    """``multiSearchAnyCaseInsensitive``: a plain case-insensitive substring, no wildcards (list values)."""
    return f"(?is){re.escape(value)}"


def regex_is_valid(pattern: str) -> bool:
    """Whether Polars' (Rust, linear-time) regex engine accepts the pattern (decision 8)."""
    try:
        pl.select(pl.lit("").str.contains(pattern)).item()
    except pl.exceptions.PolarsError:
        return False
    return True


def _regex(v: pl.Expr, pattern: str) -> pl.Expr:
    if not regex_is_valid(pattern):
        return pl.lit(False)  # decision 8: an invalid pattern matches nobody (even negated)
    return v.str.contains(pattern)


def _not_regex(v: pl.Expr, pattern: str) -> pl.Expr:
    if not regex_is_valid(pattern):
        return pl.lit(False)
    return ~v.str.contains(pattern)


Compare = Callable[[pl.Expr, Any], pl.Expr]

COMPARISONS: dict[str, Compare] = {
    "eq": lambda v, c: v == c,
    "ne": lambda v, c: v != c,
    "gt": lambda v, c: v > c,
    "gte": lambda v, c: v >= c,
    "lt": lambda v, c: v < c,
    "lte": lambda v, c: v <= c,
    "ilike": lambda v, c: v.str.contains(_ilike_pattern(c)),
    "not_ilike": lambda v, c: ~v.str.contains(_ilike_pattern(c)),
    "substring": lambda v, c: v.str.contains(_substring_pattern(c)),
    "not_substring": lambda v, c: ~v.str.contains(_substring_pattern(c)),
    "regex": _regex,
    "not_regex": _not_regex,
}


@dataclass(frozen=True)
class Operator:
    """One row of spec table 4.3."""

    name: str
    operand: Operand
    compare: str  # key of COMPARISONS
    missing: bool  # the answer when the property is missing (NULL)
    combine: Combine = "any"  # how the comparisons of several filter values combine
    list_missing: bool | None = None  # a different answer for a missing property under a list value


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("exact", "typed", "eq", missing=False),
        Operator("is_not", "typed", "ne", missing=True, combine="all"),
        Operator("in", "typed", "eq", missing=False),
        Operator("not_in", "typed", "ne", missing=True, combine="all"),
        Operator("icontains", "text", "ilike", missing=False),
        Operator("not_icontains", "text", "not_ilike", missing=True, combine="all", list_missing=False),
        Operator("icontains_multi", "text", "substring", missing=False),
        Operator("not_icontains_multi", "text", "not_substring", missing=False, combine="all"),
        Operator("regex", "text", "regex", missing=False),
        Operator("not_regex", "text", "not_regex", missing=True, combine="all"),
        Operator("gt", "typed", "gt", missing=False),
        Operator("gte", "typed", "gte", missing=False),
        Operator("lt", "typed", "lt", missing=False),
        Operator("lte", "typed", "lte", missing=False),
        Operator("min", "typed", "gte", missing=False),
        Operator("max", "typed", "lte", missing=False),
        Operator("is_date_before", "datetime", "lt", missing=False),
        Operator("is_date_after", "datetime", "gt", missing=False),
        Operator("is_date_exact", "datetime", "eq", missing=False),
        Operator("is_cleaned_path_exact", "text", "eq", missing=False),
    )
}

_LIST_COMPARISON = {"ilike": "substring", "not_ilike": "not_substring"}

# Operators with their own shape of filter value; see the functions that build them below.
RANGE_OPERATORS = ("between", "not_between")
SET_OPERATORS = ("is_set", "is_not_set")
SEMVER_OPERATORS = tuple(f"semver_{name}" for name in ("eq", "neq", "gt", "gte", "lt", "lte", "tilde", "caret",
                                                       "wildcard"))
LIST_ONLY_OPERATORS = ("in", "not_in")
SUPPORTED_OPERATORS: tuple[str, ...] = (*OPERATORS, *RANGE_OPERATORS, *SET_OPERATORS, *SEMVER_OPERATORS)


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def compile_operator(
    operator: str | None, value: Any, operand: PropertyOperand, ctx: EvaluationContext
) -> pl.Expr:
    """A non-null boolean expression: does the property satisfy ``operator value``?

    ``operator`` ``None`` means ``exact`` (clarification 16: the engine's default for stored definitions).
    Raises :class:`CalculationError` for an operator PostHog's engine would not implement.
    """
    name = operator or "exact"
    if name in SET_OPERATORS:
        present = typed_property(operand, ctx).is_not_null()
        return present if name == "is_set" else ~present
    if name in RANGE_OPERATORS:
        return _compile_range(name, value, operand)
    if isinstance(value, list | tuple) and len(value) == 0:
        return pl.lit(True)  # clarification 13: an empty list makes the leaf always true
    if name in SEMVER_OPERATORS:
        try:
            return pl.any_horizontal(
                [semver.semver_predicate(operand.text, name, item) for item in _values(value)]
            )
        except ValueError as error:  # an invalid version in the filter: PostHog's query fails (spec 4.3)
            raise CalculationError(str(error), error_code="validation_error") from error
    row = OPERATORS.get(name)
    if row is None:
        raise CalculationError(f"PropertyOperator {name} not implemented", error_code="validation_error")
    if name in LIST_ONLY_OPERATORS and not isinstance(value, list | tuple):
        raise CalculationError(f"Operator '{name}' needs a list value, got {value!r}", error_code="validation_error")
    items = _values(value)
    if row.compare in ("regex", "not_regex") and not all(regex_is_valid(_json_text(item)) for item in items):
        return pl.lit(False)  # decision 8: one invalid pattern makes the whole leaf match nobody (PostHog fails)
    if row.operand == "typed" and name in ("exact", "is_not") and items == [None]:
        # `x = NULL` / `x != NULL` are null checks in HogQL (spec 4.2)
        present = typed_property(operand, ctx).is_not_null()
        return ~present if name == "exact" else present
    v = _operand_expr(row.operand, operand, ctx)
    # a list of substrings is searched literally (multiSearchAny), one substring keeps ILIKE's wildcards
    compare_name = _LIST_COMPARISON.get(row.compare, row.compare) if len(items) > 1 else row.compare
    compare = COMPARISONS[compare_name]
    comparisons = []
    for item in items:
        coerced = _coerce(row.operand, item, operand, ctx)
        if coerced is _UNMATCHABLE or coerced is None:
            comparisons.append(pl.lit(None, dtype=pl.Boolean))
        else:
            comparisons.append(compare(v, coerced))
    combined = pl.any_horizontal(comparisons) if row.combine == "any" else pl.all_horizontal(comparisons)
    result = combined.fill_null(row.missing)
    if row.list_missing is not None and len(items) > 1:
        result = pl.when(v.is_null()).then(pl.lit(row.list_missing)).otherwise(result)
    return result


#: Operators whose answer on a String property can only change where the property's text is one of the values.
EQUALITY_OPERATORS = ("exact", "is_not", "in", "not_in")
_NON_STRING_TEXT = re.compile(r"^(?:true|false|null|[-+.0-9{\[\s].*)?$", re.DOTALL)
_PLAIN_NEEDLE = re.compile(r"[A-Za-z0-9/.~!#$&'()*+;=?@^|<>`-]+")
"""Printable ASCII without whitespace, quotes, backslashes, JSON punctuation ``{}[]:,`` or ILIKE wildcards ``%_``."""
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_FOLDING_INTO_ASCII = ("\u212a", "\u017f")
"""The non-ASCII characters a case-insensitive regex matches with an ASCII letter: the Kelvin sign (k) and the long
s (s) (Unicode simple case folding, which Polars' regexes use)."""


@dataclass(frozen=True)
class RawWitnesses:
    """Texts one of which a row's raw JSON document holds wherever some comparisons can answer otherwise than for a
    missing property (:func:`raw_witnesses`); a document without any, and without a backslash (an escape may spell
    any character), need not be parsed for them."""

    texts: tuple[str, ...]
    ignore_ascii_case: bool = False

    def __or__(self, other: RawWitnesses) -> RawWitnesses:
        """Witnesses of either set's comparisons (case ignored for all when for some: a superset is still sound)."""
        return RawWitnesses(tuple(sorted({*self.texts, *other.texts})),
                            self.ignore_ascii_case or other.ignore_ascii_case)

    def search(self, document: pl.Expr) -> pl.Expr:
        """Where ``document`` may hold a value the comparisons answer for (one multi-pattern scan of its text)."""
        texts = [*self.texts, "\\", *(_FOLDING_INTO_ASCII if self.ignore_ascii_case else ())]
        return document.str.contains_any(texts, ascii_case_insensitive=self.ignore_ascii_case)


def raw_witnesses(operator: str | None, value: Any, property_type: PropertyType) -> RawWitnesses | None:
    """The texts one of which a row's raw JSON document holds (or it holds a backslash) wherever ``operator value``
    can answer differently than for a missing property; ``None`` when there are none. Searching them is far
    cheaper than parsing the document.

    * The equality operators on String properties: the answer changes only where the property's text is one of
      the values. A value text that no number, boolean, object or array reads as (see
      :func:`..property_types.property_text`) can only be read from a JSON string, which a document without
      escapes spells literally.
    * ``icontains`` (and ``not_icontains`` with one value, whose answer for a present text without the value is
      the missing property's ``True``): the answer changes only where the text contains a value, ignoring case. A
      :data:`_PLAIN_NEEDLE` value holding a character no number is spelled with can only lie inside one string,
      ``true`` / ``false`` or member name of the text, and a document without escapes spells each of those
      exactly as the text does (objects and arrays included: their text is the same tokens, minified, non-ASCII
      characters kept). So the document holds the value ignoring ASCII case, or one of the
      :data:`_FOLDING_INTO_ASCII` characters where the text's case-insensitive match needed one.

    Everywhere else the answer is the missing property's, so that row's JSON need not be parsed."""
    name = operator or "exact"
    items = _values(value)
    if property_type is not PropertyType.STRING or not items:
        return None
    if name in EQUALITY_OPERATORS:
        texts = [None if item is None else _json_text(item) for item in items]
        if any(text is None or _NON_STRING_TEXT.match(text) for text in texts):
            return None
        return RawWitnesses(tuple(sorted(set(texts))))
    if name == "icontains" or (name == "not_icontains" and len(items) == 1):
        if not all(isinstance(item, str) and _PLAIN_NEEDLE.fullmatch(item) and set(item) - _NUMBER_CHARS
                   for item in items):
            return None
        return RawWitnesses(tuple(sorted(set(items))), ignore_ascii_case=True)
    return None


def _compile_range(name: str, value: Any, operand: PropertyOperand) -> pl.Expr:
    """``between`` / ``not_between``: inclusive numeric bounds from a two-number list (spec 4.3)."""
    bounds = _range_bounds(value)
    number = _number_column(operand.text)
    low, high = bounds
    inside = (number >= low) & (number <= high)
    result = inside if name == "between" else (number < low) | (number > high)
    return result.fill_null(False)


def _range_bounds(value: Any) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise CalculationError(f"between needs a list of two numbers, got {value!r}", error_code="validation_error")
    low, high = (_as_number(item) for item in value)
    if low is _UNMATCHABLE or high is _UNMATCHABLE or low > high:
        raise CalculationError(
            f"between needs two numbers in ascending order, got {value!r}", error_code="validation_error"
        )
    return low, high
