"""Transfer rules and signed links as pure functions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import NOW, make_event, make_order
from ticketing.errors import ActionNotAllowed, InvalidTransition
from ticketing.models import Contact, EventPolicy
from ticketing.policies.actions import transfer_refusal
from ticketing.signed_links import LinkExpired, LinkInvalid, sign, verify
from ticketing.states import OrderStatus, ScanState, TicketState, TransferStatus
from ticketing.transfers import (
    TicketTransfer,
    accept_transfer,
    close_transfer,
    deadline,
    link_refusal,
    open_transfer,
)

BEFORE = NOW  # the builders' event starts 30 days after NOW


def _setup(**policy: object):
    event, types, _ = make_event(policy=EventPolicy(**policy))
    order = make_order(event, types, tickets=2)
    transfer = TicketTransfer(
        id=f"transfer/{order.code}/{order.tickets[0].id}/k", order_code=order.code, ticket_id=order.tickets[0].id,
        recipient=Contact(name="Grace", email="grace@example.com"), status=TransferStatus.REQUESTED,
        created_by="agent", created_at=NOW,
    )
    return event, order, transfer


def test_each_refusal_has_its_type() -> None:
    event, order, _ = _setup()
    t0, t1 = order.tickets
    assert transfer_refusal(order, event, BEFORE, t0.id) is None
    assert transfer_refusal(order, event.model_copy(update={"policy": EventPolicy(allow_transfers=False)}),
                            BEFORE).type == "transfers-not-allowed"  # type: ignore[union-attr]
    assert transfer_refusal(order, event, event.starts_at).type == "event-started"  # type: ignore[union-attr]
    used = order.model_copy(update={"tickets": [t0.model_copy(update={"scan_state": ScanState.SCANNED_IN}), t1]})
    assert transfer_refusal(used, event, BEFORE, t0.id).type == "ticket-used"  # type: ignore[union-attr]
    assert transfer_refusal(used, event, BEFORE) is None  # the other ticket still can
    refunded = [t.model_copy(update={"state": TicketState.REFUNDED}) for t in order.tickets]
    gone = order.model_copy(update={"tickets": refunded})
    assert transfer_refusal(gone, event, BEFORE).type == "ticket-invalid"  # type: ignore[union-attr]
    reserved = order.model_copy(update={"status": OrderStatus.RESERVED})
    assert transfer_refusal(reserved, event, BEFORE).type == "order-reserved"  # type: ignore[union-attr]


def test_open_accept_and_the_deadline_never_passes_the_event_start() -> None:
    event, order, transfer = _setup()
    assert deadline(event, NOW, 7) == NOW + timedelta(days=7)
    assert deadline(event, NOW, 90) == event.starts_at
    opened_order, opened, _ = open_transfer(order, event, transfer, expires_at=NOW + timedelta(days=7), now=NOW)
    with pytest.raises(ActionNotAllowed) as twice:
        open_transfer(opened_order, event, transfer, expires_at=NOW + timedelta(days=7), now=NOW)
    assert twice.value.type == "ticket-in-transfer"
    with pytest.raises(ActionNotAllowed) as late:
        accept_transfer(opened_order, event, opened, now=NOW + timedelta(days=7))
    assert late.value.type == "transfer-expired"
    done = accept_transfer(opened_order, event, opened, now=NOW + timedelta(days=1))
    old = done.order.ticket(transfer.ticket_id)
    new_id = done.new_order.tickets[0].id
    assert (old.state, old.in_transfer, old.replaced_by) == (TicketState.TRANSFERRED, False, new_id)
    assert done.new_order.contact.email == "grace@example.com" and done.new_order.payment.amount.is_zero
    with pytest.raises(InvalidTransition):
        close_transfer(done.order, done.transfer, TransferStatus.CANCELLED, actor="a", now=NOW, reason="late")


def test_signed_links_refuse_tampering_other_purposes_and_expiry() -> None:
    token = sign("s", "transfer", "transfer/ABC/t/k", NOW + timedelta(hours=1))
    assert verify("s", "transfer", token, now=NOW)[0] == "transfer/ABC/t/k"
    for bad_secret, purpose, tok in (("x", "transfer", token), ("s", "return", token), ("s", "transfer", token[:-2])):
        with pytest.raises(LinkInvalid):
            verify(bad_secret, purpose, tok, now=NOW)
    with pytest.raises(LinkExpired) as expired:
        verify("s", "transfer", token, now=NOW + timedelta(hours=1))
    assert expired.value.type == "transfer-link-expired"


def test_a_called_off_event_or_slot_refuses_opening_accepting_and_the_link() -> None:
    """A slot's cancellation cancels every order with a ticket in it whole, so any ticket of it is refused."""
    event, types, _ = make_event()
    slot = f"{event.id}_eve"
    order = make_order(event, types, tickets=2, slot=slot)
    transfer = TicketTransfer(
        id=f"transfer/{order.code}/{order.tickets[1].id}/k", order_code=order.code, ticket_id=order.tickets[1].id,
        recipient=Contact(name="Grace", email="grace@example.com"), status=TransferStatus.REQUESTED,
        created_by="agent", created_at=NOW,
    )
    opened_order, opened, _ = open_transfer(order, event, transfer, expires_at=NOW + timedelta(days=7), now=NOW)
    assert link_refusal(opened_order, event, opened) is None
    other_slot = event.model_copy(update={"cancelled_time_slots": [f"{event.id}_late"]})
    assert transfer_refusal(order, other_slot, BEFORE) is None  # another slot's cancellation is not this order's
    for called_off, type_ in [
        (event.model_copy(update={"cancelled": True}), "event-cancelled"),
        (event.model_copy(update={"cancelled_time_slots": [slot]}), "time-slot-cancelled"),
    ]:
        assert transfer_refusal(order, called_off, BEFORE).type == type_  # type: ignore[union-attr]
        with pytest.raises(ActionNotAllowed) as refused:
            open_transfer(order, called_off, transfer, expires_at=NOW + timedelta(days=7), now=NOW)
        assert refused.value.type == type_
        with pytest.raises(ActionNotAllowed) as refused:
            accept_transfer(opened_order, called_off, opened, now=NOW + timedelta(days=1))
        assert refused.value.type == type_
        closed = opened.model_copy(update={"status": TransferStatus.CANCELLED})
        assert link_refusal(opened_order, called_off, closed).type == type_  # type: ignore[union-attr]
    closed = opened.model_copy(update={"status": TransferStatus.CANCELLED})
    assert link_refusal(opened_order, event, closed).type == "transfer-closed"  # type: ignore[union-attr]
