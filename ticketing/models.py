"""Plain pydantic models of the domain: events, orders, tickets, refunds, history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ticketing.money import Money, total
from ticketing.states import OrderStatus, PaymentStatus, RefundStatus, ScanState, TicketState


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class PaymentMethod(StrEnum):
    CARD = "card"
    WALLET = "wallet"
    INVOICE = "invoice"
    VOUCHER = "voucher"
    FREE = "free"


class Processor(StrEnum):
    STRIPE = "stripe"
    MANUAL = "manual"
    FREE = "free"


PROCESSOR_FOR_METHOD: dict[PaymentMethod, Processor] = {
    PaymentMethod.CARD: Processor.STRIPE,
    PaymentMethod.WALLET: Processor.STRIPE,
    PaymentMethod.INVOICE: Processor.MANUAL,
    PaymentMethod.VOUCHER: Processor.MANUAL,
    PaymentMethod.FREE: Processor.FREE,
}


class EventPolicy(Model):
    """Per-event rules; the defaults follow the seed backoffices."""

    refund_service_fees: bool = False
    refund_booking_fees: bool = True
    refund_scanned_tickets: bool = False
    refund_invalidates_tickets: bool = True
    allow_item_cancellation: bool = False
    cancellation_cutoff_hours: int = 0
    allow_transfers: bool = Field(default=True, description="Holders may pass a ticket to someone else.")
    refund_approval_threshold: int | None = Field(
        default=None, description="Refunds above this many minor units need a second approver."
    )
    # What the buyer's emails show; None takes the ticket office's defaults (settings.email).
    organiser_name: str | None = Field(default=None, description="Sender display name and email heading.")
    brand_colour: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$", description="Email accent, #rrggbb.")
    reply_to: str | None = Field(default=None, description="Where buyers' replies go.")


class TimeSlot(Model):
    id: str
    event_id: str
    label: str
    starts_at: datetime
    capacity: int
    sold: int = 0
    cancelled: bool = False  # by an event cancellation of this slot: its orders are cancelled whole

    @property
    def available(self) -> int:
        return self.capacity - self.sold


class TicketType(Model):
    id: str
    event_id: str
    name: str
    price: Money
    quota: int
    sold: int = 0
    requires_personalisation: bool = False


class Event(Model):
    id: str
    name: str
    venue: str | None = None
    starts_at: datetime
    currency: str
    policy: EventPolicy = EventPolicy()
    cancelled: bool = False
    cancelled_time_slots: list[str] = []  # ids of its time slots called off (the event goes on)


class FeeKind(StrEnum):
    SERVICE = "service"
    BOOKING = "booking"


class Fee(Model):
    kind: FeeKind
    amount: Money
    refundable: bool


class Contact(Model):
    name: str | None = None
    email: str | None = None
    mobile: str | None = None
    verified: bool = False


class Payment(Model):
    method: PaymentMethod
    processor: Processor
    reference: str | None = Field(default=None, description="The processor's payment id.")
    status: PaymentStatus
    amount: Money
    dispute_open: bool = False
    card_last4: str | None = Field(default=None, pattern=r"^[0-9]{4}$", description="Shown to the buyer.")


class Personalisation(Model):
    name: str | None = None
    email: str | None = None
    phone: str | None = None

    @property
    def complete(self) -> bool:
        return bool(self.name and self.email)


class Scan(Model):
    at: datetime
    result: str = Field(description="accepted or rejected")
    reason: str | None = None
    access_point: str | None = None
    scan_state: ScanState | None = None


class Ticket(Model):
    id: str
    order_code: str
    barcode: str
    ticket_type_id: str
    time_slot_id: str | None = None
    price: Money
    state: TicketState = TicketState.VALID
    scan_state: ScanState = ScanState.UNSCANNED
    personalisation: Personalisation | None = None
    requires_personalisation: bool = False
    replaced_by: str | None = None
    in_transfer: bool = False
    scans: list[Scan] = []

    @property
    def is_valid(self) -> bool:
        return self.state.is_valid

    @property
    def used(self) -> bool:
        return self.scan_state is not ScanState.UNSCANNED


class OrderLine(Model):
    ticket_type_id: str
    quantity: int
    unit_price: Money
    total: Money


class Order(Model):
    code: str
    event_id: str
    status: OrderStatus
    contact: Contact
    payment: Payment
    fees: list[Fee] = []
    tickets: list[Ticket] = []
    refunded_total: Money
    pending_refund_total: Money
    created_at: datetime
    version: int = 1

    @property
    def currency(self) -> str:
        return self.payment.amount.currency

    @property
    def paid_total(self) -> Money:
        if self.payment.status is PaymentStatus.SUCCEEDED:
            return self.payment.amount
        return Money.zero(self.currency)

    @property
    def non_refundable_fees(self) -> Money:
        return total([f.amount for f in self.fees if not f.refundable], self.currency)

    @property
    def refundable_total(self) -> Money:
        """Paid, minus refunded, minus pending, minus fees we keep; never below zero."""
        left = (
            self.paid_total
            - self.refunded_total
            - self.pending_refund_total
            - self.non_refundable_fees
        )
        return left if left.amount > 0 else Money.zero(self.currency)

    @property
    def fully_refunded(self) -> bool:
        """Money went back and nothing refundable is left or on its way: the one test of `refunded`.

        A free order has no money to give back: it is refunded when its refunds took every ticket."""
        if self.payment.method is PaymentMethod.FREE:
            return not self.valid_tickets and any(t.state is TicketState.REFUNDED for t in self.tickets)
        return (
            self.refunded_total.amount > 0 and self.pending_refund_total.is_zero and self.refundable_total.is_zero
        )

    @property
    def display_status(self) -> str:
        """The status as people read it: a paid order with money returned is `partly-refunded`."""
        if self.status is OrderStatus.PAID and self.refunded_total.amount > 0:
            return "partly-refunded"
        return self.status.value

    @property
    def lines(self) -> list[OrderLine]:
        """Order contents grouped by ticket type, as the receipt shows them."""
        grouped: dict[str, list[Ticket]] = {}
        for ticket in self.tickets:
            if ticket.state is not TicketState.REISSUED:
                grouped.setdefault(ticket.ticket_type_id, []).append(ticket)
        return [
            OrderLine(
                ticket_type_id=type_id,
                quantity=len(ts),
                unit_price=ts[0].price,
                total=total([t.price for t in ts], self.currency),
            )
            for type_id, ts in grouped.items()
        ]

    @property
    def valid_tickets(self) -> list[Ticket]:
        return [t for t in self.tickets if t.is_valid]

    def ticket_code(self, ticket_id: str) -> str:
        """What a buyer sees for a ticket: the order code and its place in the order (`K7QX2P-2`)."""
        for position, t in enumerate(self.tickets, start=1):
            if t.id == ticket_id:
                return f"{self.code}-{position}"
        return self.ticket(ticket_id).id  # raises NotFound

    def ticket(self, ticket_id: str) -> Ticket:
        for t in self.tickets:
            if t.id == ticket_id:
                return t
        from ticketing.errors import NotFound

        raise NotFound(f"ticket {ticket_id} is not on order {self.code}", type="ticket-not-found")


class OrderEvent(Model):
    """One entry of the order's history timeline; written with the change it records."""

    type: str
    actor: str
    at: datetime
    data: dict[str, Any] = {}
    id: int | None = None
    order_code: str | None = None
    dedupe_key: str | None = Field(
        default=None, description="Set by retried writers so an event is recorded once."
    )


class CommentScope(StrEnum):
    PURCHASE = "purchase"
    BUYER = "buyer"


class Comment(Model):
    id: int | None = None
    scope: CommentScope
    order_code: str
    buyer_email: str | None = None
    author: str
    text: str
    at: datetime


class RefundKind(StrEnum):
    FULL = "full"
    TICKETS = "tickets"
    AMOUNT = "amount"


class Refund(Model):
    """One refund in the ledger. Written before the processor is called."""

    id: str
    order_code: str
    kind: RefundKind
    amount: Money
    ticket_ids: list[str] = []
    fees_kept: Money
    reason: str
    status: RefundStatus
    processor: Processor
    workflow_id: str
    attempt: int = 1
    processor_refund_id: str | None = None
    failure_reason: str | None = None
    manual_reference: str | None = None
    requested_by: str
    approved_by: str | None = None
    confirmed_by: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def idempotency_key(self) -> str:
        """Processor idempotency key: from the workflow id, never the run id; new per attempt."""
        return f"{self.workflow_id}/attempt-{self.attempt}"
