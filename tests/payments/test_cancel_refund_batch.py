"""`cancel_refund_batch` called directly (no Temporal), on SQLite and PostgreSQL, against the Stripe stand-in.

Each order is cancelled and refunded exactly once with its history, however the batch is
interrupted: a worker dying before or after the processor call, an order changed since the
batch read it, a refund settled by someone else meanwhile, 429s while a retry looks up
what an earlier attempt made. Follow-ups survive a batch that died after marking its items.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

import activities.event_cancellation as ec
from activities.bulk_common import BulkActivities
from activities.contracts import BatchCounts, BulkBatch, FollowUp, PrepareBulk
from activities.deps import Deps
from activities.event_cancellation import EventCancellationActivities
from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from payment_adapters.base import ProcessorRefund
from payment_adapters.stripe import StripeAdapter
from runtime.settings import Settings
from tests.builders import make_event, make_order
from tests.harness import seed
from ticketing import refund_ledger
from ticketing.bulk import BulkKind, Selection
from ticketing.models import Order, Processor
from ticketing.money import Money
from ticketing.states import OrderStatus, RefundStatus, TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import load_history, load_order, save_order
from ticketing.store.refunds import find_refund_by_workflow, update_refund
from ticketing.store.tables import bulk_items

# What the order's history holds after the batch, one ticket per order (as before batching the writes).
REFUND_HISTORY = [
    "order-created",
    "order-cancelled",
    "item-canceled",
    "item-invalidated",
    "fees-made-refundable",
    "refunding-items",
    "item-refunded",
]


class WorkerDied(Exception):
    """Stands for a worker process killed in the middle of a batch."""


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer() as server:
        yield server


@dataclass
class Setup:
    deps: Deps
    adapter: StripeAdapter
    bulk_id: str
    first: int
    last: int
    orders: list[Order]


async def _setup(store: Store, stripe: StripeServer, n: int, card: str = "pm_card_visa") -> Setup:
    adapter = StripeAdapter(stripe.config.api_key, stripe.config.webhook_secret, base_url=stripe.base_url)
    deps = Deps(settings=Settings(), store=store, email=Any, payments={Processor.STRIPE: adapter})  # type: ignore[arg-type]
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    sdk = stripe_client(stripe.base_url, stripe.config.api_key)
    orders = []
    for _ in range(n):
        order = make_order(event, types, tickets=1)
        params: Any = {"amount": order.payment.amount.amount, "currency": "eur", "payment_method": card,
                       "confirm": True, "allowed_payment_method_types": ["card"]}  # fmt: skip
        intent = await sdk.v1.payment_intents.create_async(params=params)
        orders.append(order.model_copy(update={"payment": order.payment.model_copy(update={"reference": intent.id})}))
    await seed(store, event, types, slots, orders)
    bulk_id = f"bk_{uuid.uuid4().hex[:8]}"
    found = await ActivityEnvironment().run(
        BulkActivities(deps).prepare_bulk,
        PrepareBulk(
            bulk_id=bulk_id, workflow_id=f"event-cancel/{bulk_id}", kind=BulkKind.EVENT_CANCELLATION.value,
            event_id=event.id,
            selection=Selection(event_id=event.id, statuses=[OrderStatus.PAID]).model_dump(mode="json"),
            params={"reason": "the show was called off", "refund": {"mode": "full"}, "actor": "ops"}, actor="ops",
        ),
    )  # fmt: skip
    return Setup(deps, adapter, bulk_id, found.first, found.last, orders)


async def _run(s: Setup, rate: float = 1000.0) -> BatchCounts:
    batch = BulkBatch(bulk_id=s.bulk_id, first=s.first, last=s.last, rate=rate, phase="cancel")
    activities = EventCancellationActivities(s.deps)
    result: BatchCounts = await ActivityEnvironment().run(activities.cancel_refund_batch, batch)
    return result


async def _assert_books(store: Store, stripe: StripeServer, s: Setup) -> None:
    """One refund per order at the processor, matching the ledger, each order's history written once."""
    intents = {o.payment.reference for o in s.orders}
    at_stripe = [r for r in stripe.refunds() if r["payment_intent"] in intents]
    assert Counter(r["payment_intent"] for r in at_stripe) == Counter(intents)
    async with store.transaction() as conn:
        items = (await conn.execute(sa.select(bulk_items).where(bulk_items.c.bulk_id == s.bulk_id))).all()
        for order in s.orders:
            after = await load_order(conn, order.code)
            assert after.status is OrderStatus.CANCELLED
            assert {t.state for t in after.tickets} == {TicketState.CANCELLED}
            assert after.refunded_total == after.payment.amount and after.pending_refund_total.is_zero
            assert [e.type for e in await load_history(conn, order.code)] == REFUND_HISTORY
            refund = await find_refund_by_workflow(conn, ec.refund_workflow_id(order.code, s.bulk_id))
            assert refund is not None and refund.status is RefundStatus.SUCCEEDED
            assert [r["id"] for r in at_stripe if r["payment_intent"] == order.payment.reference] == [
                refund.processor_refund_id
            ]
    assert {(i.status, bool(i.refund_id)) for i in items} == {("refunded", True)}
    assert sum(r["amount"] for r in at_stripe) == sum(o.payment.amount.amount for o in s.orders)


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


