"""Reconciliation against the Stripe stand-in over HTTP (real SDK, real Refund runs, real webhooks).

The lost late failure of issue 11: the refund is `refunded` in the ledger and
the bank fails it afterwards with no webhook reaching us. Reconciliation finds
it and heals it by starting the follow-up run by its deterministic id, which
moves the ledger through the refund rule and tells finance once; a second run
of the window heals nothing and resolves the item.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from tests.e2e.reconcile_support import FAST
from tests.e2e.refund_support import card_order, request_refund, stripe_refunds_for
from tests.harness import Harness
from ticketing.models import Processor
from ticketing.reconciliation import DiscrepancyClass as C
from ticketing.reconciliation import ItemState, SuggestedAction
from ticketing.reconciliation_records import ReconWindow
from ticketing.refunds import late_failure_workflow_id
from ticketing.states import RefundStatus
from ticketing.store import reconciliation as rs
from ticketing.store.refunds import load_refund
from ticketing.store.tables import webhook_events
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput, ReconcileResult, reconcile_workflow_id


@pytest.fixture
def app(stripe_app: Harness) -> Harness:
    return stripe_app


def _window() -> ReconWindow:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return ReconWindow(start=now - timedelta(hours=1), end=now + timedelta(hours=1))


async def _reconcile(app: Harness, window: ReconWindow) -> ReconcileResult:
    return await app.client.execute_workflow(
        ReconcileWorkflow.run,
        ReconcileInput(processor=Processor.STRIPE, window=window, settlement_lag_hours=0, timing=FAST),
        id=app.prefix + reconcile_workflow_id("stripe", window.label),
        task_queue=f"{app.prefix}orders",
    )


async def _refunded(app: Harness, stripe: StripeServer) -> tuple[str, str]:
    order = await card_order(app, stripe)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded", done
    (at_stripe,) = stripe_refunds_for(stripe, order.payment.reference)
    return done["result"]["refund_id"], at_stripe["id"]


async def _until_status(app: Harness, refund_id: str, status: RefundStatus) -> None:
    for _ in range(150):
        async with app.store.read() as conn:
            refund = await load_refund(conn, refund_id)
        if refund.status is status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"refund {refund_id} is {refund.status}, not {status}")


def _finance_mails(app: Harness) -> int:
    """Refund-error notices to finance (the run's own report email is another matter)."""
    return sum(
        1 for m in app.sink.messages
        if m["To"] == "finance@ticketops.local" and str(m["Subject"]).startswith("Refund ")
    )


async def test_lost_late_failure_is_found_and_healed(app: Harness, stripe: StripeServer) -> None:
    refund_id, processor_id = await _refunded(app, stripe)
    clean_id, _ = await _refunded(app, stripe)  # a second refund that stays agreed
    stripe.fail_refund_silently(processor_id, reason="expired_or_canceled_card")
    async with app.store.read() as conn:
        assert (await load_refund(conn, refund_id)).status is RefundStatus.SUCCEEDED  # the ledger never heard

    window = _window()
    first = await _reconcile(app, window)
    assert first.counts == {"status-mismatch": 1} and first.healed == 1, first
    assert first.staged["refund"] == 2
    await _until_status(app, refund_id, RefundStatus.FAILED)
    for _ in range(50):
        if _finance_mails(app):
            break
        await asyncio.sleep(0.1)
    assert _finance_mails(app) == 1
    async with app.store.read() as conn:
        (item,) = await rs.list_items(conn, run_id=first.run_id)
        assert (await load_refund(conn, clean_id)).status is RefundStatus.SUCCEEDED
    assert item.cls is C.STATUS_MISMATCH and item.suggested_action is SuggestedAction.START_LATE_FAILURE
    assert item.refund_id == refund_id and item.processor_refund_id == processor_id
    assert item.healed_at is not None and item.healed_by_run == first.run_id

    second = await _reconcile(app, window)
    assert second.healed == 0 and second.resolved == 1 and second.counts == first.counts
    async with app.store.read() as conn:
        (again,) = await rs.list_items(conn, run_id=first.run_id)
    assert again.id == item.id and again.state is ItemState.RESOLVED and again.actor == "reconciliation"
    follow_up = late_failure_workflow_id(refund_id, 1)
    assert len([w async for w in app.client.list_workflows(f"WorkflowId = '{follow_up}'")]) == 1
    await asyncio.sleep(0.3)
    assert _finance_mails(app) == 1  # told once


async def test_dropped_failure_webhook_is_replayed_once(app: Harness, stripe: StripeServer) -> None:
    refund_id, processor_id = await _refunded(app, stripe)
    stripe.force_refund_failure(processor_id, reason="lost_or_stolen_card", webhook="dropped")
    window = _window()

    first = await _reconcile(app, window)
    assert first.counts == {"missed-webhook": 1} and first.healed == 1, first
    await _until_status(app, refund_id, RefundStatus.FAILED)
    async with app.store.read() as conn:
        (item,) = await rs.list_items(conn, run_id=first.run_id)
        seen = (await conn.execute(webhook_events.select().where(webhook_events.c.id == item.key))).first()
    assert item.suggested_action is SuggestedAction.REPLAY_EVENT and item.processor_side
    assert item.processor_side["route"] == "start-late-failure" and item.processor_side["event_id"] == item.key
    assert seen is not None  # Stripe's own late redelivery is now a duplicate
    replayed = [e[0] for e in item.processor_side["events"]]
    assert item.key == min(replayed)
    async with app.store.read() as conn:
        recorded = {
            r.id for r in (await conn.execute(webhook_events.select().where(webhook_events.c.id.in_(replayed)))).all()
        }
    assert recorded == set(replayed)  # every undelivered event the replay stands for

    # The event is still undelivered at Stripe; the ledger agrees now, so nothing is healed again.
    second = await _reconcile(app, window)
    assert second.healed == 0 and second.resolved == 1
    async with app.store.read() as conn:
        (again,) = await rs.list_items(conn, run_id=first.run_id)
    assert again.id == item.id and again.state is ItemState.RESOLVED


async def test_divergences_made_at_stripe_are_each_found_once(app: Harness, stripe: StripeServer) -> None:
    """A Dashboard refund on our payment, a duplicate under a forgotten key, and another integration's
    refund: three items, each with its class, and nothing about the refunds that agree."""
    order = await card_order(app, stripe, tickets=4)  # 140.00: room for a duplicate of a partial refund
    started = await request_refund(
        app, order.code, {"kind": "tickets", "ticket_ids": [order.tickets[0].id], "reason": "one cannot come"}
    )
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded"
    (ours,) = stripe_refunds_for(stripe, order.payment.reference)
    duplicate = stripe.duplicate_refund(ours["id"])
    other = await card_order(app, stripe)
    dashboard = stripe.dashboard_refund(other.payment.reference or "", amount=500)
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    intent = await client.v1.payment_intents.create_async(
        params={"amount": 2000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
                "allowed_payment_method_types": ["card"]}
    )
    foreign = stripe.dashboard_refund(intent.id, amount=2000, metadata={"shop": "elsewhere"})
    await _refunded(app, stripe)  # one more that agrees

    result = await _reconcile(app, _window())
    async with app.store.read() as conn:
        items = {(i.cls, i.key): i for i in await rs.list_items(conn, run_id=result.run_id)}
    assert set(items) == {
        (C.DUPLICATE_AT_PROCESSOR, done["result"]["refund_id"]),
        (C.MISSING_IN_LEDGER, dashboard["id"]),
        (C.FOREIGN, foreign["id"]),
    }
    dup = items[(C.DUPLICATE_AT_PROCESSOR, done["result"]["refund_id"])]
    assert dup.processor_side and dup.processor_side["paying_refunds"] == sorted([ours["id"], duplicate["id"]])
    assert dup.processor_side["paid_twice"] == 3500 and dup.severity == 4
    external = items[(C.MISSING_IN_LEDGER, dashboard["id"])]
    assert external.suggested_action is SuggestedAction.CONFIRM_EXTERNAL_REFUND and external.ledger is None
    assert result.open_items == 2 and result.healed == 0  # the foreign refund is counted, not queued
