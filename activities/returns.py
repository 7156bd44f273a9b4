"""Return request activities: the order's status moves on `orders`; the decline notice on `email`."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import DeliveryOutcome, RefundToStart, ReturnDeclinedEmail, ReturnState, ReturnStep
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.errors import domain_errors
from documents.email_templates import render_email
from email_providers.base import OutgoingEmail
from ticketing.cancellation import refund_id_for
from ticketing.models import Order, OrderEvent
from ticketing.policies.actions import buyer_email
from ticketing.returns import (
    DECLINED_EVENT,
    REFUND_FAILED_EVENT,
    REQUESTED_EVENT,
    RETURNED_EVENT,
    approve_return,
    decline_return,
    request_return,
    settle_return,
)
from ticketing.store.orders import append_history, load_event, load_history, load_order, save_order


def _state(order: Order) -> ReturnState:
    return ReturnState(order_code=order.code, event_id=order.event_id, status=order.status.value)


async def _recorded(conn: object, code: str, kinds: tuple[str, ...], operation_id: str) -> bool:
    return any(e.type in kinds and e.data.get("operation_id") == operation_id
               for e in await load_history(conn, code))  # type: ignore[arg-type]


class ReturnActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="open_return")
    @domain_errors
    async def open_return(self, req: ReturnStep) -> ReturnState:
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            if await _recorded(conn, order.code, (REQUESTED_EVENT,), req.operation_id):
                return _state(order)
            event = await load_event(conn, order.event_id)
            after, entry = request_return(order, event, reason=req.reason, via=req.via, actor=req.actor,
                                          now=datetime.now(UTC), operation_id=req.operation_id)
            after = await save_order(conn, order, after, [entry])
        return _state(after)

    @activity.defn(name="decline_return")
    @domain_errors
    async def decline_return(self, req: ReturnStep) -> ReturnState:
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            if await _recorded(conn, order.code, (DECLINED_EVENT,), req.operation_id):
                return _state(order)
            event = await load_event(conn, order.event_id)
            after, entry = decline_return(order, event, reason=req.reason, actor=req.actor, now=datetime.now(UTC),
                                          operation_id=req.operation_id)
            after = await save_order(conn, order, after, [entry])
        return _state(after)

    @activity.defn(name="approve_return")
    @domain_errors
    async def approve_return(self, req: ReturnStep) -> RefundToStart:
        """Record the approval and quote the full refund on the order as it is (nothing else changes)."""
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            event = await load_event(conn, order.event_id)
            quote, entry = approve_return(order, event, reason=req.reason or "return approved", actor=req.actor,
                                          now=datetime.now(UTC), operation_id=req.operation_id)
            await append_history(conn, order.code, [entry])
        return RefundToStart(
            refund_id=refund_id_for(req.operation_id), kind=quote.kind.value, amount=quote.amount.amount,
            currency=quote.amount.currency, quote_hash=quote.quote_hash, reason=quote.reason,
            processor=quote.processor.value,
        )

    @activity.defn(name="settle_return")
    @domain_errors
    async def settle_return(self, req: ReturnStep) -> ReturnState:
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            if await _recorded(conn, order.code, (RETURNED_EVENT, REFUND_FAILED_EVENT), req.operation_id):
                return _state(order)
            event = await load_event(conn, order.event_id)
            after, entry = settle_return(order, event, refund_status=req.refund_status or "", refund_id=req.refund_id
                                         or "", now=datetime.now(UTC), operation_id=req.operation_id)
            after = await save_order(conn, order, after, [entry])
        return _state(after)


class ReturnEmailActivities(DeliveryActivities):
    @activity.defn(name="send_return_declined")
    @domain_errors
    async def send_return_declined(self, req: ReturnDeclinedEmail) -> DeliveryOutcome:
        """Tell the buyer the return was declined, and why."""
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code)
            event = await load_event(conn, order.event_id)
        recipient = buyer_email(order)
        body = (f"Your request to return order {order.code} for {event.name} was declined.\n\n"
                f"Reason: {req.reason}\n\nYour tickets stay valid.")

        async def build(mid: str) -> OutgoingEmail:
            rendered = render_email("custom_message", {
                "subject": f"Your return request for order {order.code}", "body": body,
                "event_name": event.name, "event_starts_at": event.starts_at,
                "buyer_name": order.contact.name, "order_code": order.code,
            })
            return OutgoingEmail(message_id=mid, sender=self.deps.settings.email.sender, to=[recipient],
                                 subject=rendered.subject, text=rendered.text, html=rendered.html)

        return await self._send_once(
            order_code=order.code, operation_id=req.operation_id, kind="return-declined", recipient=recipient,
            document="return-declined", build=build,
            history=OrderEvent(type="return-declined-sent", actor="ticketops", at=datetime.now(UTC),
                               data={"operation_id": req.operation_id}),
        )
