"""Building an order's documents (its tickets, its receipt) from its domain state; no rendering here.

Pure mappers from `ticketing` models to `documents.models`: the email activities and the
backoffice API (a PDF on request) both call them, so they live below both, in `documents/`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from documents.models import ReceiptDocument, ReceiptLine, TicketDocument
from ticketing.models import Event, Order, PaymentMethod, Refund, Ticket, TicketType, TimeSlot
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
        ticket_code=order.ticket_code(ticket.id),
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
        payment_method=_capitalised(payment_method_label(order)),
    )


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


_METHOD_NAMES = {
    PaymentMethod.CARD: "card",
    PaymentMethod.WALLET: "wallet",
    PaymentMethod.INVOICE: "invoice",
    PaymentMethod.VOUCHER: "voucher",
    PaymentMethod.FREE: "no payment (free order)",
}


def payment_method_label(order: Order) -> str:
    """What the buyer paid with, in their words: `card ending 4242`, `wallet`, `invoice`."""
    name = _METHOD_NAMES[order.payment.method]
    if order.payment.method is PaymentMethod.CARD and order.payment.card_last4:
        return f"{name} ending {order.payment.card_last4}"
    return name


def tickets_email_context(
    event: Event,
    order_code: str,
    buyer_name: str | None,
    docs: Sequence[TicketDocument],
    return_link: str | None = None,
    manage_links: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The tickets email's context: its "When" is the tickets' own time (their slot's), never
    the event's default; tickets at different times each show their own and "When" is left out.
    `return_link`: the buyer's signed return link, when the event lets the order be returned;
    `manage_links`: by ticket code, the holder's signed link to transfer that ticket, where allowed."""
    times = {d.event_starts_at for d in docs}
    return {
        "event_name": event.name,
        "event_starts_at": times.pop() if len(times) == 1 else None,
        "venue": event.venue,
        "order_code": order_code,
        "buyer_name": buyer_name,
        "tickets": [d.model_dump() | {"manage_link": (manage_links or {}).get(d.ticket_code)} for d in docs],
        "return_link": return_link,
    }


def refund_receipt_lines(order: Order, refund: Refund, types: dict[str, TicketType]) -> list[dict[str, str]]:
    """The refund receipt's lines; they add up to the refund's amount.

    A refund covers its tickets' prices and, on a full refund, the fees the event refunds:
    what the tickets do not explain is those fees, on a line of their own.
    """
    tickets = {t.id: t for t in order.tickets}
    refunded = [tickets[tid] for tid in refund.ticket_ids if tid in tickets]
    lines = [
        {
            "description": f"{types[t.ticket_type_id].name} ticket {order.ticket_code(t.id)}"
            if t.ticket_type_id in types
            else f"Ticket {order.ticket_code(t.id)}",
            "amount_display": t.price.display(),
        }
        for t in refunded
    ]
    rest = refund.amount - total([t.price for t in refunded], refund.amount.currency)
    if not lines or rest.amount < 0:
        return [{"description": f"Refund on order {order.code}", "amount_display": refund.amount.display()}]
    if rest.amount > 0:
        kinds = [f.kind.value for f in order.fees if f.refundable] or ["booking"]
        label = " and ".join(kinds).capitalize() + (" fees" if len(kinds) > 1 else " fee")
        lines.append({"description": label, "amount_display": rest.display()})
    return lines


# Processor failure codes, as a buyer would understand them; anything else gets the general sentence.
_FAILURES_IN_WORDS = {
    "expired_or_canceled_card": "Your card has expired or was cancelled, so your bank sent the money back to us.",
    "lost_or_stolen_card": "Your card was reported lost or stolen, so your bank sent the money back to us.",
    "charge_for_pending_refund_disputed": "The payment is disputed with your bank, so the refund was stopped.",
    "insufficient_funds": "The refund could not be paid out yet.",
    "declined": "Your bank did not accept the refund.",
}
_FAILURE_GENERAL = "Your bank or card provider sent the money back to us."


def refund_failure_in_words(reason: str | None) -> str:
    """The processor's failure reason (`expired_or_canceled_card`, `declined: ...`) in a buyer's words."""
    for code, words in _FAILURES_IN_WORDS.items():
        if reason and code in reason:
            return words
    return _FAILURE_GENERAL
