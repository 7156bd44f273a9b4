"""Cancellation activities: the store change (orders queue), the payment void (payments
queue) and the notifications (email queue).

`cancel_order` is one transaction: order, tickets, seats and history. A retry
whose first run committed finds the operation's history and answers from it
instead of refusing "already cancelled".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    CancellationEmails,
    CancellationNote,
    CancelOrder,
    CancelOutcome,
    EmailsOutcome,
    RefundToStart,
    VoidOutcome,
    VoidPayment,
)
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.errors import domain_errors
from documents.email_templates import render_email
from email_providers.base import OutgoingEmail
from payment_adapters.base import ProcessorRejected, ProcessorUnavailable
from ticketing.cancellation import (
    CancelRequest,
    RefundDecision,
    cancel_order,
    refund_after_cancellation,
    refund_id_for,
)
from ticketing.models import Event, Order, OrderEvent, Processor
from ticketing.money import Money
from ticketing.policies.actions import Refusal
from ticketing.refunds import RefundQuote
from ticketing.store.orders import (
    adjust_inventory,
    append_history,
    load_event,
    load_history,
    load_order,
    save_order,
)


def _outcome(
    order: Order,
    *,
    operation_id: str,
    ticket_ids: list[str],
    whole: bool,
    voided: bool,
    decision: RefundDecision,
    planned: RefundQuote | Refusal | None,
) -> CancelOutcome:
    plan = None
    refusal = None
    if isinstance(planned, RefundQuote):
        plan = RefundToStart(
            refund_id=refund_id_for(operation_id),
            kind=planned.kind.value,
            amount=planned.amount.amount,
            currency=planned.amount.currency,
            quote_hash=planned.quote_hash,
            reason=planned.reason,
            processor=planned.processor.value,
        )
    elif isinstance(planned, Refusal):
        refusal = planned.type
    return CancelOutcome(
        order_code=order.code,
        event_id=order.event_id,
        whole_order=whole,
        ticket_ids=ticket_ids,
        payment_voided=voided,
        processor=order.payment.processor.value,
        payment_reference=order.payment.reference,
        refund=decision.value,
        refund_refusal=refusal,
        refund_plan=plan,
    )


def _replayed(order: Order, event: Event, history: list[OrderEvent], req: CancelOrder) -> CancelOutcome | None:
    """The outcome of an operation that already committed, rebuilt from its history events."""
    mine = [h for h in history if h.data.get("operation_id") == req.operation_id]
    items = [h.data["ticket_id"] for h in mine if h.type == "item-canceled"]
    summary = next((h for h in mine if h.type == "order-cancelled"), None)
    if summary is None and not items:
        return None
    whole = summary is not None
    voided = bool(summary and summary.data.get("payment") == "voided")
    requested = any(h.data.get("refund") == "requested" for h in mine)
    planned: RefundQuote | Refusal | None = None
    decision = RefundDecision.NOT_REQUESTED
    if req.refund:
        planned = refund_after_cancellation(order, event, items, whole=whole, reason=req.reason)
        decision = (
            RefundDecision.REQUESTED
            if requested and isinstance(planned, RefundQuote)
            else RefundDecision.NOTHING_TO_REFUND
        )
        if decision is RefundDecision.NOTHING_TO_REFUND and isinstance(planned, RefundQuote):
            planned = None
    return _outcome(
        order, operation_id=req.operation_id, ticket_ids=items, whole=whole, voided=voided,
        decision=decision, planned=planned,
    )


class CancellationActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="cancel_order")
    @domain_errors
    async def cancel_order(self, req: CancelOrder) -> CancelOutcome:
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            event = await load_event(conn, order.event_id)
            if done := _replayed(order, event, await load_history(conn, order.code), req):
                return done
            plan = cancel_order(
                order,
                event,
                CancelRequest(reason=req.reason, refund=req.refund, ticket_ids=req.ticket_ids),
                actor=req.actor,
                now=datetime.now(UTC),
                operation_id=req.operation_id,
            )
            for delta in plan.inventory:
                await adjust_inventory(conn, delta.ticket_type_id, delta.time_slot_id, delta.delta)
            saved = await save_order(conn, order, plan.order, plan.history)
        return _outcome(
            saved,
            operation_id=req.operation_id,
            ticket_ids=plan.ticket_ids,
            whole=plan.whole_order,
            voided=plan.payment_voided,
            decision=plan.refund,
            planned=plan.refund_quote or plan.refund_refusal,
        )

    @activity.defn(name="record_cancellation_note")
    @domain_errors
    async def record_cancellation_note(self, req: CancellationNote) -> None:
        """History written after the cancellation itself (void result, refund not started); once per operation."""
        event = OrderEvent(
            type=req.type,
            actor=req.actor,
            at=datetime.now(UTC),
            data={"operation_id": req.operation_id, **req.data},
            dedupe_key=f"{req.type}:{req.operation_id}",
        )
        async with self.deps.store.transaction() as conn:
            await append_history(conn, req.order_code, [event])


class VoidActivities:
    """On the `payments` queue, under its rate limit, like every processor call."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="void_payment")
    async def void_payment(self, req: VoidPayment) -> VoidOutcome:
        adapter = self.deps.payments.get(Processor(req.processor))
        if adapter is None:
            raise ApplicationError(
                f"no payment adapter is configured for {req.processor}",
                type="processor-not-configured",
                non_retryable=True,
            )
        try:
            status = await adapter.void_payment(req.payment_reference)
        except ProcessorRejected as err:
            # The processor says no (e.g. the payment succeeded meanwhile): recorded for finance, not retried.
            return VoidOutcome(status="rejected", code=err.code)
        except ProcessorUnavailable as err:
            raise ApplicationError(
                err.message,
                {"code": err.code, "status": err.status},
                type="processor-unavailable",
                next_retry_delay=timedelta(seconds=2) if err.status == 429 else None,
            ) from err
        return VoidOutcome(status=status)


