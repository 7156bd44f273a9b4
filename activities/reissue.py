"""Reissue and reschedule activities on the `orders` queue: one transaction each.

Idempotent under retry: the operation id is stored in the `tickets-reissued` /
`tickets-rescheduled` history event (whose dedupe key carries it too), and a
retry whose first run committed returns the replacements it recorded instead
of issuing a second set of barcodes. Delivery is the workflow's next step.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from temporalio import activity

from activities.contracts import ReissueOutcome, ReissueTickets
from activities.deps import Deps
from activities.errors import domain_errors
from ticketing.errors import ActionNotAllowed, DomainError
from ticketing.reissue import Reissue, recorded, reissue_tickets, reschedule_tickets
from ticketing.store.orders import (
    adjust_inventory,
    load_event,
    load_history,
    load_order,
    load_time_slots,
    save_order,
)


class ReissueActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="reissue_tickets")
    @domain_errors
    async def reissue_tickets(self, req: ReissueTickets) -> ReissueOutcome:
        return await self._apply(req, reschedule=False)

    @activity.defn(name="reschedule_tickets")
    @domain_errors
    async def reschedule_tickets(self, req: ReissueTickets) -> ReissueOutcome:
        if not req.time_slot_id:
            raise DomainError("a reschedule names the target time slot", type="invalid-request")
        return await self._apply(req, reschedule=True)

    async def _apply(self, req: ReissueTickets, *, reschedule: bool) -> ReissueOutcome:
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            done = recorded(await load_history(conn, order.code), req.operation_id)
            if done is not None:
                return ReissueOutcome(
                    order_code=order.code, event_id=order.event_id, replaced=done,
                    time_slot_id=req.time_slot_id, already_done=True,
                )
            # Held for share (PostgreSQL): a time slot's cancellation marks the slot and chooses its orders
            # under the event's row, so a move into that slot commits before (and is chosen) or is refused.
            event = await load_event(conn, order.event_id, for_share=reschedule)
            plan: Reissue
            if reschedule:
                slots = await load_time_slots(conn, event.id)
                plan = reschedule_tickets(
                    order, event, slots, req.ticket_ids, req.time_slot_id or "",
                    actor=req.actor, now=now, operation_id=req.operation_id,
                )
            else:
                plan = reissue_tickets(
                    order, event, req.ticket_ids, actor=req.actor, now=now, operation_id=req.operation_id
                )
            try:
                for delta in plan.inventory:
                    await adjust_inventory(conn, delta.ticket_type_id, delta.time_slot_id, delta.delta)
            except IntegrityError as err:
                # Another order took the last seats between our read and our write: the CHECK said no.
                raise ActionNotAllowed("the time slot filled up meanwhile", type="slot-full") from err
            await save_order(conn, order, plan.order, plan.history)
        return ReissueOutcome(
            order_code=order.code, event_id=order.event_id, replaced=plan.replaced, time_slot_id=plan.time_slot_id
        )
