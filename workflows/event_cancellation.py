"""EventCancellationWorkflow: every order of an event (or time slot) notified, cancelled and refunded.

Refunds that must wait for the processor's confirmation or for finance are
handed to RefundWorkflows (children that outlive this run), under the refund's
own workflow id, so finance acts on them like any other refund.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.contracts import BatchCounts, BulkReport
    from activities.event_cancellation import EventCancellationActivities
    from runtime.codec import PublicText
    from workflows.bulk_engine import BulkEngine
    from workflows.contracts import BulkInput, CancellationParams, RefundInput
    from workflows.refund import RefundWorkflow


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
