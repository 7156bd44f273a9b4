"""CancelOrder: cancel and invalidate, void an open payment, optionally refund, notify.

Steps: the cancellation (one store transaction: tickets `invalid:cancelled`,
seats back to the quota, a pending payment voided in the ledger); the void at
the processor; the refund as a CHILD RefundWorkflow; the cancellation emails.

Why the parent waits for the refund the way it does: the child is started with
`parent_close_policy=ABANDON` because the refund outlives us by design: in
refund-error it waits up to 30 days for finance, and confirmation can take 10
business days. The parent waits only until the child's ledger row is
*settled* (the processor has answered, or a person must act: confirming-refund,
refunded, refund-error, awaiting-manual, awaiting-approval, rejected) or the
child closes, bounded by `refund_wait_seconds`, and reports that status. It
reads the ledger on durable timers with backoff (a cheap store read) rather
than by a signal from the child, so RefundWorkflow stays the same workflow the
refund API starts, unaware of who started it. Finance follows the refund under
its own id with `RefundStatus`; a failed refund never undoes the cancellation.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.cancellation import CancellationActivities, CancellationEmailActivities, VoidActivities
    from activities.contracts import (
        CancellationEmails,
        CancellationNote,
        CancelOrder,
        CancelOutcome,
        RefundSnapshot,
        RefundToStart,
        VoidPayment,
    )
    from activities.refunds import RefundActivities
    from runtime.codec import PublicText
    from ticketing.cancellation import refund_operation_id
    from ticketing.money import Money
    from ticketing.refunds import refund_summary
    from workflows import options
    from workflows.contracts import CancelInput, CancelResult, RefundInput, RefundResult
    from workflows.failures import refusals_surface
    from workflows.search_attributes import (
        EVENT_ID,
        ORDER_ID,
        PAYMENT_PROCESSOR,
        REFUND_AMOUNT,
        REFUND_CURRENCY,
        REFUND_STATUS,
    )

SETTLED = frozenset(
    {"confirming-refund", "refunded", "refund-error", "awaiting-manual", "awaiting-approval", "rejected"}
)
POLL_FIRST = 0.5
POLL_MAX = 30.0


@workflow.defn(name="CancelOrder")
class CancelOrderWorkflow:
    @workflow.run
    async def run(self, req: CancelInput) -> CancelResult:
        op = workflow.info().workflow_id
        workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
        outcome: CancelOutcome = await refusals_surface(
            workflow.execute_activity_method(
                CancellationActivities.cancel_order,
                CancelOrder(
                    order_code=req.order_code,
                    operation_id=op,
                    actor=req.actor,
                    reason=req.reason,
                    refund=req.refund,
                    ticket_ids=req.ticket_ids,
                ),
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        )
        workflow.upsert_search_attributes([EVENT_ID.value_set(outcome.event_id)])
        payment = "voided" if outcome.payment_voided else "unchanged"
        if outcome.payment_voided and outcome.payment_reference:
            payment = await self._void(req, outcome)
        result = CancelResult(
            order_code=req.order_code,
            whole_order=outcome.whole_order,
            ticket_ids=outcome.ticket_ids,
            payment=payment,
            refund=outcome.refund,
        )
        child = None
        if outcome.refund_plan is not None:
            child = await self._start_refund(req, outcome, outcome.refund_plan)
            result.refund_id = outcome.refund_plan.refund_id
            result.refund_operation_id = child.id
        sent, emails = await self._notify(req, outcome)
        result.emails_sent, result.emails = sent, emails
        if child is not None and outcome.refund_plan is not None:
            result.refund, result.refund_error = await self._await_refund(req, child, outcome.refund_plan)
        workflow.set_current_details("")
        return result

    async def _void(self, req: CancelInput, outcome: CancelOutcome) -> str:
        workflow.set_current_details("Voiding the open payment at the processor")
        voided = await workflow.execute_activity_method(
            VoidActivities.void_payment,
            VoidPayment(processor=outcome.processor, payment_reference=outcome.payment_reference or ""),
            task_queue=options.sibling_queue(workflow.info().task_queue, "payments"),
            start_to_close_timeout=timedelta(seconds=req.timing.payment_timeout_seconds),
            schedule_to_close_timeout=options.PAYMENT_SCHEDULE_TO_CLOSE,
            retry_policy=options.PAYMENT_RETRY,
        )
        failed = voided.status == "rejected"
        await self._note(
            req,
            "payment-void-failed" if failed else "payment-voided",
            {"processor": outcome.processor, "status": voided.status, "code": voided.code},
        )
        return f"void-rejected:{voided.code}" if failed else "voided"

    async def _start_refund(
        self, req: CancelInput, outcome: CancelOutcome, plan: RefundToStart
    ) -> workflow.ChildWorkflowHandle[Any, RefundResult]:
        workflow.set_current_details("Starting the refund")
        money = Money(amount=plan.amount, currency=plan.currency)
        return await workflow.start_child_workflow(
            "Refund",
            RefundInput(
                order_code=req.order_code,
                actor=req.actor,
                refund_id=plan.refund_id,
                kind=plan.kind,
                reason=plan.reason,
                amount=plan.amount if plan.kind == "amount" else None,
                currency=plan.currency if plan.kind == "amount" else None,
                quote_hash=plan.quote_hash,
                timing=req.timing,
                approval_threshold=req.approval_threshold,
            ),
            id=refund_operation_id(workflow.info().workflow_id),
            result_type=RefundResult,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ORDER_ID, req.order_code),
                    SearchAttributePair(EVENT_ID, outcome.event_id),
                    SearchAttributePair(REFUND_STATUS, "requested"),
                    SearchAttributePair(PAYMENT_PROCESSOR, plan.processor),
                    SearchAttributePair(REFUND_AMOUNT, plan.amount),
                    SearchAttributePair(REFUND_CURRENCY, plan.currency),
                ]
            ),
            static_summary=PublicText(
                refund_summary(money, req.order_code, len(outcome.ticket_ids), plan.kind, then="after its cancellation")
            ),
        )

    async def _notify(self, req: CancelInput, outcome: CancelOutcome) -> tuple[int, str]:
        """Best effort: an email that cannot be sent does not undo a cancellation."""
        workflow.set_current_details("Emailing the buyer and the attendees")
        plan = outcome.refund_plan
        try:
            sent = await workflow.execute_activity_method(
                CancellationEmailActivities.send_cancellation_emails,
                CancellationEmails(
                    order_code=req.order_code,
                    operation_id=workflow.info().workflow_id,
                    ticket_ids=outcome.ticket_ids,
                    reason=req.reason,
                    refund_amount=plan.amount if plan else None,
                ),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("cancellation emails for %s could not be sent", req.order_code)
            return 0, "failed"
        return sent.sent + sent.already_sent, "sent" if not sent.rejected else f"rejected:{sent.rejected}"

    async def _await_refund(
        self, req: CancelInput, child: workflow.ChildWorkflowHandle[Any, RefundResult], plan: RefundToStart
    ) -> tuple[str, str | None]:
        """Until the child's ledger row settles or the child closes; see the module docstring."""
        deadline = workflow.now() + timedelta(seconds=req.refund_wait_seconds)
        interval = POLL_FIRST
        status = "requested"
        while True:
            workflow.set_current_details(f"Waiting for refund {plan.refund_id} to settle ({status})")
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(child.done, timeout=timedelta(seconds=interval))
            if child.done():
                return await self._child_ended(req, child, plan)
            snap = await self._snapshot(plan.refund_id)
            if snap is not None:
                status = snap.status
                if status in SETTLED:
                    return status, snap.failure_reason
            if workflow.now() >= deadline:
                return status, None
            interval = min(interval * 2, POLL_MAX)

    async def _child_ended(
        self, req: CancelInput, child: workflow.ChildWorkflowHandle[Any, RefundResult], plan: RefundToStart
    ) -> tuple[str, str | None]:
        try:
            result = child.result()
        except ChildWorkflowError as err:
            cause = err.cause
            kind = cause.type if isinstance(cause, ApplicationError) and cause.type else "refund-failed"
            # No ledger row may exist (e.g. the order changed under the quote): say so in the history.
            await self._note(req, "cancellation-refund-failed", {"refund_id": plan.refund_id, "error": kind})
            return "not-started", kind
        return result.status, result.failure_reason

    async def _snapshot(self, refund_id: str) -> RefundSnapshot | None:
        try:
            snap: RefundSnapshot = await workflow.execute_activity_method(
                RefundActivities.get_refund_snapshot,
                refund_id,
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.type == "refund-not-found":
                return None  # the child has not written its ledger row yet
            raise
        return snap

    async def _note(self, req: CancelInput, type_: str, data: dict[str, str | int | None]) -> None:
        await workflow.execute_activity_method(
            CancellationActivities.record_cancellation_note,
            CancellationNote(
                order_code=req.order_code, operation_id=workflow.info().workflow_id, actor=req.actor,
                type=type_, data=data,
            ),
            start_to_close_timeout=options.STORE_TIMEOUT,
            retry_policy=options.STORE_RETRY,
        )
