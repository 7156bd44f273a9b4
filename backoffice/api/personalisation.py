"""Open personalisation (agent, a workflow) and the buyer's link (public, the token is the credential).

`GET/POST /personalisation/{token}` take no login: the signed token names the order and the
round, and is refused when tampered with (403), expired (410) or superseded by a newer
reset (410), each with its own problem type. They show ticket ids and types only: no buyer
data, no holder data, since anyone holding the link could read it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributePair

from backoffice.api.auth import SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.fields import EmailAddress, PersonName, PhoneNumber
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.orders import Accepted, accepted
from backoffice.api.problems import ProblemError
from backoffice.api.waiting import accepts_wait
from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, Order, OrderEvent, Personalisation
from ticketing.personalisation import link_refusal, personalisable, submit_personalisation
from ticketing.personalisation_tokens import LinkClaims, check_current, verify_token
from ticketing.policies.actions import personalisation_refusal
from ticketing.store.orders import load_event, load_order, load_ticket_types, load_time_slots, save_order
from ticketing.store.personalisation import current_round
from workflows.contracts import OpenPersonalisationRequest
from workflows.personalisation import OpenPersonalisationWorkflow
from workflows.search_attributes import EVENT_ID, ORDER_ID

router = APIRouter(tags=["personalisation"])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]
LINK_ACTOR = "personalisation-link"  # the buyer, identified by the link alone


class LinkTicketView(BaseModel):
    ticket_id: str
    ticket_type: str
    time_slot: str | None
    personalised: bool


class LinkView(BaseModel):
    order_code: str
    event_name: str
    event_starts_at: datetime
    expires_at: datetime
    tickets: list[LinkTicketView]


class HolderBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ticket_id: str = Field(min_length=1, max_length=40)
    name: PersonName
    email: EmailAddress
    phone: PhoneNumber | None = None


class SubmitBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"tickets": [{"ticket_id": "tkt_4f2a9c01", "name": "Grace Hopper", "email": "grace@example.com"}]}
            ]
        },
    )

    tickets: list[HolderBody] = Field(min_length=1, max_length=200)


@router.post(
    "/orders/{code}/personalisation",
    status_code=202,
    response_model=Accepted,
    dependencies=[Depends(SUPPORT), Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def open_personalisation(code: str, request: Request, st: StateDep, who: ActorDep) -> JSONResponse:
    """Reset the personalisation of every personalised ticket and mail the booker a new link."""
    code = code.upper()

    async def act(key: str) -> dict[str, Any]:
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
        if refusal := personalisation_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        op = await st.operations.start(
            OpenPersonalisationWorkflow.run,
            OpenPersonalisationRequest(order_code=code, actor=who),
            operation_id=f"personalisation/{code}/{key}",
            search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
            summary=f"Open personalisation of order {code} ({len(personalisable(order))} ticket(s))",
            memo={"actor": who},
        )
        return accepted(op)

    return await idempotent(st.store, request, who, {"code": code}, act)


async def _link_order(st: AppState, token: str, conn: Any, *, for_update: bool = False) -> tuple[LinkClaims, Order]:
    """Signature and expiry first (no database), then the round (read under the order's lock), then its state."""
    claims = verify_token(st.settings.signing_secret.get_secret_value(), token, now=datetime.now(UTC))
    order = await load_order(conn, claims.order_code, for_update=for_update)
    check_current(claims, await current_round(conn, claims.order_code))
    link_refusal(order)
    return claims, order


async def _view(conn: Any, claims: LinkClaims, order: Order, event: Event) -> LinkView:
    types = {t.id: t for t in await load_ticket_types(conn, event.id)}
    slots = {s.id: s for s in await load_time_slots(conn, event.id)}
    return LinkView(
        order_code=order.code,
        event_name=event.name,
        event_starts_at=event.starts_at,
        expires_at=claims.expires_at,
        tickets=[
            LinkTicketView(
                ticket_id=t.id,
                ticket_type=types[t.ticket_type_id].name,
                time_slot=slots[t.time_slot_id].label if t.time_slot_id in slots else None,
                personalised=bool(t.personalisation and t.personalisation.complete),
            )
            for t in personalisable(order)
        ],
    )


@router.get("/personalisation/{token}", response_model=LinkView)
async def get_link(token: str, st: StateDep) -> LinkView:
    """The tickets this link personalises, and whether each has its holder already."""
    async with st.store.transaction() as conn:
        claims, order = await _link_order(st, token, conn)
        event = await load_event(conn, order.event_id)
        return await _view(conn, claims, order, event)


@router.post("/personalisation/{token}", response_model=LinkView)
async def submit_link(token: str, body: SubmitBody, st: StateDep) -> LinkView:
    """Name, email and phone per ticket; tickets may be sent in parts until the link expires."""
    entries = {h.ticket_id: Personalisation(name=h.name, email=h.email, phone=h.phone) for h in body.tickets}
    if len(entries) != len(body.tickets):
        raise ProblemError(422, "duplicate-ticket", "a ticket appears twice in the submission")
    async with st.store.transaction() as conn:
        claims, order = await _link_order(st, token, conn, for_update=True)
        event = await load_event(conn, order.event_id)
        after = submit_personalisation(order, entries)
        entry = OrderEvent(
            type="personalisation-submitted",
            actor=LINK_ACTOR,
            at=datetime.now(UTC),
            data={"round": claims.round, "tickets": list(entries)},
        )
        after = await save_order(conn, order, after, [entry])
        return await _view(conn, claims, after, event)
