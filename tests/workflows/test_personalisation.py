"""OpenPersonalisation on its own: the round is opened before the link is mailed, for that round."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.contracts import DeliveryOutcome, PersonalisationRound
from tests.workflows.fakes import Fakes, refused, running
from workflows.contracts import OpenPersonalisationRequest
from workflows.personalisation import OpenPersonalisationWorkflow

REQ = OpenPersonalisationRequest(order_code="ORD-1", actor="support-1")
EXPIRES = datetime(2026, 12, 24, tzinfo=UTC)
ROUND = PersonalisationRound(order_code="ORD-1", event_id="ev-1", round=3, expires_at=EXPIRES, ticket_count=4)


async def test_opens_a_round_and_mails_its_link(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("open_personalisation_round", ROUND)
    fakes.on("send_personalisation_link", DeliveryOutcome(message_id="m-1", status="sent", ticket_count=4))
    async with running(client, fakes, [OpenPersonalisationWorkflow]) as queue:
        result = await client.execute_workflow(OpenPersonalisationWorkflow.run, REQ, id=wf_id, task_queue=queue)
    assert (result.round, result.ticket_count, result.message_id, result.delivery) == (3, 4, "m-1", "sent")
    assert fakes.names() == ["open_personalisation_round", "send_personalisation_link"]
    opened, link = fakes.args("open_personalisation_round")[0], fakes.args("send_personalisation_link")[0]
    assert opened.operation_id == wf_id == link.operation_id
    assert (link.round, link.expires_at) == (3, EXPIRES)
    assert fakes.queues("send_personalisation_link") == {"email"}


@pytest.mark.parametrize("step", ["open_personalisation_round", "send_personalisation_link"])
async def test_a_refusal_fails_the_run_with_its_type(client: Client, fakes: Fakes, wf_id: str, step: str) -> None:
    fakes.on("open_personalisation_round", ROUND)
    fakes.on(step, refused("not-personalisable"))
    async with running(client, fakes, [OpenPersonalisationWorkflow]) as queue:
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(OpenPersonalisationWorkflow.run, REQ, id=wf_id, task_queue=queue)
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == "not-personalisable"
    assert fakes.names()[-1] == step
