"""Semantic-version operators (spec 4.3: ``semver_eq`` ... ``semver_wildcard``).

PostHog compares ``sortableSemver(property)`` with ``sortableSemver(value)`` and turns ``~``, ``^`` and ``*`` into
a half-open range ``[lower, upper)`` ([P] ``_tilde_bounds``, ``_caret_bounds``, ``_wildcard_bounds``). This module
gives the engine the same three pieces:

* :func:`parse_semver` / :func:`semver_bounds` for filter values (scalars, plain Python);
* :func:`sortable_semver_expr`, a vectorised key for the property column, and :func:`semver_sort_key`, the same
  key for a parsed filter value, so ordinary ``==``, ``<``, ``>=`` on the keys order versions;
* :func:`semver_predicate`, the whole leaf with the NULL rule (missing or invalid property: false; ``semver_neq``:
  true).

Versions compare part by part as integers, missing parts counting as 0, so ``1.2 == 1.2.0 == 1.2.0.0`` and
``1.2.3 < 1.2.3.4 < 1.2.4``: the spec's "pad missing minor/patch with 0" applied to any number of parts. (PostHog
compares raw arrays, where ``[1,2,3] < [1,2,3,0]``, so its ``1.2.3.*`` misses ``1.2.3`` itself; padding is the
evident intent.)
"""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from cohort_pipeline.engine.dates import named_like

__all__ = [
    "SEMVER_OPERATORS",
    "SemVer",
    "parse_semver",
    "semver_bounds",
    "semver_predicate",
    "semver_sort_key",
    "sortable_semver_expr",
]

SemVer = tuple[int, ...]

_MIN_PARTS = 3  # major.minor.patch

#: Filter values: optional ``v``, numeric dot-separated parts, then an optional ``-pre-release`` / ``+build`` tail
#: that is ignored (PostHog strips everything after the first ``-``; ``+build`` never affects precedence).
_FILTER_VALUE = re.compile(r"^[vV]?(?P<core>[^-+]*)(?:[-+].*)?$", re.DOTALL)
_NUMERIC_PART = re.compile(r"^[0-9]+$")

#: Property values, read as leniently as PostHog's ``sortableSemver`` (``extract(v, '(\d+(\.\d+)+)')``): the first
#: run of dot-separated (ASCII) integers anywhere in the text (``v1.2.3``, ``1.2.3-beta.4``, ``Build 2.0 (5)``). A bare
#: integer (``10``, ``v2-rc1``) is version ``N.0.0`` here, as it is for filter values; PostHog reads it as ``[0]``.
_PROPERTY_DOTTED = r"([0-9]+(?:\.[0-9]+)+)"
_PROPERTY_BARE = r"^\s*[vV]?([0-9]+)\s*(?:[-+].*)?$"

#: A key part is the part's digit count (two digits) followed by its digits without leading zeros, so that plain
#: string order is numeric order: ``3 -> "013"``, ``10 -> "0210"``, ``0 -> "00"``. Parts are joined with ``.`` and
#: trailing zero parts dropped, so equal versions have equal keys whatever their number of parts.
_MAX_PART_DIGITS = 99
_ZERO_PART = "00"


def _invalid(value: Any, reason: str) -> ValueError:
    return ValueError(f"Invalid semver value {value!r}: {reason} (expected e.g. '1.2.3', '1.2', '1.2.3-beta')")


