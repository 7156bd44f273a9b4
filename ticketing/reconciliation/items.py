"""Discrepancy classes, their severities and suggested actions, and the item state machine.

An item is one disagreement, identified by (processor, class, key) so a re-run
of the same window finds the same item instead of adding a second one.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum, StrEnum

from ticketing.states import transition


class DiscrepancyClass(StrEnum):
    MISSING_AT_PROCESSOR = "missing-at-processor"
    MISSING_IN_LEDGER = "missing-in-ledger"
    FOREIGN = "foreign"
    AMOUNT_MISMATCH = "amount-mismatch"
    CURRENCY_MISMATCH = "currency-mismatch"
    STATUS_MISMATCH = "status-mismatch"
    PENDING_OVERDUE = "pending-overdue"
    DUPLICATE_AT_PROCESSOR = "duplicate-at-processor"
    OVER_REFUNDED = "over-refunded"
    DOUBLE_SETTLEMENT = "double-settlement"
    MONEY_MOVEMENT = "money-movement"
    MISSED_WEBHOOK = "missed-webhook"
    ORPHANED = "orphaned"
    STALE_MANUAL = "stale-manual"
    # Money a processor received for an order that could not take it (expired, paid already, another amount).
    PAYMENT_UNAPPLIED = "payment-unapplied"


class Severity(IntEnum):
    """Ordered: a higher value pages sooner. `INFO` is counted and never alerted (foreign refunds)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


SEVERITY: dict[DiscrepancyClass, Severity] = {
    DiscrepancyClass.DUPLICATE_AT_PROCESSOR: Severity.CRITICAL,  # money paid twice
    DiscrepancyClass.OVER_REFUNDED: Severity.HIGH,
    DiscrepancyClass.DOUBLE_SETTLEMENT: Severity.HIGH,
    DiscrepancyClass.STATUS_MISMATCH: Severity.HIGH,
    DiscrepancyClass.AMOUNT_MISMATCH: Severity.HIGH,
    DiscrepancyClass.CURRENCY_MISMATCH: Severity.HIGH,
    DiscrepancyClass.MISSING_IN_LEDGER: Severity.HIGH,
    DiscrepancyClass.MISSING_AT_PROCESSOR: Severity.HIGH,
    DiscrepancyClass.PAYMENT_UNAPPLIED: Severity.HIGH,  # we hold a buyer's money for nothing
    DiscrepancyClass.MONEY_MOVEMENT: Severity.MEDIUM,
    DiscrepancyClass.ORPHANED: Severity.MEDIUM,
    DiscrepancyClass.MISSED_WEBHOOK: Severity.MEDIUM,
    DiscrepancyClass.PENDING_OVERDUE: Severity.LOW,
    DiscrepancyClass.STALE_MANUAL: Severity.LOW,
    DiscrepancyClass.FOREIGN: Severity.INFO,
}


class SuggestedAction(StrEnum):
    # Healed by the reconcile run itself (idempotent, allowed by the refund state machine):
    SIGNAL_REFUND = "signal-refund"  # tell the running Refund run the processor's news
    START_LATE_FAILURE = "start-late-failure"  # the follow-up run by its deterministic id
    START_LATE_ANSWER = "start-late-answer"  # a refund-error's refund paid after its run closed: its follow-up run
    RESTART_REFUND = "restart-refund"  # an orphan: start its Refund run again by its workflow id
    REPLAY_EVENT = "replay-event"  # a missed webhook, through the webhook's own path
    # For finance:
    CONFIRM_EXTERNAL_REFUND = "confirm-external-refund"  # a dashboard refund on our payment
    RESTORE_LEDGER_ROW = "restore-ledger-row"  # our metadata, no ledger row: a lost write
    RECOVER_DUPLICATE = "recover-duplicate"  # ask the buyer or the processor for the money back
    INVESTIGATE = "investigate"
    # A refund-error the processor paid: retry it (the retry adopts the paid refund, pays nothing again);
    # marking it refunded by hand is refused by the API (`processor-refund-exists`): it would pay twice.
    MARK_OR_RETRY = "mark-or-retry"
    CHASE_PROCESSOR = "chase-processor"  # pending too long: contact the processor
    PAY_OR_REJECT = "pay-or-reject"  # awaiting finance too long
    REFUND_OR_REINSTATE = "refund-or-reinstate"  # money for nothing: refund it at the processor, or reinstate
    NONE = "none"  # counted only


HEALING: frozenset[SuggestedAction] = frozenset(
    {
        SuggestedAction.SIGNAL_REFUND,
        SuggestedAction.START_LATE_FAILURE,
        SuggestedAction.START_LATE_ANSWER,
        SuggestedAction.RESTART_REFUND,
        SuggestedAction.REPLAY_EVENT,
    }
)


class ItemState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ITEM_TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    ItemState.OPEN: frozenset({ItemState.ACKNOWLEDGED, ItemState.RESOLVED}),
    ItemState.ACKNOWLEDGED: frozenset({ItemState.RESOLVED}),
    # A resolved disagreement that a later run finds again is open again (with its history kept).
    ItemState.RESOLVED: frozenset({ItemState.OPEN}),
}


def move_item(current: ItemState, target: ItemState) -> ItemState:
    """The only way an item changes state; refuses what the table does not list."""
    return transition(ITEM_TRANSITIONS, current, target, what="reconciliation-item")


def item_id(processor: str, cls: DiscrepancyClass, key: str) -> str:
    """Stable across runs: the same disagreement found again is the same item."""
    digest = hashlib.sha256(f"{processor}|{cls.value}|{key}".encode()).hexdigest()[:24]
    return f"ri_{digest}"
