"""Cancel, reissue and reschedule: 202 with an operation id, once per Idempotency-Key.

Each route runs the domain function the workflow will run, on the order as it
is now, so a refusal comes back at once as problem details (and the workflow
refuses the same way if the order changes in between). Nothing is written
here; the workflow writes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributePair

from backoffice.api.auth import ADMIN, SUPPORT, principal_of
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.orders import Accepted, accepted
from backoffice.api.problems import ProblemError
from backoffice.api.waiting import accepts_wait
from ticketing.cancellation import CancelRequest, RefundDecision, cancel_order, refund_id_for, refund_operation_id
from ticketing.reissue import reissue_tickets, reschedule_tickets
from ticketing.roles import Role
from ticketing.store.orders import load_event, load_order, load_time_slots
from workflows.cancel import CancelOrderWorkflow
from workflows.contracts import CancelInput, ReissueInput, RescheduleInput
from workflows.reissue import ReissueAndResendWorkflow, RescheduleWorkflow
from workflows.search_attributes import EVENT_ID, ORDER_ID

router = APIRouter(tags=["order actions"])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]

TicketIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=40)]] | None,
    Field(min_length=1, max_length=500, description="Some tickets; leave out for all of them."),
]


class CancelBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "customer asked to cancel", "refund": True}]},
    )

    reason: str = Field(min_length=3, max_length=500)
    refund: bool = Field(default=False, description="Refund right after cancelling; cancelling alone never refunds.")
    ticket_ids: TicketIds = None


class ReissueBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ticket_ids": ["tkt_4f2a9c01"]}]})

    ticket_ids: TicketIds = None


class RescheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"time_slot_id": "evt_concert_late"}]})

    time_slot_id: str = Field(min_length=1, max_length=64)
    ticket_ids: TicketIds = None


class CancelAccepted(Accepted):
    refund: str = Field(description="not-requested, requested or nothing-to-refund")
    refund_refusal: str | None = None
    refund_id: str | None = None
    refund_operation_id: str | None = None
    whole_order: bool
    tickets: list[str]


class ReissueAccepted(Accepted):
    tickets: list[str]


def _ids(body: BaseModel | None) -> list[str] | None:
    return getattr(body, "ticket_ids", None)


@router.post(
    "/orders/{code}/cancel",
    status_code=202,
    response_model=CancelAccepted,
    dependencies=[Depends(ADMIN), Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def cancel(code: str, body: CancelBody, request: Request, st: StateDep, who: ActorDep) -> JSONResponse:
    """Cancel the order (or, where the event allows it, some tickets); refund only if asked."""
    code = code.upper()
    if body.refund and not (await principal_of(request)).role.includes(Role.FINANCE):
        raise ProblemError(403, "forbidden", "cancelling with a refund needs the finance role")
    timing = st.settings.refunds.timing()

    async def act(key: str) -> dict[str, Any]:
        operation_id = f"cancel/{code}/{key}"
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
        plan = cancel_order(
            order,
            event,
            CancelRequest(reason=body.reason, refund=body.refund, ticket_ids=body.ticket_ids),
            actor=who,
            now=datetime.now(UTC),
            operation_id=operation_id,
        )
        scope = "order" if plan.whole_order else f"{len(plan.ticket_ids)} ticket(s) of order"
        await st.operations.start(
            CancelOrderWorkflow.run,
            CancelInput(
                order_code=code,
                actor=who,
                reason=body.reason,
                refund=body.refund,
                ticket_ids=body.ticket_ids,
                timing=timing,
                approval_threshold=st.settings.refunds.approval_threshold,
            ),
            operation_id=operation_id,
            search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
            summary=f"Cancel {scope} {code} (refund {plan.refund.value})",
            memo={"actor": who},
        )
        extra: dict[str, Any] = {
            "refund": plan.refund.value,
            "whole_order": plan.whole_order,
            "tickets": plan.ticket_ids,
        }
        if plan.refund is RefundDecision.REQUESTED:
            extra["refund_id"] = refund_id_for(operation_id)
            extra["refund_operation_id"] = refund_operation_id(operation_id)
        if plan.refund_refusal is not None:
            extra["refund_refusal"] = plan.refund_refusal.type
        return accepted(operation_id, **extra)

    return await idempotent(st.store, request, who, body.model_dump(mode="json") | {"code": code}, act)


@router.post(
    "/orders/{code}/reissue",
    status_code=202,
    response_model=ReissueAccepted,
    dependencies=[Depends(SUPPORT), Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def reissue(
    code: str, request: Request, st: StateDep, who: ActorDep, body: ReissueBody | None = None
) -> JSONResponse:
    """New barcodes for the listed valid tickets (all when none are listed), sent to the buyer."""
    code = code.upper()

    async def act(key: str) -> dict[str, Any]:
        operation_id = f"reissue/{code}/{key}"
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
        plan = reissue_tickets(
            order, event, _ids(body), actor=who, now=datetime.now(UTC), operation_id=operation_id
        )
        await st.operations.start(
            ReissueAndResendWorkflow.run,
            ReissueInput(order_code=code, actor=who, ticket_ids=_ids(body)),
            operation_id=operation_id,
            search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
            summary=f"Reissue and resend {len(plan.replaced)} ticket(s) of order {code}",
            memo={"actor": who},
        )
        return accepted(operation_id, tickets=list(plan.replaced))

    return await idempotent(st.store, request, who, {"code": code, "ticket_ids": _ids(body)}, act)


@router.post(
    "/orders/{code}/reschedule",
    status_code=202,
    response_model=ReissueAccepted,
    dependencies=[Depends(ADMIN), Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def reschedule(
    code: str, body: RescheduleBody, request: Request, st: StateDep, who: ActorDep
) -> JSONResponse:
    """Move tickets to another time slot of the same event: new barcodes, seats moved, sent to the buyer."""
    code = code.upper()

    async def act(key: str) -> dict[str, Any]:
        operation_id = f"reschedule/{code}/{key}"
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
            slots = await load_time_slots(conn, event.id)
        plan = reschedule_tickets(
            order, event, slots, body.ticket_ids, body.time_slot_id,
            actor=who, now=datetime.now(UTC), operation_id=operation_id,
        )
        await st.operations.start(
            RescheduleWorkflow.run,
            RescheduleInput(order_code=code, actor=who, time_slot_id=body.time_slot_id, ticket_ids=body.ticket_ids),
            operation_id=operation_id,
            search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
            summary=f"Reschedule {len(plan.replaced)} ticket(s) of order {code} to slot {body.time_slot_id}",
            memo={"actor": who},
        )
        return accepted(operation_id, tickets=list(plan.replaced))

    return await idempotent(st.store, request, who, body.model_dump(mode="json") | {"code": code}, act)
