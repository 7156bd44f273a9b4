"""RFC 7807 problem details with stable `type`s, for every error the API returns."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ticketing.errors import DomainError
from ticketing.money import CurrencyMismatch

log = structlog.get_logger(__name__)

PROBLEM_BASE = "https://ticketops.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ProblemError(Exception):
    """Raised by routes for refusals that are not domain errors (auth, idempotency, input)."""

    def __init__(self, status: int, type_: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type_
        self.detail = detail
        self.extra = extra


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


def problem_response(
    request: Request,
    status: int,
    slug: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = {
        "type": problem_type(slug),
        "title": slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        extra = {k: v for k, v in exc.extra.items() if isinstance(v, str | int | float | bool | list)}
        return problem_response(request, exc.status, exc.type, exc.detail, extra=extra)

    @app.exception_handler(CurrencyMismatch)
    async def _currency(request: Request, exc: CurrencyMismatch) -> JSONResponse:
        return problem_response(request, 422, "currency-mismatch", str(exc))

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        headers = exc.extra.pop("headers", None)
        return problem_response(request, exc.status, exc.type, exc.detail, headers=headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return problem_response(
            request, 422, "validation-error", "the request is not valid", extra={"errors": errors}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """The last resort: never a bare 500. The correlation id ties the answer to the log line."""
        correlation_id = uuid.uuid4().hex
        log.error(
            "api.unexpected_error",
            correlation_id=correlation_id,
            method=request.method,
            route=getattr(request.scope.get("route"), "path", None),
            error=type(exc).__name__,
            exc_info=exc,
        )
        return problem_response(
            request,
            500,
            "internal-error",
            f"something went wrong on our side; quote correlation id {correlation_id} when reporting it",
            headers={"X-Correlation-ID": correlation_id},
            extra={"correlation_id": correlation_id},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
            exc.status_code, "http-error"
        )
        return problem_response(request, exc.status_code, slug, str(exc.detail), headers=exc.headers)