def _semver_parts(value: Any) -> SemVer:
    """The integers a filter value gives, unpadded (``"1.2"`` -> ``(1, 2)``)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid(value, "a semver value must be a string")
    match = _FILTER_VALUE.match(str(value).strip())
    parts = match["core"].split(".") if match else [""]
    bad = [part for part in parts if not _NUMERIC_PART.match(part)]
    if bad:
        raise _invalid(value, f"part {bad[0]!r} is not a non-negative integer")
    return tuple(int(part) for part in parts)


def _pad(parts: Sequence[int]) -> SemVer:
    return tuple(parts) + (0,) * (_MIN_PARTS - len(parts))


def parse_semver(text: Any) -> SemVer:
    """A filter value -> its version as integers, padded to at least ``(major, minor, patch)``.

    Follows PostHog's ``parse_semver``: everything after the first ``-`` (pre-release) is dropped, missing minor and
    patch are 0, and every part must be an integer, otherwise ``ValueError``. Also accepted: a leading ``v``,
    surrounding whitespace and a ``+build`` suffix. A fourth and further parts are kept (PostHog drops them),
    so ``1.2.3.4`` stays distinct from ``1.2.3``.

    >>> parse_semver("1.2-beta")
    (1, 2, 0)
    """
    return _pad(_semver_parts(text))


def _part_key(digits: str) -> str:
    significant = digits.lstrip("0")
    if len(significant) > _MAX_PART_DIGITS:
        raise ValueError(f"Version part {digits!r} has more than {_MAX_PART_DIGITS} digits")
    return f"{len(significant):02d}{significant}"


def semver_sort_key(version: str | Sequence[int]) -> str:
    """The comparison key of a version (a filter value string, or already parsed parts), equal to what
    :func:`sortable_semver_expr` gives for a property holding that version."""
    parts = parse_semver(version) if isinstance(version, str) else tuple(version)
    if any(part < 0 for part in parts):
        raise ValueError(f"Version parts must not be negative: {version!r}")
    keys = [_part_key(str(part)) for part in parts]
    while len(keys) > 1 and keys[-1] == _ZERO_PART:
        keys.pop()
    return ".".join(keys)


def sortable_semver_expr(expr: pl.Expr) -> pl.Expr:
    """Property text -> a String key that orders like the version (see :func:`semver_sort_key`); null when the text
    holds no version. Compare it with ``pl.lit(semver_sort_key(...))`` using ``==``, ``<``, ``>=`` ..."""
    field = pl.field
    significant = pl.element().str.strip_chars_start("0")
    part_key = pl.concat_str(significant.str.len_bytes().cast(pl.String).str.zfill(2), significant)
    too_long = rf"[0-9]{{{_MAX_PART_DIGITS + 1}}}"
    return named_like(
        pl.struct(text=expr.cast(pl.String))
        .struct.with_fields(dotted=field("text").str.extract(_PROPERTY_DOTTED, 1))
        .struct.with_fields(
            version=pl.coalesce(
                field("dotted"), pl.when(field("dotted").is_null()).then(field("text")).str.extract(_PROPERTY_BARE, 1)
            )
        )
        .struct.with_fields(  # only long versions can have a part too long for the key (checked on those only)
            too_long=pl.when(field("version").str.len_bytes() > _MAX_PART_DIGITS)
            .then(field("version"))
            .str.contains(too_long)
            .fill_null(False)
        )
        .struct.with_fields(
            key=pl.when(~field("too_long")).then(
                field("version")
                .str.split(".")
                .list.eval(part_key)
                .list.join(".")
                .str.replace(rf"(?:\.{_ZERO_PART})+$", "")
            )
        )
        .struct.field("key"),
        expr,
    )


# --------------------------------------------------------------------------------------------------------------------
# Ranges
# --------------------------------------------------------------------------------------------------------------------


def _tilde_bounds(value: Any) -> tuple[SemVer, SemVer]:
    """``~1.2.3`` -> ``[1.2.3, 1.3.0)`` (patch-level changes); bare ``~1`` -> ``[1.0.0, 2.0.0)``."""
    parts = _semver_parts(value)
    major = parts[0]
    if len(parts) == 1:
        return (major, 0, 0), (major + 1, 0, 0)
    return _pad(parts), (major, parts[1] + 1, 0)


def _caret_bounds(value: Any) -> tuple[SemVer, SemVer]:
    """``^1.2.3`` -> ``[1.2.3, 2.0.0)``, ``^0.2.3`` -> ``[0.2.3, 0.3.0)``, ``^0.0.3`` -> ``[0.0.3, 0.0.4)``: the
    leftmost non-zero of major, minor, patch is the one that may not change."""
    lower = parse_semver(value)
    position = next((i for i in (0, 1) if lower[i] > 0), 2)
    upper = lower[:position] + (lower[position] + 1,) + (0,) * (_MIN_PARTS - 1 - position)
    return lower, upper


def _wildcard_bounds(value: Any) -> tuple[SemVer, SemVer]:
    """``1.*`` -> ``[1.0.0, 2.0.0)``, ``1.2.*`` -> ``[1.2.0, 1.3.0)``, ``1.2.3.*`` -> ``[1.2.3.0, 1.2.4.0)``: the
    given parts are fixed, the wildcard part (and everything after it) is free.

    As PostHog, trailing ``.`` and ``*`` are stripped first, so ``1.*.*`` is ``1.*`` and ``1.2`` is ``1.2.*``;
    a ``*`` anywhere else is invalid. Beyond three given parts the last given one is bumped (``1.2.3.4.*`` ->
    ``[1.2.3.4.0, 1.2.3.5.0)``; PostHog ignores parts after the third).
    """
    if not isinstance(value, str):
        raise _invalid(value, "a wildcard must be a string such as '1.*'")
    if not value.strip().rstrip(".*"):
        raise _invalid(value, "a wildcard needs at least a major version, e.g. '1.*'")
    parts = _semver_parts(value.strip().rstrip(".*"))
    lower = parts + (0,)
    upper = parts[:-1] + (parts[-1] + 1, 0)
    return _pad(lower), _pad(upper)


_RANGES: dict[str, Callable[[Any], tuple[SemVer, SemVer]]] = {
    "semver_tilde": _tilde_bounds,
    "semver_caret": _caret_bounds,
    "semver_wildcard": _wildcard_bounds,
}


def semver_bounds(operator: str, value: Any) -> tuple[SemVer, SemVer]:
    """``(lower_inclusive, upper_exclusive)`` of ``semver_tilde`` / ``semver_caret`` / ``semver_wildcard``
    (spec 4.3). ``ValueError`` for another operator or an invalid value."""
    try:
        bounds = _RANGES[operator]
    except KeyError:
        raise ValueError(f"{operator!r} is not a semver range operator ({', '.join(_RANGES)})") from None
    return bounds(value)


# --------------------------------------------------------------------------------------------------------------------
# Predicates
# --------------------------------------------------------------------------------------------------------------------

#: Comparison operators: how the property key compares with the value's key, and the answer when the property is
#: missing or holds no version (spec 4.2: equality-like and ordering false, inequality true).
_COMPARISONS: dict[str, tuple[Callable[[pl.Expr, pl.Expr], pl.Expr], bool]] = {
    "semver_eq": (op.eq, False),
    "semver_neq": (op.ne, True),
    "semver_gt": (op.gt, False),
    "semver_gte": (op.ge, False),
    "semver_lt": (op.lt, False),
    "semver_lte": (op.le, False),
}

SEMVER_OPERATORS: frozenset[str] = frozenset(_COMPARISONS) | frozenset(_RANGES)


def _predicate_on_key(key: pl.Expr, operator: str, value: Any) -> pl.Expr:
    if operator in _RANGES:
        lower, upper = semver_bounds(operator, value)
        within = (key >= pl.lit(semver_sort_key(lower))) & (key < pl.lit(semver_sort_key(upper)))
        return within.fill_null(False)
    compare, missing = _COMPARISONS[operator]
    return compare(key, pl.lit(semver_sort_key(parse_semver(value)))).fill_null(missing)


def semver_predicate(expr: pl.Expr, operator: str, value: Any) -> pl.Expr:
    """A non-null boolean expression: does the property text in ``expr`` satisfy ``operator value``?

    ``value`` is one filter value; a list is an OR over its items (spec 4.3), an empty list is always true
    (clarification 13). Raises ``ValueError`` for an unknown operator or a filter value that is not a version
    (PostHog fails the query: "... operator requires a valid semver string").
    """
    if operator not in SEMVER_OPERATORS:
        raise ValueError(f"{operator!r} is not a semver operator ({', '.join(sorted(SEMVER_OPERATORS))})")
    values = list(value) if isinstance(value, list | tuple) else [value]
    if not values:
        return pl.lit(True)
    key = pl.field("key")
    return named_like(
        pl.struct(key=sortable_semver_expr(expr))
        .struct.with_fields(result=pl.any_horizontal([_predicate_on_key(key, operator, item) for item in values]))
        .struct.field("result"),
        expr,
    )
