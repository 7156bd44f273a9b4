"""Opening a personalisation round on the `orders` queue: reset the tickets, once per operation."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import OpenPersonalisationRound, PersonalisationRound
from activities.deps import Deps
from activities.errors import domain_errors
from ticketing.models import OrderEvent
from ticketing.personalisation import reset_personalisation
from ticketing.personalisation_tokens import LINK_LIFETIME
from ticketing.store.orders import load_event, load_order, save_order
from ticketing.store.personalisation import OPENED, current_round, opened_by, opened_key


class PersonalisationActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="open_personalisation_round")
    @domain_errors
    async def open_personalisation_round(self, req: OpenPersonalisationRound) -> PersonalisationRound:
        """Clear the holders and start round n+1; a retry returns the round it opened before.

        The expiry is fixed here, whole seconds, and travels to the email activity, so every
        retry of the email signs the same link.
        """
        async with self.deps.store.transaction() as conn:
            prior = await opened_by(conn, req.operation_id)
            if prior is not None:
                order = await load_order(conn, req.order_code)
                return PersonalisationRound(
                    order_code=order.code,
                    event_id=order.event_id,
                    round=prior.data["round"],
                    expires_at=datetime.fromisoformat(prior.data["expires_at"]),
                    ticket_count=len(prior.data["tickets"]),
                )
            order = await load_order(conn, req.order_code, for_update=True)
            event = await load_event(conn, order.event_id)
            after, reset = reset_personalisation(order, event)
            number = await current_round(conn, order.code) + 1
            now = datetime.now(UTC).replace(microsecond=0)
            expires_at = now + LINK_LIFETIME
            opened = OrderEvent(
                type=OPENED,
                actor=req.actor,
                at=now,
                data={
                    "round": number,
                    "tickets": reset,
                    "expires_at": expires_at.isoformat(),
                    "operation_id": req.operation_id,
                },
                dedupe_key=opened_key(req.operation_id),
            )
            await save_order(conn, order, after, [opened])
        return PersonalisationRound(
            order_code=order.code, event_id=order.event_id, round=number, expires_at=expires_at, ticket_count=len(reset)
        )
