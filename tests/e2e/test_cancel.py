"""Cancel-and-invalidate end to end: API -> CancelOrder -> store, Stripe stand-in, child refund, SMTP sink."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from tests.builders import make_event, make_order
from tests.e2e.refund_support import card_order, stripe_refunds_for
from tests.harness import Harness, seed
from ticketing.models import EventPolicy, Order, Personalisation
from ticketing.roles import Role
from ticketing.states import OrderStatus
from ticketing.store.orders import load_history, load_order, load_ticket_types, save_order
from ticketing.store.refunds import list_refunds
from workflows.contracts import CancelInput


@pytest.fixture
def app(stripe_app: Harness) -> Harness:
    return stripe_app


async def _cancel(app: Harness, code: str, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    return await app.http.post(f"/orders/{code}/cancel", json=body, headers=headers)


async def _order(app: Harness, code: str) -> Order:
    async with app.store.transaction() as conn:
        return await load_order(conn, code)


async def _history(app: Harness, code: str) -> list[Any]:
    async with app.store.transaction() as conn:
        return await load_history(conn, code)


async def _sold(app: Harness, event_id: str) -> dict[str, int]:
    async with app.store.transaction() as conn:
        return {t.id: t.sold for t in await load_ticket_types(conn, event_id)}


async def _personalise(app: Harness, code: str, holders: dict[int, tuple[str, str]]) -> None:
    async with app.store.transaction() as conn:
        order = await load_order(conn, code)
        tickets = [
            t.model_copy(update={"personalisation": Personalisation(name=holders[i][0], email=holders[i][1])})
            if i in holders
            else t
            for i, t in enumerate(order.tickets)
        ]
        await save_order(conn, order, order.model_copy(update={"tickets": tickets}), [])


def _cancellations(app: Harness) -> list[Any]:
    return [m for m in app.sink.messages if "is cancelled" in m["Subject"]]


async def test_cancel_with_refund_on_a_card_order(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=3)
    await _personalise(app, order.code, {0: ("Grace Hopper", "grace@example.com"),
                                         1: ("Linus T", "LINUS@example.com"), 2: ("Ada", "ada@example.com")})
    assert sum((await _sold(app, order.event_id)).values()) == 3
    resp = await _cancel(app, order.code, {"reason": "show called off", "refund": True}, key="c-1")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["operation_id"] == f"cancel/{order.code}/c-1"
    assert body["refund"] == "requested" and body["whole_order"] is True
    assert body["refund_operation_id"] == f"cancel/{order.code}/c-1/refund"
    done = await app.wait_operation(body["operation_id"])
    assert done["status"] == "completed", done
    assert done["result"]["refund"] == "refunded" and done["result"]["emails_sent"] == 3

    at_stripe = stripe_refunds_for(stripe, order.payment.reference)
    assert [(r["amount"], r["status"]) for r in at_stripe] == [(3 * 3500, "succeeded")]
    refund = (await app.http.get(f"/refunds/{body['refund_id']}")).json()
    assert refund["status"] == "refunded" and refund["operation_id"] == body["refund_operation_id"]

    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert detail["status"] == "cancelled"
    assert {(t["status"], t["invalid_reason"]) for t in detail["tickets"]} == {("invalid", "cancelled")}
    assert next(a for a in detail["actions"] if a["name"] == "cancel")["reason_type"] == "order-already-cancelled"
    assert sum((await _sold(app, order.event_id)).values()) == 0  # the seats can be sold again
    types = [h["type"] for h in detail["history"]]
    assert types.count("order-cancelled") == 1 and types.count("item-canceled") == 3
    assert types.count("item-invalidated") == 3 and types.count("cancellation-sent") == 3
    assert types.index("order-cancelled") < types.index("refunding-items") < types.index("item-refunded")
    cancelled = next(h for h in detail["history"] if h["type"] == "order-cancelled")
    assert cancelled["data"]["refund"] == "requested" and cancelled["data"]["refund_id"] == body["refund_id"]

    mails = _cancellations(app)
    assert sorted(m["To"].lower() for m in mails) == ["ada@example.com", "grace@example.com", "linus@example.com"]
    assert len({m["Message-ID"] for m in mails}) == 3
    buyer = next(m for m in mails if m["To"] == "ada@example.com")
    assert "refund of EUR 105.00" in buyer.get_body(("plain",)).get_content()
    attendee = next(m for m in mails if m["To"] == "grace@example.com")
    assert "refund" not in attendee.get_body(("plain",)).get_content()

    # An old barcode at the gate: rejected as cancelled.
    scan = await app.http.post("/scan", json={"barcode": order.tickets[0].barcode})
    assert scan.json()["result"] == "rejected" and scan.json()["reason_type"] == "cancelled"
    replay = await _cancel(app, order.code, {"reason": "show called off", "refund": True}, key="c-1")
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    await asyncio.sleep(0.3)
    assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1 and len(_cancellations(app)) == 3


async def test_cancel_with_refund_that_fails_keeps_the_cancellation(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, card="pm_card_refundFail", tickets=2)
    resp = await _cancel(app, order.code, {"reason": "duplicate purchase", "refund": True})
    body = resp.json()
    done = await app.wait_operation(body["operation_id"])
    assert done["status"] == "completed", done
    for _ in range(100):
        refund = (await app.http.get(f"/refunds/{body['refund_id']}")).json()
        if refund["status"] == "refund-error":
            break
        await asyncio.sleep(0.1)
    assert refund["status"] == "refund-error" and refund["failure_reason"] == "expired_or_canceled_card"
    after = await _order(app, order.code)
    assert after.status is OrderStatus.CANCELLED
    assert {t.state.value for t in after.tickets} == {"invalid:cancelled"}
    assert after.refunded_total.amount == 0
    listed = (await app.http.get("/refunds", params={"status": "refund-error", "order": order.code})).json()
    assert [r["id"] for r in listed] == [body["refund_id"]]


async def test_cancel_without_refund_says_so(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2)
    resp = await _cancel(app, order.code, {"reason": "administrative cancellation"})
    assert resp.status_code == 202 and resp.json()["refund"] == "not-requested"
    assert "refund_id" not in resp.json()
    done = await app.wait_operation(resp.json()["operation_id"])
    assert done["result"]["refund"] == "not-requested" and done["result"]["payment"] == "unchanged"
    cancelled = next(h for h in await _history(app, order.code) if h.type == "order-cancelled")
    assert cancelled.data["refund"] == "none"
    assert stripe_refunds_for(stripe, order.payment.reference) == []
    after = await _order(app, order.code)
    assert after.status is OrderStatus.CANCELLED and after.refunded_total.amount == 0
    (mail,) = _cancellations(app)
    assert "refund" not in mail.get_body(("plain",)).get_content().lower()


async def test_cancelling_a_reserved_order_voids_its_payment(app: Harness, stripe: StripeServer) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=2, status=OrderStatus.RESERVED, slot=slots[0].id)
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    intent = await client.v1.payment_intents.create_async(
        params={"amount": order.payment.amount.amount, "currency": "eur", "payment_method": "pm_card_visa",
                "allowed_payment_method_types": ["card"]}
    )
    order = order.model_copy(update={"payment": order.payment.model_copy(update={"reference": intent.id})})
    await seed(app.store, event, types, slots, [order])
    resp = await _cancel(app, order.code, {"reason": "not paid in time", "refund": True})
    assert resp.json()["refund"] == "nothing-to-refund" and resp.json()["refund_refusal"] == "payment-not-settled"
    done = await app.wait_operation(resp.json()["operation_id"])
    assert done["result"]["payment"] == "voided" and done["result"]["refund"] == "nothing-to-refund"
    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "canceled"
    after = await _order(app, order.code)
    assert after.status is OrderStatus.CANCELLED and after.payment.status.value == "voided"
    assert "payment-voided" in [h.type for h in await _history(app, order.code)]
    assert sum((await _sold(app, event.id)).values()) == 0
    assert stripe.refunds() == []


async def test_single_ticket_cancellation_with_refund(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2, policy=EventPolicy(allow_item_cancellation=True))
    first = order.tickets[0]
    resp = await _cancel(app, order.code, {"reason": "one guest cannot come", "refund": True,
                                           "ticket_ids": [first.id]})
    assert resp.status_code == 202 and resp.json()["whole_order"] is False
    done = await app.wait_operation(resp.json()["operation_id"])
    assert done["result"]["refund"] == "refunded" and done["result"]["ticket_ids"] == [first.id]
    assert [r["amount"] for r in stripe_refunds_for(stripe, order.payment.reference)] == [3500]
    after = await _order(app, order.code)
    assert after.status is OrderStatus.PAID
    assert [t.state.value for t in after.tickets] == ["invalid:cancelled", "valid"]
    assert sum((await _sold(app, order.event_id)).values()) == 1
    types = [h.type for h in await _history(app, order.code)]
    assert "order-cancelled" not in types and types.count("item-canceled") == 1


async def test_refusals_are_problems_and_change_nothing(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2)
    code = order.code

    async def refused(body: dict[str, Any], target: str | None = None) -> tuple[int, str]:
        resp = await _cancel(app, target or code, body)
        return resp.status_code, resp.json()["type"].rsplit("/", 1)[-1]

    assert await refused({"reason": "one ticket", "ticket_ids": [order.tickets[0].id]}) == (
        409, "item-cancellation-not-allowed"
    )
    assert await refused({"reason": "ghost", "ticket_ids": ["tkt_nope"]}) == (404, "ticket-not-found")
    assert await refused({"reason": "x"}) == (422, "validation-error")
    assert await refused({"reason": "typo", "refunds": True}) == (422, "validation-error")
    assert await refused({"reason": "empty", "ticket_ids": []}) == (422, "validation-error")
    assert await refused({"reason": "nobody"}, "NOSUCH") == (404, "order-not-found")
    support = await app.headers_for("agent-1", Role.SUPPORT)
    forbidden = await app.http.post(f"/orders/{code}/cancel", json={"reason": "refund it", "refund": True},
                                    headers=support)
    assert forbidden.status_code == 403 and forbidden.json()["type"].endswith("/forbidden")

    async with app.store.transaction() as conn:
        current = await load_order(conn, code)
        moving = current.tickets[0].model_copy(update={"in_transfer": True})
        await save_order(conn, current, current.model_copy(update={"tickets": [moving, *current.tickets[1:]]}), [])
    assert await refused({"reason": "in transfer"}) == (409, "ticket-in-transfer")

    expired_event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    expired = make_order(expired_event, types, status=OrderStatus.EXPIRED)
    await seed(app.store, expired_event, types, slots, [expired])
    assert await refused({"reason": "too late"}, expired.code) == (409, "order-expired")

    before = await _order(app, code)
    assert before.status is OrderStatus.PAID and before.version == 2  # only the test's own edit
    assert [h.type for h in await _history(app, code)] == ["order-created"]
    assert app.sink.messages == []


async def test_already_cancelled_is_refused_by_api_and_workflow(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe)
    first = await _cancel(app, order.code, {"reason": "first time"})
    await app.wait_operation(first.json()["operation_id"])
    again = await _cancel(app, order.code, {"reason": "second time"})
    assert again.status_code == 409 and again.json()["type"].endswith("/order-already-cancelled")
    # A request that raced past the API check is refused by the workflow the same way.
    with pytest.raises(WorkflowFailureError) as info:
        await app.client.execute_workflow(
            "CancelOrder",
            CancelInput(order_code=order.code, actor="test", reason="raced"),
            id=f"cancel/{order.code}/direct",
            task_queue=f"{app.prefix}orders",
        )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "order-already-cancelled"
    assert [h.type for h in await _history(app, order.code)].count("order-cancelled") == 1


async def test_cancel_and_refund_racing_on_one_order(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2)
    refund_body = {"kind": "full", "reason": "customer asked"}
    preview = (await app.http.post(f"/orders/{order.code}/refunds/preview", json=refund_body)).json()
    refund_resp, cancel_resp = await asyncio.gather(
        app.http.post(f"/orders/{order.code}/refunds", json={**refund_body, "quote_hash": preview["quote_hash"]},
                      headers={"Idempotency-Key": "r"}),
        _cancel(app, order.code, {"reason": "event moved", "refund": True}, key="c"),
    )
    assert cancel_resp.status_code == 202, cancel_resp.text  # cancelling is never blocked by a refund
    cancelled = await app.wait_operation(cancel_resp.json()["operation_id"])
    assert cancelled["status"] == "completed", cancelled
    if refund_resp.status_code == 202:
        refunded = await app.wait_operation(refund_resp.json()["operation_id"])
        refund_outcome = refunded["status"] if refunded["status"] == "completed" else refunded["error"]["type"]
    else:
        refund_outcome = refund_resp.json()["type"].rsplit("/", 1)[-1]
    cancel_refund = cancelled["result"]["refund"]
    # Exactly one of the two refunds happens; the loser says why with a stable type.
    assert (refund_outcome, cancel_refund) in (("completed", "nothing-to-refund"), ("quote-mismatch", "refunded")), (
        refund_outcome, cancel_refund
    )
    assert [r["amount"] for r in stripe_refunds_for(stripe, order.payment.reference)] == [7000]
    async with app.store.transaction() as conn:
        ledger = await list_refunds(conn, order_code=order.code)
        after = await load_order(conn, order.code)
    assert [(r.amount.amount, r.status.value) for r in ledger] == [(7000, "refunded")]
    assert after.status is OrderStatus.CANCELLED and after.refunded_total.amount == 7000
    assert after.pending_refund_total.amount == 0


async def test_cancel_activity_retried_after_commit_answers_from_history(app: Harness, stripe: StripeServer) -> None:
    """A worker that dies after the commit: the retry is not refused as "already cancelled"."""
    from activities.cancellation import CancellationActivities
    from activities.contracts import CancelOrder

    order = await card_order(app, stripe, tickets=2)
    activities = CancellationActivities(app.deps)
    req = CancelOrder(order_code=order.code, operation_id="cancel/X/retried", actor="test", reason="retry me",
                      refund=True)
    first = await activities.cancel_order(req)
    second = await activities.cancel_order(req)
    assert first.refund_plan is not None and second.refund_plan == first.refund_plan
    assert (second.ticket_ids, second.whole_order, second.refund) == (first.ticket_ids, True, "requested")
    assert sum((await _sold(app, order.event_id)).values()) == 0  # released once, not twice
    assert [h.type for h in await _history(app, order.code)].count("order-cancelled") == 1
