"""Ticket transfers (Intellitix: Item-transfer-created, Item-transfer-canceled, Invalid:transferred).

A transfer passes one ticket to a recipient, who accepts through a signed link before a
deadline. Decision: the recipient gets an order of their own. Accepting marks the old
ticket `invalid:transferred` (pointing at its replacement) on the giver's order and issues a
new ticket with a new barcode on a new order whose contact is the recipient, so the
recipient's delivery, resends and history are theirs, and the giver's order keeps its
payment: the money never moves (the new order is a free one, method `free`, amount zero).
Both orders' histories record it, each naming the other.

While open, the ticket is `in_transfer`: refunds, cancellation, reissue and resend of the
order refuse with `ticket-in-transfer`, and the gate rejects it. An event (or time-slot)
cancellation therefore closes the open transfers of its orders first, through each transfer's
own workflow, with the reason `event-cancelled`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from ticketing.errors import ActionNotAllowed
from ticketing.issuing import new_barcode, new_id, new_order_code
from ticketing.models import (
    Contact,
    Event,
    Order,
    OrderEvent,
    Payment,
    PaymentMethod,
    Personalisation,
    Processor,
    Ticket,
)
from ticketing.money import Money
from ticketing.policies.actions import Refusal, called_off_refusal, transfer_refusal
from ticketing.signed_links import sign
from ticketing.states import (
    TICKET_TRANSITIONS,
    TRANSFER_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    TicketState,
    TransferStatus,
    transition,
)

LINK_PURPOSE = "transfer"  # of the recipient's signed link (ticketing.signed_links)
MANAGE_PURPOSE = "manage-ticket"  # of the holder's "manage your ticket" link, which starts a transfer
OFFERED_EVENT = "item-transfer-offered"
CANCELED_EVENT = "item-transfer-canceled"  # the seed's spelling; also written when a transfer expires
TRANSFERRED_EVENT = "item-transferred"
CREATED_EVENT = "item-transfer-created"  # on the recipient's order
EVENT_CANCELLED = "event-cancelled"  # the reason an event (or time-slot) cancellation closes a transfer with


class TicketTransfer(BaseModel):
    """One transfer as the store keeps it; `id` is the workflow id (it carries order and ticket)."""

    model_config = ConfigDict(frozen=True)

    id: str
    order_code: str
    ticket_id: str
    recipient: Contact
    status: TransferStatus
    expires_at: datetime | None = None
    new_order_code: str | None = None
    new_ticket_id: str | None = None
    created_by: str
    created_at: datetime


class Accepted(BaseModel):
    model_config = ConfigDict(frozen=True)

    transfer: TicketTransfer
    order: Order
    history: list[OrderEvent]
    new_order: Order
    new_history: list[OrderEvent]


def deadline(event: Event, now: datetime, days: float) -> datetime:
    """The recipient's deadline: the configured days, never past the start of the event (whole seconds)."""
    return min(now + timedelta(days=days), event.starts_at).replace(microsecond=0)


def _refuse_ticket(order: Order, event: Event, ticket_id: str, now: datetime) -> None:
    if refusal := transfer_refusal(order, event, now, ticket_id):
        raise ActionNotAllowed(refusal.reason, type=refusal.type, ticket_id=ticket_id)


def manage_link(secret: str, public_url: str, order_code: str, ticket_id: str, event: Event, *, now: datetime
                ) -> tuple[str, datetime] | None:
    """The holder's signed link to start a transfer of one ticket, valid until the event starts (None then).

    The subject is `{order_code}/{ticket_id}`; the transfer's own rules are asked again when it is used.
    """
    expires = event.starts_at.replace(microsecond=0)
    if expires <= now:
        return None
    token = sign(secret, MANAGE_PURPOSE, f"{order_code}/{ticket_id}", expires)
    return f"{public_url.rstrip('/')}/transfers/start/{token}", expires


def manage_subject(subject: str) -> tuple[str, str]:
    """(order code, ticket id) of a verified manage link's subject."""
    code, _, ticket_id = subject.partition("/")
    return code, ticket_id


def check_request(order: Order, event: Event, ticket_id: str, now: datetime) -> None:
    """What the API asks before recording a transfer (the workflow asks again when it opens it)."""
    _refuse_ticket(order, event, ticket_id, now)


def _with_ticket(order: Order, ticket: Ticket) -> Order:
    return order.model_copy(update={"tickets": [ticket if t.id == ticket.id else t for t in order.tickets]})


def open_transfer(
    order: Order, event: Event, transfer: TicketTransfer, *, expires_at: datetime, now: datetime
) -> tuple[Order, TicketTransfer, OrderEvent]:
    """Put the ticket in transfer until `expires_at`."""
    _refuse_ticket(order, event, transfer.ticket_id, now)
    status = transition(TRANSFER_TRANSITIONS, transfer.status, TransferStatus.OFFERED, what="transfer")
    ticket = order.ticket(transfer.ticket_id).model_copy(update={"in_transfer": True})
    event_ = OrderEvent(
        type=OFFERED_EVENT,
        actor=transfer.created_by,
        at=now,
        data={"transfer_id": transfer.id, "ticket_id": ticket.id, "expires_at": expires_at.isoformat()},
        dedupe_key=f"{OFFERED_EVENT}:{transfer.id}",
    )
    return _with_ticket(order, ticket), transfer.model_copy(update={"status": status, "expires_at": expires_at}), event_


