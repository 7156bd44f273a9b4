"""close_event_transfers on its own, against the store and a real Temporal server: the unhappy paths.

A transfer whose run is deciding (the recipient accepting) fails the attempt, retryably, once the page's
others are done; a transfer whose run is gone is closed in the store by the same rule; a retry lists only
what is still open. The happy path and the race are in test_transfer_cancellation.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.contracts import CancelTransfer, CloseEventTransfers, TransferState
from activities.event_transfers import EventTransferActivities
from tests.builders import make_event, make_order
from tests.e2e.action_support import history, stored
from tests.harness import Harness, seed
from ticketing.models import Contact, Order
from ticketing.states import TransferStatus
from ticketing.store.bulk import create_bulk
from ticketing.store.tables import bulk_items
from ticketing.store.transfers import insert_transfer, load_transfer, save_transfer
from ticketing.transfers import CANCELED_EVENT, TicketTransfer
from workflows.contracts import TransferInput


@workflow.defn(name="TransferTicket", sandboxed=False)
class Deciding:
    """A transfer run in the middle of a decision: its validator-free cancel update is refused as the real one is."""

    def __init__(self) -> None:
        self.over = False

    @workflow.run
    async def run(self, _: TransferInput) -> None:
        await workflow.wait_condition(lambda: self.over)

    @workflow.update(name="cancel")
    async def cancel(self, _: CancelTransfer) -> TransferState:
        raise ApplicationError("the transfer is being decided", type="transfer-closed")

    @workflow.signal
    def end(self) -> None:
        self.over = True


async def _offered(app: Harness) -> tuple[Order, list[TicketTransfer], str]:
    """An order whose two tickets are both on offer, chosen by a cancellation (bulk) of its event."""
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    event = event.model_copy(update={"starts_at": datetime.now(UTC) + timedelta(days=30)})
    order = make_order(event, types, tickets=2)
    order = order.model_copy(update={"tickets": [t.model_copy(update={"in_transfer": True}) for t in order.tickets]})
    await seed(app.store, event, types, slots, [order])
    now, bulk_id = datetime.now(UTC), f"bk_{uuid.uuid4().hex[:8]}"
    transfers = [
        TicketTransfer(id=f"transfer/{order.code}/{t.id}/{uuid.uuid4().hex[:6]}", order_code=order.code,
                       ticket_id=t.id, recipient=Contact(name="Grace", email="grace@example.com"),
                       status=TransferStatus.OFFERED, expires_at=now + timedelta(days=7), created_by="agent-7",
                       created_at=now)
        for t in order.tickets
    ]
    async with app.store.transaction() as conn:
        for transfer in transfers:
            await insert_transfer(conn, transfer)
        await create_bulk(conn, bulk_id=bulk_id, kind="event-cancellation", event_id=event.id, workflow_id=bulk_id,
                          params={"actor": "ops-1"}, created_by="ops-1")
        await conn.execute(bulk_items.insert().values(bulk_id=bulk_id, key=order.code, status="pending",
                                                      updated_at=now))
    return order, transfers, bulk_id


async def test_a_transfer_being_decided_is_asked_again_and_one_without_a_run_is_closed_in_the_store(
    app: Harness,
) -> None:
    order, (deciding, orphan), bulk_id = await _offered(app)
    close = EventTransferActivities(app.deps, app.client).close_event_transfers
    queue = f"{app.prefix}standin"
    async with Worker(app.client, task_queue=queue, workflows=[Deciding], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await app.client.start_workflow(
            Deciding.run, TransferInput(order_code=order.code, ticket_id=deciding.ticket_id, actor="agent-7"),
            id=deciding.id, task_queue=queue,
        )
        with pytest.raises(ApplicationError) as asked_again:
            await ActivityEnvironment().run(close, CloseEventTransfers(bulk_id=bulk_id))
        await handle.signal(Deciding.end)
        await handle.result()
    assert (asked_again.value.type, asked_again.value.non_retryable) == ("transfer-deciding", False)

    # The one no run holds was closed all the same, by the transfer's own rule, with the reason.
    async with app.store.transaction() as conn:
        assert (await load_transfer(conn, orphan.id)).status is TransferStatus.CANCELLED
        assert (await load_transfer(conn, deciding.id)).status is TransferStatus.OFFERED
    after = await stored(app, order.code)
    assert [t.in_transfer for t in after.tickets] == [t.id == deciding.ticket_id for t in order.tickets]
    (closed,) = await history(app, order.code, CANCELED_EVENT)
    assert (closed.data["transfer_id"], closed.data["reason"], closed.actor) == (orphan.id, "event-cancelled", "ops-1")

    # The decision went to the recipient meanwhile; the retry lists only what is still open, and ends.
    async with app.store.transaction() as conn:
        accepted = (await load_transfer(conn, deciding.id)).model_copy(update={"status": TransferStatus.ACCEPTED})
        await save_transfer(conn, accepted)
    page = await ActivityEnvironment().run(close, CloseEventTransfers(bulk_id=bulk_id))
    assert (page.closed, page.accepted, page.next) == (0, 0, None)


async def test_a_page_names_where_the_next_starts(app: Harness) -> None:
    """Two open transfers without runs, one per page: the first page points past its last id."""
    order, transfers, bulk_id = await _offered(app)
    close = EventTransferActivities(app.deps, app.client).close_event_transfers
    first = await ActivityEnvironment().run(close, CloseEventTransfers(bulk_id=bulk_id, limit=1))
    first_id = min(t.id for t in transfers)
    assert (first.closed, first.next) == (1, first_id)
    second = await ActivityEnvironment().run(close, CloseEventTransfers(bulk_id=bulk_id, after=first_id, limit=1))
    assert (second.closed, second.next) == (1, max(t.id for t in transfers))
    last = await ActivityEnvironment().run(close, CloseEventTransfers(bulk_id=bulk_id, after=second.next, limit=1))
    assert (last.closed, last.next) == (0, None)
    assert not any(t.in_transfer for t in (await stored(app, order.code)).tickets)
