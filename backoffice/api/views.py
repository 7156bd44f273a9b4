"""Response models of the API: what an agent sees of an order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ticketing.models import Comment, Event, Order, OrderEvent, TicketType, TimeSlot
from ticketing.money import Money
from ticketing.policies.actions import Action, available_actions


class MoneyView(BaseModel):
    amount: int
    currency: str
    display: str

    @classmethod
    def of(cls, money: Money) -> MoneyView:
        return cls(amount=money.amount, currency=money.currency, display=money.display())


class ScanView(BaseModel):
    at: datetime
    result: str
    reason: str | None
    access_point: str | None


class PersonalisationView(BaseModel):
    name: str | None
    email: str | None
    phone: str | None


class TicketView(BaseModel):
    id: str
    barcode: str
    ticket_type: str
    time_slot: str | None
    price: MoneyView
    status: str
    invalid_reason: str | None
    scan_state: str
    last_scan: ScanView | None
    scan_history: list[ScanView]
    requires_personalisation: bool
    personalisation: PersonalisationView | None
    replaced_by: str | None


class LineView(BaseModel):
    ticket_type: str
    quantity: int
    unit_price: MoneyView
    total: MoneyView


class FeeView(BaseModel):
    kind: str
    amount: MoneyView
    refundable: bool


class TotalsView(BaseModel):
    paid: MoneyView
    refunded: MoneyView
    pending_refund: MoneyView
    non_refundable_fees: MoneyView
    refundable: MoneyView


class ContactView(BaseModel):
    name: str | None
    email: str | None
    mobile: str | None
    verified: bool


class PaymentView(BaseModel):
    method: str
    processor: str
    status: str
    amount: MoneyView
    dispute_open: bool
    card_last4: str | None = None


class EventSummary(BaseModel):
    id: str
    name: str
    starts_at: datetime


class HistoryView(BaseModel):
    type: str
    actor: str
    at: datetime
    data: dict[str, Any]


class CommentView(BaseModel):
    id: int | None
    scope: str
    author: str
    text: str
    at: datetime


class OrderSummary(BaseModel):
    code: str
    event_id: str
    status: str
    display_status: str  # `status`, or `partly-refunded` for a paid order with money returned
    payment_method: str
    card_last4: str | None = None  # the demo's test cards: 4242 refunds at once, 7726 pending, 5126 fails later
    contact_name: str | None
    contact_email: str | None
    total: MoneyView
    tickets: int
    created_at: datetime


class OrderView(BaseModel):
    code: str
    status: str
    display_status: str  # `status`, or `partly-refunded` for a paid order with money returned
    event: EventSummary
    created_at: datetime
    contact: ContactView
    payment: PaymentView
    lines: list[LineView]
    fees: list[FeeView]
    totals: TotalsView
    tickets: list[TicketView]
    history: list[HistoryView]
    comments: list[CommentView]
    actions: list[Action]
    version: int


def _scan(s: Any) -> ScanView:
    return ScanView(at=s.at, result=s.result, reason=s.reason, access_point=s.access_point)


def order_summary(order: Order) -> OrderSummary:
    return OrderSummary(
        code=order.code,
        event_id=order.event_id,
        status=order.status.value,
        display_status=order.display_status,
        payment_method=order.payment.method.value,
        card_last4=order.payment.card_last4,
        contact_name=order.contact.name,
        contact_email=order.contact.email,
        total=MoneyView.of(order.payment.amount),
        tickets=len(order.tickets),
        created_at=order.created_at,
    )


def order_view(
    order: Order,
    event: Event,
    types: dict[str, TicketType],
    slots: dict[str, TimeSlot],
    history: list[OrderEvent],
    comments: list[Comment],
) -> OrderView:
    return OrderView(
        code=order.code,
        status=order.status.value,
        display_status=order.display_status,
        event=EventSummary(id=event.id, name=event.name, starts_at=event.starts_at),
        created_at=order.created_at,
        contact=ContactView(**order.contact.model_dump()),
        payment=PaymentView(
            method=order.payment.method.value,
            processor=order.payment.processor.value,
            status=order.payment.status.value,
            amount=MoneyView.of(order.payment.amount),
            dispute_open=order.payment.dispute_open,
            card_last4=order.payment.card_last4,
        ),
        lines=[
            LineView(
                ticket_type=types[line.ticket_type_id].name,
                quantity=line.quantity,
                unit_price=MoneyView.of(line.unit_price),
                total=MoneyView.of(line.total),
            )
            for line in order.lines
        ],
        fees=[
            FeeView(kind=f.kind.value, amount=MoneyView.of(f.amount), refundable=f.refundable)
            for f in order.fees
        ],
        totals=TotalsView(
            paid=MoneyView.of(order.paid_total),
            refunded=MoneyView.of(order.refunded_total),
            pending_refund=MoneyView.of(order.pending_refund_total),
            non_refundable_fees=MoneyView.of(order.non_refundable_fees),
            refundable=MoneyView.of(order.refundable_total),
        ),
        tickets=[
            TicketView(
                id=t.id,
                barcode=t.barcode,
                ticket_type=types[t.ticket_type_id].name,
                time_slot=slots[t.time_slot_id].label if t.time_slot_id in slots else None,
                price=MoneyView.of(t.price),
                status="valid" if t.is_valid else "invalid",
                invalid_reason=t.state.reason,
                scan_state=t.scan_state.value,
                last_scan=_scan(t.scans[-1]) if t.scans else None,
                scan_history=[_scan(s) for s in t.scans],
                requires_personalisation=t.requires_personalisation,
                personalisation=PersonalisationView(**t.personalisation.model_dump())
                if t.personalisation
                else None,
                replaced_by=t.replaced_by,
            )
            for t in order.tickets
        ],
        history=[HistoryView(type=h.type, actor=h.actor, at=h.at, data=h.data) for h in history],
        comments=[
            CommentView(id=c.id, scope=c.scope.value, author=c.author, text=c.text, at=c.at)
            for c in comments
        ],
        actions=available_actions(order, event, list(slots.values())),
        version=order.version,
    )
