"""Reconciliation: what a disagreement between the ledger and the processor is, and what to do about it.

Pure domain: classes, severities, suggested actions, the item state machine
(`items`) and the classification of one window (`classify`). The activities
read both sides and call these; nothing here knows Temporal, the store or an SDK.
"""

from ticketing.reconciliation.items import (
    ITEM_TRANSITIONS,
    DiscrepancyClass,
    ItemState,
    Severity,
    SuggestedAction,
    item_id,
    move_item,
)
from ticketing.reconciliation.models import Finding, ReconItem, ReconRun, ReconRunStatus

__all__ = [
    "ITEM_TRANSITIONS",
    "DiscrepancyClass",
    "Finding",
    "ItemState",
    "ReconItem",
    "ReconRun",
    "ReconRunStatus",
    "Severity",
    "SuggestedAction",
    "item_id",
    "move_item",
]
