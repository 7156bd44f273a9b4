"""Reissuing tickets (new barcodes) and rescheduling them to another time slot, as pure functions.

A reissued ticket is a new Ticket row with a new id and barcode, the same type,
slot, price and holder; the old one becomes `invalid:reissued` and points to
its replacement, so its barcode is rejected at the gate. Rescheduling is a
reissue into another slot of the same event: the old barcode carries the old
slot, and the seat moves between the slots' quotas.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from ticketing.errors import ActionNotAllowed, DomainError
from ticketing.inventory import InventoryDelta, seat_deltas
from ticketing.issuing import new_barcode, new_id
from ticketing.models import Event, Order, OrderEvent, Ticket, TimeSlot
from ticketing.policies.actions import reissue_refusal, reschedule_refusal, slot_called_off_refusal
from ticketing.states import TICKET_TRANSITIONS, TicketState, transition

REISSUED_EVENT = "tickets-reissued"
RESCHEDULED_EVENT = "tickets-rescheduled"


class Reissue(BaseModel):
    model_config = ConfigDict(frozen=True)

    order: Order
    history: list[OrderEvent]
    replaced: dict[str, str]  # old ticket id -> new ticket id, in order
    inventory: list[InventoryDelta] = []
    time_slot_id: str | None = None

    @property
    def new_ticket_ids(self) -> list[str]:
        return list(self.replaced.values())


def _selected(order: Order, ticket_ids: list[str] | None) -> list[Ticket]:
    if ticket_ids is None:
        return order.valid_tickets
    if not ticket_ids:
        raise DomainError("list at least one ticket, or none for all valid tickets", type="invalid-request")
    if len(set(ticket_ids)) != len(ticket_ids):
        raise DomainError("a ticket is listed twice", type="duplicate-tickets")
    chosen = [order.ticket(i) for i in ticket_ids]
    for t in chosen:
        if not t.is_valid:
            raise ActionNotAllowed(f"ticket {t.id} is {t.state.value}", type="ticket-invalid")
    return chosen


def _replace(
    order: Order, chosen: list[Ticket], slot_id: str | None
) -> tuple[Order, dict[str, str]]:
    for t in chosen:
        if t.in_transfer:
            raise ActionNotAllowed(f"ticket {t.id} is being transferred", type="ticket-in-transfer")
    replaced: dict[str, str] = {}
    fresh: list[Ticket] = []
    for t in chosen:
        new = Ticket(
            id=new_id("tkt"),
            order_code=order.code,
            barcode=new_barcode(),
            ticket_type_id=t.ticket_type_id,
            time_slot_id=slot_id if slot_id is not None else t.time_slot_id,
            price=t.price,
            personalisation=t.personalisation,
            requires_personalisation=t.requires_personalisation,
            # A guest inside stays inside: a new barcode is not a second entry.
            scan_state=t.scan_state,
        )
        replaced[t.id] = new.id
        fresh.append(new)
    tickets = [
        t.model_copy(
            update={
                "state": transition(TICKET_TRANSITIONS, t.state, TicketState.REISSUED, what="ticket"),
                "replaced_by": replaced[t.id],
            }
        )
        if t.id in replaced
        else t
        for t in order.tickets
    ]
    return order.model_copy(update={"tickets": tickets + fresh}), replaced


def _invalidated(replaced: dict[str, str], actor: str, now: datetime, operation_id: str) -> list[OrderEvent]:
    return [
        OrderEvent(
            type="item-invalidated",
            actor=actor,
            at=now,
            data={"operation_id": operation_id, "ticket_id": old, "reason": "reissued", "replaced_by": new},
            dedupe_key=f"item-invalidated:{operation_id}:{old}",
        )
        for old, new in replaced.items()
    ]


def reissue_tickets(
    order: Order, event: Event, ticket_ids: list[str] | None, *, actor: str, now: datetime, operation_id: str
) -> Reissue:
    """New barcodes for the listed valid tickets (all valid ones when None)."""
    if refusal := reissue_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    after, replaced = _replace(order, _selected(order, ticket_ids), None)
    summary = OrderEvent(
        type=REISSUED_EVENT,
        actor=actor,
        at=now,
        data={"operation_id": operation_id, "tickets": [{"old": o, "new": n} for o, n in replaced.items()]},
        dedupe_key=f"{REISSUED_EVENT}:{operation_id}",
    )
    return Reissue(
        order=after, history=[summary, *_invalidated(replaced, actor, now, operation_id)], replaced=replaced
    )


def reschedule_tickets(
    order: Order,
    event: Event,
    slots: Sequence[TimeSlot],
    ticket_ids: list[str] | None,
    time_slot_id: str,
    *,
    actor: str,
    now: datetime,
    operation_id: str,
) -> Reissue:
    """Move the listed valid tickets (all when None) to another slot of the event, with new barcodes."""
    if refusal := reschedule_refusal(order, event, slots):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    target = next((s for s in slots if s.id == time_slot_id and s.event_id == event.id), None)
    if target is None:
        raise DomainError(f"time slot {time_slot_id} is not a slot of event {event.id}", type="slot-not-in-event")
    if refusal := slot_called_off_refusal(event, target.id):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    chosen = _selected(order, ticket_ids)
    for t in chosen:
        if t.time_slot_id == target.id:
            raise ActionNotAllowed(f"ticket {t.id} is already in {target.label}", type="ticket-already-in-slot")
        if t.used:
            raise ActionNotAllowed(f"ticket {t.id} has been scanned; it cannot move slots", type="ticket-used")
    if target.available < len(chosen):
        raise ActionNotAllowed(
            f"{target.label} has {max(target.available, 0)} seat(s) left, {len(chosen)} needed",
            type="slot-full",
            available=max(target.available, 0),
        )
    after, replaced = _replace(order, chosen, target.id)
    moves = [(t, t.time_slot_id, -1) for t in chosen] + [(t, target.id, +1) for t in chosen]
    summary = OrderEvent(
        type=RESCHEDULED_EVENT,
        actor=actor,
        at=now,
        data={
            "operation_id": operation_id,
            "time_slot_id": target.id,
            "tickets": [{"old": t.id, "new": replaced[t.id], "from_slot": t.time_slot_id} for t in chosen],
        },
        dedupe_key=f"{RESCHEDULED_EVENT}:{operation_id}",
    )
    return Reissue(
        order=after,
        history=[summary, *_invalidated(replaced, actor, now, operation_id)],
        replaced=replaced,
        inventory=seat_deltas(moves),
        time_slot_id=target.id,
    )


def recorded(history: Sequence[OrderEvent], operation_id: str) -> dict[str, str] | None:
    """The replacements an operation already made, from its history event: a retry returns them."""
    for event in history:
        if event.type in (REISSUED_EVENT, RESCHEDULED_EVENT) and event.data.get("operation_id") == operation_id:
            return {pair["old"]: pair["new"] for pair in event.data["tickets"]}
    return None
