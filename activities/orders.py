"""Store activities on the `orders` queue: read plans, write history."""

from __future__ import annotations

from temporalio import activity

from activities.contracts import OrderRef, ResendPlan
from activities.deps import Deps
from activities.errors import domain_errors
from ticketing.errors import ActionNotAllowed
from ticketing.policies.actions import resend_refusal
from ticketing.store.orders import load_event, load_order


class OrderActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="plan_resend")
    @domain_errors
    async def plan_resend(self, ref: OrderRef) -> ResendPlan:
        """Which tickets a resend delivers; refuses exactly as the API's action list does."""
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, ref.order_code)
            event = await load_event(conn, order.event_id)
        if refusal := resend_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        return ResendPlan(
            order_code=order.code,
            event_id=order.event_id,
            ticket_ids=[t.id for t in order.valid_tickets],
        )
