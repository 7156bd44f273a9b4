"""A stand-in `Reconcile` workflow for tests of the schedule side: it reports the window a run gets.

Registered under the real workflow type, it derives the window from
`TemporalScheduledStartTime` exactly as the real run does (through the same
domain function) and returns it, so tests see which runs a trigger or a
backfill started without reconciling anything.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

from ticketing.reconciliation_windows import window_for_run
from workflows.reconcile_contracts import ReconcileInput

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@workflow.defn(name="Reconcile", sandboxed=False)
class WindowReporter:
    """Registered under the real workflow type; returns the window a run would reconcile."""

    @workflow.run
    async def run(self, req: ReconcileInput) -> dict[str, Any]:
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        window = req.window or window_for_run(
            scheduled or workflow.now(),
            length=timedelta(hours=req.window_hours),
            lag=timedelta(hours=req.settlement_lag_hours),
        )
        return {"label": window.label, "scheduled": scheduled.isoformat() if scheduled else None}
