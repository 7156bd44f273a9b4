"""ImportOrders: the orders of a checked file (staged by `POST /imports`), written in batches, then
optionally their tickets delivered, on the bulk engine: progress, pause, resume, cancel and the
CSV report come with it, and the history stays bounded (ids and counts only, continue-as-new).

A file over several events is one operation; it is listed under its first order's event.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import BulkReport
    from activities.importing import ImportActivities, ImportDeliveryActivities
    from workflows.bulk_engine import BulkEngine
    from workflows.contracts import BulkInput, ImportParams


@workflow.defn(name="ImportOrders")
class ImportOrdersWorkflow(BulkEngine):
    phases: Sequence[str] = ("import", "deliver")
    phase_activities = {
        "import": ImportActivities.import_batch,
        "deliver": ImportDeliveryActivities.deliver_import_batch,
    }
    phase_queues = {"import": "orders", "deliver": "email"}

    @workflow.run
    async def run(self, inp: BulkInput) -> BulkReport:
        if not (isinstance(inp.params, ImportParams) and inp.params.deliver):
            self.phases = ("import",)
        return await self.run_bulk(inp)
