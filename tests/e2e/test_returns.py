"""Return requests end to end: link or agent -> ReturnRequest -> child Refund on the Stripe stand-in -> returned."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import RefundConfig
from tests.e2e.action_support import action, history, problem, stored
from tests.e2e.refund_support import card_order, stripe_refunds_for
from tests.harness import Harness, running
from ticketing.signed_links import sign
from ticketing.store.engine import Store

FAST = RefundConfig(poll_initial_seconds=0.5, poll_max_seconds=1.0, manual_reminder_days=1.0)


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    server = StripeServer(StripeServerConfig(pending_refund_settle_seconds=0.5))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    async with running(temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True,
                       settings_overrides={"refunds": FAST}) as harness:
        yield harness



async def test_buyer_requests_by_link_finance_approves_and_the_order_is_returned(
    app: Harness, stripe: StripeServer
) -> None:
    order = await card_order(app, stripe)
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "request-return")["enabled"] is True
    assert action(detail, "decide-return")["reason_type"] == "order-paid"
    token = sign(app.settings.signing_secret.get_secret_value(), "return", order.code,
                 datetime.now(UTC) + timedelta(days=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.extra["app"]), base_url="http://api") as anon:
        asked = await anon.post(f"/returns/{token}", json={"reason": "I cannot attend"})
        assert asked.status_code == 202, asked.text
        problem(await anon.post(f"/returns/{token[:-3]}abc", json={"reason": "again"}), 403, "return-link-invalid")
    op = asked.json()["operation_id"]
    for _ in range(100):
        if (await stored(app, order.code)).status.value == "return-requested":
            break
        await asyncio.sleep(0.1)
    assert (await stored(app, order.code)).status.value == "return-requested"
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "decide-return")["enabled"] is True
    assert action(detail, "request-return")["reason_type"] == "order-return-requested"

    support = await app.headers_for("agent-7", "support")
    problem(await app.http.post(f"/orders/{order.code}/returns/approve", json={}, headers=support), 403, "forbidden")
    finance = await app.headers_for("finance-1", "finance")
    approved = await app.http.post(f"/orders/{order.code}/returns/approve", json={}, headers=finance)
    assert approved.status_code == 200, approved.text
    refund_id = approved.json()["refund_id"]
    done = await app.wait_operation(op, timeout=60)
    assert done["status"] == "completed", done
    assert (done["result"]["status"], done["result"]["refund_status"]) == ("returned", "refunded")
    after = await stored(app, order.code)
    assert after.status.value == "returned" and after.refunded_total == order.payment.amount - order.non_refundable_fees
    assert [r["amount"] for r in stripe_refunds_for(stripe, order.payment.reference)] == [after.refunded_total.amount]
    kinds = [e.type for e in await history(app, order.code)]
    assert kinds.index("return-requested") < kinds.index("return-approved") < kinds.index("returned")
    assert (await history(app, order.code, "return-requested"))[0].data["via"] == "link"
    assert (await history(app, order.code, "returned"))[0].data["refund_id"] == refund_id
    problem(await app.http.post(f"/orders/{order.code}/returns/approve", json={}, headers=finance), 409,
            "order-returned")


async def test_agent_request_declined_with_a_reason_the_buyer_is_told(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe)
    asked = await app.http.post(f"/orders/{order.code}/returns", json={"reason": "customer called"})
    assert asked.status_code == 202, asked.text
    problem(await app.http.post(f"/orders/{order.code}/returns/decline", json={"reason": "no"}), 422,
            "validation-error")
    for _ in range(100):
        if (await stored(app, order.code)).status.value == "return-requested":
            break
        await asyncio.sleep(0.1)
    problem(await app.http.post(f"/orders/{order.code}/returns", json={"reason": "twice"}), 409,
            "order-return-requested")
    declined = await app.http.post(f"/orders/{order.code}/returns/decline",
                                   json={"reason": "the event's policy allows no returns this close to it"})
    assert declined.status_code == 200, declined.text
    done = await app.wait_operation(asked.json()["operation_id"])
    assert (done["result"]["status"], done["result"]["delivery"]) == ("declined", "sent")
    assert (await stored(app, order.code)).status.value == "paid"
    (mail,) = app.sink.messages
    body = mail.get_body(("plain",))
    assert body is not None and "no returns this close" in body.get_content()
    assert stripe_refunds_for(stripe, order.payment.reference) == []
    problem(await app.http.post(f"/orders/{order.code}/returns/decline", json={"reason": "again please"}), 409,
            "order-paid")
    # The builders' event started already: no link for the buyer then, an agent takes the request.
    problem(await app.http.get(f"/orders/{order.code}/return-link"), 409, "event-started")


def _links(mail: EmailMessage) -> list[str]:
    body = mail.get_body(("plain",))
    assert body is not None
    return re.findall(r"https?://\S+/returns/\S+", body.get_content())


async def test_the_tickets_email_carries_a_return_link_that_works(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, starts_at=datetime.now(UTC) + timedelta(days=10))
    sent = await app.http.post(f"/orders/{order.code}/resend", headers=await app.headers_for("agent-7"))
    assert sent.status_code == 202, sent.text
    assert (await app.wait_operation(sent.json()["operation_id"]))["status"] == "completed"
    (eml,) = app.sink.directory.glob("*.eml")
    mail = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert isinstance(mail, EmailMessage)
    (link,) = _links(mail)
    html = mail.get_body(("html",))
    assert html is not None and f'href="{link}"' in html.get_content()
    token = link.rsplit("/returns/", 1)[1]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.extra["app"]), base_url="http://api") as anon:
        asked = await anon.post(f"/returns/{token}", json={"reason": "I cannot attend"})
    assert asked.status_code == 202, asked.text
    for _ in range(100):
        if (await stored(app, order.code)).status.value == "return-requested":
            break
        await asyncio.sleep(0.1)
    assert (await stored(app, order.code)).status.value == "return-requested"
    assert (await history(app, order.code, "return-requested"))[0].data["via"] == "link"


async def test_no_return_link_once_the_event_has_started(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe)  # the builders' event started already
    sent = await app.http.post(f"/orders/{order.code}/resend", headers=await app.headers_for("agent-7"))
    assert (await app.wait_operation(sent.json()["operation_id"]))["status"] == "completed"
    (mail,) = app.sink.messages
    assert _links(mail) == []
    body = mail.get_body(("plain",))
    assert body is not None and "return" not in body.get_content().lower()
