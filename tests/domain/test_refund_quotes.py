"""Refund quotes and the ledger's effect on orders, as pure functions."""

from __future__ import annotations

import pytest

from tests.builders import NOW, eur, make_event, make_order
from ticketing import refund_ledger
from ticketing.errors import ActionNotAllowed, DomainError, InvalidTransition
from ticketing.models import EventPolicy, PaymentMethod, RefundKind
from ticketing.money import Money
from ticketing.processors import CAPABILITIES
from ticketing.refunds import ProcessorCapabilities, RefundRequest, quote_refund
from ticketing.states import RefundStatus, ScanState, TicketState


def _quote(order, event, **kw):
    request = RefundRequest(reason="customer request", **kw)
    return quote_refund(order, event, request, CAPABILITIES[order.payment.processor])


def test_full_refund_keeps_service_fee_and_invalidates_tickets() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2, booking_fee=100)
    quote = _quote(order, event, kind=RefundKind.FULL)
    assert quote.amount == eur(7000 + 100)  # the booking fee is refundable by default
    assert quote.fees_kept == eur(250)
    assert quote.tickets_invalidated == [t.id for t in order.tickets]
    assert quote.automatic and len(quote.quote_hash) == 64


def test_policy_can_refund_service_fees_and_keep_tickets() -> None:
    event, types, _ = make_event(policy=EventPolicy(refund_service_fees=True, refund_invalidates_tickets=False))
    order = make_order(event, types, tickets=1)
    quote = _quote(order, event, kind=RefundKind.FULL)
    assert quote.amount == eur(3750) and quote.fees_kept == eur(0)
    assert quote.tickets_invalidated == []


def test_hash_pins_the_order_version_and_the_request() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    a = _quote(order, event, kind=RefundKind.FULL)
    assert a.quote_hash == _quote(order, event, kind=RefundKind.FULL).quote_hash
    assert a.quote_hash != _quote(order.model_copy(update={"version": 2}), event, kind=RefundKind.FULL).quote_hash
    b = _quote(order, event, kind=RefundKind.TICKETS, ticket_ids=[order.tickets[0].id])
    assert a.quote_hash != b.quote_hash


@pytest.mark.parametrize(
    ("kw", "error_type"),
    [
        ({"kind": RefundKind.AMOUNT, "amount": Money(amount=7001, currency="EUR")}, "amount-exceeds-refundable"),
        ({"kind": RefundKind.AMOUNT, "amount": Money(amount=100, currency="USD")}, "currency-mismatch"),
        ({"kind": RefundKind.AMOUNT, "amount": Money(amount=0, currency="EUR")}, "invalid-amount"),
        ({"kind": RefundKind.AMOUNT}, "invalid-request"),
        ({"kind": RefundKind.TICKETS}, "invalid-request"),
        ({"kind": RefundKind.FULL, "ticket_ids": ["x"]}, "invalid-request"),
        ({"kind": RefundKind.TICKETS, "ticket_ids": ["tkt_missing"]}, "ticket-not-found"),
    ],
)
def test_refusals(kw: dict[str, object], error_type: str) -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    with pytest.raises(DomainError) as info:
        _quote(order, event, **kw)
    assert info.value.type == error_type


def test_duplicate_and_used_and_refunded_tickets_are_refused() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=3)
    t0, t1, t2 = order.tickets
    with pytest.raises(ActionNotAllowed, match="twice"):
        _quote(order, event, kind=RefundKind.TICKETS, ticket_ids=[t0.id, t0.id])
    order = order.model_copy(
        update={
            "tickets": [
                t0.model_copy(update={"scan_state": ScanState.SCANNED_IN}),
                t1.model_copy(update={"state": TicketState.REFUNDED}),
                t2.model_copy(update={"state": TicketState.CANCELLED}),
            ]
        }
    )
    for ticket, error_type in ((t0, "ticket-used"), (t1, "ticket-already-refunded"), (t2, "ticket-already-cancelled")):
        with pytest.raises(ActionNotAllowed) as info:
            _quote(order, event, kind=RefundKind.TICKETS, ticket_ids=[ticket.id])
        assert info.value.type == error_type
    lenient, _, _ = make_event(policy=EventPolicy(refund_scanned_tickets=True))
    assert _quote(order, lenient, kind=RefundKind.TICKETS, ticket_ids=[t0.id]).amount == eur(3500)


