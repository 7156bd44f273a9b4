"""Ticket edit ("unclaim"), contact edit and comments: store updates through the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from tests.e2e.action_support import action, force, history, problem, seeded, stored, verified
from tests.harness import Harness, running
from ticketing.states import OrderStatus, TicketState
from ticketing.store.engine import Store


@pytest_asyncio.fixture
async def api(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    async with running(temporal_client, store, tmp_path, queue_prefix, with_workers=False) as harness:
        yield harness


async def test_ticket_edit_overwrites_one_ticket_and_records_field_names(api: Harness) -> None:
    _, order = await seeded(api, personalised=True, tickets=1, vip=1)
    vip, other = order.tickets[1], order.tickets[0]
    agent = await api.headers_for("agent-7")
    url = f"/orders/{order.code}/tickets/{vip.id}"
    resp = await api.http.patch(url, json={"name": "Grace Hopper", "email": "grace@example.com"}, headers=agent)
    assert resp.status_code == 200, resp.text
    assert resp.json()["changed"] == ["name", "email"]

    detail = (await api.http.get(f"/orders/{order.code}")).json()
    tickets = {t["id"]: t for t in detail["tickets"]}
    assert tickets[vip.id]["personalisation"] == {"name": "Grace Hopper", "email": "grace@example.com", "phone": None}
    assert tickets[other.id]["personalisation"] is None
    [edited] = [h for h in detail["history"] if h["type"] == "ticket-edited"]
    assert edited["actor"] == "agent-7"
    assert edited["data"] == {"ticket_id": vip.id, "fields": ["name", "email"]}
    assert "Grace" not in json.dumps(detail["history"]) and "grace@" not in json.dumps(detail["history"])

    # Same values (email in other case) change nothing and write no history; null clears a field.
    same = await api.http.patch(url, json={"email": "GRACE@example.com"}, headers=agent)
    assert same.json()["changed"] == [] and same.json()["version"] == resp.json()["version"]
    cleared = await api.http.patch(url, json={"name": None, "email": None}, headers=agent)
    assert cleared.json()["changed"] == ["name", "email"]
    assert (await stored(api, order.code)).ticket(vip.id).personalisation is None
    assert len(await history(api, order.code, "ticket-edited")) == 2


async def test_ticket_edit_refusals_change_nothing(api: Harness) -> None:
    _, order = await seeded(api, tickets=2)
    await force(api, order.code, {1: TicketState.CANCELLED})
    before = await stored(api, order.code)
    base = f"/orders/{order.code}/tickets"
    problem(await api.http.patch(f"{base}/{order.tickets[1].id}", json={"name": "X"}), 409, "ticket-invalid")
    problem(await api.http.patch(f"{base}/tkt_nope", json={"name": "X"}), 404, "ticket-not-found")
    missing_order = await api.http.patch(f"/orders/NOSUCH/tickets/{order.tickets[0].id}", json={"name": "X"})
    problem(missing_order, 404, "order-not-found")
    valid = f"{base}/{order.tickets[0].id}"
    for body in ({}, {"email": "not-an-email"}, {"name": ""}, {"phone": "call me"}, {"name": "X", "verified": True}):
        problem(await api.http.patch(valid, json=body), 422, "validation-error")
    assert await stored(api, order.code) == before
    assert await history(api, order.code, "ticket-edited") == []

    await force(api, order.code, status=OrderStatus.CANCELLED)
    problem(await api.http.patch(valid, json={"name": "X"}), 409, "order-cancelled")
    detail = (await api.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "edit-ticket") == {
        "name": "edit-ticket", "enabled": False, "reason": "the order is cancelled", "reason_type": "order-cancelled"
    }


async def test_contact_edit_and_the_verified_email_rule(api: Harness) -> None:
    _, order = await seeded(api)
    agent = await api.headers_for("agent-3")
    url = f"/orders/{order.code}/contact"
    resp = await api.http.patch(url, json={"email": "ada.l@example.com", "mobile": "+31 6 1234 5678"}, headers=agent)
    assert resp.status_code == 200 and resp.json()["changed"] == ["email", "mobile"]
    contact = (await api.http.get(f"/orders/{order.code}")).json()["contact"]
    assert (contact["email"], contact["mobile"]) == ("ada.l@example.com", "+31612345678")
    [edited] = await history(api, order.code, "contact-edited")
    assert (edited.actor, edited.data) == ("agent-3", {"fields": ["email", "mobile"]})

    await verified(api, order.code)
    before = await stored(api, order.code)
    resp = await api.http.patch(url, json={"email": "new@example.com", "name": "A. L."})
    refused = problem(resp, 409, "contact-verified")
    assert "verified" in refused["detail"]
    problem(await api.http.patch(url, json={"email": None}), 422, "validation-error")
    assert await stored(api, order.code) == before
    # A verified contact's name may still change, and restating its email is not a change.
    ok = await api.http.patch(url, json={"name": "A. Lovelace", "email": "ADA.L@example.com"}, headers=agent)
    assert ok.json()["changed"] == ["name"]
    detail = (await api.http.get(f"/orders/{order.code}")).json()
    assert detail["contact"]["email"] == "ada.l@example.com" and action(detail, "edit-contact")["enabled"]


async def test_comments_by_scope_across_the_buyers_orders(api: Harness) -> None:
    _, first = await seeded(api)
    _, second = await seeded(api)
    _, stranger = await seeded(api, email="someone@example.com")
    agent = await api.headers_for("agent-9")
    buyer = await api.http.post(
        f"/orders/{first.code}/comments", json={"scope": "buyer", "text": "Wheelchair access"}, headers=agent
    )
    assert buyer.status_code == 201, buyer.text
    assert buyer.json()["author"] == "agent-9"
    purchase = await api.http.post(
        f"/orders/{first.code}/comments", json={"scope": "purchase", "text": "Refund promised"}
    )
    assert purchase.status_code == 201

    def texts(detail: dict[str, Any]) -> list[str]:
        return [c["text"] for c in detail["comments"]]

    assert texts((await api.http.get(f"/orders/{first.code}")).json()) == ["Wheelchair access", "Refund promised"]
    assert texts((await api.http.get(f"/orders/{second.code}")).json()) == ["Wheelchair access"]
    assert texts((await api.http.get(f"/orders/{stranger.code}")).json()) == []
    added = await history(api, first.code, "comment-added")
    assert [(h.actor, h.data["scope"]) for h in added] == [("agent-9", "buyer"), ("backoffice", "purchase")]
    assert await history(api, second.code, "comment-added") == []

    _, anonymous = await seeded(api, email=None)
    no_email = await api.http.post(f"/orders/{anonymous.code}/comments", json={"scope": "buyer", "text": "x"})
    problem(no_email, 409, "no-contact-email")
    for body in ({"scope": "everyone", "text": "x"}, {"scope": "purchase", "text": "   "}, {"scope": "purchase"}):
        problem(await api.http.post(f"/orders/{first.code}/comments", json=body), 422, "validation-error")
    assert len(texts((await api.http.get(f"/orders/{first.code}")).json())) == 2
