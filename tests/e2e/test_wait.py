"""`?wait=`: the outcome in the response when the operation ends in time; a 202 or `running` otherwise."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from backoffice.api.waiting import parse_wait
from tests.builders import make_event, make_order
from tests.harness import Harness, running, seed
from ticketing.models import Order
from ticketing.store.engine import Store


async def _order(app: Harness) -> Order:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=1)
    await seed(app.store, event, types, slots, [order])
    return order


async def test_an_action_that_ends_in_time_answers_200_with_its_outcome(app: Harness) -> None:
    order = await _order(app)
    resp = await app.http.post(f"/orders/{order.code}/resend?wait=10s", headers={"Idempotency-Key": "w-1"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["operation_id"] == f"resend/{order.code}/w-1"
    assert body["status"] == "completed" and body["result"]["ticket_count"] == 1
    assert body["status_url"] == f"/operations/resend/{order.code}/w-1"
    assert len(app.sink.messages) == 1
    # A replay with wait gives the outcome too, and sends nothing more.
    again = await app.http.post(f"/orders/{order.code}/resend?wait=5s", headers={"Idempotency-Key": "w-1"})
    assert again.status_code == 200 and again.json()["result"] == body["result"]
    assert len(app.sink.messages) == 1
    read = await app.http.get(f"/operations/{body['operation_id']}?wait=5s")
    assert read.status_code == 200 and read.json()["status"] == "completed"


async def test_bad_wait_values_are_refused_before_anything_starts(app: Harness) -> None:
    order = await _order(app)
    for bad in ("abc", "-1s", "5m", "1e3", "5 s"):
        resp = await app.http.post(f"/orders/{order.code}/resend", params={"wait": bad})
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["type"].endswith("/validation-error")
        read = await app.http.get("/operations/resend/NOPE/x", params={"wait": bad})
        assert read.status_code == 422, bad
    assert app.sink.messages == []


def test_wait_parsing_caps_at_30_seconds() -> None:
    assert parse_wait("5s") == 5.0
    assert parse_wait("250ms") == 0.25
    assert parse_wait("2") == 2.0
    assert parse_wait("45s") == 30.0
    assert parse_wait("99999") == 30.0
    with pytest.raises(ValueError):
        parse_wait("soon")


async def test_an_action_still_running_after_the_wait_answers_202(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    async with running(temporal_client, store, tmp_path, queue_prefix, with_workers=False) as idle:
        order = await _order(idle)
        started = time.monotonic()
        resp = await idle.http.post(f"/orders/{order.code}/resend?wait=400ms")
        elapsed = time.monotonic() - started
        assert resp.status_code == 202, resp.text
        assert set(resp.json()) == {"operation_id", "status_url"}
        assert 0.35 < elapsed < 5
        await idle.client.get_workflow_handle(resp.json()["operation_id"]).terminate("no worker in this test")
