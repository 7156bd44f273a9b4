"""Every state machine of the domain, as explicit transition tables.

A write that is not listed here raises InvalidTransition; there is no other
place where a status may change.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from ticketing.errors import InvalidTransition


class OrderStatus(StrEnum):
    RESERVED = "reserved"
    PAID = "paid"
    # Every refundable cent is back with the buyer (refund_ledger sets it; a later failure reopens
    # the order as paid). A partly refunded order stays `paid`; `Order.display_status` shows it.
    REFUNDED = "refunded"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    VOIDED = "voided"


class RefundStatus(StrEnum):
    """Refund states, named as the seeds' history timeline names them.

    DESIGN.md's `succeeded`/`failed` are `refunded`/`refund-error` here so that
    the value finance filters on in the Web UI (`RefundStatus="refund-error"`)
    is the same word in the ledger, the API and the search attribute.
    """

    REQUESTED = "requested"
    AWAITING_APPROVAL = "awaiting-approval"
    AWAITING_MANUAL = "awaiting-manual"
    REFUNDING = "refunding"
    CONFIRMING = "confirming-refund"
    SUCCEEDED = "refunded"
    FAILED = "refund-error"
    REJECTED = "rejected"


class TicketState(StrEnum):
    """Validity plus, when invalid, the reason; scan state is tracked apart."""

    VALID = "valid"
    CANCELLED = "invalid:cancelled"
    REFUNDED = "invalid:refunded"
    TRANSFERRED = "invalid:transferred"
    REISSUED = "invalid:reissued"
    BLACKLISTED = "invalid:blacklisted"

    @property
    def is_valid(self) -> bool:
        return self is TicketState.VALID

    @property
    def reason(self) -> str | None:
        return None if self.is_valid else self.value.split(":", 1)[1]


class ScanState(StrEnum):
    UNSCANNED = "unscanned"
    SCANNED_IN = "scanned-in"
    SCANNED_OUT = "scanned-out"


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.RESERVED: frozenset({OrderStatus.PAID, OrderStatus.EXPIRED, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED}),
    # A refund that fails after success gives the money back to us: the order is paid again.
    OrderStatus.REFUNDED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.VOIDED}
    ),
    PaymentStatus.SUCCEEDED: frozenset(),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.VOIDED: frozenset(),
}

REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    RefundStatus.REQUESTED: frozenset(
        {
            RefundStatus.AWAITING_APPROVAL,
            RefundStatus.AWAITING_MANUAL,
            RefundStatus.REFUNDING,
            RefundStatus.SUCCEEDED,  # free orders: nothing to move
        }
    ),
    RefundStatus.AWAITING_APPROVAL: frozenset(
        {RefundStatus.REFUNDING, RefundStatus.AWAITING_MANUAL, RefundStatus.REJECTED}
    ),
    RefundStatus.AWAITING_MANUAL: frozenset({RefundStatus.SUCCEEDED, RefundStatus.REJECTED}),
    RefundStatus.REFUNDING: frozenset(
        {RefundStatus.CONFIRMING, RefundStatus.SUCCEEDED, RefundStatus.FAILED}
    ),
    RefundStatus.CONFIRMING: frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED}),
    # A retry is a new processor attempt; "mark refunded" settles it outside.
    RefundStatus.FAILED: frozenset({RefundStatus.REFUNDING, RefundStatus.SUCCEEDED}),
    # Stripe can report a failure days after success; reconciliation finds it too.
    RefundStatus.SUCCEEDED: frozenset({RefundStatus.FAILED}),
    RefundStatus.REJECTED: frozenset(),
}

TICKET_TRANSITIONS: dict[TicketState, frozenset[TicketState]] = {
    TicketState.VALID: frozenset(
        {
            TicketState.CANCELLED,
            TicketState.REFUNDED,
            TicketState.TRANSFERRED,
            TicketState.REISSUED,
            TicketState.BLACKLISTED,
        }
    ),
    # A refund that fails gives the ticket back; it may still be cancelled.
    TicketState.REFUNDED: frozenset({TicketState.VALID, TicketState.CANCELLED}),
    # "Set as unscanned" makes a blacklisted ticket valid again (seed 002).
    TicketState.BLACKLISTED: frozenset(
        {TicketState.VALID, TicketState.CANCELLED, TicketState.REFUNDED}
    ),
    TicketState.CANCELLED: frozenset(),  # cancellation is final
    TicketState.TRANSFERRED: frozenset(),
    TicketState.REISSUED: frozenset(),
}

SCAN_TRANSITIONS: dict[ScanState, frozenset[ScanState]] = {
    ScanState.UNSCANNED: frozenset({ScanState.SCANNED_IN}),
    ScanState.SCANNED_IN: frozenset({ScanState.SCANNED_OUT, ScanState.UNSCANNED}),
    ScanState.SCANNED_OUT: frozenset({ScanState.SCANNED_IN, ScanState.UNSCANNED}),
}

S = TypeVar("S", bound=StrEnum)


def transition(table: dict[S, frozenset[S]], current: S, target: S, *, what: str) -> S:
    """Return `target` if the table allows `current -> target`, else refuse."""
    if target not in table[current]:
        raise InvalidTransition(
            f"{what} cannot go from {current.value} to {target.value}",
            type=f"invalid-{what}-transition",
            current=current.value,
            target=target.value,
        )
    return target
