"""One rule for transfers and refunds: a voluntary refund never pays back a ticket transferred away; an event
cancellation pays the payer for every ticket. Pure functions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import NOW, eur, make_event, make_order
from ticketing.bulk import RefundMode, RefundPlan
from ticketing.cancellation import CancelRequest, cancel_order
from ticketing.errors import ActionNotAllowed
from ticketing.event_cancellation import plan_refund
from ticketing.models import Contact, Event, Order, RefundKind
from ticketing.policies.actions import available_actions, refund_refusal, voluntary_refundable
from ticketing.processors import CAPABILITIES
from ticketing.refunds import RefundQuote, RefundRequest, quote_refund
from ticketing.states import TicketState, TransferStatus
from ticketing.transfers import TicketTransfer, accept_transfer, open_transfer


def _given_away(tickets: int = 2, count: int = 1) -> tuple[Event, Order, list[Order]]:
    """An order with `count` of its tickets transferred and accepted; and the recipients' orders."""
    event, types, _ = make_event()
    order = make_order(event, types, tickets=tickets)  # 35.00 a ticket, 2.50 service fee kept
    recipients = []
    for i in range(count):
        ticket = order.tickets[i]
        transfer = TicketTransfer(
            id=f"transfer/{order.code}/{ticket.id}/k", order_code=order.code, ticket_id=ticket.id,
            recipient=Contact(name="Grace", email="grace@example.com"), status=TransferStatus.REQUESTED,
            created_by="agent", created_at=NOW,
        )
        order, opened, _ = open_transfer(order, event, transfer, expires_at=NOW + timedelta(days=7), now=NOW)
        done = accept_transfer(order, event, opened, now=NOW + timedelta(hours=1))
        order = done.order
        recipients.append(done.new_order)
    return event, order, recipients


def _quote(order: Order, event: Event, **kw: object) -> RefundQuote:
    request = RefundRequest(reason="customer request", **kw)
    return quote_refund(order, event, request, CAPABILITIES[order.payment.processor])


def test_a_ticket_transferred_away_is_refused_by_ticket() -> None:
    event, order, _ = _given_away()
    gone, kept = order.tickets
    with pytest.raises(ActionNotAllowed) as refused:
        _quote(order, event, kind=RefundKind.TICKETS, ticket_ids=[gone.id])
    assert refused.value.type == "ticket-transferred"
    assert _quote(order, event, kind=RefundKind.TICKETS, ticket_ids=[kept.id]).amount == eur(3500)


def test_a_full_refund_pays_only_the_tickets_left_and_says_why() -> None:
    event, order, _ = _given_away()
    gone, left = order.tickets
    assert order.refundable_total == eur(7000) and voluntary_refundable(order) == eur(3500)
    quote = _quote(order, event, kind=RefundKind.FULL)
    assert quote.amount == eur(3500)
    assert [q.ticket_id for q in quote.tickets] == [left.id] and quote.tickets_invalidated == [left.id]
    (line,) = quote.kept
    assert (line.ticket_id, line.amount, line.reason_type) == (gone.id, eur(3500), "ticket-transferred")
    with pytest.raises(ActionNotAllowed) as more:
        _quote(order, event, kind=RefundKind.AMOUNT, amount=eur(3501))
    assert more.value.type == "amount-exceeds-refundable" and "transferred away" in more.value.detail
    assert _quote(order, event, kind=RefundKind.AMOUNT, amount=eur(3500)).amount == eur(3500)


def test_a_quote_without_transfers_hashes_as_before() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    quote = _quote(order, event, kind=RefundKind.FULL)
    assert quote.kept == [] and quote.amount == eur(7000)
    assert quote.quote_hash == _quote(order, event, kind=RefundKind.FULL).quote_hash


def test_every_ticket_given_away_disables_refund_and_return_with_the_same_type() -> None:
    event, order, _ = _given_away(count=2)
    refusal = refund_refusal(order, event)
    assert refusal is not None and refusal.type == "ticket-transferred"
    actions = {a.name: a for a in available_actions(order, event)}
    assert (actions["refund"].enabled, actions["refund"].reason_type) == (False, "ticket-transferred")
    assert actions["request-return"].reason_type == "ticket-transferred"
    with pytest.raises(ActionNotAllowed) as full:
        _quote(order, event, kind=RefundKind.FULL)
    assert full.value.type == "ticket-transferred"
    assert refund_refusal(order, event, event_cancelled=True) is None


def test_an_agents_cancellation_with_refund_keeps_the_transferred_ticket_paid() -> None:
    event, order, _ = _given_away()
    done = cancel_order(order, event, CancelRequest(reason="buyer asked", refund=True), actor="agent", now=NOW,
                        operation_id="cancel/x/1")
    assert done.refund_quote is not None and done.refund_quote.amount == eur(3500)
    assert done.order.ticket(order.tickets[0].id).state is TicketState.TRANSFERRED


def test_event_cancellation_refunds_the_payer_for_every_ticket_and_cancels_the_replacement() -> None:
    event, order, (theirs,) = _given_away()
    called_off = event.model_copy(update={"cancelled": True})
    cancelled = cancel_order(order, called_off, CancelRequest(reason="show called off"), actor="ops", now=NOW,
                             operation_id="bulk/1/x").order
    quote = plan_refund(cancelled, called_off, RefundPlan(mode=RefundMode.FULL), "show called off")
    assert isinstance(quote, RefundQuote) and quote.amount == eur(7000) and quote.kept == []
    replacement = cancel_order(theirs, called_off, CancelRequest(reason="show called off"), actor="ops", now=NOW,
                               operation_id="bulk/1/y").order
    assert {t.state for t in replacement.tickets} == {TicketState.CANCELLED}


def test_no_acceptance_once_the_event_is_cancelled() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=1)
    transfer = TicketTransfer(
        id="transfer/x/y/k", order_code=order.code, ticket_id=order.tickets[0].id,
        recipient=Contact(name="Grace", email="grace@example.com"), status=TransferStatus.REQUESTED,
        created_by="agent", created_at=NOW,
    )
    order, opened, _ = open_transfer(order, event, transfer, expires_at=NOW + timedelta(days=7), now=NOW)
    with pytest.raises(ActionNotAllowed) as refused:
        accept_transfer(order, event.model_copy(update={"cancelled": True}), opened, now=NOW)
    assert refused.value.type == "event-cancelled"
