"""RefundWorkflow: from request to money back, through the ledger's states.

requested -> refunding -> confirming-refund -> refunded | refund-error, or
awaiting-manual -> refunded when finance marks it. The ledger row is written
before the processor is called; the processor's idempotency key comes from
the workflow id and attempt, and every submission first adopts a refund of ours
the processor already holds (`submit_refund`), so nothing here can pay twice. Confirmation is a
webhook signal racing a durable poll timer, bounded by the business-day window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        FetchRefund,
        OpenRefund,
        ProcessorRefundView,
        RefundEmail,
        RefundEmailKind,
        RefundSnapshot,
        RefundTransition,
        SettleRefund,
        SubmitRefund,
    )
    from activities.delivery import DeliveryActivities
    from activities.payments import PaymentActivities
    from activities.refunds import RefundActivities
    from ticketing import refund_ledger
    from ticketing.calendar import add_business_days
    from ticketing.models import Processor
    from ticketing.reconciliation_records import ProcessorRefundStatus
    from ticketing.refund_ledger import ProcessorOutcome, RefundAction, Settlement
    from ticketing.states import RefundStatus
    from workflows import options
    from workflows.contracts import (
        ApproveRefund,
        MarkRefunded,
        NewsReceipt,
        ProcessorUpdate,
        RefundInput,
        RefundProgress,
        RefundResult,
        RetryRefund,
    )
    from workflows.search_attributes import (
        EVENT_ID,
        ORDER_ID,
        PAYMENT_PROCESSOR,
        REFUND_AMOUNT,
        REFUND_CURRENCY,
        REFUND_FAILURE,
        REFUND_STATUS,
    )

A = TypeVar("A")
R = TypeVar("R")

# Runs recorded before the processor's answer was settled by one activity (`settle_refund`).
SETTLE_PATCH = "refund-settle-activity"
# Runs recorded before a run read its unread processor news before returning.
NEWS_PATCH = "refund-unread-news"
# The buyer hears of a refund that failed after they were told it succeeded (runs before it: finance only).
BUYER_LATE_FAILURE_PATCH = "refund-buyer-late-failure"
# A follow-up run that finds the refund refunded and leaves it so (finance paid it by hand) sends no receipt.
RECEIPT_ONCE_PATCH = "refund-receipt-once"
# A run waiting in refund-error hears its own processor refund end (paid: refunded); runs before it let it lie.
LATE_ANSWER_PATCH = "refund-late-answer"
# A finance action the ledger refuses is answered as a refusal; runs before it failed.
REFUSED_ACTION_PATCH = "refund-refused-action"


@workflow.defn(name="Refund")
class RefundWorkflow:
    def __init__(self) -> None:
        self.snap: RefundSnapshot | None = None
        self.updates: dict[str, ProcessorUpdate] = {}
        self.pending_action: MarkRefunded | RetryRefund | ApproveRefund | None = None
        self.actions_done = 0
        self.waiting_for = ""
        self.requested_by = ""
        self.attempt_started: datetime | None = None
        self.finance_notices = 0  # the attempt finance was last told of
        self.buyer_late_notice_due = False  # a refund the buyer was told of failed later; tell them too
        self.ending = False  # the states are done with; a finance action now is too late
        self.closing = False
        self.refused: ApplicationError | None = None  # the ledger would not open the refund
        self.refunded_as_found = False  # a follow-up run found the refund refunded, and it has not moved since
        self.action_refusals: dict[int, ApplicationError] = {}  # by action number: what the ledger refused

    # --- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, req: RefundInput) -> RefundResult:
        self.requested_by = req.actor
        self.timing = req.timing
        if req.existing_refund_id:
            snap = await self._store(RefundActivities.get_refund_snapshot, req.existing_refund_id)
            self._publish(snap)
            self.refunded_as_found = snap.status == RefundStatus.SUCCEEDED
            # Finance paid a refund by hand because the processor's failed: that failure is not news.
            if req.late_failure_reason and snap.status == RefundStatus.SUCCEEDED and snap.processor_refund_id:
                news = ProcessorOutcome(
                    processor_refund_id=snap.processor_refund_id,
                    status=ProcessorRefundStatus.FAILED,
                    failure_reason=req.late_failure_reason,
                )
                snap = await self._settle(snap, news, actor="processor")
            # A refund-error's own processor refund ended after its run closed: this follow-up settles it.
            if req.late_news is not None:
                snap = await self._settle(snap, req.late_news, actor="processor")
        else:
            try:
                snap = await self._open(req)
            except ActivityError as err:
                if isinstance(err.cause, ApplicationError):
                    # The `opened` update that started this run answers the refusal first; the run fails as ever.
                    self.refused = err.cause
                    await workflow.wait_condition(workflow.all_handlers_finished)
                raise
            self._publish(snap)
        while True:
            snap = await self._drive(snap)
            # News that came while the run was ending (a failure webhook during the receipt) is acted on:
            # the handlers finish (a finance action that came too late is refused), then the ledger's rule
            # judges whatever is unread, until nothing is.
            self.ending = True
            await workflow.wait_condition(workflow.all_handlers_finished)
            unread = self._unread_news(snap)
            if unread is None:
                break
            self.ending = False
            snap = await self._settle(snap, unread, actor="processor")
        self.closing = True  # no await from here to the return: later news is refused, so its sender acts
        self.waiting_for = ""
        workflow.set_current_details(f"Ended as {snap.status}")
        return RefundResult(
            refund_id=snap.refund_id,
            order_code=snap.order_code,
            status=snap.status,
            amount=snap.amount,
            currency=snap.currency,
            attempts=snap.attempt,
            failure_reason=snap.failure_reason,
        )

    async def _drive(self, snap: RefundSnapshot) -> RefundSnapshot:
        """Through the ledger's states until the refund is final or finance let it lie; the receipt last."""
        while True:
            status = snap.status
            if status is RefundStatus.AWAITING_APPROVAL:
                snap = await self._await_approval(snap)
            elif status is RefundStatus.AWAITING_MANUAL:
                snap = await self._await_manual(snap)
            elif status is RefundStatus.REFUNDING:
                snap = await self._submit(snap)
            elif status is RefundStatus.CONFIRMING:
                snap = await self._confirm(snap)
            elif status is RefundStatus.FAILED:
                if self.finance_notices < snap.attempt:
                    self.finance_notices = snap.attempt
                    await self._email(snap, "refund-error")
                if self.buyer_late_notice_due and workflow.patched(BUYER_LATE_FAILURE_PATCH):
                    self.buyer_late_notice_due = False
                    await self._email(snap, "failed-later")
                next_snap = await self._await_finance(snap)
                if next_snap is None:
                    break
                snap = next_snap
            else:
                break
        if snap.status == RefundStatus.SUCCEEDED and not self._receipt_sent_before(snap):
            await self._email(snap, "receipt")
        return snap

    def _receipt_sent_before(self, snap: RefundSnapshot) -> bool:
        """The buyer had their receipt when the refund first succeeded: a follow-up run that found it
        refunded and leaves it so (finance paid it by hand; the processor's failure is not news) is silent."""
        return self.refunded_as_found and workflow.patched(RECEIPT_ONCE_PATCH)

    def _unread_news(self, snap: RefundSnapshot) -> ProcessorUpdate | None:
        """Buffered processor news about this refund that the ledger's rule says still matters."""
        news = self.updates.get(snap.processor_refund_id or "")
        if news is None or not workflow.patched(NEWS_PATCH):
            return None
        verdict = _verdict(snap, news)
        if verdict is Settlement.LATE_ANSWER:
            return self._take_late_answer(snap) if workflow.patched(LATE_ANSWER_PATCH) else None
        return news if verdict in (Settlement.MOVE, Settlement.LATE_FAILURE) else None

    def _late_answer(self, snap: RefundSnapshot) -> ProcessorUpdate | None:
        """News that this refund-error's own processor refund ended (`Settlement.LATE_ANSWER`)."""
        news = self.updates.get(snap.processor_refund_id or "")
        return news if news is not None and _verdict(snap, news) is Settlement.LATE_ANSWER else None

    def _take_late_answer(self, snap: RefundSnapshot) -> ProcessorUpdate | None:
        """The late answer, handed to the ledger once: one it cannot take (its amount went to another refund;
        reconciliation's over-refunded) does not wake the run again."""
        news = self._late_answer(snap)
        if news is not None:
            del self.updates[news.processor_refund_id]
        return news

    # --- steps ----------------------------------------------------------------------------

    async def _submit(self, snap: RefundSnapshot) -> RefundSnapshot:
        self._waiting("Sending the refund to the processor")
        self.attempt_started = workflow.now()
        request = SubmitRefund(
            processor=snap.processor,
            payment_reference=snap.payment_reference or "",
            amount=snap.amount,
            currency=snap.currency,
            idempotency_key=snap.idempotency_key,
            metadata={
                "refund_id": snap.refund_id,
                "order_code": snap.order_code,
                "workflow_id": workflow.info().workflow_id,
            },
        )
        try:
            result = await workflow.execute_activity_method(
                PaymentActivities.submit_refund,
                request,
                task_queue=options.sibling_queue(workflow.info().task_queue, "payments"),
                start_to_close_timeout=timedelta(seconds=self.timing.payment_timeout_seconds),
                schedule_to_close_timeout=options.PAYMENT_SCHEDULE_TO_CLOSE,
                retry_policy=options.PAYMENT_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "processor-rejected":
                code = (cause.details[0] or {}).get("code") if cause.details else None
                return await self._move(snap, RefundAction.FAILED, reason=f"{code or 'rejected'}: {cause.message}")
            # Out of time (a day of 429s, 5xx or no network): the processor may have made the refund
            # without our hearing of it. Ask it, by our idempotency key, before saying it failed.
            self._waiting("The processor was unreachable for a day; checking whether it made the refund")
            found = await workflow.execute_activity_method(
                PaymentActivities.find_refund,
                request,
                task_queue=options.sibling_queue(workflow.info().task_queue, "payments"),
                start_to_close_timeout=timedelta(seconds=self.timing.payment_timeout_seconds),
                retry_policy=options.PAYMENT_RETRY,
            )
            if found is None:
                return await self._move(snap, RefundAction.FAILED, reason="processor-unavailable")
            result = found
        return await self._apply_processor(snap, result)

    async def _apply_processor(self, snap: RefundSnapshot, result: ProcessorRefundView) -> RefundSnapshot:
        return await self._settle(snap, result.outcome())

    async def _settle(
        self, snap: RefundSnapshot, outcome: ProcessorOutcome, actor: str = "ticketops"
    ) -> RefundSnapshot:
        """Settle the processor's answer; a refund the buyer was told of that failed later is to be told to them."""
        new = await self._settle_ledger(snap, outcome, actor)
        if snap.status == "refunded" and new.status == "refund-error":
            self.buyer_late_notice_due = True  # sent after finance's notice (_drive)
        return new

    async def _settle_ledger(self, snap: RefundSnapshot, outcome: ProcessorOutcome, actor: str) -> RefundSnapshot:
        """Hand the processor's answer to the ledger, whose rule decides what it means (one activity)."""
        if workflow.patched(SETTLE_PATCH):
            new = await self._store(
                RefundActivities.settle_refund,
                SettleRefund(refund_id=snap.refund_id, expect_attempt=snap.attempt, outcome=outcome, actor=actor),
            )
            self._publish(new)
            return new
        # A run recorded before the rule settled in one activity: the same steps, one move each.
        if not _matters(snap, outcome):
            return snap
        for action in refund_ledger.steps(RefundStatus(snap.status), outcome.status):
            snap = await self._move(
                snap,
                action,
                actor=actor,
                processor_refund_id=outcome.processor_refund_id,
                reason=outcome.failure_reason or outcome.status.value,
            )
        return snap

    async def _confirm(self, snap: RefundSnapshot) -> RefundSnapshot:
        if self.attempt_started is None:  # resumed in confirming-refund by a follow-up run
            self.attempt_started = workflow.now()
        deadline = add_business_days(self.attempt_started, self.timing.confirmation_business_days)
        interval = self.timing.poll_initial_seconds
        refund_id = snap.processor_refund_id or ""
        while True:
            update = self.updates.get(refund_id)
            if update and update.status.final:
                view = ProcessorRefundView(id=refund_id, status=update.status, failure_reason=update.failure_reason)
                return await self._apply_processor(snap, view)
            left = (deadline - workflow.now()).total_seconds()
            if left <= 0:
                return await self._move(snap, RefundAction.FAILED, reason=refund_ledger.CONFIRMATION_TIMEOUT)
            self._waiting(f"Waiting for the processor to confirm refund {refund_id} (webhook or poll)")
            try:
                await workflow.wait_condition(
                    lambda: refund_id in self.updates
                    and self.updates[refund_id].status.final,
                    timeout=timedelta(seconds=min(interval, left)),
                )
            except TimeoutError:
                if (deadline - workflow.now()).total_seconds() <= 0:
                    continue
                polled = await workflow.execute_activity_method(
                    PaymentActivities.fetch_refund,
                    FetchRefund(processor=snap.processor, processor_refund_id=refund_id),
                    task_queue=options.sibling_queue(workflow.info().task_queue, "payments"),
                    start_to_close_timeout=timedelta(seconds=self.timing.payment_timeout_seconds),
                    retry_policy=options.PAYMENT_RETRY,
                )
                self.updates[refund_id] = ProcessorUpdate(
                    processor_refund_id=refund_id, status=polled.status, failure_reason=polled.failure_reason
                )
                interval = min(interval * 2, self.timing.poll_max_seconds)

    async def _await_manual(self, snap: RefundSnapshot) -> RefundSnapshot:
        reminders = 0
        while True:
            self._waiting("Waiting for finance to pay out and mark the refund as refunded")
            try:
                await workflow.wait_condition(
                    lambda: isinstance(self.pending_action, MarkRefunded),
                    timeout=timedelta(days=self.timing.manual_reminder_days),
                )
            except TimeoutError:
                reminders += 1
                await self._email(snap, "manual-reminder", sequence=reminders)
                continue
            return await self._take_action(snap)

    async def _await_finance(self, snap: RefundSnapshot) -> RefundSnapshot | None:
        self._waiting(f"refund-error ({snap.failure_reason}): waiting for finance to retry or mark refunded")
        # The processor may still end the refund the ledger gave up on (a confirmation timeout): paid, it is
        # refunded without finance; failed, the reason is the processor's. Runs before this waited for finance only.
        hears = workflow.patched(LATE_ANSWER_PATCH)
        try:
            await workflow.wait_condition(
                lambda: isinstance(self.pending_action, MarkRefunded | RetryRefund)
                or (hears and self._late_answer(snap) is not None),
                timeout=timedelta(days=self.timing.finance_action_days),
            )
        except TimeoutError:
            return None
        news = self._take_late_answer(snap) if hears else None
        if news is not None:  # a finance action that came with it is taken on the next wait, or refused at the end
            return await self._settle(snap, news, actor="processor")
        return await self._take_action(snap)

    async def _await_approval(self, snap: RefundSnapshot) -> RefundSnapshot:
        self._waiting("Waiting for approval by a second finance user")
        try:
            await workflow.wait_condition(
                lambda: isinstance(self.pending_action, ApproveRefund),
                timeout=timedelta(hours=self.timing.approval_expiry_hours),
            )
        except TimeoutError:
            return await self._move(snap, RefundAction.REJECT, reason="approval-expired", actor="ticketops")
        return await self._take_action(snap)

    async def _take_action(self, snap: RefundSnapshot) -> RefundSnapshot:
        action = self.pending_action
        self.pending_action = None
        try:
            if isinstance(action, MarkRefunded):
                snap = await self._move(snap, RefundAction.SUCCEEDED, reference=action.reference, actor=action.actor)
            elif isinstance(action, RetryRefund):
                snap = await self._move(snap, RefundAction.RETRY, actor=action.actor)
            elif isinstance(action, ApproveRefund):
                snap = await self._move(snap, RefundAction.APPROVE, actor=action.actor)
        except ActivityError as err:
            # The ledger refused it (e.g. `amount-exceeds-refundable`): the update answers with the refusal
            # and the refund waits as it was. Runs before this failed on it.
            cause = err.cause
            if not (isinstance(cause, ApplicationError) and cause.non_retryable) or not workflow.patched(
                REFUSED_ACTION_PATCH
            ):
                raise
            self.action_refusals[self.actions_done + 1] = cause
        finally:
            self.actions_done += 1
        return snap

    # --- handlers -------------------------------------------------------------------------

    @workflow.update(name="opened")
    async def opened(self) -> RefundProgress:
        """Answered once the ledger row is open, or with the ledger's refusal (its type): the API starts the
        run with this update (update-with-start), so a 202 means the refund is under way and a loser of two
        requests on one quote hears `amount-exceeds-refundable` or `quote-mismatch` at once."""
        await workflow.wait_condition(lambda: self.snap is not None or self.refused is not None)
        if self.snap is None and self.refused is not None:
            raise ApplicationError(
                self.refused.message,
                type=self.refused.type or "refund-refused",
                non_retryable=self.refused.non_retryable,
            )
        return self.progress()

    @workflow.update(name="processor_news")
    def processor_news(self, update: ProcessorUpdate) -> NewsReceipt:
        """Buffered by processor refund id (a webhook may arrive before we know the id) and read before the
        run returns. Refused once the run has decided to end, so the webhook starts the follow-up run."""
        if self.closing:
            return NewsReceipt.IGNORED
        self.updates[update.processor_refund_id] = update
        return NewsReceipt.TAKEN

    @workflow.signal(name="processor_update")
    def processor_update(self, update: ProcessorUpdate) -> None:
        """The same news as a signal: signal-with-start (a bulk hand-off) and runs signalled before the update."""
        self.updates[update.processor_refund_id] = update

    def _status(self) -> RefundStatus:
        return self.snap.status if self.snap else RefundStatus.REQUESTED

    async def _finish_action(self) -> RefundProgress:
        target = self.actions_done + 1
        await workflow.wait_condition(lambda: self.actions_done >= target or self.ending)
        if self.actions_done < target:  # e.g. finance's mark as the wait for finance ran out: refused, not hung
            self.pending_action = None
            raise ApplicationError("the refund's run has ended and takes no more actions", type="operation-closed")
        refusal = self.action_refusals.pop(target, None)
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.type or "action-refused", non_retryable=True)
        return self.progress()

    @workflow.update(name="mark_refunded")
    async def mark_refunded(self, action: MarkRefunded) -> RefundProgress:
        self.pending_action = action
        return await self._finish_action()

    @mark_refunded.validator
    def _validate_mark(self, action: MarkRefunded) -> None:
        if self._status() not in (RefundStatus.AWAITING_MANUAL, RefundStatus.FAILED):
            raise ApplicationError(
                f"a {self._status()} refund cannot be marked refunded", type="refund-not-markable"
            )
        if not action.reference.strip():
            raise ApplicationError("a reference for the payout is required", type="reference-required")
        if self.pending_action is not None:
            raise ApplicationError("another finance action is being applied", type="action-in-progress")

    @workflow.update(name="retry")
    async def retry(self, action: RetryRefund) -> RefundProgress:
        self.pending_action = action
        return await self._finish_action()

    @retry.validator
    def _validate_retry(self, action: RetryRefund) -> None:
        if self._status() != RefundStatus.FAILED:
            raise ApplicationError(f"a {self._status()} refund cannot be retried", type="refund-not-retryable")
        if self.snap and self.snap.processor != Processor.STRIPE:
            raise ApplicationError("only processor refunds can be retried", type="refund-not-retryable")
        if self.pending_action is not None:
            raise ApplicationError("another finance action is being applied", type="action-in-progress")

    @workflow.update(name="approve")
    async def approve(self, action: ApproveRefund) -> RefundProgress:
        self.pending_action = action
        return await self._finish_action()

    @approve.validator
    def _validate_approve(self, action: ApproveRefund) -> None:
        if self._status() != RefundStatus.AWAITING_APPROVAL:
            raise ApplicationError(f"a {self._status()} refund needs no approval", type="refund-not-awaiting-approval")
        if action.actor == self.requested_by:
            raise ApplicationError(
                "the refund must be approved by someone other than who requested it", type="four-eyes-required"
            )

    @workflow.query(name="progress")
    def progress(self) -> RefundProgress:
        snap = self.snap
        return RefundProgress(
            refund_id=snap.refund_id if snap else "",
            status=self._status(),
            attempt=snap.attempt if snap else 0,
            waiting_for=self.waiting_for,
            failure_reason=snap.failure_reason if snap else None,
        )

    # --- plumbing -------------------------------------------------------------------------

    def _waiting(self, what: str) -> None:
        self.waiting_for = what
        workflow.set_current_details(what)

    def _publish(self, snap: RefundSnapshot) -> None:
        first = self.snap is None
        self.snap = snap
        if snap.status != RefundStatus.SUCCEEDED:
            self.refunded_as_found = False
        failure = (snap.failure_reason or "").split(":", 1)[0].strip()[:100] if snap.status == "refund-error" else ""
        pairs: list[SearchAttributeUpdate[Any]] = [
            REFUND_STATUS.value_set(snap.status),
            REFUND_FAILURE.value_set(failure) if failure else REFUND_FAILURE.value_unset(),
        ]
        if first:
            pairs += [
                ORDER_ID.value_set(snap.order_code),
                EVENT_ID.value_set(snap.event_id),
                PAYMENT_PROCESSOR.value_set(snap.processor),
                REFUND_AMOUNT.value_set(snap.amount),
                REFUND_CURRENCY.value_set(snap.currency),
            ]
        workflow.upsert_search_attributes(pairs)

    async def _open(self, req: RefundInput) -> RefundSnapshot:
        """The ledger row, written before any money moves: refused when the quote no longer holds."""
        return await self._store(
            RefundActivities.open_refund,
            OpenRefund(
                order_code=req.order_code,
                kind=req.kind,
                reason=req.reason,
                ticket_ids=req.ticket_ids,
                amount=req.amount,
                currency=req.currency,
                quote_hash=req.quote_hash,
                refund_id=req.refund_id,
                workflow_id=workflow.info().workflow_id,
                actor=req.actor,
                approval_threshold=req.approval_threshold,
            ),
        )

    async def _store(self, method: MethodAsyncSingleParam[Any, A, R], arg: A) -> R:
        return await workflow.execute_activity_method(
            method, arg, start_to_close_timeout=options.STORE_TIMEOUT, retry_policy=options.STORE_RETRY
        )

    async def _move(
        self,
        snap: RefundSnapshot,
        action: RefundAction,
        *,
        actor: str = "ticketops",
        processor_refund_id: str | None = None,
        reason: str | None = None,
        reference: str | None = None,
    ) -> RefundSnapshot:
        new = await self._store(
            RefundActivities.move_refund,
            RefundTransition(
                refund_id=snap.refund_id,
                action=action,
                actor=actor,
                expect_attempt=snap.attempt,
                processor_refund_id=processor_refund_id,
                reason=reason,
                reference=reference,
            ),
        )
        self._publish(new)
        return new

    async def _email(self, snap: RefundSnapshot, kind: RefundEmailKind, sequence: int = 0) -> None:
        """Best effort: a notification that cannot be sent must not undo a refund."""
        try:
            await workflow.execute_activity_method(
                DeliveryActivities.send_refund_email,
                RefundEmail(
                    refund_id=snap.refund_id, kind=kind, operation_id=workflow.info().workflow_id, sequence=sequence
                ),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("refund email %s for %s could not be sent", kind, snap.refund_id)


def _verdict(snap: RefundSnapshot, outcome: ProcessorOutcome) -> Settlement:
    """The ledger's rule, on the run's snapshot."""
    return refund_ledger.judge_state(
        RefundStatus(snap.status), snap.processor_refund_id, snap.paid_manually, outcome, snap.failure_reason
    )


def _matters(snap: RefundSnapshot, outcome: ProcessorOutcome) -> bool:
    """Does this processor answer move the refund, as runs recorded before the settle activity judged it?"""
    return _verdict(snap, outcome) in (Settlement.MOVE, Settlement.LATE_FAILURE)
