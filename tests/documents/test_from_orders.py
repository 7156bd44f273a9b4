"""What a buyer's documents say, built from real domain orders: codes, payment words, refund lines."""

from __future__ import annotations

from datetime import UTC, datetime

from documents.from_orders import (
    payment_method_label,
    refund_failure_in_words,
    refund_receipt_lines,
    ticket_document,
    tickets_email_context,
)
from ticketing.issuing import build_order
from ticketing.models import (
    Contact,
    Event,
    EventPolicy,
    Fee,
    FeeKind,
    Order,
    PaymentMethod,
    Processor,
    Refund,
    RefundKind,
    TicketType,
    TimeSlot,
)
from ticketing.money import Money
from ticketing.states import RefundStatus

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVENT = Event.model_validate(
    {
        "id": "ev1",
        "name": "Gala",
        "starts_at": datetime(2026, 6, 1, 19, 0, tzinfo=UTC),
        "venue": "Hall",
        "currency": "EUR",
        "policy": EventPolicy(),
    }
)
ADULT = TicketType.model_validate(
    {"id": "adult", "event_id": "ev1", "name": "Adult", "price": Money(amount=3900, currency="EUR"), "quota": 10}
)
LATE = TimeSlot(
    id="late", event_id="ev1", label="Late show", starts_at=datetime(2026, 6, 1, 22, 30, tzinfo=UTC), capacity=10
)


def _order(method: PaymentMethod = PaymentMethod.CARD, last4: str | None = "4242") -> Order:
    order = build_order(
        event=EVENT,
        items=[(ADULT, "late")] * 3,
        contact=Contact(name="Ada", email="ada@example.org"),
        method=method,
        created_at=NOW,
        fees=[Fee(kind=FeeKind.BOOKING, amount=Money(amount=250, currency="EUR"), refundable=True)],
    )
    return order.model_copy(update={"payment": order.payment.model_copy(update={"card_last4": last4})})


def _refund(order: Order, amount: int, ticket_ids: list[str]) -> Refund:
    return Refund(
        id="rf1",
        order_code=order.code,
        kind=RefundKind.FULL,
        amount=Money(amount=amount, currency="EUR"),
        ticket_ids=ticket_ids,
        fees_kept=Money.zero("EUR"),
        reason="customer asked",
        status=RefundStatus.SUCCEEDED,
        processor=Processor.STRIPE,
        workflow_id="wf",
        requested_by="agent",
        created_at=NOW,
        updated_at=NOW,
    )


def test_ticket_email_uses_the_slot_time_and_the_short_code() -> None:
    order = _order()
    docs = [ticket_document(order, EVENT, t, {"adult": ADULT}, {"late": LATE}) for t in order.tickets]
    context = tickets_email_context(EVENT, order.code, "Ada", docs)
    assert context["event_starts_at"] == LATE.starts_at  # not the event's 19:00
    assert [d.ticket_code for d in docs] == [f"{order.code}-1", f"{order.code}-2", f"{order.code}-3"]


def test_full_refund_lines_add_up_with_the_booking_fee_on_its_own_line() -> None:
    order = _order()
    refund = _refund(order, 3 * 3900 + 250, [t.id for t in order.tickets])
    lines = refund_receipt_lines(order, refund, {"adult": ADULT})
    assert lines[-1] == {"description": "Booking fee", "amount_display": "EUR 2.50"}
    assert lines[0]["description"] == f"Adult ticket {order.code}-1"
    assert not any("tkt_" in line["description"] for line in lines)
    assert len(lines) == 4


def test_ticket_refund_has_no_fee_line_and_an_amount_refund_one_line() -> None:
    order = _order()
    assert len(refund_receipt_lines(order, _refund(order, 3900, [order.tickets[0].id]), {"adult": ADULT})) == 1
    only = refund_receipt_lines(order, _refund(order, 1000, []), {"adult": ADULT})
    assert only == [{"description": f"Refund on order {order.code}", "amount_display": "EUR 10.00"}]


def test_payment_method_in_a_buyers_words() -> None:
    assert payment_method_label(_order()) == "card ending 4242"
    assert payment_method_label(_order(last4=None)) == "card"
    assert payment_method_label(_order(PaymentMethod.INVOICE, None)) == "invoice"
    assert payment_method_label(_order(PaymentMethod.WALLET, None)) == "wallet"


def test_failure_reasons_in_a_buyers_words() -> None:
    assert "expired or was cancelled" in refund_failure_in_words("expired_or_canceled_card")
    assert refund_failure_in_words("something_internal") == "Your bank or card provider sent the money back to us."
    assert "_" not in refund_failure_in_words(None)
