"""PLACEHOLDER until recon-core's `ReconcileWorkflow` lands: at merge, take recon-core's file.

It carries only what the schedule side relies on: the type name `Reconcile`,
an input with an optional explicit window, and the window derived from
`TemporalScheduledStartTime` when the run comes from a schedule.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from ticketing.models import Processor
    from ticketing.reconciliation_records import ReconWindow
    from ticketing.reconciliation_windows import window_for_run

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


class ReconcileInput(BaseModel):
    processor: Processor
    window: ReconWindow | None = None
    window_hours: int = 24
    settlement_lag_hours: int = 24


class ReconcileResult(BaseModel):
    processor: Processor
    window: ReconWindow


@workflow.defn(name="Reconcile")
class ReconcileWorkflow:
    @workflow.run
    async def run(self, req: ReconcileInput) -> ReconcileResult:
        window = req.window
        if window is None:
            scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
            window = window_for_run(
                scheduled, length=timedelta(hours=req.window_hours), lag=timedelta(hours=req.settlement_lag_hours)
            )
        return ReconcileResult(processor=req.processor, window=window)
