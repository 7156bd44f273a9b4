"""ResendOrder on its own: plan locally in the orders worker, delivery on the email queue, refusals surface."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.contracts import DeliveryOutcome, ResendPlan
from tests.workflows.fakes import Fakes, refused, running
from workflows.contracts import ResendRequest
from workflows.resend import ResendOrderWorkflow

REQ = ResendRequest(order_code="ORD-1", actor="support-1")


async def test_resend_delivers_the_planned_tickets(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("plan_resend", ResendPlan(order_code="ORD-1", event_id="ev-1", ticket_ids=["t1", "t2"]))
    fakes.on("deliver_tickets", DeliveryOutcome(message_id="m-1", status="sent", ticket_count=2))
    async with running(client, fakes, [ResendOrderWorkflow]) as queue:
        result = await client.execute_workflow(ResendOrderWorkflow.run, REQ, id=wf_id, task_queue=queue)
    assert (result.ticket_count, result.message_id, result.delivery) == (2, "m-1", "sent")
    assert fakes.names() == ["plan_resend", "deliver_tickets"]
    deliver = fakes.args("deliver_tickets")[0]
    assert (deliver.ticket_ids, deliver.operation_id, deliver.history_type) == (["t1", "t2"], wf_id, "tickets-resent")
    assert fakes.queues("plan_resend") == {"orders"} and fakes.queues("deliver_tickets") == {"email"}
    # The plan is a local activity: no server round trip between it and the delivery.
    assert fakes.local("plan_resend") == {True} and fakes.local("deliver_tickets") == {False}


@pytest.mark.parametrize("step", ["plan_resend", "deliver_tickets"])
async def test_a_refusal_fails_the_run_with_its_type(client: Client, fakes: Fakes, wf_id: str, step: str) -> None:
    fakes.on("plan_resend", ResendPlan(order_code="ORD-1", event_id="ev-1", ticket_ids=["t1"]))
    fakes.on(step, refused(f"{step}-refused"))
    async with running(client, fakes, [ResendOrderWorkflow]) as queue:
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(ResendOrderWorkflow.run, REQ, id=wf_id, task_queue=queue)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == f"{step}-refused" and cause.non_retryable
    assert fakes.names()[-1] == step  # nothing after the refusal
