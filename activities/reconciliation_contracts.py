"""What the reconciliation activities take and give: ids, cursors and counts, never records."""

from __future__ import annotations

from pydantic import BaseModel

from ticketing.models import Processor
from ticketing.reconciliation.classify import Ages
from ticketing.reconciliation_records import ReconWindow


class BeginRun(BaseModel):
    run_id: str
    processor: Processor
    window: ReconWindow
    dry_run: bool


class StagePage(BaseModel):
    run_id: str
    processor: Processor
    window: ReconWindow
    kind: str  # refund | balance | event
    cursor: str | None = None
    page_size: int = 100
    max_pages: int = 50
    rate_per_second: float = 20.0
    # Refunds: judge each page as it is staged (with these ages), while the next is being read, and
    # keep only which pages disagreed; None: the classify step judges every refund afterwards.
    judge: Ages | None = None


class StageResult(BaseModel):
    cursor: str | None
    done: bool
    staged: int


class ClassifyWindow(BaseModel):
    run_id: str
    pass_no: int
    processor: Processor
    window: ReconWindow
    ages: Ages
    page: int = 500
    rate_per_second: float = 20.0
    # Every refund page was judged while staged: classify again only those pages that disagreed and
    # the refunds that share a ledger key or a payment with another (whose group grew after).
    judged_while_staging: bool = False


class ClassifyResult(BaseModel):
    new: int = 0
    reopened: int = 0
    seen: int = 0


class HealPage(BaseModel):
    run_id: str
    pass_no: int
    after: str = ""
    limit: int = 50


class HealStep(BaseModel):
    """One idempotent step the workflow takes for an item; the data the start or signal needs."""

    item_id: str
    action: str  # signal-refund | start-late-failure | restart-refund | replay-event (+ route)
    route: str | None = None
    refund_id: str
    order_code: str
    workflow_id: str
    attempt: int
    processor_refund_id: str | None = None
    processor_status: str | None = None
    failure_reason: str | None = None
    event_id: str | None = None
    events: list[tuple[str, str]] = []  # (id, type) of every undelivered event the replay stands for


class HealDone(BaseModel):
    run_id: str
    item_ids: list[str]
    events: list[tuple[str, str]] = []  # (event id, type) replayed: recorded as seen, as the webhook does


class Recheck(BaseModel):
    run_id: str
    pass_no: int
    processor: Processor
    ages: Ages
    limit: int = 1000
    rate_per_second: float = 20.0


class FinishRun(BaseModel):
    run_id: str
    processor: Processor
    window: ReconWindow
    status: str
    healed: int = 0
    heal_failed: int = 0
    resolved: int = 0
    error: str | None = None


class RunSummary(BaseModel):
    counts: dict[str, int]
    found: int
    open_items: int
    staged: dict[str, int]