async def test_every_order_is_cancelled_and_refunded_once(store: Store, stripe: StripeServer) -> None:
    s = await _setup(store, stripe, 6)
    stripe.set_rate_limit(40.0)
    counts = await _run(s, rate=40.0)
    assert counts.counts == {"refunded": 6} and counts.follow_ups == []
    await _assert_books(store, stripe, s)
    assert not [r for r in stripe.request_log if r.status == 429]
    # The ledger row is written before the processor is called, under the refund's idempotency key.
    keys = [r.idempotency_key for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
    assert sorted(k or "" for k in keys) == sorted(
        f"{ec.refund_workflow_id(o.code, s.bulk_id)}/attempt-1" for o in s.orders
    )


async def _dies_at(s: Setup, victim: str, *, after_call: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    real = s.adapter.create_refund

    async def create_refund(**kw: Any) -> ProcessorRefund:
        if kw["payment_reference"] != victim:
            return await real(**kw)
        if after_call:
            await real(**kw)  # the processor made it; the answer is lost with the worker
        raise WorkerDied("killed")

    monkeypatch.setattr(s.adapter, "create_refund", create_refund)
    with pytest.raises(WorkerDied):
        await _run(s)
    monkeypatch.setattr(s.adapter, "create_refund", real)


@pytest.mark.parametrize("after_call", [True, False], ids=["after-the-processor-call", "before-the-processor-call"])
async def test_a_batch_retried_after_its_worker_died_refunds_each_order_once(
    store: Store, stripe: StripeServer, monkeypatch: pytest.MonkeyPatch, after_call: bool
) -> None:
    s = await _setup(store, stripe, 4)
    victim = s.orders[1]
    await _dies_at(s, victim.payment.reference or "", after_call=after_call, monkeypatch=monkeypatch)
    async with store.transaction() as conn:
        left = await find_refund_by_workflow(conn, ec.refund_workflow_id(victim.code, s.bulk_id))
    assert left is not None and left.status is RefundStatus.REFUNDING  # the ledger row came first
    stripe.state.store.prune_results(float("inf"))  # the processor forgot the key, as Stripe does after 24 h
    counts = await _run(s)
    assert counts.counts.get("refunded", 0) >= 1
    await _assert_books(store, stripe, s)


async def test_an_order_changed_since_the_batch_read_it_is_read_again(
    store: Store, stripe: StripeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await _setup(store, stripe, 3)
    moved = s.orders[0].code
    real = ec.load_orders

    async def stale(conn: Any, codes: Any) -> list[Order]:  # someone wrote the order once since the read
        found = await real(conn, codes)
        return [o.model_copy(update={"version": o.version - 1}) if o.code == moved else o for o in found]

    monkeypatch.setattr(ec, "load_orders", stale)
    assert (await _run(s)).counts == {"refunded": 3}
    await _assert_books(store, stripe, s)


async def test_a_refund_settled_by_someone_else_meanwhile_is_adopted(
    store: Store, stripe: StripeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processor's webhook moves the refund between our call and our ledger write: not booked twice."""
    s = await _setup(store, stripe, 2)
    target = s.orders[0]
    real = s.adapter.create_refund

    async def create_refund(**kw: Any) -> ProcessorRefund:
        result = await real(**kw)
        if kw["payment_reference"] == target.payment.reference:
            async with store.transaction() as conn:
                order = await load_order(conn, target.code, for_update=True)
                refund = await find_refund_by_workflow(conn, ec.refund_workflow_id(target.code, s.bulk_id))
                assert refund is not None
                after_order, after_refund, history = refund_ledger.succeeded(
                    order, refund, actor="processor", now=datetime.now(UTC), processor_refund_id=result.id
                )
                await save_order(conn, order, after_order, history)
                await update_refund(conn, refund, after_refund)
        return result

    monkeypatch.setattr(s.adapter, "create_refund", create_refund)
    assert (await _run(s)).counts == {"refunded": 2}
    await _assert_books(store, stripe, s)


async def test_follow_ups_are_returned_again_by_a_retry_after_the_items_were_marked(
    store: Store, stripe: StripeServer
) -> None:
    s = await _setup(store, stripe, 2, card="pm_card_pendingRefund")
    first = await _run(s)
    assert first.counts == {"refund-pending": 2}
    expected = sorted(
        (ec.refund_id_for(ec.refund_workflow_id(o.code, s.bulk_id)), o.code, ec.refund_workflow_id(o.code, s.bulk_id))
        for o in s.orders
    )
    assert sorted((f.refund_id, f.order_code, f.workflow_id) for f in first.follow_ups) == expected
    # The attempt died after marking its items, before its result reached the workflow: a retry
    # finds nothing left to do, but still hands over the refunds that wait.
    again = await _run(s)
    assert again.counts == {}
    assert sorted((f.refund_id, f.order_code, f.workflow_id) for f in again.follow_ups) == expected
    assert len([r for r in stripe.refunds() if r["payment_intent"] in {o.payment.reference for o in s.orders}]) == 2


async def test_a_retry_looks_up_earlier_refunds_at_the_pace_and_backs_off_on_429(
    store: Store, stripe: StripeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await _setup(store, stripe, 5)
    real = s.adapter.create_refund

    async def create_refund(**kw: Any) -> ProcessorRefund:
        await real(**kw)
        raise WorkerDied("killed")  # every answer is lost

    monkeypatch.setattr(s.adapter, "create_refund", create_refund)
    with pytest.raises(WorkerDied):
        await _run(s)
    monkeypatch.setattr(s.adapter, "create_refund", real)
    stripe.state.store.prune_results(float("inf"))
    stripe.set_rate_limit(2.0)  # below the batch's pace: the lookups meet 429s
    await _run(s, rate=20.0)
    assert any(r.status == 429 for r in stripe.request_log)
    await _assert_books(store, stripe, s)


async def test_a_processor_refusal_is_booked_as_a_refund_error(store: Store, stripe: StripeServer) -> None:
    s = await _setup(store, stripe, 2)
    refused = s.orders[0]
    sdk = stripe_client(stripe.base_url, stripe.config.api_key)
    await sdk.v1.refunds.create_async(params={"payment_intent": refused.payment.reference or ""})
    counts = await _run(s)
    assert counts.counts == {"refunded": 1, "refund-error": 1}
    wid = ec.refund_workflow_id(refused.code, s.bulk_id)
    async with store.transaction() as conn:
        order = await load_order(conn, refused.code)
        refund = await find_refund_by_workflow(conn, wid)
    assert refund is not None and refund.status is RefundStatus.FAILED
    # The Refund run it is handed to names the order and the amount (its summary in the Web UI).
    summary = f"Refund {refund.amount.display()} on order {refused.code} (full): "
    summary += f"handed over by event cancellation {s.bulk_id}"
    assert counts.follow_ups == [
        FollowUp(refund_id=ec.refund_id_for(wid), order_code=refused.code, workflow_id=wid, summary=summary)
    ]
    assert order.pending_refund_total.is_zero and order.refunded_total == Money(amount=0, currency="EUR")
