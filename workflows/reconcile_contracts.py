"""The Reconcile workflow's input, result and carried state: ids and counts only, never records.

Everything a run reads from the processor goes to the store's staging index;
what travels through Temporal is a cursor, a phase and counts, so a window of
100,000 refunds has the same payload sizes as a window of ten.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from ticketing.models import Processor
from ticketing.reconciliation_records import ReconWindow
from workflows.contracts import RefundTiming


class ReconTiming(BaseModel):
    """How the run paces, pages and judges time; passed in so the workflow stays deterministic."""

    page_size: int = 100  # Stripe's list maximum
    pages_per_activity: int = 50  # then the activity returns its cursor to the workflow
    read_rate_per_second: float = 20.0  # under Stripe's read limit (25/s test, 100/s live)
    heartbeat_seconds: float = 30.0
    classify_page: int = 500
    heal_page: int = 50
    recheck_limit: int = 1000  # items from earlier windows re-checked at the processor per run
    continue_after_steps: int = 200  # activities per run before continue-as-new
    pending_overdue_business_days: int = 10  # = the refund's confirmation window
    manual_stale_days: float = 14.0
    approval_expiry_hours: float = 48.0


class ReconCursor(BaseModel):
    """Where a run stands, carried across continue-as-new."""

    run_id: str
    pass_no: int
    window: ReconWindow
    as_of: datetime  # "now" for age rules: the scheduled start, so a re-run judges alike
    phase: str = "stage"  # stage, classify, heal, recheck, finish, done
    cursor: str | None = None  # heal: the last item id taken
    stage_cursors: dict[str, str | None] = {}  # refund | balance | event: the processor's page cursor
    staged_done: list[str] = []
    judged_while_staging: bool = False  # every refund page is judged as it is staged
    staged: dict[str, int] = {}
    counts: dict[str, int] = {}
    healed: int = 0
    resolved: int = 0
    heal_failed: int = 0
    steps: int = 0


class ReconcileInput(BaseModel):
    """`window` for an explicit run; a scheduled run leaves it unset and reconciles the window that
    `ticketing.reconciliation_windows.window_for_run` gives for its `TemporalScheduledStartTime`
    (the last whole window that ended `settlement_lag_hours` before it: webhooks, pending ->
    succeeded and balance transactions have landed by then)."""

    processor: Processor = Processor.STRIPE
    window: ReconWindow | None = None
    window_hours: int = 24
    settlement_lag_hours: int = 24
    dry_run: bool = False  # find and report; heal nothing, resolve nothing
    actor: str = "schedule"
    timing: ReconTiming = ReconTiming()
    refund_timing: RefundTiming = RefundTiming()
    state: ReconCursor | None = None  # set only by continue-as-new


class ReconcileResult(BaseModel):
    run_id: str
    processor: Processor
    window: ReconWindow
    status: str
    dry_run: bool
    counts: dict[str, int]  # {discrepancy class: items found this pass}
    found: int
    healed: int
    heal_failed: int
    resolved: int
    open_items: int  # open + acknowledged in the whole queue for this processor
    staged: dict[str, int]  # {refund|balance|event: records read from the processor}


def reconcile_workflow_id(processor: str, window_label: str) -> str:
    """`reconcile/{processor}/{window}`: one run (and one store row) per processor and window."""
    return f"reconcile/{processor}/{window_label}"
