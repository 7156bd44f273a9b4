"""Ticket transfers: an agent (for the holder) offers a ticket; the recipient accepts by link.

`POST /orders/{code}/transfers` checks the policy on the order as it is now, records the
recipient in the store (their name and email never enter a workflow payload) and starts
`TransferTicket`, whose id is the transfer's id. `GET/POST /transfers/{token}` take no
login: the signed token names the transfer and expires with it. They show the event and the
ticket type only, nothing of the giver. The holder starts a transfer themselves with
`POST /transfers/start/{token}`: their "manage your ticket" link (in the tickets email, or from
`GET /orders/{code}/tickets/{ticket_id}/transfer-link`) names the order and the ticket.
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
from backoffice.api.fields import EmailAddress, PersonName
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.orders import Accepted, accepted
from backoffice.api.waiting import accepts_wait
from ticketing.errors import ActionNotAllowed
from ticketing.models import Contact
from ticketing.signed_links import verify
from ticketing.states import TransferStatus
from ticketing.store.orders import load_event, load_order, load_ticket_types
from ticketing.store.transfers import insert_transfer, load_transfer, open_transfer_of
from ticketing.transfers import (
    LINK_PURPOSE,
    MANAGE_PURPOSE,
    TicketTransfer,
    check_request,
    link_refusal,
    manage_link,
    manage_subject,
)
from workflows.contracts import AcceptTransfer, CancelTransfer, TransferInput
from workflows.search_attributes import EVENT_ID, ORDER_ID
from workflows.transfer import TransferTicketWorkflow

router = APIRouter(tags=["transfers"])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]
HOLDER_ACTOR = "holder-link"  # the holder, identified by their manage link alone


class TransferBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"ticket_id": "tkt_4f2a9c01", "name": "Grace Hopper",
                                         "email": "grace@example.com"}]},
    )

    ticket_id: str = Field(min_length=1, max_length=40)
    name: PersonName
    email: EmailAddress


class RecipientBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"name": "Grace Hopper", "email": "grace@example.com"}]},
    )

    name: PersonName
    email: EmailAddress


class ManageLink(BaseModel):
    url: str
    expires_at: datetime


class CancelTransferBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "holder changed their mind"}]})

    reason: str = Field(min_length=3, max_length=500)


class TransferAccepted(Accepted):
    transfer_id: str
    ticket_id: str


class TransferView(BaseModel):
    transfer_id: str
    order_code: str
    ticket_id: str
    status: str
    expires_at: datetime | None
    new_order_code: str | None = None
    new_ticket_id: str | None = None


class LinkView(BaseModel):
    """What the recipient sees: the event and the ticket type, nothing of the giver."""

    event_name: str
    event_starts_at: datetime
    ticket_type: str
    status: str
    expires_at: datetime | None


class LinkAccepted(BaseModel):
    status: str
    ticket_id: str | None


def _view(transfer: TicketTransfer) -> TransferView:
    return TransferView(
        transfer_id=transfer.id, order_code=transfer.order_code, ticket_id=transfer.ticket_id,
        status=transfer.status.value, expires_at=transfer.expires_at,
        new_order_code=transfer.new_order_code, new_ticket_id=transfer.new_ticket_id,
    )


@router.post(
    "/orders/{code}/transfers",
    status_code=202,
    response_model=TransferAccepted,
    dependencies=[Depends(SUPPORT), Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def start_transfer(
    code: str, body: TransferBody, request: Request, st: StateDep, who: ActorDep
) -> JSONResponse:
    """Offer one ticket to a new holder; they accept by the emailed link within the configured days."""
    code = code.upper()

    async def act(key: str) -> dict[str, Any]:
        return await _start(st, code, body.ticket_id, Contact(name=body.name, email=body.email), who, key)

    return await idempotent(st.store, request, who, body.model_dump(mode="json") | {"code": code}, act)


async def _start(st: AppState, code: str, ticket_id: str, recipient: Contact, who: str, key: str) -> dict[str, Any]:
    """Check the policy, record the recipient, start `TransferTicket`: for an agent and for the holder's link."""
    transfer_id = f"transfer/{code}/{ticket_id}/{key}"
    now = datetime.now(UTC)
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
        event = await load_event(conn, order.event_id)
        check_request(order, event, ticket_id, now)
        await insert_transfer(
            conn,
            TicketTransfer(
                id=transfer_id, order_code=code, ticket_id=ticket_id, recipient=recipient,
                status=TransferStatus.REQUESTED, created_by=who, created_at=now,
            ),
        )
    await st.operations.start(
        TransferTicketWorkflow.run,
        TransferInput(
            order_code=code, ticket_id=ticket_id, actor=who,
            acceptance_days=st.settings.transfers.acceptance_days,
        ),
        operation_id=transfer_id,
        search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
        summary=f"Transfer ticket {ticket_id} of order {code}",
        memo={"actor": who},
    )
    return accepted(transfer_id, transfer_id=transfer_id, ticket_id=ticket_id)


