"""Bulk delivery end to end: one email per address, a report, pause/resume, failures and retry."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.worker import Replayer

from activities.bulk_delivery import bulk_message_id
from activities.contracts import BulkBatch
from runtime.settings import BlobConfig, BulkConfig
from tests.builders import make_event, make_order
from tests.documents.qr import decode_qr_payloads_from_pdf
from tests.e2e.bulk_support import buyers, event_with_orders, per_recipient, wait_bulk, with_holder
from tests.harness import Harness, running, seed
from ticketing.states import TicketState
from ticketing.store.deliveries import deliveries_for
from ticketing.store.engine import Store
from ticketing.store.orders import load_history
from ticketing.store.tables import tickets as tickets_table
from workflows.bulk_delivery import BulkDeliveryWorkflow


@pytest_asyncio.fixture
async def app(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    overrides = {
        "blobs": BlobConfig(root=str(tmp_path / "blobs")),
        "bulk": BulkConfig(batch_size=3, window=2, emails_per_second=200, continue_after_batches=4),
    }
    async with running(temporal_client, store, tmp_path, queue_prefix, settings_overrides=overrides) as harness:
        yield harness


async def _start(app: Harness, event_id: str, body: dict[str, object] | None = None) -> dict[str, str]:
    resp = await app.http.post(f"/events/{event_id}/deliveries", json=body or {})
    assert resp.status_code == 202, resp.text
    accepted: dict[str, str] = resp.json()
    return accepted


async def test_tickets_to_every_buyer_once_merged_by_address(app: Harness, tmp_path: Path) -> None:
    emails = buyers(16, shared=2)  # 14 addresses; buyer0 has three orders
    event, _, orders = await event_with_orders(app, [*emails, None], tickets=2)
    started = await _start(app, event.id)
    done = await wait_bulk(app, started["bulk_id"])
    assert done["counts"] == {"sent": 14, "skipped": 1}
    received = per_recipient(app)
    assert set(received) == set(emails) and set(received.values()) == {1}
    merged = next(m for m in app.sink.messages if m["To"] == "buyer0@example.com")
    codes = {o.code for o in orders if o.contact.email == "buyer0@example.com"}
    barcodes = {t.barcode for o in orders if o.code in codes for t in o.tickets}
    pdfs = [p.get_content() for p in merged.iter_attachments()]
    assert {c for pdf in pdfs for c in decode_qr_payloads_from_pdf(pdf)} == barcodes
    report = (await app.http.get(f"/bulk/{started['bulk_id']}/report.csv")).text
    assert done["report_uri"].startswith("file://")
    rows = list(csv.DictReader(io.StringIO(report)))
    assert len(rows) == 15
    assert {r["status"] for r in rows if r["recipient_or_order"].startswith("order:")} == {"skipped"}
    async with app.store.transaction() as conn:
        history = [h.type for h in await load_history(conn, orders[0].code)]
    assert history.count("bulk-delivery-sent") == 1
    # 5 batches at 4 per run: the run continued as new once, and still sent each email once.
    query = f"WorkflowId = '{started['operation_id']}'"
    for _ in range(50):
        runs = [w.status async for w in app.client.list_workflows(query)]
        if len(runs) >= 2:
            break
        await asyncio.sleep(0.1)
    assert sorted(runs, key=str) == sorted(
        [WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW], key=str
    )


async def test_message_to_attendees_and_unscanned_filter(app: Harness) -> None:
    event, types, slots = make_event(event_id="evt_attend", personalised=True)
    first = with_holder(
        make_order(event, types, tickets=0, vip=2, email="booker@example.com"), 0, "Ann", "ann@example.org"
    )
    second = make_order(event, types, tickets=1, email="solo@example.com")
    await seed(app.store, event, types, slots, [first, second])
    started = await _start(
        app,
        event.id,
        {"template": "message", "subject": "Doors open at 18:30", "body": "See you.", "audience": "attendees"},
    )
    done = await wait_bulk(app, started["bulk_id"])
    assert done["counts"] == {"sent": 3}
    assert set(per_recipient(app)) == {"ann@example.org", "booker@example.com", "solo@example.com"}
    assert {m["Subject"] for m in app.sink.messages} == {"Doors open at 18:30"}


async def test_smtp_failures_are_reported_and_retried_alone(app: Harness) -> None:
    emails = buyers(6)
    event, _, _ = await event_with_orders(app, emails)
    app.sink.fail_recipients = {"buyer2@example.com", "buyer4@example.com"}
    started = await _start(app, event.id)
    done = await wait_bulk(app, started["bulk_id"])
    assert done["counts"] == {"sent": 4, "failed": 2}
    report = await app.http.get(f"/bulk/{started['bulk_id']}/report.csv")
    failed = {
        r["recipient_or_order"]: r["reason"]
        for r in csv.DictReader(io.StringIO(report.text))
        if r["status"] == "failed"
    }
    assert set(failed) == {"buyer2@example.com", "buyer4@example.com"} and all("550" in r for r in failed.values())
    app.sink.fail_recipients = set()
    before = len(app.sink.messages)
    retry = await app.http.post(f"/bulk/{started['bulk_id']}/retry-failed")
    assert retry.status_code == 202, retry.text
    again = await wait_bulk(app, retry.json()["bulk_id"])
    assert again["counts"] == {"sent": 2}
    assert sorted(m["To"] for m in app.sink.messages[before:]) == ["buyer2@example.com", "buyer4@example.com"]
    nothing = await app.http.post(f"/bulk/{retry.json()['bulk_id']}/retry-failed")
    assert nothing.status_code == 409 and nothing.json()["type"].endswith("/nothing-to-retry")


async def test_pause_resume_and_cancel(app: Harness) -> None:
    event, _, _ = await event_with_orders(app, buyers(30))
    app.settings.bulk.emails_per_second = 10  # slow enough to catch mid-run
    started = await _start(app, event.id)
    await app.sink.wait_for_messages(3, timeout=20)
    paused = await app.http.post(f"/bulk/{started['bulk_id']}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    await asyncio.sleep(1.5)  # batches in flight finish, then nothing moves
    settled = len(app.sink.messages)
    await asyncio.sleep(1.0)
    assert len(app.sink.messages) == settled < 30
    assert (await app.http.post(f"/bulk/{started['bulk_id']}/resume")).json()["status"] == "running"
    done = await wait_bulk(app, started["bulk_id"], timeout=60)
    assert done["counts"] == {"sent": 30} and set(per_recipient(app).values()) == {1}
    ended = await app.http.post(f"/bulk/{started['bulk_id']}/pause")
    assert ended.status_code == 409 and ended.json()["type"].endswith("/bulk-ended")

    event2, _, _ = await event_with_orders(app, [f"late{i}@example.com" for i in range(30)])
    second = await _start(app, event2.id)
    await app.sink.wait_for_messages(len(app.sink.messages) + 2, timeout=20)
    await app.http.post(f"/bulk/{second['bulk_id']}/cancel")
    stopped = await wait_bulk(app, second["bulk_id"])
    assert stopped["status"] == "cancelled"
    assert stopped["counts"]["sent"] + stopped["counts"]["skipped"] == 30 and stopped["counts"]["skipped"] > 0


async def test_bad_requests(app: Harness) -> None:
    event, _, _ = await event_with_orders(app, buyers(1))
    no_text = await app.http.post(f"/events/{event.id}/deliveries", json={"template": "message"})
    assert no_text.status_code == 422
    unknown = await app.http.post("/events/evt_nope/deliveries", json={})
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/event-not-found")
    bad_slot = await app.http.post(f"/events/{event.id}/deliveries", json={"time_slot_id": "slot_x"})
    assert bad_slot.status_code == 409 and bad_slot.json()["type"].endswith("/slot-not-in-event")
    assert (await app.http.get("/bulk/bk_missing")).status_code == 404
    support = await app.headers_for("agent-1", role="support")
    forbidden = await app.http.post(f"/events/{event.id}/deliveries", json={}, headers=support)
    assert forbidden.status_code == 403
    assert app.sink.messages == []


async def test_scheduled_delivery_waits(app: Harness) -> None:
    from datetime import UTC, datetime, timedelta

    event, _, _ = await event_with_orders(app, buyers(2))
    later = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    started = await _start(app, event.id, {"scheduled_at": later})
    state = (await app.http.get(f"/bulk/{started['bulk_id']}")).json()
    assert state["status"] == "scheduled" and app.sink.messages == [], str(state)
    done = await wait_bulk(app, started["bulk_id"], timeout=30)
    assert done["counts"] == {"sent": 2}


async def test_greylisted_recipients_wait_for_a_later_pass_and_nobody_waits_for_them(app: Harness) -> None:
    """A 451 to RCPT defers that recipient only; passes after a doubling wait retry it, then it fails."""
    app.settings.bulk.deferred_retry_seconds = 1.0
    app.settings.bulk.deferred_retries = 3
    emails = buyers(9)
    event, _, _ = await event_with_orders(app, emails)
    app.sink.defer_recipients = {"buyer2@example.com", "buyer4@example.com"}
    started = await _start(app, event.id)
    await app.sink.wait_for_messages(7, timeout=20)  # everyone else, without waiting for the two
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # the last send's record may still be committing
        state = (await app.http.get(f"/bulk/{started['bulk_id']}")).json()
        if state["counts"] == {"sent": 7, "deferred": 2} or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert state["status"] == "running" and state["counts"] == {"sent": 7, "deferred": 2}, state
    app.sink.defer_recipients = {"buyer4@example.com"}  # buyer2's server accepts on the next pass
    done = await wait_bulk(app, started["bulk_id"], timeout=60)
    assert done["counts"] == {"sent": 8, "failed": 1}, done
    received = per_recipient(app)
    assert set(received) == set(emails) - {"buyer4@example.com"} and set(received.values()) == {1}, received
    report = (await app.http.get(f"/bulk/{started['bulk_id']}/report.csv")).text
    [failed] = [r for r in csv.DictReader(io.StringIO(report)) if r["status"] == "failed"]
    assert failed["recipient_or_order"] == "buyer4@example.com"
    assert failed["reason"].startswith("still deferred after every retry: 451"), failed
    async with app.store.transaction() as conn:
        rows = {r.message_id: r for r in await deliveries_for(conn, started["bulk_id"])}
    assert sorted(r.attempts for r in rows.values())[-1] == 4  # the first pass and three retries

    app.sink.defer_recipients = set()
    retry = await app.http.post(f"/bulk/{started['bulk_id']}/retry-failed")
    again = await wait_bulk(app, retry.json()["bulk_id"], timeout=30)
    assert again["counts"] == {"sent": 1} and per_recipient(app)["buyer4@example.com"] == 1


async def test_relay_down_fails_the_batch_and_the_retry_sends_each_email_once(app: Harness) -> None:
    emails = buyers(6)
    event, _, _ = await event_with_orders(app, emails)
    await app.sink.stop()
    started = await _start(app, event.id)
    deadline = asyncio.get_running_loop().time() + 30  # a loaded CI machine may take a while to try
    while True:
        async with app.store.transaction() as conn:
            queued = [r for r in await deliveries_for(conn, started["bulk_id"]) if r.status == "queued"]
        tried = [r for r in queued if r.reason]  # the rest were claimed, and not started once the relay failed
        if tried or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert tried and all("connection failed" in (r.reason or "").lower() for r in tried), queued
    await app.sink.start()
    done = await wait_bulk(app, started["bulk_id"], timeout=60)
    assert done["counts"] == {"sent": 6}
    received = per_recipient(app)
    assert set(received) == set(emails) and set(received.values()) == {1}, received


async def test_ticket_pdfs_are_rendered_once_and_again_when_the_ticket_changes(app: Harness) -> None:
    emails = buyers(4)
    event, _, orders = await event_with_orders(app, emails, tickets=2)
    pdfs = app.deps.ticket_pdfs()
    before = pdfs.rendered
    first = await _start(app, event.id)
    await wait_bulk(app, first["bulk_id"])
    assert pdfs.rendered - before == 8
    reminder = await _start(app, event.id)  # a week later: the same tickets again
    await wait_bulk(app, reminder["bulk_id"])
    assert pdfs.rendered - before == 8
    by_address = {m["To"]: m for m in app.sink.messages[-4:]}
    assert set(by_address) == set(emails)
    attached = [p.get_content() for p in by_address["buyer1@example.com"].iter_attachments()]
    assert {c for pdf in attached for c in decode_qr_payloads_from_pdf(pdf)} == {t.barcode for t in orders[1].tickets}

    async with app.store.transaction() as conn:  # a reissued barcode is a new document
        await conn.execute(
            tickets_table.update().where(tickets_table.c.id == orders[1].tickets[0].id).values(barcode="NEWCODE42")
        )
    third = await _start(app, event.id)
    await wait_bulk(app, third["bulk_id"])
    assert pdfs.rendered - before == 9
    latest = next(m for m in reversed(app.sink.messages) if m["To"] == "buyer1@example.com")
    attached = [p.get_content() for p in latest.iter_attachments()]
    assert "NEWCODE42" in {c for pdf in attached for c in decode_qr_payloads_from_pdf(pdf)}


async def _batches_per_run(
    app: Harness, workflow_id: str
) -> list[tuple[WorkflowHistory, list[tuple[str, int, BulkBatch]]]]:
    """Each run's history, and its batch activities in history order: ("scheduled" | "completed",
    scheduled event id, input)."""
    runs = [w.run_id async for w in app.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    found = []
    for run_id in runs:
        history = await app.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        scheduled: dict[int, BulkBatch] = {}
        steps: list[tuple[str, int, BulkBatch]] = []
        for e in history.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                attrs = e.activity_task_scheduled_event_attributes
                if attrs.activity_type.name != "deliver_bulk_batch":
                    continue
                [batch] = await app.client.data_converter.decode(attrs.input.payloads, [BulkBatch])
                scheduled[e.event_id] = batch
                steps.append(("scheduled", e.event_id, batch))
            elif e.HasField("activity_task_completed_event_attributes"):
                sid = e.activity_task_completed_event_attributes.scheduled_event_id
                if sid in scheduled:
                    steps.append(("completed", sid, scheduled[sid]))
        found.append((history, steps))
    return found


async def test_batches_slide_staggered_and_together_never_exceed_the_rate(app: Harness) -> None:
    """A batch starts as soon as another ends (not in waves), batches started together have staggered
    sizes so they do not all end together, and those in flight never share more than the rate."""
    event, _, _ = await event_with_orders(app, buyers(20))
    started = await _start(app, event.id)
    done = await wait_bulk(app, started["bulk_id"])
    assert done["counts"] == {"sent": 20}
    config = app.settings.bulk
    covered: list[int] = []
    overlapped_start = False
    replayer = Replayer(workflows=[BulkDeliveryWorkflow], data_converter=app.client.data_converter, build_id="orders")
    for history, steps in await _batches_per_run(app, started["operation_id"]):
        await replayer.replay_workflow(history)  # the sliding engine is deterministic
        running: dict[int, BulkBatch] = {}
        first_sizes = [b.last - b.first + 1 for kind, _, b in steps if kind == "scheduled"][:2]
        assert first_sizes[0] < config.batch_size, first_sizes  # a window filled from empty is staggered
        for i, (kind, sid, batch) in enumerate(steps):
            if kind == "scheduled":
                overlapped_start |= bool(running)
                running[sid] = batch
                covered.extend(range(batch.first, batch.last + 1))
                assert len(running) <= config.window
                in_flight = sum(b.rate for b in running.values())
                assert in_flight <= config.emails_per_second + 1e-9
                if i + 1 == len(steps) or steps[i + 1][0] != "scheduled":  # what ended batches freed is handed on
                    assert in_flight == pytest.approx(config.emails_per_second)
            else:
                del running[sid]
        assert not running  # a run continues as new only with nothing in flight
    assert overlapped_start  # a batch started while another was still sending
    assert len(covered) == len(set(covered)) == 20  # every item in exactly one batch, across the runs


async def test_recipients_refunded_while_the_relay_was_down_close_their_log_rows(app: Harness) -> None:
    """Claimed while the relay is down, refunded before the retry: skipped, and the log row says so."""
    emails = buyers(6)
    event, _, orders = await event_with_orders(app, emails)
    await app.sink.stop()
    started = await _start(app, event.id)
    handle = app.client.get_workflow_handle(started["operation_id"])
    deadline = asyncio.get_running_loop().time() + 20
    while True:  # the first attempt claimed its recipients, and the relay failed it: a retry waits
        pending = (await handle.describe()).raw_description.pending_activities
        if any(a.attempt >= 2 for a in pending) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    async with app.store.read() as conn:
        claimed = await deliveries_for(conn, started["bulk_id"])
    assert len(claimed) >= 3 and {r.status for r in claimed} == {"queued"}, claimed
    ids = {r.message_id for r in claimed}
    refunded = [o for o in orders if bulk_message_id(started["bulk_id"], o.contact.email or "", "tickets") in ids][:3]
    async with app.store.transaction() as conn:
        for order in refunded:
            await conn.execute(
                tickets_table.update()
                .where(tickets_table.c.id.in_([t.id for t in order.tickets]))
                .values(state=TicketState.REFUNDED.value)
            )
    await app.sink.start()
    done = await wait_bulk(app, started["bulk_id"], timeout=60)
    assert done["counts"] == {"sent": 3, "skipped": 3}, done
    async with app.store.read() as conn:
        rows = await deliveries_for(conn, started["bulk_id"])
    assert sorted(r.status for r in rows) == ["sent"] * 3 + ["skipped"] * 3, [(r.status, r.reason) for r in rows]
    assert all(r.reason for r in rows if r.status == "skipped")
    assert set(per_recipient(app)) == {o.contact.email for o in orders} - {o.contact.email for o in refunded}
