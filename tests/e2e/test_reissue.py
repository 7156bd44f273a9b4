"""Reissue-and-resend and reschedule end to end: API -> workflow -> store -> SMTP sink -> gate."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tests.builders import make_event, make_order
from tests.documents.qr import decode_qr_payloads_from_pdf
from tests.harness import Harness, seed
from ticketing.models import Order
from ticketing.states import OrderStatus
from ticketing.store.orders import load_history, load_order, load_ticket_types, load_time_slots
from workflows.contracts import RescheduleInput


async def _seeded(app: Harness, *, late_capacity: int = 400, slots_count: int = 2, **kw: Any) -> tuple[Any, Order]:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    slots = [slots[0], slots[1].model_copy(update={"capacity": late_capacity})][:slots_count]
    order = make_order(event, types, slot=slots[0].id, **kw)
    await seed(app.store, event, types, slots, [order])
    return event, order


async def _order(app: Harness, code: str) -> Order:
    async with app.store.transaction() as conn:
        return await load_order(conn, code)


async def _history(app: Harness, code: str) -> list[str]:
    async with app.store.transaction() as conn:
        return [h.type for h in await load_history(conn, code)]


def _barcodes_in(message: Any) -> set[str]:
    pdfs = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    return {code for p in pdfs for code in decode_qr_payloads_from_pdf(p.get_content())}


async def test_reissue_all_tickets_and_resend(app: Harness) -> None:
    _, order = await _seeded(app, tickets=2)
    resp = await app.http.post(f"/orders/{order.code}/reissue", headers={"Idempotency-Key": "re-1"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["tickets"] == [t.id for t in order.tickets]
    done = await app.wait_operation(resp.json()["operation_id"])
    assert done["status"] == "completed", done
    assert done["result"]["delivery"] == "sent"
    replaced = done["result"]["replaced"]

    after = await _order(app, order.code)
    old = {t.id: t for t in after.tickets if t.id in replaced}
    new = {t.id: t for t in after.tickets if t.id in replaced.values()}
    assert {t.state.value for t in old.values()} == {"invalid:reissued"}
    assert {t.replaced_by for t in old.values()} == set(new)
    assert {t.state.value for t in new.values()} == {"valid"}
    assert {t.barcode for t in new.values()}.isdisjoint({t.barcode for t in order.tickets})
    (mail,) = app.sink.messages
    assert _barcodes_in(mail) == {t.barcode for t in new.values()}
    history = await _history(app, order.code)
    assert history.index("tickets-reissued") < history.index("tickets-reissued-sent")
    assert history.count("item-invalidated") == 2

    old_scan = (await app.http.post("/scan", json={"barcode": order.tickets[0].barcode})).json()
    assert (old_scan["result"], old_scan["reason_type"]) == ("rejected", "reissued")
    new_scan = (await app.http.post("/scan", json={"barcode": next(iter(new.values())).barcode})).json()
    assert new_scan["result"] == "accepted"

    replay = await app.http.post(f"/orders/{order.code}/reissue", headers={"Idempotency-Key": "re-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    await asyncio.sleep(0.3)
    assert len(app.sink.messages) == 1 and len((await _order(app, order.code)).tickets) == 4


async def test_reissue_selected_ticket_only(app: Harness) -> None:
    _, order = await _seeded(app, tickets=3)
    resp = await app.http.post(f"/orders/{order.code}/reissue", json={"ticket_ids": [order.tickets[1].id]})
    done = await app.wait_operation(resp.json()["operation_id"])
    assert list(done["result"]["replaced"]) == [order.tickets[1].id]
    after = await _order(app, order.code)
    assert [t.state.value for t in after.tickets] == ["valid", "invalid:reissued", "valid", "valid"]
    assert _barcodes_in(app.sink.messages[0]) == {after.tickets[3].barcode}


async def test_smtp_down_during_reissue(app: Harness) -> None:
    _, order = await _seeded(app, tickets=2)
    await app.sink.stop()
    resp = await app.http.post(f"/orders/{order.code}/reissue")
    op = resp.json()["operation_id"]
    for _ in range(100):
        during = await _order(app, order.code)
        if len(during.tickets) == 4:
            break
        await asyncio.sleep(0.1)
    assert [t.state.value for t in during.tickets] == ["invalid:reissued"] * 2 + ["valid"] * 2
    await asyncio.sleep(1.0)
    assert (await app.http.get(f"/operations/{op}")).json()["status"] == "running"
    assert "tickets-reissued-sent" not in await _history(app, order.code)
    await app.sink.start()
    done = await app.wait_operation(op, timeout=60)
    assert done["status"] == "completed" and done["result"]["delivery"] == "sent"
    assert len(app.sink.messages) == 1
    assert _barcodes_in(app.sink.messages[0]) == {t.barcode for t in during.tickets[2:]}
    history = await _history(app, order.code)
    assert history.count("tickets-reissued") == 1 and history.count("tickets-reissued-sent") == 1
    assert len((await _order(app, order.code)).tickets) == 4


async def test_reschedule_moves_tickets_and_seats(app: Harness) -> None:
    event, order = await _seeded(app, tickets=2)
    eve, late = f"{event.id}_eve", f"{event.id}_late"
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert next(a for a in detail["actions"] if a["name"] == "reschedule")["enabled"] is True
    resp = await app.http.post(f"/orders/{order.code}/reschedule", json={"time_slot_id": late})
    assert resp.status_code == 202, resp.text
    done = await app.wait_operation(resp.json()["operation_id"])
    assert done["status"] == "completed" and done["result"]["time_slot_id"] == late
    after = await _order(app, order.code)
    assert [(t.state.value, t.time_slot_id) for t in after.tickets] == [
        ("invalid:reissued", eve), ("invalid:reissued", eve), ("valid", late), ("valid", late)
    ]
    async with app.store.transaction() as conn:
        sold = {s.id: s.sold for s in await load_time_slots(conn, event.id)}
        types = {t.id: t.sold for t in await load_ticket_types(conn, event.id)}
    assert sold == {eve: 0, late: 2}
    assert types[f"{event.id}_ga"] == 2  # the ticket type's count does not change
    assert _barcodes_in(app.sink.messages[0]) == {t.barcode for t in after.tickets[2:]}
    text = app.sink.messages[0].get_body(("plain",))
    assert text is not None and "General admission, Late (ticket" in text.get_content()
    history = await _history(app, order.code)
    assert history.index("tickets-rescheduled") < history.index("tickets-rescheduled-sent")
    old_scan = (await app.http.post("/scan", json={"barcode": order.tickets[0].barcode})).json()
    assert old_scan["reason_type"] == "reissued"


async def test_reschedule_refusals_change_nothing(app: Harness) -> None:
    event, order = await _seeded(app, tickets=2, late_capacity=1)
    late = f"{event.id}_late"
    other_event, _ = await _seeded(app, tickets=1)

    async def refused(path: str, body: dict[str, Any] | None, code: str | None = None) -> tuple[int, str]:
        resp = await app.http.post(f"/orders/{code or order.code}/{path}", json=body)
        return resp.status_code, resp.json()["type"].rsplit("/", 1)[-1]

    assert await refused("reschedule", {"time_slot_id": late}) == (409, "slot-full")
    assert await refused("reschedule", {"time_slot_id": f"{other_event.id}_late"}) == (422, "slot-not-in-event")
    assert await refused("reschedule", {"time_slot_id": late, "ticket_ids": ["tkt_nope"]}) == (404, "ticket-not-found")
    assert await refused("reschedule", {"ticket_ids": [order.tickets[0].id]}) == (422, "validation-error")
    assert await refused("reissue", {"ticket_ids": []}) == (422, "validation-error")
    assert await refused("reissue", {"ticket_ids": ["tkt_nope"]}) == (404, "ticket-not-found")
    single_event, single = await _seeded(app, slots_count=1)
    assert await refused("reschedule", {"time_slot_id": f"{single_event.id}_eve"}, single.code) == (
        409, "single-time-slot"
    )
    detail = (await app.http.get(f"/orders/{single.code}")).json()
    action = next(a for a in detail["actions"] if a["name"] == "reschedule")
    assert (action["enabled"], action["reason_type"]) == (False, "single-time-slot")
    _, cancelled = await _seeded(app, status=OrderStatus.CANCELLED)
    assert await refused("reissue", None, cancelled.code) == (409, "order-cancelled")

    # A request that raced past the API check is refused by the workflow the same way.
    with pytest.raises(WorkflowFailureError) as info:
        await app.client.execute_workflow(
            "RescheduleOrder",
            RescheduleInput(order_code=order.code, actor="test", time_slot_id=late),
            id=f"reschedule/{order.code}/direct",
            task_queue=f"{app.prefix}orders",
        )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "slot-full"
    after = await _order(app, order.code)
    assert after.version == 1 and len(after.tickets) == 2
    assert await _history(app, order.code) == ["order-created"]
    async with app.store.transaction() as conn:
        assert {s.id: s.sold for s in await load_time_slots(conn, event.id)} == {f"{event.id}_eve": 2, late: 0}
    assert app.sink.messages == []


async def test_reissue_after_cancellation_is_refused_and_old_barcodes_stay_rejected(app: Harness) -> None:
    _, order = await _seeded(app, tickets=1)
    cancel = await app.http.post(f"/orders/{order.code}/cancel", json={"reason": "fraud check failed"})
    await app.wait_operation(cancel.json()["operation_id"])
    resp = await app.http.post(f"/orders/{order.code}/reissue")
    assert resp.status_code == 409 and resp.json()["type"].endswith("/order-cancelled")
    scan = (await app.http.post("/scan", json={"barcode": order.tickets[0].barcode})).json()
    assert (scan["result"], scan["reason_type"]) == ("rejected", "cancelled")


async def test_reissue_activity_retried_after_commit_issues_nothing_twice(app: Harness) -> None:
    """A worker that dies after the commit: the retry finds the operation's history and returns it."""
    from activities.contracts import ReissueTickets
    from activities.reissue import ReissueActivities

    _, order = await _seeded(app, tickets=2)
    activities = ReissueActivities(app.deps)
    req = ReissueTickets(order_code=order.code, operation_id="reissue/X/retried", actor="test")
    first = await activities.reissue_tickets(req)
    second = await activities.reissue_tickets(req)
    assert not first.already_done and second.already_done
    assert second.replaced == first.replaced
    after = await _order(app, order.code)
    assert len(after.tickets) == 4 and after.version == 2
    assert (await _history(app, order.code)).count("tickets-reissued") == 1
