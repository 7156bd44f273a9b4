"""Property-based checks of the whole API against its own OpenAPI document, in process, as an admin.

Every operation gets a bounded number of generated requests; a 5xx, an
undocumented status or content type, or a body that breaks its schema fails.
Requests go through the same httpx/ASGI client as the other tests, on the
test's event loop, so the app's store and Temporal client are used as in
production.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client

from runtime.settings import AuthSettings
from tests.builders import make_event, make_order
from tests.harness import Harness, running, seed
from ticketing.store.engine import Store

MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest_asyncio.fixture
async def unlimited(
    temporal_client: Client, any_store: Store, tmp_path: Path, queue_prefix: str
) -> AsyncIterator[Harness]:
    """On SQLite and on PostgreSQL: PostgreSQL refuses what SQLite lets through (NUL in text)."""
    overrides = {"auth": AuthSettings(rate_limit_per_minute=None)}
    async with running(
        temporal_client, any_store, tmp_path, queue_prefix, with_workers=False, settings_overrides=overrides
    ) as harness:
        event, types, slots = make_event(event_id="evt_fuzz")
        order = make_order(event, types, tickets=2)
        await seed(harness.store, event, types, slots, [order])
        harness.extra["examples"] = {"code": order.code, "ticket_id": order.tickets[0].id, "event_id": event.id}
        yield harness


def _with_examples(document: dict[str, Any], examples: dict[str, str]) -> dict[str, Any]:
    """Path parameters that name seeded rows, so the explicit phase reaches past the 404s."""
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in examples:
                    parameter["example"] = examples[parameter["name"]]
    return document


def _cases(operation: Any) -> list[Any]:
    cases: list[Any] = []

    @settings(
        max_examples=MAX_EXAMPLES,
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


async def test_the_api_keeps_its_documented_contract(unlimited: Harness) -> None:
    app = unlimited.extra["app"]
    schema = schemathesis.openapi.from_dict(_with_examples(copy.deepcopy(app.openapi()), unlimited.extra["examples"]))
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    admin = await unlimited.key_for("backoffice", "admin")
    failures: list[str] = []
    sent = 0
    for operation in operations:
        for case in _cases(operation):
            kwargs = case.as_transport_kwargs(base_url="http://api")
            generated = kwargs.pop("headers").items()
            headers = {k: v for k, v in generated if k.lower() not in ("x-api-key", "authorization")}
            headers["Authorization"] = f"Bearer {admin}"
            kwargs.pop("cookies", None)
            if "wait" in kwargs.get("params", {}):
                kwargs["params"]["wait"] = "100ms"  # no workers here: a long wait only costs time
            if "data" in kwargs:
                kwargs["content"] = kwargs.pop("data")
            response = await unlimited.http.request(headers=headers, **kwargs)
            sent += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as err:  # schemathesis raises a group of failures with a readable message
                failures.append(f"{operation.method.upper()} {operation.path}: {str(err)[:600]}")
    assert sent >= len(operations)
    assert failures == [], "\n\n".join(failures)
