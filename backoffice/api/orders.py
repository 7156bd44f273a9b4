"""Order routes: search, detail with available actions, and the resend action."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from temporalio.common import SearchAttributePair

from backoffice.api.auth import SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.paging import Offset
from backoffice.api.views import OrderSummary, OrderView, order_summary, order_view
from backoffice.api.waiting import accepts_wait
from ticketing.errors import ActionNotAllowed
from ticketing.policies.actions import resend_refusal
from ticketing.states import OrderStatus
from ticketing.store.comments import comments_for_order
from ticketing.store.orders import (
    load_event,
    load_history,
    load_order,
    load_orders,
    load_ticket_types,
    load_time_slots,
)
from ticketing.store.search import search_orders
from workflows.contracts import ResendRequest
from workflows.resend import ResendOrderWorkflow
from workflows.search_attributes import EVENT_ID, ORDER_ID

router = APIRouter(tags=["orders"])

StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]


class Accepted(BaseModel):
    operation_id: str
    status_url: str


class ResendBody(BaseModel):
    """Resend takes no options; the body may be empty."""

    model_config = ConfigDict(json_schema_extra={"examples": [{}]})


@router.get("/orders", response_model=list[OrderSummary], dependencies=[Depends(SUPPORT)])
async def find_orders(
    st: StateDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Any part of an email address or name (case-insensitive), an order code or a barcode",
        ),
    ] = None,
    event: Annotated[str | None, Query(max_length=64, description="Only this event's orders")] = None,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> list[OrderSummary]:
    """Newest first."""
    async with st.store.transaction() as conn:
        codes = await search_orders(conn, q, event, status=status, limit=limit, offset=offset)
        found = await load_orders(conn, codes)
    return [order_summary(o) for o in found]


@router.get("/orders/{code}", response_model=OrderView, dependencies=[Depends(SUPPORT)])
async def get_order(code: str, st: StateDep) -> OrderView:
    async with st.store.transaction() as conn:
        order = await load_order(conn, code.upper())
        event = await load_event(conn, order.event_id)
        types = {t.id: t for t in await load_ticket_types(conn, event.id)}
        slots = {s.id: s for s in await load_time_slots(conn, event.id)}
        history = await load_history(conn, order.code)
        comments = await comments_for_order(conn, order.code, order.contact.email)
    return order_view(order, event, types, slots, history, comments)


def accepted(operation_id: str, **extra: Any) -> dict[str, Any]:
    return {"operation_id": operation_id, "status_url": f"/operations/{operation_id}", **extra}


@router.post(
    "/orders/{code}/resend",
    status_code=202,
    response_model=Accepted,
    dependencies=[Depends(SUPPORT), Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def resend(
    code: str, request: Request, st: StateDep, who: ActorDep, body: ResendBody | None = None
) -> JSONResponse:
    """Re-deliver the order's valid tickets to its contact email; creates nothing new."""
    code = code.upper()

    async def act(key: str) -> dict[str, Any]:
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
        if refusal := resend_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        op = await st.operations.start(
            ResendOrderWorkflow.run,
            ResendRequest(order_code=code, actor=who),
            operation_id=f"resend/{code}/{key}",
            search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
            summary=f"Resend {len(order.valid_tickets)} ticket(s) of order {code}",
            memo={"actor": who},
        )
        return accepted(op)

    return await idempotent(st.store, request, who, {"code": code}, act)
