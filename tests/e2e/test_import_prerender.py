"""Ticket PDFs rendered when an import issues the tickets (the `render` queue), so their first delivery
renders nothing; a ticket changed since is rendered again, never sent stale; a ticket that does not
render holds up neither the import nor the other tickets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

import activities.ticket_pdfs as ticket_pdfs_module
from activities.prerender import PrerenderActivities
from activities.ticket_pdfs import pdf_key
from documents.from_orders import ticket_document
from documents.models import TicketDocument
from tests.builders import make_event
from tests.documents.qr import decode_qr_payloads_from_pdf
from tests.e2e.bulk_support import wait_bulk
from tests.e2e.import_support import csv_text, import_row
from tests.harness import Harness, seed
from ticketing.models import Order
from ticketing.store.orders import load_event, load_orders, load_ticket_types, load_time_slots
from ticketing.store.tables import tickets as tickets_table


async def _import(app: Harness, rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    event_id = rows[0]["event_id"]
    resp = await app.http.post("/imports", content=csv_text(rows).encode(), headers={"Content-Type": "text/csv"})
    assert resp.status_code == 202, resp.text
    return event_id, await wait_bulk(app, resp.json()["bulk_id"])


async def _event(app: Harness) -> str:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    await seed(app.store, event, types, slots, [])
    return event.id


async def _documents(app: Harness, codes: Sequence[str]) -> tuple[list[Order], list[TicketDocument]]:
    async with app.store.read() as conn:
        found = await load_orders(conn, codes)
        event = await load_event(conn, found[0].event_id)
        types = {t.id: t for t in await load_ticket_types(conn, event.id)}
        slots = {s.id: s for s in await load_time_slots(conn, event.id)}
    return found, [ticket_document(o, event, t, types, slots) for o in found for t in o.tickets]


async def test_an_import_renders_its_paid_tickets_and_their_first_delivery_renders_only_what_changed(
    app: Harness,
) -> None:
    event_id = await _event(app)
    rows = [import_row(event_id, n) for n in range(3)]
    unpaid = import_row(event_id, 9, payment_method="invoice", payment_reference="", status="reserved")
    pdfs = app.deps.ticket_pdfs()
    before = pdfs.rendered
    _, state = await _import(app, [*rows, unpaid])
    assert state["counts"] == {"imported": 4}, state  # the render phase counts nothing of its own
    assert pdfs.rendered - before == 6  # three paid orders of two tickets; the reservation waits for its payment
    orders, docs = await _documents(app, [r["order_code"] for r in rows])
    blobs = Path(app.settings.blobs.root)
    assert all((blobs / pdf_key(doc)).read_bytes().startswith(b"%PDF-") for doc in docs)
    again = await ActivityEnvironment().run(PrerenderActivities(app.deps).render, docs)
    assert again == 0  # a batch retried renders nothing again

    edited = orders[1].tickets[0]
    async with app.store.transaction() as conn:  # a reissued barcode is a new document: the cache has no PDF of it
        await conn.execute(tickets_table.update().where(tickets_table.c.id == edited.id).values(barcode="NEWCODE77"))
    resp = await app.http.post(f"/events/{event_id}/deliveries", json={"template": "tickets"})
    assert resp.status_code == 202, resp.text
    delivered = await wait_bulk(app, resp.json()["bulk_id"])
    assert delivered["counts"] == {"sent": 3}, delivered
    assert pdfs.rendered - before == 7  # only the edited ticket, at its delivery
    mail = next(m for m in app.sink.messages if m["To"] == orders[1].contact.email)
    barcodes = {c for part in mail.iter_attachments() for c in decode_qr_payloads_from_pdf(part.get_content())}
    assert barcodes == {"NEWCODE77", orders[1].tickets[1].barcode}


async def test_a_ticket_that_does_not_render_holds_up_neither_the_import_nor_the_others(
    app: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = await _event(app)
    rows = [import_row(event_id, n) for n in range(3)]
    broken = rows[1]["order_code"]
    render = ticket_pdfs_module.render_ticket_pdfs

    def fails_for_one_order(docs: list[TicketDocument]) -> list[bytes]:
        if any(d.order_code == broken for d in docs):
            raise ValueError("a glyph the font does not have")
        return render(docs)

    monkeypatch.setattr(ticket_pdfs_module, "render_ticket_pdfs", fails_for_one_order)
    pdfs = app.deps.ticket_pdfs()
    before = pdfs.rendered
    _, state = await _import(app, rows)
    assert state["status"] == "completed" and state["counts"] == {"imported": 3}, state
    _, docs = await _documents(app, [r["order_code"] for r in rows])
    blobs = Path(app.settings.blobs.root)
    cached = {d.order_code for d in docs if (blobs / pdf_key(d)).exists()}
    assert cached == {rows[0]["order_code"], rows[2]["order_code"]}
    assert pdfs.rendered - before == 4
