"""Send payment receipt (a workflow) and the ticket and receipt downloads."""

from __future__ import annotations

import io

from pypdf import PdfReader

from documents.from_orders import receipt_document
from tests.builders import NOW, eur, make_event, make_order
from tests.documents.qr import decode_qr_payloads_from_pdf
from tests.e2e.action_support import action, force, history, problem, seeded
from tests.harness import Harness
from ticketing.models import Processor, Refund, RefundKind
from ticketing.states import OrderStatus, RefundStatus, TicketState


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def test_receipt_is_mailed_as_a_pdf_once(app: Harness) -> None:
    _, order = await seeded(app, tickets=2)
    headers = {"Idempotency-Key": "rcpt-1", **await app.headers_for("agent-2")}
    resp = await app.http.post(f"/orders/{order.code}/receipt", headers=headers)
    assert resp.status_code == 202, resp.text
    assert resp.json()["operation_id"] == f"receipt/{order.code}/rcpt-1"
    done = await app.wait_operation(resp.json()["operation_id"])
    assert done["status"] == "completed", done
    assert done["result"]["delivery"] == "sent"

    [mail] = app.sink.messages
    assert mail["To"] == "ada@example.com" and mail["Subject"] == f"Receipt for order {order.code}"
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == f"receipt-{order.code}.pdf"
    text = _text(pdf.get_content())
    assert order.code in text and "EUR 72.50" in text and "Service fee" in text
    assert [h.actor for h in await history(app, order.code, "receipt-sent")] == ["agent-2"]

    again = await app.http.post(f"/orders/{order.code}/receipt", headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(app.sink.messages) == 1


async def test_receipt_refusals(app: Harness) -> None:
    _, no_email = await seeded(app, email=None)
    problem(await app.http.post(f"/orders/{no_email.code}/receipt"), 409, "no-contact-email")
    _, reserved = await seeded(app, status=OrderStatus.RESERVED)
    problem(await app.http.post(f"/orders/{reserved.code}/receipt"), 409, "order-reserved")
    problem(await app.http.get(f"/orders/{reserved.code}/receipt.pdf"), 409, "order-reserved")
    detail = (await app.http.get(f"/orders/{reserved.code}")).json()
    assert action(detail, "send-receipt")["reason_type"] == "order-reserved"
    assert app.sink.messages == []


async def test_ticket_and_receipt_downloads(app: Harness) -> None:
    _, order = await seeded(app, tickets=3)
    await force(app, order.code, {2: TicketState.REISSUED})
    agent = await app.headers_for("agent-4")
    every = await app.http.get(f"/orders/{order.code}/tickets.pdf", headers=agent)
    assert every.status_code == 200 and every.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(every.content)).pages) == 2
    assert sorted(decode_qr_payloads_from_pdf(every.content)) == sorted(t.barcode for t in order.tickets[:2])

    one = await app.http.get(f"/orders/{order.code}/tickets.pdf", params={"ticket_id": order.tickets[1].id})
    assert decode_qr_payloads_from_pdf(one.content) == [order.tickets[1].barcode]
    params = {"ticket_id": order.tickets[2].id}
    problem(await app.http.get(f"/orders/{order.code}/tickets.pdf", params=params), 409, "ticket-invalid")
    params = {"ticket_id": "tkt_nope"}
    problem(await app.http.get(f"/orders/{order.code}/tickets.pdf", params=params), 404, "ticket-not-found")

    receipt = await app.http.get(f"/orders/{order.code}/receipt.pdf", headers=agent)
    assert receipt.headers["content-type"] == "application/pdf"
    assert order.code in _text(receipt.content)
    downloads = await history(app, order.code, "tickets-downloaded")
    assert [(h.actor, len(h.data["tickets"])) for h in downloads] == [("agent-4", 2), ("backoffice", 1)]
    assert [h.actor for h in await history(app, order.code, "receipt-downloaded")] == ["agent-4"]


async def test_download_refused_without_valid_tickets(app: Harness) -> None:
    _, order = await seeded(app, tickets=2)
    await force(app, order.code, {0: TicketState.CANCELLED, 1: TicketState.REFUNDED})
    problem(await app.http.get(f"/orders/{order.code}/tickets.pdf"), 409, "no-valid-tickets")
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "download-tickets") == {
        "name": "download-tickets",
        "enabled": False,
        "reason": "the order has no valid tickets to download",
        "reason_type": "no-valid-tickets",
    }
    assert action(detail, "download-receipt")["enabled"]
    assert await history(app, order.code, "tickets-downloaded") == []


def test_receipt_lists_settled_refunds_and_the_net_total() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)

    def refund(status: RefundStatus, amount: int) -> Refund:
        return Refund(
            id=f"rf_{status.value}", order_code=order.code, kind=RefundKind.AMOUNT, amount=eur(amount),
            fees_kept=eur(0), reason="goodwill", status=status, processor=Processor.STRIPE,
            workflow_id=f"refund/{order.code}/{status.value}", requested_by="agent", created_at=NOW, updated_at=NOW,
        )  # fmt: skip

    refunds = [refund(RefundStatus.SUCCEEDED, 1000), refund(RefundStatus.REFUNDING, 500)]
    doc = receipt_document(order, event, {t.id: t for t in types}, refunds)
    assert [(line.description, line.quantity, line.total_display) for line in doc.lines] == [
        ("Harbour Lights Concert: General admission", 2, "EUR 70.00")
    ]
    assert [line.total_display for line in doc.fees] == ["EUR 2.50"]
    assert [line.total_display for line in doc.refunds] == ["EUR -10.00"]
    assert doc.total_display == "EUR 62.50" and doc.issued_at == order.created_at
