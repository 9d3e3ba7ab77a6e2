"""Reading request bodies the way PostHog's API does: JSON, multipart forms (with a ``csv`` file) or URL-encoded
forms, with a size limit and PostHog's errors for everything malformed.

* **Size**: :class:`RequestLimits` answers 413 before reading a body whose ``Content-Length`` is over the limit and
  stops reading a streamed body as soon as it passes it. The default limit is 10 MiB (``DEFAULT_MAX_BODY_BYTES``),
  enough for a CSV of several hundred thousand ids; ``cohort-pipeline serve --max-body-mb`` changes it.
* **JSON**: strict UTF-8, no ``NaN``/``Infinity`` (DRF's strict JSON), at most ``MAX_JSON_DEPTH`` levels of nesting;
  an empty body is an empty object (DRF). A body that is not an object is a 400.
* **Forms**: every value is text, so ``is_static``/``deleted`` are read as booleans and ``filters``/``query``/
  ``groups`` as JSON (PostHog's web app sends ``filters`` as a JSON string); ``csv`` must be a file, and no other
  field may be one. ``_create_static_person_ids`` may be repeated or sent as a JSON list.
* Any other content type is a 415.

:class:`RequestLimits` also lets ``/api/...`` paths work without their trailing slash (PostHog's router accepts
both), instead of answering with a redirect that clients would have to follow with the body again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse

from cohort_pipeline.api.errors import parse_error, too_large, unsupported_media_type
from cohort_pipeline.errors import CohortValidationError

DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
MAX_JSON_DEPTH: Final = 64
MAX_FORM_FIELDS: Final = 200
JSON_FORM_FIELDS: Final = frozenset({"filters", "query", "groups"})
BOOLEAN_FORM_FIELDS: Final = frozenset({"is_static", "deleted", "active"})
LIST_FORM_FIELDS: Final = frozenset({"_create_static_person_ids"})
TRUE_TEXT: Final = frozenset({"true", "1", "yes", "on", "t", "y"})
FALSE_TEXT: Final = frozenset({"false", "0", "no", "off", "f", "n", ""})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLimits:
    """ASGI middleware: body size limit and optional trailing slash on ``/api/`` paths (module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith("/api/") and not path.endswith("/"):
            scope = {**scope, "path": path + "/", "raw_path": (path + "/").encode("latin-1", "replace")}
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            error = too_large(self.max_body_bytes)
            await JSONResponse(error.body(), status_code=413)(scope, _drained(receive), send)
            return
        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _drained(receive: Receive) -> Receive:
    async def nothing() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    return nothing


# ------------------------------------------------------------------------------------------------- decoding


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Out of range float values are not JSON compliant: {name}")


def _check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            raise parse_error(f"JSON parse error - nested more than {limit} levels deep")
        if isinstance(current, dict):
            stack.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            stack.extend((item, depth + 1) for item in current)


def decode_json(raw: bytes) -> Any:
    """Strict JSON (DRF): UTF-8, no NaN/Infinity, bounded nesting; errors are PostHog's ``parse_error``."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise parse_error(f"JSON parse error - {reason}") from None
    _check_depth(value)
    return value


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(type(value), "null")
        raise CohortValidationError(f"Invalid data. Expected a dictionary, but got {kind}.")
    return value


def _form_bool(value: str, attr: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE_TEXT:
        return True
    if lowered in FALSE_TEXT:
        return False
    raise CohortValidationError("Must be a valid boolean.", attr=attr)


def _form_json(value: str, attr: str) -> Any:
    if not value.strip():
        return [] if attr == "groups" else None
    try:
        decoded = json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise CohortValidationError("Value must be valid JSON.", attr=attr) from None
    _check_depth(decoded)
    return decoded


async def _form_payload(form: FormData, *, allow_csv: bool) -> tuple[dict[str, Any], bytes | None]:
    payload: dict[str, Any] = {}
    csv: bytes | None = None
    for key in dict.fromkeys(form.keys()):
        values = form.getlist(key)
        if key == "csv" and allow_csv:
            upload = values[-1]
            if not isinstance(upload, UploadFile):
                raise CohortValidationError(
                    "The submitted data was not a file. Check the encoding type on the form.", attr="csv")
            csv = await upload.read()
            continue
        if any(isinstance(value, UploadFile) for value in values):
            raise CohortValidationError(f"Unexpected file in field '{key}'; only 'csv' takes a file.", attr=key)
        texts = [str(value) for value in values]
        if key in LIST_FORM_FIELDS:
            if len(texts) == 1 and texts[0].lstrip().startswith("["):
                payload[key] = _form_json(texts[0], key)
            else:
                payload[key] = [text for text in texts if text]
        elif key in JSON_FORM_FIELDS:
            payload[key] = _form_json(texts[-1], key)
        elif key in BOOLEAN_FORM_FIELDS:
            payload[key] = _form_bool(texts[-1], key)
        elif key == "cohort_type":
            payload[key] = texts[-1] or None
        else:
            payload[key] = texts[-1]
    return payload, csv


async def read_payload(
    request: Request, *, allow_csv: bool = False, max_file_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> tuple[dict[str, Any], bytes | None]:
    """The request's object and, for multipart requests with ``allow_csv``, the ``csv`` file's bytes."""
    media = _media_type(request)
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        raw = await request.body()
        return ({} if not raw.strip() else _object(decode_json(raw))), None
    if media in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=1 if allow_csv else 0, max_fields=MAX_FORM_FIELDS,
                                  max_part_size=max_file_bytes)
        try:
            return await _form_payload(form, allow_csv=allow_csv)
        finally:
            await form.close()
    raw = await request.body()
    if not media and not raw:
        return {}, None
    raise unsupported_media_type(request.headers.get("content-type", ""))


async def read_object(request: Request) -> dict[str, Any]:
    """A JSON or form body as an object (no files)."""
    payload, _ = await read_payload(request)
    return payload


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "RequestLimits",
    "decode_json",
    "read_object",
    "read_payload",
]
