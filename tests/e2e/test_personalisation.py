"""Open personalisation end to end: reset, the emailed link, the buyer's submission, refusals."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError

from activities.contracts import OpenPersonalisationRound, PersonalisationLinkEmail
from activities.order_emails import OrderEmailActivities
from activities.personalisation import PersonalisationActivities
from tests.e2e.action_support import action, history, problem, seeded, stored
from tests.harness import Harness
from ticketing.personalisation_tokens import LinkClaims, make_token

LINK = re.compile(r"https?://\S+/personalisation/(\S+)")


@pytest_asyncio.fixture
async def anon(app: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The buyer: no credentials, only the link."""
    transport = httpx.ASGITransport(app=app.extra["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def _open(h: Harness, code: str, key: str) -> dict[str, Any]:
    resp = await h.http.post(
        f"/orders/{code}/personalisation", headers={"Idempotency-Key": key, **await h.headers_for("agent-7")}
    )
    assert resp.status_code == 202, resp.text
    done = await h.wait_operation(resp.json()["operation_id"])
    assert done["status"] == "completed", done
    return done["result"]


def _token(h: Harness, index: int = -1) -> str:
    body = h.sink.messages[index].get_body(("plain",))
    assert body is not None
    match = LINK.search(body.get_content())
    assert match, "no personalisation link in the email"
    return match.group(1)


async def test_reset_mails_a_link_that_personalises_the_tickets(app: Harness, anon: httpx.AsyncClient) -> None:
    _, order = await seeded(app, personalised=True, tickets=1, vip=2)
    ga, vip1, vip2 = order.tickets
    for t in (ga, vip1):
        edit = await app.http.patch(f"/orders/{order.code}/tickets/{t.id}", json={"name": "Old", "email": "o@x.io"})
        assert edit.status_code == 200

    result = await _open(app, order.code, "open-1")
    assert (result["round"], result["ticket_count"], result["delivery"]) == (1, 2, "sent")
    after = await stored(app, order.code)
    assert after.ticket(vip1.id).personalisation is None  # reset
    assert after.ticket(ga.id).personalisation is not None  # needs none: left alone
    [mail] = app.sink.messages
    assert mail["To"] == "ada@example.com" and "attendee names" in mail["Subject"]

    link = await anon.get(f"/personalisation/{_token(app)}")
    assert link.status_code == 200, link.text
    assert [(t["ticket_id"], t["personalised"]) for t in link.json()["tickets"]] == [(vip1.id, False), (vip2.id, False)]
    assert "ada@example.com" not in link.text and "Ada" not in link.text

    holders = [
        {"ticket_id": vip1.id, "name": "Grace Hopper", "email": "grace@example.com", "phone": "+1 555 0100"},
        {"ticket_id": vip2.id, "name": "Alan Turing", "email": "alan@example.com"},
    ]
    sent = await anon.post(f"/personalisation/{_token(app)}", json={"tickets": holders})
    assert sent.status_code == 200, sent.text
    assert all(t["personalised"] for t in sent.json()["tickets"])
    tickets = {t["id"]: t for t in (await app.http.get(f"/orders/{order.code}")).json()["tickets"]}
    assert tickets[vip2.id]["personalisation"] == {"name": "Alan Turing", "email": "alan@example.com", "phone": None}

    assert [h.actor for h in await history(app, order.code, "personalisation-opened")] == ["agent-7"]
    assert [h.actor for h in await history(app, order.code, "personalisation-link-sent")] == ["agent-7"]
    [submitted] = await history(app, order.code, "personalisation-submitted")
    assert (submitted.actor, submitted.data) == ("personalisation-link", {"round": 1, "tickets": [vip1.id, vip2.id]})

    headers = {"Idempotency-Key": "open-1", **await app.headers_for("agent-7")}
    replay = await app.http.post(f"/orders/{order.code}/personalisation", headers=headers)
    assert replay.status_code == 202 and replay.headers.get("Idempotent-Replayed") == "true"
    assert len(app.sink.messages) == 1 and (await stored(app, order.code)).ticket(vip1.id).personalisation


async def test_links_are_refused_when_superseded_expired_or_tampered(app: Harness, anon: httpx.AsyncClient) -> None:
    _, order = await seeded(app, personalised=True, tickets=1, vip=1)
    ga, vip = order.tickets
    await _open(app, order.code, "first")
    old = _token(app)
    assert (await _open(app, order.code, "second"))["round"] == 2
    new = _token(app)
    assert old != new and len(app.sink.messages) == 2

    holder = {"ticket_id": vip.id, "name": "Grace", "email": "grace@example.com"}
    problem(await anon.get(f"/personalisation/{old}"), 410, "personalisation-link-superseded")
    stale = await anon.post(f"/personalisation/{old}", json={"tickets": [holder]})
    problem(stale, 410, "personalisation-link-superseded")
    payload, signature = new.split(".")
    problem(await anon.get(f"/personalisation/{payload}.{signature[::-1]}"), 403, "personalisation-link-invalid")
    problem(await anon.get("/personalisation/garbage"), 403, "personalisation-link-invalid")
    secret = app.settings.signing_secret.get_secret_value()
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    expired = make_token(secret, LinkClaims(order_code=order.code, round=2, expires_at=past))
    problem(await anon.get(f"/personalisation/{expired}"), 410, "personalisation-link-expired")

    url = f"/personalisation/{new}"
    problem(await anon.post(url, json={"tickets": [{**holder, "ticket_id": ga.id}]}), 409, "ticket-not-personalisable")
    problem(await anon.post(url, json={"tickets": [{**holder, "ticket_id": "tkt_nope"}]}), 404, "ticket-not-found")
    problem(await anon.post(url, json={"tickets": [{**holder, "email": "nope"}]}), 422, "validation-error")
    problem(await anon.post(url, json={"tickets": [holder, holder]}), 422, "duplicate-ticket")
    problem(await anon.post(url, json={"tickets": []}), 422, "validation-error")
    assert (await stored(app, order.code)).ticket(vip.id).personalisation is None
    assert await history(app, order.code, "personalisation-submitted") == []
    assert (await anon.post(url, json={"tickets": [holder]})).status_code == 200


async def test_order_without_personalised_tickets_is_refused(app: Harness) -> None:
    _, order = await seeded(app, tickets=2)
    problem(await app.http.post(f"/orders/{order.code}/personalisation"), 409, "personalisation-not-required")
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "open-personalisation")["reason_type"] == "personalisation-not-required"
    assert await history(app, order.code, "personalisation-opened") == []
    assert app.sink.messages == []
    # Anonymous callers reach only the link routes: the agent's action still needs credentials.
    transport = httpx.ASGITransport(app=app.extra["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anon:
        problem(await anon.post(f"/orders/{order.code}/personalisation"), 401, "unauthorized")


async def test_a_retried_reset_reopens_nothing_and_a_stale_round_mails_nothing(app: Harness) -> None:
    """The activities as Temporal retries them: same operation id, possibly after a newer round."""
    _, order = await seeded(app, personalised=True, tickets=0, vip=1)
    [vip] = order.tickets
    resets = PersonalisationActivities(app.deps)
    req = OpenPersonalisationRound(order_code=order.code, operation_id="personalisation/x/op-a", actor="agent-7")
    first = await resets.open_personalisation_round(req)
    edit = await app.http.patch(f"/orders/{order.code}/tickets/{vip.id}", json={"name": "Kept", "email": "k@x.io"})
    assert edit.status_code == 200
    retried = await resets.open_personalisation_round(req)
    assert retried == first and first.round == 1
    assert (await stored(app, order.code)).ticket(vip.id).personalisation is not None  # not reset twice
    assert len(await history(app, order.code, "personalisation-opened")) == 1

    newer = await resets.open_personalisation_round(req.model_copy(update={"operation_id": "personalisation/x/op-b"}))
    assert newer.round == 2
    stale = PersonalisationLinkEmail(
        order_code=order.code, operation_id=req.operation_id, actor="agent-7", round=1, expires_at=first.expires_at
    )
    with pytest.raises(ApplicationError) as info:
        await OrderEmailActivities(app.deps).send_personalisation_link(stale)
    assert info.value.type == "personalisation-link-superseded" and info.value.non_retryable
    assert app.sink.messages == []
