"""CancelOrder on its own: the cancellation, the void, the child refund and the wait for it, the emails.

The child is `StandInRefund`, registered as `Refund`, which does what the plan's `reason`
says (end with a status, fail with a type, or run on), so the parent's wait is tested without
the refund's own state machine (tested in `test_refund.py`).
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.contracts import CancelOutcome, EmailsOutcome, RefundSnapshot, RefundToStart, VoidOutcome
from tests.workflows.fakes import Fakes, StandInRefund, refused, running
from ticketing.cancellation import refund_operation_id
from workflows.cancel import CancelOrderWorkflow
from workflows.contracts import CancelInput, CancelResult


def _outcome(*, voided: bool = False, reference: str | None = None, plan: str | None = None) -> CancelOutcome:
    return CancelOutcome(
        order_code="ORD-1",
        event_id="ev-1",
        whole_order=True,
        ticket_ids=["t1", "t2"],
        payment_voided=voided,
        processor="stripe",
        payment_reference=reference,
        refund="requested" if plan else "not-requested",
        refund_plan=None
        if plan is None
        else RefundToStart(
            refund_id="rf-1", kind="full", amount=1500, currency="EUR", quote_hash="q", reason=plan, processor="stripe"
        ),
    )


def _snapshot(status: str) -> RefundSnapshot:
    return RefundSnapshot(
        refund_id="rf-1", order_code="ORD-1", event_id="ev-1", status=status, processor="stripe", amount=1500,
        currency="EUR", ticket_count=2, attempt=1, idempotency_key="k", payment_reference="pi_1",
        failure_reason="card_expired" if status == "refund-error" else None,
    )


SENT = EmailsOutcome(sent=2, already_sent=0, rejected=0)


async def _cancel(client: Client, queue: str, wf_id: str, **kw: object) -> CancelResult:
    req = CancelInput.model_validate({"order_code": "ORD-1", "actor": "support-1", "reason": "event moved", **kw})
    return await client.execute_workflow(CancelOrderWorkflow.run, req, id=wf_id, task_queue=queue)


async def test_cancel_without_payment_or_refund(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("cancel_order", _outcome()).on("send_cancellation_emails", SENT)
    async with running(client, fakes, [CancelOrderWorkflow]) as queue:
        result = await client.execute_workflow(
            CancelOrderWorkflow.run,
            CancelInput(order_code="ORD-1", actor="support-1", reason="event moved", ticket_ids=["t1", "t2"]),
            id=wf_id,
            task_queue=queue,
        )
    assert (result.payment, result.refund, result.refund_id, result.emails_sent, result.emails) == (
        "unchanged", "not-requested", None, 2, "sent",
    )
    assert fakes.names() == ["cancel_order", "send_cancellation_emails"]
    [cancel], [emails] = fakes.args("cancel_order"), fakes.args("send_cancellation_emails")
    assert (cancel.operation_id, cancel.ticket_ids, cancel.refund) == (wf_id, ["t1", "t2"], False)
    assert (emails.ticket_ids, emails.reason, emails.refund_amount) == (["t1", "t2"], "event moved", None)
    assert fakes.queues("send_cancellation_emails") == {"email"}


async def test_a_refused_cancellation_fails_the_run_and_does_nothing_else(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    fakes.on("cancel_order", refused("order-not-cancellable"))
    async with running(client, fakes, [CancelOrderWorkflow]) as queue:
        with pytest.raises(WorkflowFailureError) as failed:
            await _cancel(client, queue, wf_id)
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == "order-not-cancellable"
    assert fakes.names() == ["cancel_order"]


@pytest.mark.parametrize(
    ("reference", "void", "payment", "note"),
    [
        (None, None, "voided", None),  # voided in the ledger only: nothing open at the processor
        ("pi_1", VoidOutcome(status="canceled"), "voided", "payment-voided"),
        ("pi_1", VoidOutcome(status="rejected", code="already_captured"), "void-rejected:already_captured",
         "payment-void-failed"),
    ],
    ids=["ledger-only", "voided", "void-rejected"],
)
async def test_an_open_payment_is_voided_at_the_processor(
    client: Client, fakes: Fakes, wf_id: str, reference: str | None, void: VoidOutcome | None, payment: str,
    note: str | None,
) -> None:
    fakes.on("cancel_order", _outcome(voided=True, reference=reference)).on("send_cancellation_emails", SENT)
    fakes.on("void_payment", void).on("record_cancellation_note", None)
    async with running(client, fakes, [CancelOrderWorkflow]) as queue:
        result = await _cancel(client, queue, wf_id)
    assert result.payment == payment
    if void is None:
        assert fakes.names() == ["cancel_order", "send_cancellation_emails"]
        return
    [voided], [noted] = fakes.args("void_payment"), fakes.args("record_cancellation_note")
    assert voided.payment_reference == "pi_1" and fakes.queues("void_payment") == {"payments"}
    assert (noted.type, noted.data["status"], noted.operation_id) == (note, void.status, wf_id)


@pytest.mark.parametrize(
    ("emails", "expected"),
    [(EmailsOutcome(sent=1, already_sent=1, rejected=0), (2, "sent")),
     (EmailsOutcome(sent=1, already_sent=0, rejected=1), (1, "rejected:1")),
     (refused("smtp-down"), (0, "failed"))],
    ids=["resent-counted", "rejected", "failed"],
)
async def test_emails_are_best_effort(
    client: Client, fakes: Fakes, wf_id: str, emails: object, expected: tuple[int, str]
) -> None:
    fakes.on("cancel_order", _outcome()).on("send_cancellation_emails", emails)
    async with running(client, fakes, [CancelOrderWorkflow]) as queue:
        result = await _cancel(client, queue, wf_id)
    assert (result.emails_sent, result.emails) == expected
    assert result.payment == "unchanged"  # the cancellation stands


async def test_a_child_refund_that_ends_reports_its_status(client: Client, fakes: Fakes, wf_id: str) -> None:
    status = "awaiting-approval"  # whichever it ended with, reported as it is
    fakes.on("cancel_order", _outcome(plan=f"end:{status}")).on("send_cancellation_emails", SENT)
    fakes.on("get_refund_snapshot", refused("refund-not-found"))
    async with running(client, fakes, [CancelOrderWorkflow, StandInRefund]) as queue:
        result = await client.execute_workflow(
            CancelOrderWorkflow.run,
            CancelInput(order_code="ORD-1", actor="support-1", reason="r", refund=True, approval_threshold=1000),
            id=wf_id,
            task_queue=queue,
        )
        child = await client.get_workflow_handle(refund_operation_id(wf_id)).describe()
    assert (result.refund, result.refund_id, result.refund_operation_id) == (status, "rf-1", refund_operation_id(wf_id))
    assert result.refund_error is None
    assert fakes.args("send_cancellation_emails")[0].refund_amount == 1500
    assert child.parent_id == wf_id and child.workflow_type == "Refund"


@pytest.mark.parametrize(("script", "error"), [("fail:quote-changed", "quote-changed"), ("fail:", "refund-failed")])
async def test_a_child_refund_that_fails_is_noted_and_the_cancellation_stands(
    client: Client, fakes: Fakes, wf_id: str, script: str, error: str
) -> None:
    fakes.on("cancel_order", _outcome(plan=script)).on("send_cancellation_emails", SENT)
    fakes.on("get_refund_snapshot", refused("refund-not-found")).on("record_cancellation_note", None)
    async with running(client, fakes, [CancelOrderWorkflow, StandInRefund]) as queue:
        result = await _cancel(client, queue, wf_id, refund=True)
    assert (result.refund, result.refund_error) == ("not-started", error)
    [note] = fakes.args("record_cancellation_note")
    assert (note.type, note.data) == ("cancellation-refund-failed", {"refund_id": "rf-1", "error": error})


async def test_the_wait_ends_when_the_ledger_row_settles(client: Client, fakes: Fakes, wf_id: str) -> None:
    """Polled on a timer: a settled row ends the wait while the child runs on (ABANDON).

    (A child in flight stops the parent's clock skipping, so these polls take real time.)"""
    fakes.on("cancel_order", _outcome(plan="run")).on("send_cancellation_emails", SENT)
    fakes.on("get_refund_snapshot", _snapshot("refund-error"))
    async with running(client, fakes, [CancelOrderWorkflow, StandInRefund]) as queue:
        try:
            result = await _cancel(client, queue, wf_id, refund=True)
        finally:
            await client.get_workflow_handle(refund_operation_id(wf_id)).terminate("test over")
    assert (result.refund, result.refund_error) == ("refund-error", "card_expired")
    assert fakes.args("get_refund_snapshot") == ["rf-1"]


async def test_the_wait_is_bounded_and_reports_the_last_status(client: Client, fakes: Fakes, wf_id: str) -> None:
    """No row yet, then a status that is not settled (refunding): the parent polls on until its wait
    runs out, and reports the last status it saw."""
    fakes.on("cancel_order", _outcome(plan="run")).on("send_cancellation_emails", SENT)
    fakes.on("get_refund_snapshot", [refused("refund-not-found"), _snapshot("refunding")])
    async with running(client, fakes, [CancelOrderWorkflow, StandInRefund]) as queue:
        try:
            result = await _cancel(client, queue, wf_id, refund=True, refund_wait_seconds=1.0)
        finally:
            await client.get_workflow_handle(refund_operation_id(wf_id)).terminate("test over")
    polls = len(fakes.args("get_refund_snapshot"))  # at 0.5 s, and at 1.5 s unless the first ended late
    assert 1 <= polls <= 2
    assert (result.refund, result.refund_error) == ("requested" if polls == 1 else "refunding", None)


async def test_a_snapshot_error_other_than_not_found_fails_the_run(client: Client, fakes: Fakes, wf_id: str) -> None:
    fakes.on("cancel_order", _outcome(plan="run")).on("send_cancellation_emails", SENT)
    fakes.on("get_refund_snapshot", refused("store-broken"))
    async with running(client, fakes, [CancelOrderWorkflow, StandInRefund]) as queue:
        try:
            with pytest.raises(WorkflowFailureError):
                await _cancel(client, queue, wf_id, refund=True)
        finally:
            await asyncio.shield(client.get_workflow_handle(refund_operation_id(wf_id)).terminate("test over"))
