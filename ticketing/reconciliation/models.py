"""What reconciliation writes: findings (one disagreement), items (finance's queue) and runs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, computed_field

from ticketing.reconciliation.items import (
    HEALING,
    SEVERITY,
    DiscrepancyClass,
    ItemState,
    Severity,
    SuggestedAction,
)


class Finding(BaseModel):
    """One disagreement found in a window, with both sides' evidence (JSON-ready dicts)."""

    cls: DiscrepancyClass
    key: str  # what identifies it across runs: a refund id, a processor refund id, an event id
    action: SuggestedAction
    ledger: dict[str, Any] | None = None
    processor: dict[str, Any] | None = None
    refund_id: str | None = None
    processor_refund_id: str | None = None
    order_code: str | None = None
    amount: int | None = None
    currency: str | None = None
    # The class's severity unless this finding is graver (a window's totals that differ: high).
    level: Severity | None = Field(default=None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def severity(self) -> Severity:
        return self.level if self.level is not None else SEVERITY[self.cls]

    @property
    def heals(self) -> bool:
        return self.action in HEALING


class ReconItem(BaseModel):
    id: str
    processor: str
    cls: DiscrepancyClass
    key: str
    severity: Severity
    state: ItemState
    reason: str | None = None
    actor: str | None = None
    state_at: datetime
    suggested_action: SuggestedAction
    ledger: dict[str, Any] | None = None
    processor_side: dict[str, Any] | None = None
    refund_id: str | None = None
    processor_refund_id: str | None = None
    order_code: str | None = None
    amount: int | None = None
    currency: str | None = None
    first_seen_run: str
    last_seen_run: str
    healed_at: datetime | None = None
    healed_by_run: str | None = None
    created_at: datetime
    updated_at: datetime


class ReconRunStatus:
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ReconVisibility(StrEnum):
    """The `ReconStatus` search attribute: what finance filters the Web UI on."""

    RUNNING = "running"
    CLEAN = "clean"
    OPEN_ITEMS = "open-items"
    FAILED = "failed"

    @classmethod
    def at_end(cls, *, failed: bool, open_items: int) -> ReconVisibility:
        if failed:
            return cls.FAILED
        return cls.OPEN_ITEMS if open_items else cls.CLEAN


class ReconRun(BaseModel):
    id: str
    processor: str
    window_start: datetime
    window_end: datetime
    status: str
    dry_run: bool
    passes: int
    workflow_id: str | None = None
    counts: dict[str, int]
    totals: dict[str, dict[str, int]]
    staged: dict[str, int]
    healed: int
    resolved: int
    open_items: int
    report_uris: dict[str, str]
    error: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
