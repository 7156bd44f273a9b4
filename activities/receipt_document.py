"""Building an order's receipt from its domain state (rendering is documents' job)."""

from __future__ import annotations

from collections.abc import Sequence

from documents.models import ReceiptDocument, ReceiptLine
from ticketing.models import Event, Order, Refund, TicketType
from ticketing.money import Money, total
from ticketing.states import RefundStatus


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
