"""Return requests: the buyer (signed link) or an agent asks, finance approves or an agent declines.

`POST /orders/{code}/returns` (agent) and `POST /returns/{token}` (the buyer, no login: the
signed token names the order) start `ReturnRequest`; the order shows `return-requested`.
`POST /orders/{code}/returns/approve` (finance) runs the full refund as a child `Refund`;
`POST /orders/{code}/returns/decline` puts the order back to `paid` and emails the reason.
`GET /orders/{code}/return-link` gives the signed link to put in an email to the buyer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributePair

from backoffice.api.auth import FINANCE, SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.orders import Accepted, accepted
from ticketing.errors import ActionNotAllowed
from ticketing.policies.actions import return_decision_refusal, return_refusal
from ticketing.returns import LINK_PURPOSE, REQUESTED_EVENT
from ticketing.returns import return_link as make_return_link
from ticketing.signed_links import verify
from ticketing.store.orders import load_event, load_history, load_order
from workflows.contracts import ReturnDecision, ReturnInput
from workflows.returns import ReturnWorkflow
from workflows.search_attributes import EVENT_ID, ORDER_ID

router = APIRouter(tags=["returns"])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]
LINK_ACTOR = "return-link"  # the buyer, identified by the link alone


class ReturnBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "cannot attend"}]})

    reason: str = Field(min_length=3, max_length=500)


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "return approved"}]})

    reason: str = Field(default="return approved", min_length=3, max_length=500)


class DecisionView(BaseModel):
    order_code: str
    decision: str
    operation_id: str
    refund_id: str | None = None


class ReturnLink(BaseModel):
    url: str
    expires_at: datetime


async def _start(st: AppState, code: str, reason: str, who: str, via: str, key: str) -> dict[str, Any]:
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
        event = await load_event(conn, order.event_id)
    if refusal := return_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    operation_id = f"return/{code}/{key}"
    await st.operations.start(
        ReturnWorkflow.run,
        ReturnInput(order_code=code, actor=who, reason=reason, via=via,
                    timing=st.settings.refunds.timing(),
                    approval_threshold=st.settings.refunds.approval_threshold),
        operation_id=operation_id,
        search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
        summary=f"Return request for order {code} ({via})",
        memo={"actor": who},
    )
    return accepted(operation_id)


@router.post(
    "/orders/{code}/returns",
    status_code=202,
    response_model=Accepted,
    dependencies=[Depends(SUPPORT), Depends(check_idempotency_key)],
)
async def request_return(code: str, body: ReturnBody, request: Request, st: StateDep, who: ActorDep) -> JSONResponse:
    """An agent asks, for the buyer, to return the order; finance decides."""
    code = code.upper()

    async def act(key: str) -> dict[str, Any]:
        return await _start(st, code, body.reason, who, "agent", key)

    return await idempotent(st.store, request, who, body.model_dump(mode="json") | {"code": code}, act)


@router.post("/returns/{token}", status_code=202, response_model=Accepted)
async def request_return_by_link(token: str, body: ReturnBody, st: StateDep) -> JSONResponse:
    """The buyer asks to return the order named by their link (one open request at a time)."""
    code, _ = verify(st.settings.signing_secret.get_secret_value(), LINK_PURPOSE, token, now=datetime.now(UTC))
    # One request per order state: a repeated click finds the running one; after a decline, a new one may start.
    async with st.store.transaction() as conn:
        version = (await load_order(conn, code)).version
    return JSONResponse(await _start(st, code, body.reason, LINK_ACTOR, "link", f"link-{version}"), status_code=202)


@router.get("/orders/{code}/return-link", response_model=ReturnLink, dependencies=[Depends(SUPPORT)])
async def return_link(code: str, st: StateDep) -> ReturnLink:
    """The buyer's signed return link, valid for 30 days or until the event starts."""
    code = code.upper()
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
        event = await load_event(conn, order.event_id)
    link = make_return_link(st.settings.signing_secret.get_secret_value(), st.settings.public_url, code, event,
                            now=datetime.now(UTC))
    if link is None:
        raise ActionNotAllowed("the event has started; returns go through an agent", type="event-started")
    return ReturnLink(url=link[0], expires_at=link[1])


async def _open_return(st: AppState, code: str) -> str:
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
        event = await load_event(conn, order.event_id)
        if refusal := return_decision_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        requests = [e for e in await load_history(conn, code) if e.type == REQUESTED_EVENT]
    return str(requests[-1].data["operation_id"])


@router.post("/orders/{code}/returns/approve", response_model=DecisionView, dependencies=[Depends(FINANCE)])
async def approve(code: str, st: StateDep, who: ActorDep, body: ApproveBody | None = None) -> DecisionView:
    """Approve: a full refund with the event's policy runs; the order is `returned` once it succeeded."""
    code = code.upper()
    operation_id = await _open_return(st, code)
    refund_id = await st.operations.update(
        operation_id, ReturnWorkflow.approve, ReturnDecision(actor=who, reason=(body or ApproveBody()).reason)
    )
    return DecisionView(order_code=code, decision="approved", operation_id=operation_id, refund_id=str(refund_id))


@router.post("/orders/{code}/returns/decline", response_model=DecisionView, dependencies=[Depends(SUPPORT)])
async def decline(code: str, body: ReturnBody, st: StateDep, who: ActorDep) -> DecisionView:
    """Decline with the reason the buyer is emailed; the order is `paid` again."""
    code = code.upper()
    operation_id = await _open_return(st, code)
    await st.operations.update(operation_id, ReturnWorkflow.decline, ReturnDecision(actor=who, reason=body.reason))
    return DecisionView(order_code=code, decision="declined", operation_id=operation_id)
