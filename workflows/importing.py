"""ImportOrders: the orders of a checked file (staged by `POST /imports`), written in batches, their
ticket PDFs rendered into the cache on the `render` queue, then optionally their tickets delivered,
on the bulk engine: progress, pause, resume, cancel and the CSV report come with it, and the history
stays bounded (ids and counts only, continue-as-new).

The render phase is why a first delivery of imported tickets sends at the rate of a warm one
(activities/prerender.py). A file over several events is one operation; it is listed under its
first order's event.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import BulkReport
    from activities.importing import ImportActivities, ImportDeliveryActivities
    from activities.prerender import PrerenderActivities
    from workflows.bulk_engine import BulkEngine
    from workflows.contracts import BulkInput, ImportParams

# Runs started before it import (and deliver) without rendering; the choice rides in the params, so
# that their continued runs keep the phase numbering they started with.
PRERENDER = "import-prerender-phase"


@workflow.defn(name="ImportOrders")
class ImportOrdersWorkflow(BulkEngine):
    phases: Sequence[str] = ("import", "render", "deliver")
    phase_activities = {
        "import": ImportActivities.import_batch,
        "render": PrerenderActivities.prerender_ticket_pdfs,
        "deliver": ImportDeliveryActivities.deliver_import_batch,
    }
    phase_queues = {"import": "orders", "render": "render", "deliver": "email"}

    @workflow.run
    async def run(self, inp: BulkInput) -> BulkReport:
        params = inp.params if isinstance(inp.params, ImportParams) else ImportParams()
        if inp.progress is None and workflow.patched(PRERENDER):
            params = params.model_copy(update={"prerender": True})
            inp = inp.model_copy(update={"params": params})
        self.phases = tuple(
            phase for phase, wanted in (("import", True), ("render", params.prerender), ("deliver", params.deliver))
            if wanted
        )
        return await self.run_bulk(inp)
