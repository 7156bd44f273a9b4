"""SendReceipt on its own: one email activity on the email queue, its refusal is the run's failure."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.contracts import DeliveryOutcome
from tests.workflows.fakes import Fakes, refused, running
from workflows.contracts import SendReceiptRequest
from workflows.receipt import SendReceiptWorkflow

REQ = SendReceiptRequest(order_code="ORD-1", actor="support-1")


async def test_mails_the_receipt_once_per_operation(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("send_payment_receipt", DeliveryOutcome(message_id="m-1", status="sent", ticket_count=0))
    async with running(client, fakes, [SendReceiptWorkflow]) as queue:
        result = await client.execute_workflow(SendReceiptWorkflow.run, REQ, id=wf_id, task_queue=queue)
    assert (result.order_code, result.message_id, result.delivery) == ("ORD-1", "m-1", "sent")
    [sent] = fakes.args("send_payment_receipt")
    assert (sent.order_code, sent.operation_id, sent.actor) == ("ORD-1", wf_id, "support-1")
    assert fakes.queues("send_payment_receipt") == {"email"}


async def test_a_refused_receipt_fails_the_run(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("send_payment_receipt", refused("receipt-not-available", "the order is not paid"))
    async with running(client, fakes, [SendReceiptWorkflow]) as queue:
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(SendReceiptWorkflow.run, REQ, id=wf_id, task_queue=queue)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "receipt-not-available"
    assert cause.message == "the order is not paid"
