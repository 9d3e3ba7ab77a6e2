"""PostHog's error bodies: every error answers ``{"type", "code", "detail", "attr"}`` (spec 2).

PostHog renders DRF exceptions with ``drf-exceptions-hog``: validation errors are ``validation_error``,
authentication and permission failures ``authentication_error``, everything else a client did wrong
``invalid_request``, and unexpected failures ``server_error``. The handlers here map this project's errors
(model, store, service) and FastAPI/Starlette's own (routing, request validation) onto that shape, so a script
written against PostHog sees the same statuses and bodies.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cohort_pipeline.errors import CohortValidationError, CSVImportError, DataSourceError
from cohort_pipeline.store import NotFoundError

logger = logging.getLogger(__name__)

NOT_FOUND_DETAIL = "Not found."


class ApiError(StarletteHTTPException):
    """An HTTP error with PostHog's body. A Starlette ``HTTPException`` so that FastAPI passes it through
    unchanged even when raised while it reads a request body."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        type_: str = "invalid_request",
        code: str = "invalid",
        attr: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.type = type_
        self.code = code
        self.attr = attr

    def body(self) -> dict[str, Any]:
        return error_body(self.type, self.code, str(self.detail), self.attr)


def error_body(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    """PostHog's error body."""
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def not_authenticated() -> ApiError:
    return ApiError(401, "Authentication credentials were not provided.", type_="authentication_error",
                    code="not_authenticated", headers={"WWW-Authenticate": "Bearer"})


def invalid_key() -> ApiError:
    return ApiError(401, "Personal API key found in request Authorization header is invalid.",
                    type_="authentication_error", code="authentication_failed",
                    headers={"WWW-Authenticate": "Bearer"})


def missing_scope(scope: str) -> ApiError:
    return ApiError(403, f"API key missing required scope '{scope}'", type_="authentication_error",
                    code="permission_denied")


def not_found(detail: str = NOT_FOUND_DETAIL) -> ApiError:
    return ApiError(404, detail, code="not_found")


def method_not_allowed(method: str, allow: str | None = None) -> ApiError:
    return ApiError(405, f'Method "{method}" not allowed.', code="method_not_allowed",
                    headers={"Allow": allow} if allow else None)


def parse_error(detail: str) -> ApiError:
    return ApiError(400, detail, code="parse_error")


def unsupported_media_type(media_type: str) -> ApiError:
    return ApiError(415, f'Unsupported media type "{media_type}" in request.', code="unsupported_media_type")


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"Request body is larger than the limit of {limit} bytes.", code="request_too_large")


def _validation_response(error: CohortValidationError) -> JSONResponse:
    body = error.to_dict()
    if isinstance(error, CSVImportError):
        body["csv"] = [error.detail]  # DRF's raw form ({"csv": [msg]}), kept next to the standard fields
    return JSONResponse(body, status_code=400)


def _request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(error.get("loc", ("",))[0] == "path" for error in errors):
        return JSONResponse(not_found().body(), status_code=404)  # an id that cannot exist is simply not found
    first = errors[0] if errors else {"loc": (), "msg": "Invalid input."}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("query", "header", "body", "cookie")]
    attr = ".".join(loc) or None
    return JSONResponse(error_body("validation_error", "invalid_input", str(first.get("msg")), attr),
                        status_code=400)


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc, ApiError):
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 404:
        body = not_found().body()
    elif exc.status_code == 405:
        body = method_not_allowed(request.method).body()
    elif exc.status_code == 400:
        body = parse_error(str(exc.detail)).body()  # e.g. a malformed multipart body
    else:
        body = error_body("invalid_request", "error", str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _server_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("server_error", "error", "A server error occurred."), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error PostHog's body."""

    async def validation(request: Request, exc: CohortValidationError) -> JSONResponse:
        return _validation_response(exc)

    async def missing(request: Request, exc: NotFoundError) -> JSONResponse:
        detail = getattr(exc, "detail", None) or NOT_FOUND_DETAIL
        return JSONResponse(not_found(detail).body(), status_code=404)

    async def data_source(request: Request, exc: DataSourceError) -> JSONResponse:
        logger.error("project data unavailable: %s", exc)
        return JSONResponse(error_body("server_error", "data_unavailable",
                                       "The project's person and event data could not be read."),
                            status_code=503)

    async def request_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _request_validation(request, exc)

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _http_error(request, exc)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _server_error(request, exc)

    app.add_exception_handler(CohortValidationError, validation)  # type: ignore[arg-type]
    app.add_exception_handler(NotFoundError, missing)  # type: ignore[arg-type]
    app.add_exception_handler(DataSourceError, data_source)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, request_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)
