"""Scanning at the gate and the backoffice's bulk scan-status operations (seed 002).

Both are pure functions over the order aggregate; every state change goes through the
transition tables. A ticket that is cancelled, refunded, reissued or transferred is final:
the bulk operations refuse it, and the gate rejects it with the reason. So does a ticket of an
order whose event or time slot is called off (`event-cancelled`, `time-slot-cancelled`), from
the moment the event or slot is marked, before the cancellation run reaches the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, Order, Scan, Ticket
from ticketing.policies.actions import called_off_refusal, scan_status_refusal
from ticketing.states import (
    SCAN_TRANSITIONS,
    TICKET_TRANSITIONS,
    OrderStatus,
    ScanState,
    TicketState,
    transition,
)


class ScanStatus(StrEnum):
    """The bulk actions of the seed: unscanned also makes a blacklisted ticket valid again."""

    UNSCANNED = "unscanned"
    SCANNED_IN = "scanned-in"
    SCANNED_OUT = "scanned-out"
    BLACKLISTED = "blacklisted"


# The gate's words for each invalid state (seed 002 for the blacklist message).
REJECTIONS: dict[TicketState, str] = {
    TicketState.BLACKLISTED: "ticket is blacklisted",
    TicketState.REISSUED: "ticket was reissued",
    TicketState.CANCELLED: "ticket was cancelled",
    TicketState.REFUNDED: "ticket was refunded",
    TicketState.TRANSFERRED: "ticket was transferred",
}


class ScanOutcome(BaseModel):
    result: str
    reason: str | None = None
    reason_type: str | None = None
    ticket_id: str | None = None
    order_code: str | None = None
    scan_state: str | None = None


UNKNOWN_BARCODE = ScanOutcome(result="rejected", reason="unknown barcode", reason_type="unknown-barcode")


def _scan_to(ticket: Ticket, target: ScanState) -> ScanState:
    """Walk the scan table to `target`; scanned-out from unscanned passes through scanned-in."""
    current = ticket.scan_state
    if current is target:
        return current
    if current is ScanState.UNSCANNED and target is ScanState.SCANNED_OUT:
        current = transition(SCAN_TRANSITIONS, current, ScanState.SCANNED_IN, what="scan")
    return transition(SCAN_TRANSITIONS, current, target, what="scan")


def _apply(ticket: Ticket, status: ScanStatus) -> Ticket:
    state, scan_state = ticket.state, ticket.scan_state
    if status is ScanStatus.BLACKLISTED:
        if state is not TicketState.BLACKLISTED:
            state = transition(TICKET_TRANSITIONS, state, TicketState.BLACKLISTED, what="ticket")
    elif status is ScanStatus.UNSCANNED:
        if state is TicketState.BLACKLISTED:
            state = transition(TICKET_TRANSITIONS, state, TicketState.VALID, what="ticket")
        scan_state = _scan_to(ticket, ScanState.UNSCANNED)
    else:
        if state is TicketState.BLACKLISTED:
            raise ActionNotAllowed(
                f"ticket {ticket.id} is blacklisted; set it as unscanned first to make it valid again",
                type="ticket-blacklisted",
                ticket_id=ticket.id,
            )
        scan_state = _scan_to(ticket, ScanState(status.value))
    return ticket.model_copy(update={"state": state, "scan_state": scan_state})


def set_scan_status(
    order: Order, event: Event, ticket_ids: Sequence[str], status: ScanStatus
) -> tuple[Order, list[str]]:
    """Apply `status` to the selected tickets, all or none; returns the ids that changed."""
    if refusal := scan_status_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    selected = list(dict.fromkeys(ticket_ids))
    for ticket_id in selected:
        ticket = order.ticket(ticket_id)
        if ticket.state not in (TicketState.VALID, TicketState.BLACKLISTED):
            raise ActionNotAllowed(
                f"ticket {ticket_id} is {ticket.state.reason}; its scan status is final",
                type="ticket-invalid",
                ticket_id=ticket_id,
            )
    updated = {tid: _apply(order.ticket(tid), status) for tid in selected}
    changed = [tid for tid in selected if updated[tid] != order.ticket(tid)]
    tickets = [updated.get(t.id, t) for t in order.tickets]
    return order.model_copy(update={"tickets": tickets}), changed


def admit(
    order: Order, event: Event, barcode: str, *, at: datetime, access_point: str | None
) -> tuple[Order, ScanOutcome]:
    """One scan at the gate: accepted moves the ticket to scanned-in; every scan is recorded."""
    ticket = next(t for t in order.tickets if t.barcode == barcode)
    reason, reason_type = _rejection(order, event, ticket)
    scan_state = ticket.scan_state
    if reason is None:
        scan_state = transition(SCAN_TRANSITIONS, ticket.scan_state, ScanState.SCANNED_IN, what="scan")
    scan = Scan(
        at=at,
        result="rejected" if reason else "accepted",
        reason=reason,
        access_point=access_point,
        scan_state=scan_state,
    )
    after = ticket.model_copy(update={"scan_state": scan_state, "scans": [*ticket.scans, scan]})
    tickets = [after if t.id == ticket.id else t for t in order.tickets]
    outcome = ScanOutcome(
        result=scan.result,
        reason=reason,
        reason_type=reason_type,
        ticket_id=ticket.id,
        order_code=order.code,
        scan_state=scan_state.value,
    )
    return order.model_copy(update={"tickets": tickets}), outcome


def _rejection(order: Order, event: Event, ticket: Ticket) -> tuple[str | None, str | None]:
    """The gate's reason and its type; None when the ticket gets in.

    A ticket still valid in an order whose event or slot is called off (the cancellation run has
    not reached it yet) is rejected by the same rule as every other action on such an order.
    """
    if not ticket.is_valid:
        return REJECTIONS[ticket.state], ticket.state.reason
    if order.status is not OrderStatus.PAID:
        return f"order is {order.status.value}", f"order-{order.status.value}"
    if refusal := called_off_refusal(order, event):
        return refusal.reason, refusal.type
    if ticket.in_transfer:
        return "ticket is being transferred", "in-transfer"
    if ticket.scan_state is ScanState.SCANNED_IN:
        return "ticket is already scanned in", "already-scanned-in"
    return None, None