def test_processor_without_partial_refunds_refuses_partial() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    whole_only = ProcessorCapabilities(
        async_confirmation=False, partial_refunds=False, succeeded_is_final=True, manual=False
    )
    request = RefundRequest(kind=RefundKind.TICKETS, ticket_ids=[order.tickets[0].id], reason="one ticket")
    with pytest.raises(ActionNotAllowed) as info:
        quote_refund(order, event, request, whole_only)
    assert info.value.type == "partial-refund-unsupported"
    everything = RefundRequest(kind=RefundKind.AMOUNT, amount=eur(7250), reason="all of it")
    with pytest.raises(ActionNotAllowed):  # 72.50 is more than the refundable 70.00
        quote_refund(order, event, everything, whole_only)


def _opened(order, event, *, approval: bool = False):
    quote = _quote(order, event, kind=RefundKind.TICKETS, ticket_ids=[order.tickets[0].id])
    return refund_ledger.open_refund(
        order, quote, refund_id="rf_1", workflow_id="refund/X/1", actor="agent", now=NOW, needs_approval=approval
    )


def test_ledger_lifecycle_keeps_totals_consistent() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    order, refund, events = _opened(order, event)
    assert refund.status is RefundStatus.REFUNDING and [e.type for e in events] == ["refunding-items"]
    assert order.pending_refund_total == eur(3500) and order.tickets[0].state is TicketState.REFUNDED
    order, refund, _ = refund_ledger.submitted(order, refund, processor_refund_id="re_1", actor="t", now=NOW)
    order, refund, events = refund_ledger.failed(order, refund, reason="expired_or_canceled_card", actor="t", now=NOW)
    assert refund.status is RefundStatus.FAILED and events[0].type == "refund-error"
    assert order.pending_refund_total == eur(0) and order.tickets[0].state is TicketState.VALID
    order, refund, _ = refund_ledger.retried(order, refund, actor="finance", now=NOW)
    assert refund.attempt == 2 and refund.idempotency_key == "refund/X/1/attempt-2"
    assert order.pending_refund_total == eur(3500) and order.tickets[0].state is TicketState.REFUNDED
    order, refund, _ = refund_ledger.succeeded(order, refund, actor="t", now=NOW, processor_refund_id="re_2")
    assert (order.pending_refund_total, order.refunded_total) == (eur(0), eur(3500))
    # Stripe fails it days later: the money and the ticket come back.
    order, refund, events = refund_ledger.failed(order, refund, reason="lost_or_stolen_card", actor="p", now=NOW)
    assert order.refunded_total == eur(0) and order.tickets[0].is_valid and events[0].data["after_success"]
    order, refund, events = refund_ledger.succeeded(order, refund, actor="fin", now=NOW, reference="BANK-1")
    assert events[0].type == "marked-refunded" and refund.confirmed_by == "fin"
    assert order.refunded_total == eur(3500) and order.tickets[0].state is TicketState.REFUNDED


def test_rejected_approval_releases_everything() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    order, refund, _ = _opened(order, event, approval=True)
    assert refund.status is RefundStatus.AWAITING_APPROVAL
    order, refund, events = refund_ledger.reject(order, refund, actor="ticketops", reason="approval-expired", now=NOW)
    assert refund.status is RefundStatus.REJECTED and order.pending_refund_total == eur(0)
    assert order.tickets[0].is_valid and events[0].type == "refund-rejected"
    with pytest.raises(InvalidTransition):
        refund_ledger.approve(order, refund, approver="x", now=NOW)


def test_free_and_manual_refunds() -> None:
    event, types, _ = make_event()
    free = make_order(event, types, method=PaymentMethod.FREE)
    _, refund, events = _opened(free, event)
    assert refund.status is RefundStatus.SUCCEEDED and refund.amount == eur(0)
    assert [e.type for e in events] == ["refunding-items", "item-refunded"]
    manual = make_order(event, types, method=PaymentMethod.INVOICE)
    order, refund, _ = _opened(manual, event)
    assert refund.status is RefundStatus.AWAITING_MANUAL and order.pending_refund_total == eur(3500)
    too_much = refund.model_copy(update={"status": RefundStatus.FAILED, "amount": eur(99999)})
    with pytest.raises(ActionNotAllowed):
        refund_ledger.retried(order, too_much, actor="f", now=NOW)
