"""Building the documents of an order from its domain state (no rendering here)."""

from __future__ import annotations

from documents.models import TicketDocument
from ticketing.models import Event, Order, Ticket, TicketType, TimeSlot


def ticket_document(
    order: Order, event: Event, ticket: Ticket, types: dict[str, TicketType], slots: dict[str, TimeSlot]
) -> TicketDocument:
    slot = slots.get(ticket.time_slot_id) if ticket.time_slot_id else None
    holder = ticket.personalisation.name if ticket.personalisation else None
    return TicketDocument(
        order_code=order.code,
        ticket_id=ticket.id,
        barcode=ticket.barcode,
        event_name=event.name,
        event_starts_at=slot.starts_at if slot else event.starts_at,
        venue=event.venue,
        time_slot_label=slot.label if slot else None,
        ticket_type=types[ticket.ticket_type_id].name,
        holder_name=holder,
        price_display=ticket.price.display(),
    )
