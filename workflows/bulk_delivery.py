"""BulkDeliveryWorkflow: tickets, or a message from a template, to every buyer (or attendee) of a set."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.bulk_delivery import BulkDeliveryActivities
    from activities.contracts import BulkReport
    from workflows.bulk_engine import BulkEngine
    from workflows.contracts import BulkInput


@workflow.defn(name="BulkDelivery")
class BulkDeliveryWorkflow(BulkEngine):
    phases = ("deliver",)
    phase_activities = {"deliver": BulkDeliveryActivities.deliver_bulk_batch}
    phase_queues = {"deliver": "email"}

    @workflow.run
    async def run(self, inp: BulkInput) -> BulkReport:
        return await self.run_bulk(inp)
