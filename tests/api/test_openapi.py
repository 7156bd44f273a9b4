"""The OpenAPI document is complete enough to build a client from: problems, security, examples."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from backoffice.api.app import create_app
from backoffice.api.auth import PUBLIC_ROUTES

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), path, op) for path, item in document["paths"].items() for m, op in item.items()]


def _ref(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].rsplit("/", 1)[-1]
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas[name]


def test_every_route_documents_its_problems(document: dict[str, Any]) -> None:
    missing = []
    for method, path, op in _operations(document):
        public = (method, path) in PUBLIC_ROUTES
        wanted = {"422"} | (set() if public else {"401", "403", "429"})
        for status in wanted:
            media = op["responses"].get(status, {}).get("content", {})
            if list(media) != [PROBLEM]:
                missing.append(f"{method} {path} {status}")
        if not public:
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
            assert "Retry-After" in op["responses"]["429"]["headers"]
        assert bool(op.get("security")) is not public, f"{method} {path}: security {op.get('security')}"
    assert missing == []
    assert set(_ref(document, {"$ref": "#/components/schemas/ValidationProblem"})["properties"]) >= {
        "type", "title", "status", "detail", "errors"
    }
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_request_body_has_an_example_that_fits_its_schema(document: dict[str, Any]) -> None:
    without = []
    for method, path, op in _operations(document):
        for media in op.get("requestBody", {}).get("content", {}).values():
            schema = media["schema"]
            options = [schema, *schema.get("anyOf", [])]
            models = [_ref(document, s) for s in options if "$ref" in s]
            examples = [e for model in models for e in model.get("examples", [])] + schema.get("examples", [])
            if not examples:
                without.append(f"{method} {path}")
            for example in examples:
                jsonschema.validate(example, {**schema, "components": document["components"]})
    assert without == []


def test_actions_that_accept_wait_document_the_finished_outcome(document: dict[str, Any]) -> None:
    resend = document["paths"]["/orders/{code}/resend"]["post"]
    assert {p["name"] for p in resend["parameters"]} >= {"code", "wait"}
    assert set(resend["responses"]) >= {"200", "202"}
    assert resend["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/OperationView")
