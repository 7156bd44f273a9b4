"""`/health` says the process lives; `/ready` says it can do its job: the database and Temporal answer."""

from __future__ import annotations

import httpx
from temporalio.client import Client

from backoffice.api.app import create_app
from backoffice.api.deps import AppState
from backoffice.operations import Operations
from tests.harness import Harness
from ticketing.store.engine import Store


async def test_ready_when_database_and_temporal_answer_without_credentials(api: Harness) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.extra["app"]), base_url="http://api") as anon:
        resp = await anon.get("/ready")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "ready"}


async def _ready(store: Store, client: Client, api: Harness, route: str = "/ready") -> httpx.Response:
    app = create_app(AppState(settings=api.settings, store=store, operations=Operations(client, "orders")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        return await http.get(route)


async def test_unreachable_temporal_is_a_503_problem(api: Harness) -> None:
    nowhere = await Client.connect("127.0.0.1:1", lazy=True)
    resp = await _ready(api.store, nowhere, api)
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["type"].endswith("/not-ready") and body["failing"] == ["temporal"]


async def test_unreachable_database_is_a_503_problem(api: Harness) -> None:
    broken = Store("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        resp = await _ready(broken, api.client, api)
    finally:
        await broken.dispose()
    assert resp.status_code == 503
    assert resp.json()["failing"] == ["database"]


async def test_liveness_does_not_depend_on_the_database_or_temporal(api: Harness) -> None:
    """A database outage must not make the kubelet restart every API pod: `/health` stays 200."""
    broken = Store("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    nowhere = await Client.connect("127.0.0.1:1", lazy=True)
    try:
        resp = await _ready(broken, nowhere, api, route="/health")
    finally:
        await broken.dispose()
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
