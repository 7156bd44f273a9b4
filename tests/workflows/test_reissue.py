"""ReissueAndResend and RescheduleOrder on their own: the store step first, then delivery of the new
tickets; a delivery that finally fails leaves the reissue in place and says so in the result."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.contracts import DeliveryOutcome, ReissueOutcome
from tests.workflows.fakes import Fakes, refused, running
from workflows.contracts import ReissueInput, RescheduleInput
from workflows.reissue import ReissueAndResendWorkflow, RescheduleWorkflow

REPLACED = {"t1": "t1-new", "t2": "t2-new"}
SENT = DeliveryOutcome(message_id="m-1", status="sent", ticket_count=2)


def _outcome(slot: str | None = None) -> ReissueOutcome:
    return ReissueOutcome(order_code="ORD-1", event_id="ev-1", replaced=REPLACED, time_slot_id=slot)


async def test_reissue_then_delivers_the_new_tickets(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("reissue_tickets", _outcome()).on("deliver_tickets", SENT)
    async with running(client, fakes, [ReissueAndResendWorkflow]) as queue:
        result = await client.execute_workflow(
            ReissueAndResendWorkflow.run,
            ReissueInput(order_code="ORD-1", actor="support-1", ticket_ids=["t1", "t2"]),
            id=wf_id,
            task_queue=queue,
        )
    assert (result.replaced, result.delivery, result.message_id) == (REPLACED, "sent", "m-1")
    [store], [deliver] = fakes.args("reissue_tickets"), fakes.args("deliver_tickets")
    assert (store.ticket_ids, store.operation_id, store.time_slot_id) == (["t1", "t2"], wf_id, None)
    assert (deliver.ticket_ids, deliver.history_type) == (["t1-new", "t2-new"], "tickets-reissued-sent")
    assert fakes.queues("reissue_tickets") == {"orders"} and fakes.queues("deliver_tickets") == {"email"}


async def test_reschedule_moves_to_the_slot_then_delivers(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("reschedule_tickets", _outcome("slot-2")).on("deliver_tickets", SENT)
    async with running(client, fakes, [RescheduleWorkflow]) as queue:
        result = await client.execute_workflow(
            RescheduleWorkflow.run,
            RescheduleInput(order_code="ORD-1", actor="support-1", time_slot_id="slot-2"),
            id=wf_id,
            task_queue=queue,
        )
    assert (result.time_slot_id, result.delivery) == ("slot-2", "sent")
    [store], [deliver] = fakes.args("reschedule_tickets"), fakes.args("deliver_tickets")
    assert (store.time_slot_id, store.ticket_ids) == ("slot-2", None)
    assert deliver.history_type == "tickets-rescheduled-sent"


@pytest.mark.parametrize(
    ("failure", "delivery"),
    [
        (refused("no-contact-email"), "failed:no-contact-email"),
        (ApplicationError("the server said no", non_retryable=True), "failed"),
    ],
    ids=["typed", "untyped"],
)
async def test_a_failed_delivery_keeps_the_reissue(
    client: Client, fakes: Fakes, wf_id: str, failure: ApplicationError, delivery: str
) -> None:
    fakes.on("reissue_tickets", _outcome()).on("deliver_tickets", failure)
    async with running(client, fakes, [ReissueAndResendWorkflow]) as queue:
        result = await client.execute_workflow(
            ReissueAndResendWorkflow.run, ReissueInput(order_code="ORD-1", actor="s"), id=wf_id, task_queue=queue
        )
    assert (result.replaced, result.delivery, result.message_id) == (REPLACED, delivery, None)


async def test_a_store_refusal_fails_the_run_before_any_email(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("reissue_tickets", refused("ticket-not-reissuable")).on("reschedule_tickets", refused("slot-full"))
    async with running(client, fakes, [ReissueAndResendWorkflow, RescheduleWorkflow]) as queue:
        with pytest.raises(WorkflowFailureError) as reissue:
            await client.execute_workflow(
                ReissueAndResendWorkflow.run, ReissueInput(order_code="O", actor="s"), id=wf_id, task_queue=queue
            )
        with pytest.raises(WorkflowFailureError) as reschedule:
            await client.execute_workflow(
                RescheduleWorkflow.run,
                RescheduleInput(order_code="O", actor="s", time_slot_id="x"),
                id=f"{wf_id}-r",
                task_queue=queue,
            )
    for failed, kind in ((reissue, "ticket-not-reissuable"), (reschedule, "slot-full")):
        assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == kind
    assert "deliver_tickets" not in fakes.names()
