"""Turning pydantic errors into one readable :class:`CohortValidationError` message.

PostHog renders a failed filter schema as the raw pydantic error list; this project names the JSON path of the
offending node instead (``filters.properties.values[0].values[1]: Extra inputs are not permitted (key 'foo')``),
so the API, the CLI and Dagster all show a message a person can act on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

#: Discriminator tags start with this so they can be dropped from error paths (they are not JSON keys). A leaf's
#: tag is the prefix and its ``type``; structural tags are parenthesised so no leaf type can collide with them.
TAG_PREFIX = "~"
GROUP_TAG = "~(group)"
LIST_TAG = "~(list)"
LEAF_TAG = "~(leaf)"

#: ``type`` of the errors raised by our own rules; their message is the final user-facing text.
RULE_ERROR = "cohort_rule"

Loc = tuple[int | str, ...]


def rule_error(detail: str) -> PydanticCustomError:
    """An error for a project rule, raised inside a validator so that pydantic attaches the JSON path.

    The text travels in the context (``{detail}``) because messages quote user input, which may contain braces.
    """
    return PydanticCustomError(RULE_ERROR, "{detail}", {"detail": detail})


def json_path(root: str, loc: Loc) -> str:
    """``("properties", "values", 0, "~person", "key")`` -> ``filters.properties.values[0].key``."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not part.startswith(TAG_PREFIX):
            path += f".{part}" if path else part
    return path


def _leaf_noun(loc: Loc) -> str | None:
    """The ``type`` of the innermost leaf in ``loc`` (its discriminator tag), for PostHog's "missing keys" text."""
    nouns = [
        part[len(TAG_PREFIX):]
        for part in loc
        if isinstance(part, str) and part.startswith(TAG_PREFIX) and part not in (GROUP_TAG, LIST_TAG, LEAF_TAG)
    ]
    return nouns[-1] if nouns else None


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe(error: Any, root: str, render_path: Callable[[Loc], str] | None, supported_types: Sequence[str]) -> str:
    """One pydantic error dict as ``<path>: <message>``."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    where = (render_path or (lambda l: json_path(root, l)))
    if kind == "extra_forbidden":
        return f"{where(loc[:-1])}: Extra inputs are not permitted (key '{loc[-1]}')"
    if kind == "missing":
        noun = _leaf_noun(loc)
        if noun is not None:
            return f"{where(loc[:-1])}: Missing required keys for {noun} filter: {loc[-1]}"
        return f"{where(loc)}: Field required"
    if kind == "union_tag_invalid":
        raw_type = error["input"].get("type") if isinstance(error["input"], dict) else error["ctx"]["tag"]
        return (
            f"{where(loc)}: Unknown filter type '{raw_type}'. Supported types: {', '.join(supported_types)}"
        )
    if kind == "union_tag_not_found":
        if isinstance(error["input"], dict):
            return f"{where(loc)}: A filter needs a 'type' (a leaf type, or AND/OR with 'values' for a group)"
        return f"{where(loc)}: Expected a filter object or an AND/OR group, got {_short(error['input'])}"
    message = error["ctx"]["detail"] if kind == RULE_ERROR else error["msg"]
    return f"{where(loc)}: {message}"


def format_validation_error(
    exc: ValidationError,
    *,
    root: str,
    render_path: Callable[[Loc], str] | None = None,
    supported_types: Sequence[str] = (),
) -> str:
    """Every error of ``exc`` described with its path, in order, duplicates dropped, joined by ``"; "``."""
    seen: list[str] = []
    for error in exc.errors(include_url=False):
        text = describe(error, root, render_path, supported_types)
        if text not in seen:
            seen.append(text)
    return "; ".join(seen)
