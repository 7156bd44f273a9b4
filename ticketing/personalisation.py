"""Personalisation of an order's tickets: reset for a new round, and the buyer's submission.

Only valid tickets whose type requires personal data take part; the others keep what they
have. Both functions are pure: the caller saves the result through `save_order`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, Order, Personalisation, Ticket
from ticketing.policies.actions import personalisation_refusal
from ticketing.states import OrderStatus


def personalisable(order: Order) -> list[Ticket]:
    return [t for t in order.valid_tickets if t.requires_personalisation]


def reset_personalisation(order: Order, event: Event) -> tuple[Order, list[str]]:
    """Clear the holder data of every personalisable ticket; refuses as the action list does."""
    if refusal := personalisation_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    targets = {t.id for t in personalisable(order)}
    tickets = [t.model_copy(update={"personalisation": None}) if t.id in targets else t for t in order.tickets]
    return order.model_copy(update={"tickets": tickets}), [t.id for t in order.tickets if t.id in targets]


def link_refusal(order: Order) -> None:
    """A link still works only while the order is paid and has tickets to personalise."""
    if order.status is not OrderStatus.PAID:
        raise ActionNotAllowed(f"the order is {order.status.value}", type=f"order-{order.status.value}")
    if not personalisable(order):
        raise ActionNotAllowed(
            "no valid ticket of this order requires personal data", type="personalisation-not-required"
        )


def submit_personalisation(order: Order, entries: Mapping[str, Personalisation]) -> Order:
    """Write the holders the buyer entered; every ticket named must be one to personalise."""
    link_refusal(order)
    allowed = {t.id for t in personalisable(order)}
    for ticket_id, holder in entries.items():
        order.ticket(ticket_id)  # NotFound for a ticket of another order
        if ticket_id not in allowed:
            raise ActionNotAllowed(
                f"ticket {ticket_id} cannot be personalised", type="ticket-not-personalisable", ticket_id=ticket_id
            )
        if not holder.complete:
            raise ActionNotAllowed(
                f"ticket {ticket_id} needs a name and an email address", type="personalisation-incomplete"
            )
    tickets = [t.model_copy(update={"personalisation": entries[t.id]}) if t.id in entries else t for t in order.tickets]
    return order.model_copy(update={"tickets": tickets})
