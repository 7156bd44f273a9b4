"""The OpenAPI document: every route's problem responses, added in one place.

Routes are written by several people at once, so instead of each route
repeating `responses={...}`, the generated document gets the problem
responses every route can give (RFC 7807, `application/problem+json`): 401,
403 and 429 unless the route is public, 404 where the path names something,
409 for actions, and FastAPI's 422 replaced by the problem it really is.
Action routes that accept `?wait=` also document the 200 they give when the
operation ends in time.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from backoffice.api.auth import PUBLIC_ROUTES
from backoffice.api.problems import MEDIA_TYPE, Problem

_REF = "#/components/schemas/"


class ValidationErrorItem(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ValidationProblem(Problem):
    errors: list[ValidationErrorItem] = []


def _problem(description: str, schema: str = "Problem", headers: dict[str, str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": _REF + schema}}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return response


UNAUTHORIZED = _problem(
    "No, a wrong, revoked or expired credential (`unauthorized`).",
    headers={"WWW-Authenticate": "The scheme to authenticate with."},
)
FORBIDDEN = _problem("The caller's role is too low for this route (`forbidden`).")
RATE_LIMITED = _problem("Too many requests with this credential (`rate-limited`).", headers={"Retry-After": "Seconds."})
NOT_FOUND = _problem("What the path names does not exist.")
CONFLICT = _problem("The action is not allowed in the current state; `type` says why.")
INVALID = _problem("The request is not valid (`validation-error`, with `errors`).", schema="ValidationProblem")
OTHER = _problem("Any other refusal, as a problem with a stable `type`.")


def _operation_responses(method: str, path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses["422"] = INVALID
    if (method.upper(), path) not in PUBLIC_ROUTES:
        responses.setdefault("401", UNAUTHORIZED)
        responses.setdefault("403", FORBIDDEN)
        responses.setdefault("429", RATE_LIMITED)
    if "{" in path:
        responses.setdefault("404", NOT_FOUND)
    if method.lower() != "get":
        responses.setdefault("409", CONFLICT)
    responses.setdefault("default", OTHER)
    waits = any(p.get("name") == "wait" and p.get("in") == "query" for p in operation.get("parameters", []))
    if waits and "202" in responses and method.lower() == "post":
        responses.setdefault(
            "200",
            {
                "description": "The operation ended within `wait`: its outcome, with the 202's fields.",
                "content": {"application/json": {"schema": {"$ref": _REF + "OperationView"}}},
            },
        )


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, ValidationProblem, ValidationErrorItem):
            model_schema = model.model_json_schema(ref_template=_REF + "{model}")
            model_schema.pop("$defs", None)
            schemas[model.__name__] = model_schema
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                _operation_responses(method, path, operation)
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
