"""Building an order's documents (its tickets, its receipt) from its domain state; no rendering here.

Pure mappers from `ticketing` models to `documents.models`: the email activities and the
backoffice API (a PDF on request) both call them, so they live below both, in `documents/`.
"""

from __future__ import annotations

from collections.abc import Sequence

from documents.models import ReceiptDocument, ReceiptLine, TicketDocument
from ticketing.models import Event, Order, Refund, Ticket, TicketType, TimeSlot
from ticketing.money import Money, total
from ticketing.states import RefundStatus


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


def _line(description: str, quantity: int, unit: Money, amount: Money) -> ReceiptLine:
    return ReceiptLine(
        description=description, quantity=quantity, unit_price_display=unit.display(), total_display=amount.display()
    )


def receipt_document(
    order: Order, event: Event, types: dict[str, TicketType], refunds: Sequence[Refund]
) -> ReceiptDocument:
    """Issued at the order's creation, so the same order gives the same bytes on every retry.

    Succeeded refunds are listed as negative lines and the total is what the buyer paid net
    of them; refunds still in progress are left out until they settle.
    """
    settled = sorted((r for r in refunds if r.status is RefundStatus.SUCCEEDED), key=lambda r: r.created_at)
    refunded = [r.amount.times(-1) for r in settled]
    net = total([order.paid_total, *refunded], order.currency)
    return ReceiptDocument(
        order_code=order.code,
        issued_at=order.created_at,
        buyer_name=order.contact.name,
        lines=[
            _line(f"{event.name}: {types[line.ticket_type_id].name}", line.quantity, line.unit_price, line.total)
            for line in order.lines
        ],
        fees=[_line(f"{fee.kind.value.capitalize()} fee", 1, fee.amount, fee.amount) for fee in order.fees],
        refunds=[
            _line(f"Refund of {r.created_at:%Y-%m-%d}", 1, amount, amount)
            for r, amount in zip(settled, refunded, strict=True)
        ],
        total_display=net.display(),
        payment_method=payment_method_label(order),
    )


def payment_method_label(order: Order) -> str:
    return order.payment.method.value.capitalize()
