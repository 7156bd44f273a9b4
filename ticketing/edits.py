"""Direct corrections by an agent: one ticket's holder data, or the order's contact.

Each returns the new order and the names of the fields that really changed, so the history
records which fields were edited without copying personal data into it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, Order, Personalisation
from ticketing.policies.actions import edit_contact_refusal, edit_ticket_refusal

TICKET_FIELDS = ("name", "email", "phone")
CONTACT_FIELDS = ("name", "email", "mobile")


def _same(field: str, old: str | None, new: str | None) -> bool:
    if field == "email" and old and new:
        return old.lower() == new.lower()
    return old == new


def edit_ticket(
    order: Order, event: Event, ticket_id: str, changes: Mapping[str, str | None]
) -> tuple[Order, list[str]]:
    """Overwrite a valid ticket's holder data (the seeds' "unclaim"); None clears a field."""
    if refusal := edit_ticket_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    ticket = order.ticket(ticket_id)
    if not ticket.is_valid:
        raise ActionNotAllowed(
            f"ticket {ticket_id} is {ticket.state.reason}; only valid tickets can be edited",
            type="ticket-invalid",
            ticket_id=ticket_id,
        )
    unknown = set(changes) - set(TICKET_FIELDS)
    if unknown:
        raise ValueError(f"not ticket fields: {sorted(unknown)}")
    old = ticket.personalisation or Personalisation()
    changed = [f for f in TICKET_FIELDS if f in changes and not _same(f, getattr(old, f), changes[f])]
    if not changed:
        return order, []
    new = old.model_copy(update={f: changes[f] for f in changed})
    holder = None if new == Personalisation() else new
    tickets = [t.model_copy(update={"personalisation": holder}) if t.id == ticket_id else t for t in order.tickets]
    return order.model_copy(update={"tickets": tickets}), changed


def edit_contact(order: Order, event: Event, changes: Mapping[str, str | None]) -> tuple[Order, list[str]]:
    """Correct the main booker's details; a verified account's email address stays (seed 003)."""
    if refusal := edit_contact_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        raise ValueError(f"not contact fields: {sorted(unknown)}")
    contact = order.contact
    changed = [f for f in CONTACT_FIELDS if f in changes and not _same(f, getattr(contact, f), changes[f])]
    if "email" in changed and contact.verified:
        raise ActionNotAllowed(
            "the contact has a verified account; its email address cannot be changed here",
            type="contact-verified",
        )
    if not changed:
        return order, []
    updated = contact.model_copy(update={f: changes[f] for f in changed})
    return order.model_copy(update={"contact": updated}), changed
