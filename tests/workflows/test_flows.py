"""Issue 16's workflows on their own (fake activities): TransferTicket, ImportOrders, Reservation, ReturnRequest.

Each test's run is also recorded for the replay corpus (`python -m tests.replay.record -k test_flows`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.contracts import (
    TRANSFER_CANCEL_UPDATE,
    BatchCounts,
    BulkRange,
    BulkReport,
    CancelTransfer,
    DeliveryOutcome,
    RefundToStart,
    ReservationState,
    ReturnState,
    TransferState,
)
from tests.workflows.fakes import Fakes, StandInRefund, running
from ticketing.bulk import BulkKind
from ticketing.models import Processor
from workflows.contracts import (
    AcceptTransfer,
    BulkInput,
    BulkProgress,
    ImportParams,
    ReservationInput,
    ReservationPayment,
    ReturnDecision,
    ReturnInput,
    TransferInput,
)
from workflows.importing import ImportOrdersWorkflow
from workflows.reservation import ReservationWorkflow
from workflows.returns import ReturnWorkflow
from workflows.transfer import TransferTicketWorkflow

SENT = DeliveryOutcome(message_id="m-1", status="sent", ticket_count=1)


def _transfer(status: str, expires_at: datetime, **kw: str) -> TransferState:
    return TransferState(transfer_id="x", order_code="ORD-1", event_id="ev-1", ticket_id="t1", status=status,
                         expires_at=expires_at, **kw)


async def test_transfer_expires_at_its_deadline(client: Client, fakes: Fakes, wf_id: str) -> None:
    expires = datetime.now(UTC) + timedelta(days=7)
    fakes.on("open_transfer", _transfer("offered", expires)).on("send_transfer_offer", SENT)
    fakes.on("close_transfer", _transfer("expired", expires))
    async with running(client, fakes, [TransferTicketWorkflow]) as queue:
        result = await client.execute_workflow(
            TransferTicketWorkflow.run, TransferInput(order_code="ORD-1", ticket_id="t1", actor="agent"),
            id=wf_id, task_queue=queue,
        )
    assert result.status == "expired" and fakes.args("close_transfer")[0].status == "expired"


async def test_transfer_accepted_delivers_the_new_ticket(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    expires = datetime.now(UTC) + timedelta(days=7)
    fakes.on("open_transfer", _transfer("offered", expires)).on("send_transfer_offer", SENT)
    fakes.on("accept_transfer", _transfer("accepted", expires, new_order_code="NEW-1", new_ticket_id="t9"))
    fakes.on("deliver_tickets", SENT)
    async with running(client, fakes, [TransferTicketWorkflow]) as queue:
        with env.with_time_skipping_disabled():  # the recipient accepts well before the deadline
            handle = await client.start_workflow(
                TransferTicketWorkflow.run, TransferInput(order_code="ORD-1", ticket_id="t1", actor="agent"),
                id=wf_id, task_queue=queue,
            )
            await fakes.wait_for("send_transfer_offer")
            accepted = await handle.execute_update(TransferTicketWorkflow.accept, AcceptTransfer())
        result = await handle.result()
    assert accepted.status == "accepted" and (result.new_order_code, result.delivery) == ("NEW-1", "sent")
    assert fakes.args("deliver_tickets")[0].order_code == "NEW-1"


async def test_transfer_cancelled_by_name_as_an_event_cancellation_does(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """The update an event cancellation sends by name closes the offer; the recipient's accept is refused."""
    expires = datetime.now(UTC) + timedelta(days=7)
    fakes.on("open_transfer", _transfer("offered", expires)).on("send_transfer_offer", SENT)
    fakes.on("close_transfer", _transfer("cancelled", expires))
    async with running(client, fakes, [TransferTicketWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await client.start_workflow(
                TransferTicketWorkflow.run, TransferInput(order_code="ORD-1", ticket_id="t1", actor="agent"),
                id=wf_id, task_queue=queue,
            )
            await fakes.wait_for("send_transfer_offer")
            closed = await client.get_workflow_handle(wf_id).execute_update(
                TRANSFER_CANCEL_UPDATE, CancelTransfer(actor="ops-1", reason="event-cancelled"),
                result_type=TransferState,
            )
            result = await handle.result()
            with pytest.raises(RPCError, match="completed"):  # the run is over: nothing left to accept
                await handle.execute_update(TransferTicketWorkflow.accept, AcceptTransfer())
    assert closed.status == result.status == "cancelled"
    [step] = fakes.args("close_transfer")
    assert (step.status, step.reason, step.actor) == ("cancelled", "event-cancelled", "ops-1")
    assert "accept_transfer" not in fakes.names()


async def test_transfer_closed_before_its_run_opened_it_ends_at_once(client: Client, fakes: Fakes, wf_id: str) -> None:
    """A cancellation that found no run closed the requested transfer in the store: a late start offers nothing."""
    fakes.on("open_transfer", TransferState(transfer_id="x", order_code="ORD-1", event_id="ev-1", ticket_id="t1",
                                            status="cancelled"))
    async with running(client, fakes, [TransferTicketWorkflow]) as queue:
        result = await client.execute_workflow(
            TransferTicketWorkflow.run, TransferInput(order_code="ORD-1", ticket_id="t1", actor="agent"),
            id=wf_id, task_queue=queue,
        )
    assert result.status == "cancelled" and fakes.names() == ["open_transfer"]


async def test_import_writes_every_batch(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("prepare_bulk", BulkRange(first=1, last=5, total=5))
    fakes.on("import_batch", lambda b: BatchCounts(counts={"imported": b.last - b.first + 1}))
    fakes.on("prerender_ticket_pdfs", BatchCounts())
    fakes.on("finish_bulk", BulkReport(bulk_id="bk_1", status="completed", counts={"imported": 5}, report_uri=None))
    async with running(client, fakes, [ImportOrdersWorkflow]) as queue:
        report = await client.execute_workflow(
            ImportOrdersWorkflow.run,
            BulkInput(bulk_id="bk_1", kind=BulkKind.IMPORT, event_id="ev-1", actor="ops",
                      selection={"event_id": "ev-1"}, params=ImportParams(deliver=False), batch_size=2, window=2),
            id=wf_id, task_queue=queue,
        )
    assert report.counts == {"imported": 5}
    assert sum(b.last - b.first + 1 for b in fakes.args("import_batch")) == 5
    assert fakes.queues("import_batch") == {"orders"} and "deliver_import_batch" not in fakes.names()
    # every imported range has its ticket PDFs rendered, on the render queue, once the import is written
    rendered = fakes.args("prerender_ticket_pdfs")
    assert sorted((b.first, b.last) for b in rendered) == sorted((b.first, b.last) for b in fakes.args("import_batch"))
    assert fakes.queues("prerender_ticket_pdfs") == {"render"} and {b.phase for b in rendered} == {"render"}
    names = fakes.names()
    assert max(i for i, n in enumerate(names) if n == "import_batch") < names.index("prerender_ticket_pdfs")


async def test_import_renders_before_it_delivers(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("prepare_bulk", BulkRange(first=1, last=3, total=3))
    fakes.on("import_batch", lambda b: BatchCounts(counts={"imported": b.last - b.first + 1}))
    fakes.on("prerender_ticket_pdfs", BatchCounts())
    fakes.on("deliver_import_batch", lambda b: BatchCounts(counts={"sent": b.last - b.first + 1}))
    fakes.on("finish_bulk", BulkReport(bulk_id="bk_1", status="completed", counts={"sent": 3}, report_uri=None))
    async with running(client, fakes, [ImportOrdersWorkflow]) as queue:
        await client.execute_workflow(
            ImportOrdersWorkflow.run,
            BulkInput(bulk_id="bk_1", kind=BulkKind.IMPORT, event_id="ev-1", actor="ops",
                      selection={"event_id": "ev-1"}, params=ImportParams(deliver=True), batch_size=3, window=1),
            id=wf_id, task_queue=queue,
        )
    assert [n for n in fakes.names() if n != "prepare_bulk"] == [
        "import_batch", "prerender_ticket_pdfs", "deliver_import_batch", "finish_bulk"
    ]
    assert fakes.args("prepare_bulk")[0].params["prerender"] is True  # carried across continue-as-new


async def test_a_run_continued_from_before_the_render_phase_keeps_its_phases(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    """An import that started on the old code continues as new on this one, in its delivery phase
    (phase 1 of import, deliver): it goes on delivering, and renders nothing."""
    fakes.on("deliver_import_batch", lambda b: BatchCounts(counts={"sent": b.last - b.first + 1}))
    fakes.on("finish_bulk", BulkReport(bulk_id="bk_1", status="completed", counts={"sent": 4}, report_uri=None))
    progress = BulkProgress(first=1, last=4, total=4, phase=1, cursor=3, counts={"sent": 2}, batches=3)
    async with running(client, fakes, [ImportOrdersWorkflow]) as queue:
        await client.execute_workflow(
            ImportOrdersWorkflow.run,
            BulkInput(bulk_id="bk_1", kind=BulkKind.IMPORT, event_id="ev-1", actor="ops",
                      selection={"event_id": "ev-1"}, params=ImportParams(deliver=True), batch_size=2, window=1,
                      progress=progress),
            id=wf_id, task_queue=queue,
        )
    assert [(b.first, b.last) for b in fakes.args("deliver_import_batch")] == [(3, 4)]
    assert "prerender_ticket_pdfs" not in fakes.names() and "import_batch" not in fakes.names()


async def test_unpaid_reservation_is_reminded_then_expires(client: Client, fakes: Fakes, wf_id: str) -> None:
    state = ReservationState(order_code="ORD-1", event_id="ev-1", status="reserved", ticket_ids=["t1"])
    fakes.on("record_reservation_deadline", state).on("send_payment_reminder", SENT)
    fakes.on("expire_reservation", state.model_copy(update={"status": "expired"}))
    async with running(client, fakes, [ReservationWorkflow]) as queue:
        result = await client.execute_workflow(
            ReservationWorkflow.run,
            ReservationInput(order_code="ORD-1", actor="agent", deadline=datetime.now(UTC) + timedelta(days=5),
                             reminder_hours=[72, 24]),
            id=wf_id, task_queue=queue,
        )
    assert (result.status, result.reminders_sent) == ("expired", 2)
    assert [r.sequence for r in fakes.args("send_payment_reminder")] == [1, 2]


async def test_a_stripe_payment_reaches_the_store_as_stripe(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    state = ReservationState(order_code="ORD-1", event_id="ev-1", status="reserved", ticket_ids=["t1"])
    fakes.on("record_reservation_deadline", state).on("send_payment_reminder", SENT)
    fakes.on("pay_reservation", state.model_copy(update={"status": "paid"})).on("deliver_tickets", SENT)
    async with running(client, fakes, [ReservationWorkflow]) as queue:
        with env.with_time_skipping_disabled():  # paid well before the deadline
            handle = await client.start_workflow(
                ReservationWorkflow.run,
                ReservationInput(order_code="ORD-1", actor="agent", deadline=datetime.now(UTC) + timedelta(days=5),
                                 reminder_hours=[]),
                id=wf_id, task_queue=queue,
            )
            await fakes.wait_for("record_reservation_deadline")
            payment = ReservationPayment(actor="processor", reference="pi_1", processor=Processor.STRIPE)
            assert (await handle.execute_update(ReservationWorkflow.pay, payment)).status == "paid"
        result = await handle.result()
    assert (result.status, result.delivery) == ("paid", "sent")
    (step,) = fakes.args("pay_reservation")
    assert (step.processor, step.reference) == (Processor.STRIPE, "pi_1")
    # An update from an API of before `processor` (it said `via`) is read the same way; finance's is manual.
    assert ReservationPayment.model_validate({"actor": "p", "via": "stripe"}).processor is Processor.STRIPE
    assert ReservationPayment.model_validate({"actor": "f", "via": "finance"}).processor is Processor.MANUAL


async def test_return_approved_runs_the_refund_then_returns(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("open_return", ReturnState(order_code="ORD-1", event_id="ev-1", status="return-requested"))
    fakes.on("approve_return", RefundToStart(refund_id="rf_1", kind="full", amount=3500, currency="EUR",
                                             quote_hash="h", reason="end:refunded", processor="stripe"))
    fakes.on("settle_return", ReturnState(order_code="ORD-1", event_id="ev-1", status="returned"))
    async with running(client, fakes, [ReturnWorkflow, StandInRefund]) as queue:
        handle = await client.start_workflow(
            ReturnWorkflow.run, ReturnInput(order_code="ORD-1", actor="buyer", reason="cannot come"),
            id=wf_id, task_queue=queue,
        )
        await fakes.wait_for("open_return")
        assert await handle.execute_update(ReturnWorkflow.approve, ReturnDecision(actor="finance")) == "rf_1"
        result = await handle.result()
    assert (result.status, result.refund_status) == ("returned", "refunded")
    assert fakes.args("settle_return")[0].refund_status == "refunded"


async def test_return_declined_tells_the_buyer(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("open_return", ReturnState(order_code="ORD-1", event_id="ev-1", status="return-requested"))
    fakes.on("decline_return", ReturnState(order_code="ORD-1", event_id="ev-1", status="paid"))
    fakes.on("send_return_declined", SENT)
    async with running(client, fakes, [ReturnWorkflow]) as queue:
        handle = await client.start_workflow(
            ReturnWorkflow.run, ReturnInput(order_code="ORD-1", actor="agent", reason="cannot come"),
            id=wf_id, task_queue=queue,
        )
        await fakes.wait_for("open_return")
        await handle.execute_update(ReturnWorkflow.decline, ReturnDecision(actor="agent", reason="too late now"))
        result = await handle.result()
    assert (result.status, result.delivery) == ("declined", "sent")
    assert fakes.args("send_return_declined")[0].reason == "too late now"
