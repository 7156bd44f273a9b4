"""PLACEHOLDER until recon-core's `ReconcileWorkflow` lands: at merge, take recon-core's file.

It carries only what the schedule side relies on: the type name `Reconcile`,
the input of `workflows/reconcile_contracts.py`, and the window derived from
`TemporalScheduledStartTime` when the run comes from a schedule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from ticketing.reconciliation_records import ReconWindow
    from ticketing.reconciliation_windows import window_for_run
    from workflows.reconcile_contracts import ReconcileInput

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn(name="Reconcile")
class ReconcileWorkflow:
    @workflow.run
    async def run(self, req: ReconcileInput) -> dict[str, Any]:
        if req.window_start and req.window_end:
            window = ReconWindow(start=req.window_start, end=req.window_end)
        else:
            scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
            window = window_for_run(
                scheduled,
                length=timedelta(hours=req.timing.window_hours),
                lag=timedelta(hours=req.timing.settlement_lag_hours),
            )
        return {"processor": req.processor, "window": window.label}