def close_transfer(
    order: Order, transfer: TicketTransfer, target: TransferStatus, *, actor: str, now: datetime, reason: str
) -> tuple[Order, TicketTransfer, list[OrderEvent]]:
    """Cancel or expire: the ticket is valid again for its holder. A transfer never opened frees nothing."""
    status = transition(TRANSFER_TRANSITIONS, transfer.status, target, what="transfer")
    closed = transfer.model_copy(update={"status": status})
    if transfer.status is TransferStatus.REQUESTED:
        return order, closed, []
    ticket = order.ticket(transfer.ticket_id).model_copy(update={"in_transfer": False})
    history = OrderEvent(
        type=CANCELED_EVENT,
        actor=actor,
        at=now,
        data={"transfer_id": transfer.id, "ticket_id": ticket.id, "reason": reason, "status": status.value},
        dedupe_key=f"{CANCELED_EVENT}:{transfer.id}",
    )
    return _with_ticket(order, ticket), closed, [history]


def link_refusal(order: Order, event: Event, transfer: TicketTransfer) -> Refusal | None:
    """What the recipient's link answers instead of accepting: the event or the slot called off first
    (the cancellation closed the transfer, or will), else a transfer no longer on offer."""
    if refusal := called_off_refusal(order, event):
        return refusal
    if transfer.status is not TransferStatus.OFFERED:
        return Refusal(type="transfer-closed", reason=f"this transfer is {transfer.status.value}")
    return None


def accept_transfer(order: Order, event: Event, transfer: TicketTransfer, *, now: datetime) -> Accepted:
    """The recipient accepted: old ticket `invalid:transferred`, a new ticket on a new order of theirs.

    Not once the event (or a time slot of the order) is cancelled: the cancellation's run has already
    chosen its orders, and a replacement issued after it would stay valid while the giver is refunded
    in full.
    """
    if refusal := called_off_refusal(order, event):
        raise ActionNotAllowed(f"{refusal.reason}; the transfer can only be cancelled", type=refusal.type)
    if transfer.expires_at is not None and now >= transfer.expires_at:
        raise ActionNotAllowed("the transfer has expired", type="transfer-expired")
    status = transition(TRANSFER_TRANSITIONS, transfer.status, TransferStatus.ACCEPTED, what="transfer")
    old = order.ticket(transfer.ticket_id)
    if not old.is_valid or not old.in_transfer:
        raise ActionNotAllowed(f"ticket {old.id} is no longer on offer", type="transfer-not-open")
    code = new_order_code()
    new = Ticket(
        id=new_id("tkt"),
        order_code=code,
        barcode=new_barcode(),
        ticket_type_id=old.ticket_type_id,
        time_slot_id=old.time_slot_id,
        price=Money.zero(order.currency),
        personalisation=Personalisation(name=transfer.recipient.name, email=transfer.recipient.email),
        requires_personalisation=old.requires_personalisation,
    )
    after_old = old.model_copy(
        update={
            "state": transition(TICKET_TRANSITIONS, old.state, TicketState.TRANSFERRED, what="ticket"),
            "in_transfer": False,
            "replaced_by": new.id,
        }
    )
    new_order = Order(
        code=code,
        event_id=order.event_id,
        status=OrderStatus.PAID,
        contact=transfer.recipient,
        payment=Payment(
            method=PaymentMethod.FREE,
            processor=Processor.FREE,
            status=PaymentStatus.SUCCEEDED,
            amount=Money.zero(order.currency),
        ),
        tickets=[new],
        refunded_total=Money.zero(order.currency),
        pending_refund_total=Money.zero(order.currency),
        created_at=now,
    )
    data = {"transfer_id": transfer.id, "from_order": order.code, "from_ticket": old.id,
            "to_order": code, "to_ticket": new.id}
    history = [
        OrderEvent(type=TRANSFERRED_EVENT, actor="transfer-recipient", at=now, data=data,
                   dedupe_key=f"{TRANSFERRED_EVENT}:{transfer.id}"),
        OrderEvent(type="item-invalidated", actor="transfer-recipient", at=now,
                   data={"transfer_id": transfer.id, "ticket_id": old.id, "reason": "transferred",
                         "replaced_by": new.id},
                   dedupe_key=f"item-invalidated:{transfer.id}:{old.id}"),
    ]
    new_history = [
        OrderEvent(type="order-created", actor="transfer-recipient", at=now, data={"transfer_id": transfer.id}),
        OrderEvent(type=CREATED_EVENT, actor="transfer-recipient", at=now, data=data,
                   dedupe_key=f"{CREATED_EVENT}:{transfer.id}"),
    ]
    return Accepted(
        transfer=transfer.model_copy(update={"status": status, "new_order_code": code, "new_ticket_id": new.id}),
        order=_with_ticket(order, after_old),
        history=history,
        new_order=new_order,
        new_history=new_history,
    )
