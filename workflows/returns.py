"""ReturnRequest: a buyer's (or an agent's) request to return a paid order, until finance decides.

Workflow id `return/{code}/{key}`. The order shows `return-requested` while it waits. Approving
(an update, finance) quotes a full refund with the event's policy and starts `Refund` as a child
with that quote, exactly as a cancellation with refund does; when the child ends the order is
`returned` (refunded) or `paid` again (the refund failed or was rejected; its own flows go on).
Declining (an update) puts the order back to `paid` and emails the buyer the reason.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import RefundToStart, ReturnDeclinedEmail, ReturnState, ReturnStep
    from activities.returns import ReturnActivities, ReturnEmailActivities
    from ticketing.cancellation import refund_operation_id
    from workflows import options
    from workflows.contracts import RefundInput, ReturnDecision, ReturnInput, ReturnResult
    from workflows.failures import refusals_surface
    from workflows.refund import RefundWorkflow
    from workflows.search_attributes import EVENT_ID, ORDER_ID, PAYMENT_PROCESSOR, REFUND_AMOUNT, REFUND_STATUS


@workflow.defn(name="ReturnRequest")
class ReturnWorkflow:
    def __init__(self) -> None:
        self._state: ReturnState | None = None
        self._decision: str | None = None  # approve or decline, once one has started
        self._decided = False
        self._plan: RefundToStart | None = None
        self._decline_reason = ""

    async def _store(self, method: Any, step: ReturnStep) -> Any:
        return await refusals_surface(
            workflow.execute_activity_method(
                method, step, start_to_close_timeout=options.STORE_TIMEOUT, retry_policy=options.STORE_RETRY
            )
        )

    def _step(self, actor: str, **kw: Any) -> ReturnStep:
        assert self._state is not None
        return ReturnStep(order_code=self._state.order_code, operation_id=workflow.info().workflow_id, actor=actor,
                          **kw)

    @workflow.run
    async def run(self, req: ReturnInput) -> ReturnResult:
        workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
        self._state = await self._store(
            ReturnActivities.open_return,
            ReturnStep(order_code=req.order_code, operation_id=workflow.info().workflow_id, actor=req.actor,
                       reason=req.reason, via=req.via),
        )
        workflow.upsert_search_attributes([EVENT_ID.value_set(self._state.event_id)])
        workflow.set_current_details("Waiting for finance to approve or decline the return")
        await workflow.wait_condition(lambda: self._decided)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._decision == "decline":
            delivery = await self._tell_declined(req)
            return ReturnResult(order_code=req.order_code, status="declined", delivery=delivery)
        assert self._plan is not None
        refund_status = await self._refund(req, self._plan)
        self._state = await self._store(
            ReturnActivities.settle_return,
            self._step("ticketops", refund_status=refund_status, refund_id=self._plan.refund_id),
        )
        workflow.set_current_details("")
        return ReturnResult(order_code=req.order_code, status=self._state.status, refund_id=self._plan.refund_id,
                            refund_status=refund_status)

    async def _refund(self, req: ReturnInput, plan: RefundToStart) -> str:
        workflow.set_current_details(f"Refunding the return ({plan.refund_id})")
        assert self._state is not None
        try:
            result = await workflow.execute_child_workflow(
                RefundWorkflow.run,
                RefundInput(
                    order_code=req.order_code, actor=req.actor, refund_id=plan.refund_id, kind=plan.kind,
                    reason=plan.reason, quote_hash=plan.quote_hash, timing=req.timing,
                    approval_threshold=req.approval_threshold,
                ),
                id=refund_operation_id(workflow.info().workflow_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes([
                    SearchAttributePair(ORDER_ID, req.order_code),
                    SearchAttributePair(EVENT_ID, self._state.event_id),
                    SearchAttributePair(REFUND_STATUS, "requested"),
                    SearchAttributePair(PAYMENT_PROCESSOR, plan.processor),
                    SearchAttributePair(REFUND_AMOUNT, plan.amount),
                ]),
                static_summary=f"Refund of the return of order {req.order_code}",
            )
        except ChildWorkflowError as err:
            cause = err.cause
            return cause.type if isinstance(cause, ApplicationError) and cause.type else "refund-failed"
        return result.status

    async def _tell_declined(self, req: ReturnInput) -> str:
        try:
            sent = await workflow.execute_activity_method(
                ReturnEmailActivities.send_return_declined,
                ReturnDeclinedEmail(order_code=req.order_code, operation_id=workflow.info().workflow_id,
                                    reason=self._decline_reason),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            return f"failed:{cause.type}" if isinstance(cause, ApplicationError) and cause.type else "failed"
        return sent.status

    def _refuse_unless_open(self) -> None:
        if self._decision is not None:
            raise ApplicationError(f"the return was already {self._decision}d", type="return-decided")

    async def _decide(self, decision: str, method: Any, actor: str, reason: str) -> Any:
        """Wait until the request is open (an update can come while it is still being recorded), then decide."""
        await workflow.wait_condition(lambda: self._state is not None)
        self._refuse_unless_open()
        self._decision = decision
        try:
            done = await self._store(method, self._step(actor, reason=reason))
        except ApplicationError:
            self._decision = None
            raise
        self._decided = True
        return done

    @workflow.update
    async def approve(self, req: ReturnDecision) -> str:
        self._plan = await self._decide("approve", ReturnActivities.approve_return, req.actor,
                                        req.reason or "return approved")
        return self._plan.refund_id

    @approve.validator
    def _check_approve(self, req: ReturnDecision) -> None:
        self._refuse_unless_open()

    @workflow.update
    async def decline(self, req: ReturnDecision) -> ReturnState:
        self._decline_reason = req.reason
        state: ReturnState = await self._decide("decline", ReturnActivities.decline_return, req.actor, req.reason)
        self._state = state
        return state

    @decline.validator
    def _check_decline(self, req: ReturnDecision) -> None:
        self._refuse_unless_open()
        if len(req.reason.strip()) < 3:
            raise ApplicationError("a declined return needs the reason the buyer is told", type="reason-required")
