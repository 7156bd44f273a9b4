"""Bad input gets a clear problem and changes nothing: text, personal data, query parameters, paging bounds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter
from temporalio.client import Client

from tests.builders import make_event, make_order
from tests.harness import Harness, running, seed
from ticketing.models import Contact
from ticketing.roles import Role
from ticketing.store.engine import Store
from ticketing.store.orders import load_order

HUGE = [str(2**63), str(2**64), str(10**30), "-1", "abc", "", "1e9"]


@pytest_asyncio.fixture
async def api(temporal_client: Client, any_store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    async with running(temporal_client, any_store, tmp_path, queue_prefix, with_workers=False) as harness:
        event, types, slots = make_event(event_id="evt_guard")
        ada = make_order(event, types, tickets=2)
        ada = ada.model_copy(update={"contact": Contact(name="Ada Dubois", email="ada.dubois@example.org")})
        grace = make_order(event, types, tickets=1)
        grace = grace.model_copy(update={"contact": Contact(name="Grace Hopper", email="grace@navy.example.mil")})
        await seed(harness.store, event, types, slots, [ada, grace])
        harness.extra.update(ada=ada, grace=grace, event=event)
        yield harness


def _problem(resp: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["type"].endswith("/" + type_), body
    return body


@pytest.mark.parametrize(
    "body",
    [
        {"email": "\u0003@example.com"},
        {"email": "ada\u0000@example.com"},
        {"email": "not-an-email"},
        {"name": "Ada\u0007 Dubois"},
        {"name": "Ada\nDubois"},
        {"name": "Ada \U000e0fff"},  # an unassigned code point
        {"mobile": "call me"},
        {"mobile": "+31 6 1234 5678\u0000"},
    ],
)
async def test_bad_contact_data_is_refused_and_changes_nothing(api: Harness, body: dict[str, str]) -> None:
    code = api.extra["ada"].code
    async with api.store.transaction() as conn:
        before = await load_order(conn, code)
    resp = await api.http.patch(f"/orders/{code}/contact", json=body)
    assert resp.status_code in (400, 422), resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    async with api.store.transaction() as conn:
        assert await load_order(conn, code) == before


async def test_good_contact_data_is_normalised(api: Harness) -> None:
    code = api.extra["ada"].code
    edit = {"name": "  Ada   Dubois-Lovelace ", "email": "Ada@EXAMPLE.org", "mobile": "+31 6 1234 5678"}
    resp = await api.http.patch(f"/orders/{code}/contact", json=edit)
    assert resp.status_code == 200, resp.text
    contact = (await api.http.get(f"/orders/{code}")).json()["contact"]
    assert contact["name"] == "Ada Dubois-Lovelace"
    assert (contact["email"], contact["mobile"]) == ("ada@example.org", "+31612345678")


async def test_nul_in_a_barcode_is_a_problem_on_both_databases(api: Harness) -> None:
    resp = await api.http.post("/scan", json={"barcode": "AB\u0000CD", "access_point": "gate-1"})
    _problem(resp, 422, "invalid-text")
    resp = await api.http.get("/orders", params={"q": "ada\u0000"})
    _problem(resp, 400, "invalid-text")


async def test_unknown_query_parameters_are_refused_with_what_the_route_accepts(api: Harness) -> None:
    body = _problem(await api.http.get("/orders", params={"stauts": "paid"}), 400, "unknown-query-parameter")
    assert body["unknown"] == ["stauts"]
    assert "status" in body["detail"] and "limit" in body["detail"]
    assert (await api.http.get("/orders", params={"status": "paid", "limit": 5})).status_code == 200


async def test_search_matches_parts_of_emails_and_names_case_insensitively(api: Harness) -> None:
    ada, grace = api.extra["ada"].code, api.extra["grace"].code

    async def found(q: str) -> set[str]:
        resp = await api.http.get("/orders", params={"q": q})
        assert resp.status_code == 200, resp.text
        return {o["code"] for o in resp.json()}

    assert await found("ada.dubois") == {ada}  # a partial email
    assert await found("ADA.DUBOIS@EXAMPLE.ORG") == {ada}
    assert await found("dubois") == {ada}  # part of a name
    assert await found("navy.example") == {grace}
    assert await found("hop") == {grace}
    assert await found("gr") == {grace}  # too short for trigrams: a prefix of email or name
    assert await found("ra") == set()  # ...and only a prefix
    assert await found("example") == {ada, grace}
    assert await found("%") == set() and await found("_") == set()
    assert await found(ada.lower()) == {ada}


async def test_status_and_event_filters(api: Harness) -> None:
    event = api.extra["event"].id
    paid = (await api.http.get("/orders", params={"status": "paid", "event": event})).json()
    assert {o["code"] for o in paid} == {api.extra["ada"].code, api.extra["grace"].code}
    assert (await api.http.get("/orders", params={"status": "cancelled"})).json() == []
    _problem(await api.http.get("/orders", params={"status": "lost"}), 422, "validation-error")


async def test_every_list_parameter_is_bounded(api: Harness) -> None:
    """Every integer query parameter of every GET route, with values past any sane bound: never a 5xx."""
    app = api.extra["app"]
    spec = app.openapi()
    tried = 0
    for path, item in spec["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        for param in operation.get("parameters", []):
            schema = param.get("schema", {})
            kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if param["in"] != "query" or "integer" not in kinds:
                continue
            assert "maximum" in schema or any("maximum" in s for s in schema.get("anyOf", [])), (path, param["name"])
            for value in HUGE:
                resp = await api.http.get(path, params={param["name"]: value})
                assert resp.status_code < 500, (path, param["name"], value, resp.text)
                if resp.status_code >= 400:
                    assert resp.headers["content-type"].startswith("application/problem+json")
                tried += 1
    assert tried >= 2 * len(HUGE)  # /orders and /refunds at least


async def test_an_unexpected_error_is_a_problem_with_a_correlation_id(api: Harness) -> None:
    app = api.extra["app"]
    boom = APIRouter()

    @boom.get("/boom-for-test")
    async def _boom() -> None:
        raise RuntimeError("a bug")

    app.include_router(boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=api.http.headers) as http:
        resp = await http.get("/boom-for-test")
    body = _problem(resp, 500, "internal-error")
    assert resp.headers["X-Correlation-ID"] == body["correlation_id"]
    assert "a bug" not in resp.text


async def test_an_authorization_header_without_its_scheme_says_so(api: Harness) -> None:
    key = api.keys[("backoffice", Role.ADMIN)]
    transport = httpx.ASGITransport(app=api.extra["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        bare = _problem(await http.get("/orders", headers={"Authorization": key}), 401, "unauthorized")
        assert "without its scheme" in bare["detail"] and "Bearer" in bare["detail"]
        basic = _problem(await http.get("/orders", headers={"Authorization": "Basic abc"}), 401, "unauthorized")
        assert "'Basic' is not supported" in basic["detail"]
        none = _problem(await http.get("/orders"), 401, "unauthorized")
        assert "X-API-Key" in none["detail"]
        ok = await http.get("/orders", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
