"""EventCancellationWorkflow: every order of an event (or time slot) notified, cancelled and refunded.

Before any notice or refund, the open transfers of the chosen orders are closed through each
transfer's own workflow (a ticket on offer would hold its order back), so every order is
refunded in the same run. Refunds that must wait for the processor's confirmation or for
finance are handed to RefundWorkflows (children that outlive this run), under the refund's
own workflow id, so finance acts on them like any other refund.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.contracts import BatchCounts, BulkReport, CloseEventTransfers
    from activities.event_cancellation import EventCancellationActivities
    from activities.event_transfers import EventTransferActivities
    from runtime.codec import PublicText
    from workflows.bulk_engine import BATCH_RETRY, BulkEngine
    from workflows.contracts import BulkInput, CancellationParams, RefundInput
    from workflows.refund import RefundWorkflow


CLOSES_TRANSFERS = "event-cancellation-closes-transfers"  # runs started before it refund without closing


@workflow.defn(name="EventCancellation")
class EventCancellationWorkflow(BulkEngine):
    phases: Sequence[str] = ("notify", "cancel")
    phase_activities = {
        "notify": EventCancellationActivities.notify_cancellation_batch,
        "cancel": EventCancellationActivities.cancel_refund_batch,
    }
    phase_queues = {"notify": "email", "cancel": "payments"}

    @workflow.run
    async def run(self, inp: BulkInput) -> BulkReport:
        if isinstance(inp.params, CancellationParams) and not inp.params.notify:
            self.phases = ("cancel",)
        return await self.run_bulk(inp)

    async def before_phases(self, inp: BulkInput) -> None:
        """Close every open transfer of the chosen orders, a page at a time, before anyone is told or refunded.

        The event (or slot) is marked cancelled by now, so no transfer of these orders opens or is
        accepted any more: what is open here is all there is. Should this step give up (a refusal no
        retry mends), the orders it could not free are reported failed (`ticket-in-transfer`), as
        before it existed, and "retry failed" closes them.
        """
        if not workflow.patched(CLOSES_TRANSFERS):
            return  # a run started before this step: it goes on as it began
        after: str | None = None
        while not self.cancelled:
            workflow.set_current_details("running: closing the open transfers of the orders")
            try:
                page = await workflow.execute_activity_method(
                    EventTransferActivities.close_event_transfers,
                    CloseEventTransfers(bulk_id=inp.bulk_id, after=after),
                    start_to_close_timeout=timedelta(minutes=10),
                    heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
                    retry_policy=BATCH_RETRY,
                )
            except ActivityError as err:
                workflow.logger.warning("event cancellation %s left transfers open: %s", inp.bulk_id, err.cause)
                return
            if page.next is None:
                return
            after = page.next

    async def after_batch(self, phase: str, result: BatchCounts) -> None:
        assert self.inp is not None
        for entry in result.follow_ups:
            refund_id, order_code, workflow_id = entry.refund_id, entry.order_code, entry.workflow_id
            try:
                await workflow.start_child_workflow(
                    RefundWorkflow.run,
                    RefundInput(
                        order_code=order_code,
                        actor=self.inp.actor,
                        refund_id=refund_id,
                        existing_refund_id=refund_id,
                        timing=self.inp.refund_timing,
                    ),
                    id=workflow_id,
                    parent_close_policy=ParentClosePolicy.ABANDON,
                    static_summary=PublicText(
                        entry.summary or f"Refund on order {order_code} (event {self.inp.bulk_id})"
                    ),
                )
                self.progress.follow_ups += 1
            except WorkflowAlreadyStartedError:
                pass