@router.post("/transfers/start/{token}", status_code=202, response_model=TransferAccepted)
async def start_by_link(token: str, body: RecipientBody, st: StateDep) -> JSONResponse:
    """The holder offers their ticket to someone, by the manage link from their tickets email."""
    subject, _ = verify(st.settings.signing_secret.get_secret_value(), MANAGE_PURPOSE, token, now=datetime.now(UTC))
    code, ticket_id = manage_subject(subject)
    # A repeated click on the same order state finds the first transfer; once it ended, a new one may start.
    async with st.store.transaction() as conn:
        version = (await load_order(conn, code)).version
    started = await _start(st, code, ticket_id, Contact(name=body.name, email=body.email), HOLDER_ACTOR,
                           f"link-{version}")
    return JSONResponse(started, status_code=202)


@router.get(
    "/orders/{code}/tickets/{ticket_id}/transfer-link", response_model=ManageLink, dependencies=[Depends(SUPPORT)]
)
async def transfer_link(code: str, ticket_id: str, st: StateDep) -> ManageLink:
    """The holder's signed "manage your ticket" link for one ticket, valid until the event starts."""
    code = code.upper()
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
        event = await load_event(conn, order.event_id)
    order.ticket(ticket_id)  # an unknown ticket is refused here, not when the link is used
    link = manage_link(st.settings.signing_secret.get_secret_value(), st.settings.public_url, code, ticket_id, event,
                       now=datetime.now(UTC))
    if link is None:
        raise ActionNotAllowed("the event has started; tickets can no longer be transferred", type="event-started")
    return ManageLink(url=link[0], expires_at=link[1])


async def _open_transfer(st: AppState, code: str, ticket_id: str) -> TicketTransfer:
    async with st.store.transaction() as conn:
        transfer = await open_transfer_of(conn, code.upper(), ticket_id)
    if transfer is None:
        raise ActionNotAllowed(f"ticket {ticket_id} has no open transfer", type="transfer-not-open")
    return transfer


@router.get(
    "/orders/{code}/tickets/{ticket_id}/transfer", response_model=TransferView, dependencies=[Depends(SUPPORT)]
)
async def show_transfer(code: str, ticket_id: str, st: StateDep) -> TransferView:
    """The ticket's open transfer: until when it is offered (the recipient is in the order history only by id)."""
    return _view(await _open_transfer(st, code, ticket_id))


@router.post(
    "/orders/{code}/tickets/{ticket_id}/transfer/cancel",
    response_model=TransferView,
    dependencies=[Depends(SUPPORT)],
)
async def cancel_transfer(
    code: str, ticket_id: str, body: CancelTransferBody, st: StateDep, who: ActorDep
) -> TransferView:
    """Cancel an open transfer: the ticket is valid again for its holder and the link dies."""
    transfer = await _open_transfer(st, code, ticket_id)
    cancel = CancelTransfer(actor=who, reason=body.reason)
    await st.operations.update(transfer.id, TransferTicketWorkflow.cancel, cancel)
    async with st.store.transaction() as conn:
        return _view(await load_transfer(conn, transfer.id))


async def _link_transfer(st: AppState, token: str) -> TicketTransfer:
    transfer_id, _ = verify(st.settings.signing_secret.get_secret_value(), LINK_PURPOSE, token, now=datetime.now(UTC))
    async with st.store.transaction() as conn:
        return await load_transfer(conn, transfer_id)


@router.get("/transfers/{token}", response_model=LinkView)
async def get_link(token: str, st: StateDep) -> LinkView:
    """What is on offer to the link's holder, and until when."""
    transfer = await _link_transfer(st, token)
    async with st.store.transaction() as conn:
        order = await load_order(conn, transfer.order_code)
        event = await load_event(conn, order.event_id)
        types = {t.id: t.name for t in await load_ticket_types(conn, event.id)}
    return LinkView(
        event_name=event.name, event_starts_at=event.starts_at,
        ticket_type=types.get(order.ticket(transfer.ticket_id).ticket_type_id, ""),
        status=transfer.status.value, expires_at=transfer.expires_at,
    )


async def _refuse_link(st: AppState, transfer_id: str) -> None:
    """The link's refusal as the store has it now: the event or slot called off first, else a closed transfer."""
    async with st.store.transaction() as conn:
        transfer = await load_transfer(conn, transfer_id)
        order = await load_order(conn, transfer.order_code)
        event = await load_event(conn, order.event_id)
    if refusal := link_refusal(order, event, transfer):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)


@router.post("/transfers/{token}/accept", response_model=LinkAccepted)
async def accept_link(token: str, st: StateDep) -> LinkAccepted:
    """Accept: the ticket is reissued to the recipient, on an order of their own, and emailed to them.

    Once the event (or the ticket's time slot) is cancelled the link answers `event-cancelled`
    (`time-slot-cancelled`), also when the cancellation closed the transfer while this was asked.
    """
    transfer = await _link_transfer(st, token)
    await _refuse_link(st, transfer.id)
    try:
        done = await st.operations.update(transfer.id, TransferTicketWorkflow.accept, AcceptTransfer(via="link"))
    except ActionNotAllowed:
        await _refuse_link(st, transfer.id)  # lost to a cancellation meanwhile: say why
        raise
    status = done.get("status") if isinstance(done, dict) else getattr(done, "status", None)
    new_ticket = done.get("new_ticket_id") if isinstance(done, dict) else getattr(done, "new_ticket_id", None)
    return LinkAccepted(status=str(status), ticket_id=new_ticket)
