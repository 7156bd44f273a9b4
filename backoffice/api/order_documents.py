"""Receipts and ticket downloads: mail the payment receipt (a workflow), or download PDFs.

Downloads render on request (fpdf2, in a thread, outside any transaction) rather than reading
stored files, so a download shows the tickets as they are now. Each served download is
recorded in the order's history with who took it, since a ticket PDF admits its bearer.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pypdf import PdfWriter
from temporalio.common import SearchAttributePair

from backoffice.api.auth import SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.orders import Accepted, accepted
from backoffice.api.waiting import accepts_wait
from documents.from_orders import receipt_document, ticket_document
from documents.receipt_pdf import render_receipt_pdf
from documents.ticket_pdf import render_ticket_pdf
from ticketing.errors import ActionNotAllowed
from ticketing.models import OrderEvent
from ticketing.policies.actions import download_receipt_refusal, download_tickets_refusal, receipt_refusal
from ticketing.store.orders import append_history, load_event, load_order, load_ticket_types, load_time_slots
from ticketing.store.refunds import list_refunds
from workflows.contracts import SendReceiptRequest
from workflows.receipt import SendReceiptWorkflow
from workflows.search_attributes import EVENT_ID, ORDER_ID

router = APIRouter(tags=["documents"], dependencies=[Depends(SUPPORT)])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]


def _pdf(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


def _merge(pdfs: list[bytes]) -> bytes:
    if len(pdfs) == 1:
        return pdfs[0]
    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(io.BytesIO(pdf))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@router.post(
    "/orders/{code}/receipt",
    status_code=202,
    response_model=Accepted,
    dependencies=[Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def send_receipt(code: str, request: Request, st: StateDep, who: ActorDep) -> JSONResponse:
    """Email the payment receipt (PDF attached) to the order's contact."""
    code = code.upper()

    async def act(key: str) -> dict[str, Any]:
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
        if refusal := receipt_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        op = await st.operations.start(
            SendReceiptWorkflow.run,
            SendReceiptRequest(order_code=code, actor=who),
            operation_id=f"receipt/{code}/{key}",
            search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(EVENT_ID, order.event_id)],
            summary=f"Send the payment receipt of order {code}",
            memo={"actor": who},
        )
        return accepted(op)

    return await idempotent(st.store, request, who, {"code": code}, act)


@router.get("/orders/{code}/tickets.pdf", response_class=Response)
async def download_tickets(
    code: str,
    st: StateDep,
    who: ActorDep,
    ticket_id: Annotated[str | None, Query(max_length=40, description="One ticket; all valid ones without it")] = None,
) -> Response:
    """The order's valid tickets as one PDF (a page each), or one ticket with `ticket_id`."""
    async with st.store.transaction() as conn:
        order = await load_order(conn, code.upper())
        event = await load_event(conn, order.event_id)
        if refusal := download_tickets_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        tickets = order.valid_tickets
        if ticket_id is not None:
            ticket = order.ticket(ticket_id)
            if not ticket.is_valid:
                raise ActionNotAllowed(
                    f"ticket {ticket_id} is {ticket.state.reason}; it admits no one",
                    type="ticket-invalid",
                    ticket_id=ticket_id,
                )
            tickets = [ticket]
        types = {t.id: t for t in await load_ticket_types(conn, event.id)}
        slots = {s.id: s for s in await load_time_slots(conn, event.id)}
    docs = [ticket_document(order, event, t, types, slots) for t in tickets]
    data = await asyncio.to_thread(lambda: _merge([render_ticket_pdf(d) for d in docs]))
    entry = OrderEvent(
        type="tickets-downloaded", actor=who, at=datetime.now(UTC), data={"tickets": [t.id for t in tickets]}
    )
    async with st.store.transaction() as conn:
        await append_history(conn, order.code, [entry])
    name = f"ticket-{tickets[0].id}.pdf" if ticket_id else f"tickets-{order.code}.pdf"
    return _pdf(data, name)


@router.get("/orders/{code}/receipt.pdf", response_class=Response)
async def download_receipt(code: str, st: StateDep, who: ActorDep) -> Response:
    """The payment receipt: items, fees, settled refunds and the net total."""
    async with st.store.transaction() as conn:
        order = await load_order(conn, code.upper())
        event = await load_event(conn, order.event_id)
        if refusal := download_receipt_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        types = {t.id: t for t in await load_ticket_types(conn, event.id)}
        refunds = await list_refunds(conn, order_code=order.code, limit=500)
    doc = receipt_document(order, event, types, refunds)
    data = await asyncio.to_thread(render_receipt_pdf, doc)
    async with st.store.transaction() as conn:
        await append_history(conn, order.code, [OrderEvent(type="receipt-downloaded", actor=who, at=datetime.now(UTC))])
    return _pdf(data, f"receipt-{order.code}.pdf")