class CancellationEmailActivities:
    """On the `email` queue: one message per recipient, each sent once through the delivery log."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.delivery = DeliveryActivities(deps)

    @activity.defn(name="send_cancellation_emails")
    @domain_errors
    async def send_cancellation_emails(self, req: CancellationEmails) -> EmailsOutcome:
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code)
            event = await load_event(conn, order.event_id)
        refund_total = (
            Money(amount=req.refund_amount, currency=order.currency).display() if req.refund_amount else None
        )
        recipients: list[tuple[str, str | None, str, list[str]]] = []
        seen: set[str] = set()
        if order.contact.email:
            seen.add(order.contact.email.lower())
            recipients.append((order.contact.email, order.contact.name, "buyer", req.ticket_ids))
        for ticket_id in req.ticket_ids:
            holder = order.ticket(ticket_id).personalisation
            if holder and holder.email and holder.email.lower() not in seen:
                seen.add(holder.email.lower())
                held = [
                    i for i in req.ticket_ids
                    if (p := order.ticket(i).personalisation) and p.email and p.email.lower() == holder.email.lower()
                ]
                recipients.append((holder.email, holder.name, "attendee", held))
        counts = {"sent": 0, "already-sent": 0, "rejected": 0}
        for address, name, role, tickets in recipients:
            context = {
                "order_code": order.code,
                "event_name": event.name,
                "event_starts_at": event.starts_at,
                "buyer_name": name,
                "reason": req.reason,
                # Only the buyer paid: only the buyer is told a refund is coming.
                "refund_total": refund_total if role == "buyer" else None,
            }

            async def build(mid: str, to: str = address, ctx: dict[str, object] = context) -> OutgoingEmail:
                rendered = render_email("cancellation", ctx)
                return OutgoingEmail(
                    message_id=mid,
                    sender=self.deps.settings.email.sender,
                    to=[to],
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                )

            try:
                outcome = await self.delivery._send_once(
                    order_code=order.code,
                    operation_id=req.operation_id,
                    kind="cancellation",
                    recipient=address,
                    document=f"cancellation:{role}",
                    build=build,
                    history=OrderEvent(
                        type="cancellation-sent",
                        actor="ticketops",
                        at=datetime.now(UTC),
                        data={"recipient": role, "tickets": tickets, "operation_id": req.operation_id},
                    ),
                )
            except ApplicationError as err:
                if err.type != "email-rejected":
                    raise
                counts["rejected"] += 1  # recorded as delivery-failed; the others still go out
                continue
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return EmailsOutcome(sent=counts["sent"], already_sent=counts["already-sent"], rejected=counts["rejected"])
