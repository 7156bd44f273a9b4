"""Order import through the API end to end: POST /imports -> ImportOrders -> store -> SMTP sink -> report."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.client import Client

from backoffice.api import imports as imports_api
from runtime.settings import BulkConfig
from tests.builders import make_event
from tests.e2e.action_support import history, problem
from tests.e2e.import_support import csv_text as _csv
from tests.e2e.import_support import import_row as _row
from tests.harness import Harness, running, seed
from ticketing.store.engine import Store
from ticketing.store.orders import load_order, load_ticket_types
from ticketing.store.tables import bulk_operations, import_rows, import_staging, orders


async def _event(app: Harness) -> str:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    await seed(app.store, event, types, slots, [])
    return event.id


async def _post(app: Harness, body: str, kind: str = "text/csv", **params: Any) -> Any:
    return await app.http.post("/imports", content=body.encode(), params=params, headers={"Content-Type": kind})


async def _wait_bulk(app: Harness, bulk_id: str, timeout: float = 30) -> dict[str, Any]:
    for _ in range(int(timeout * 10)):
        state: dict[str, Any] = (await app.http.get(f"/bulk/{bulk_id}")).json()
        if state["status"] in ("completed", "cancelled"):
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"import {bulk_id} still running")


async def test_a_csv_is_imported_in_batches_and_delivered(app: Harness) -> None:
    event_id = await _event(app)
    rows = [_row(event_id, n) for n in range(5)] + [_row(event_id, 9, order_code="", payment_method="invoice",
                                                         payment_reference="", status="reserved")]
    resp = await _post(app, _csv(rows), deliver="true", filename="spring.csv")
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert (accepted["orders"], accepted["tickets"]) == (6, 12)
    state = await _wait_bulk(app, accepted["bulk_id"])
    assert state["kind"] == "import" and state["counts"] == {"sent": 5, "skipped": 1}, state

    async with app.store.transaction() as conn:
        codes = [r.code for r in (await conn.execute(sa.select(orders.c.code).where(orders.c.event_id == event_id)))]
        sold = {t.id: t.sold for t in await load_ticket_types(conn, event_id)}
        first = await load_order(conn, rows[0]["order_code"])
        staged_left = (await conn.execute(sa.select(sa.func.count()).select_from(import_rows))).scalar_one()
    assert len(codes) == 6 and sold[f"{event_id}_ga"] == 12 and staged_left == 0
    assert (first.contact.email, len(first.tickets), first.status.value) == ("buyer0@example.com", 2, "paid")
    types = [e.type for e in await history(app, first.code)]
    assert types == ["order-imported", "tickets-sent"]
    assert (await history(app, first.code))[0].data["file"] == "spring.csv"
    mails = await app.sink.wait_for_messages(5)
    assert sorted(m["To"] for m in mails) == [f"buyer{n}@example.com" for n in range(5)]

    report = await app.http.get(f"/bulk/{accepted['bulk_id']}/report.csv")
    assert report.status_code == 200
    lines = list(csv.DictReader(io.StringIO(report.text)))
    assert {r["recipient_or_order"] for r in lines} == set(codes)
    assert sorted(r["status"] for r in lines) == ["sent"] * 5 + ["skipped"]

    replay = await _post(app, _csv(rows), deliver="true", filename="spring.csv")
    assert replay.status_code == 422  # the codes exist now: a second import of the file is refused whole


async def test_a_file_with_errors_imports_nothing_and_lists_every_error(app: Harness) -> None:
    event_id = await _event(app)
    rows = [
        _row(event_id, 1),
        _row(event_id, 2, contact_email="not-an-email", quantity="0"),
        _row(event_id, 3, ticket_type_id="nope"),
    ]
    resp = await _post(app, _csv(rows))
    body = problem(resp, 422, "import-invalid")
    assert [(e["row"], e["field"]) for e in body["issues"]] == [
        (2, "contact_email"), (2, "quantity"), (3, "ticket_type_id")
    ]
    async with app.store.transaction() as conn:
        assert (await conn.execute(sa.select(orders.c.code).where(orders.c.event_id == event_id))).first() is None
        imports = sa.select(bulk_operations.c.id).where(bulk_operations.c.kind == "import")
        assert (await conn.execute(imports)).first() is None
    problem(await _post(app, "[]", kind="application/json"), 422, "import-invalid")
    problem(await _post(app, "a,b", kind="text/plain"), 415, "unsupported-media-type")


@pytest_asyncio.fixture
async def slow(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    """One order per batch, four emails a second: slow enough to pause in the middle."""
    overrides = {"bulk": BulkConfig(batch_size=1, window=1, emails_per_second=4.0)}
    async with running(temporal_client, store, tmp_path, queue_prefix, settings_overrides=overrides) as harness:
        yield harness


async def test_json_import_pauses_and_resumes(slow: Harness) -> None:
    app = slow
    event_id = await _event(app)
    rows = [_row(event_id, n) for n in range(8)]
    resp = await _post(app, json.dumps(rows), kind="application/json", deliver="true")
    assert resp.status_code == 202, resp.text
    bulk_id = resp.json()["bulk_id"]
    await app.sink.wait_for_messages(1)
    paused = await app.http.post(f"/bulk/{bulk_id}/pause")
    assert paused.status_code == 200, paused.text
    await asyncio.sleep(1.5)
    held = len(app.sink.messages)
    await asyncio.sleep(1.0)
    assert len(app.sink.messages) == held < 8
    state = (await app.http.get(f"/bulk/{bulk_id}")).json()
    assert state["status"] == "paused", state
    assert (await app.http.post(f"/bulk/{bulk_id}/resume")).status_code == 200
    done = await _wait_bulk(app, bulk_id)
    assert done["counts"] == {"sent": 8}
    assert len(await app.sink.wait_for_messages(8)) == 8


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    """The body as a slow client sends it: no Content-Length, small chunks."""
    for at in range(0, len(data), size):
        yield data[at:at + size]


async def _staged_rows(app: Harness) -> int:
    async with app.store.transaction() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(import_staging))).scalar_one()


async def test_a_json_file_sent_in_small_chunks_is_imported_as_if_sent_whole(app: Harness) -> None:
    event_id = await _event(app)
    rows = [_row(event_id, n, contact_name=f"Zoë Ünicode {n}") for n in range(4)]
    rows.append({**_row(event_id, 0, order_code=rows[0]["order_code"], contact_name="Zoë Ünicode 0"),
                 "quantity": 1, "ticket_type_id": f"{event_id}_vip"})  # a second line of the first order
    data = json.dumps(rows, ensure_ascii=False, indent=2).encode()

    resp = await app.http.post("/imports", content=_pieces(data, 5), headers={"Content-Type": "application/json"})

    assert resp.status_code == 202, resp.text
    assert (resp.json()["orders"], resp.json()["tickets"]) == (4, 9)
    state = await _wait_bulk(app, resp.json()["bulk_id"])
    assert state["counts"] == {"imported": 4}
    async with app.store.transaction() as conn:
        first = await load_order(conn, rows[0]["order_code"])
    assert first.contact.name == "Zoë Ünicode 0"
    assert sorted(t.ticket_type_id for t in first.tickets) == [f"{event_id}_ga"] * 2 + [f"{event_id}_vip"]
    assert await _staged_rows(app) == 0


async def test_errors_past_the_first_thousand_are_counted_and_nothing_is_left_staged(app: Harness) -> None:
    event_id = await _event(app)
    rows = [_row(event_id, n) for n in range(3)]
    rows += [_row(event_id, n, quantity="0") for n in range(3, 1203)]
    data = _csv(rows).encode()

    body = problem(await app.http.post("/imports", content=_pieces(data, 4096),
                                       headers={"Content-Type": "text/csv"}), 422, "import-invalid")

    assert (len(body["issues"]), body["issues_total"]) == (1000, 1200)
    assert body["detail"] == "1200 problem(s) in the file; nothing was imported; the first 1000 are listed"
    assert body["issues"][0] == {"row": 4, "field": "quantity", "message": "must be a positive whole number"}
    assert body["issues"][-1]["row"] == 1003
    async with app.store.transaction() as conn:
        assert (await conn.execute(sa.select(orders.c.code).where(orders.c.event_id == event_id))).first() is None
        assert (await conn.execute(sa.select(bulk_operations.c.id).where(bulk_operations.c.kind == "import"))
                ).first() is None
    assert await _staged_rows(app) == 0


async def test_a_repost_with_the_same_key_replays_the_first_answer_and_imports_once(app: Harness) -> None:
    event_id = await _event(app)
    rows = [_row(event_id, n) for n in range(3)]
    data = _csv(rows).encode()
    headers = {"Content-Type": "text/csv", "Idempotency-Key": f"spring-{uuid.uuid4().hex[:8]}"}

    first = await app.http.post("/imports", content=data, headers=headers)
    assert first.status_code == 202, first.text
    again = await app.http.post("/imports", content=_pieces(data, 7), headers=headers)  # cut otherwise
    assert again.status_code == 202, again.text
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    other = _csv(rows[:2]).encode()
    problem(await app.http.post("/imports", content=other, headers=headers), 422, "idempotency-key-reused")

    state = await _wait_bulk(app, first.json()["bulk_id"])
    assert state["counts"] == {"imported": 3}
    async with app.store.transaction() as conn:
        codes = (await conn.execute(sa.select(orders.c.code).where(orders.c.event_id == event_id))).all()
        imports = (await conn.execute(sa.select(bulk_operations.c.id).where(bulk_operations.c.kind == "import"))
                   ).all()
    assert len(codes) == 3 and len(imports) == 1
    assert await _staged_rows(app) == 0


async def test_a_file_over_the_limit_is_refused_as_it_streams(app: Harness, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    event_id = await _event(app)
    data = _csv([_row(event_id, n) for n in range(40)]).encode()
    monkeypatch.setattr(imports_api, "MAX_BYTES", len(data) // 2)

    streamed = await app.http.post("/imports", content=_pieces(data, 100), headers={"Content-Type": "text/csv"})
    problem(streamed, 413, "file-too-large")
    declared = await app.http.post("/imports", content=data, headers={"Content-Type": "text/csv"})
    problem(declared, 413, "file-too-large")
    assert await _staged_rows(app) == 0


async def test_text_no_field_may_hold_is_refused_by_row_and_field(app: Harness) -> None:
    event_id = await _event(app)
    rows = [_row(event_id, 1), _row(event_id, 2, contact_name="Ada\u0007Lovelace")]

    body = problem(await _post(app, json.dumps(rows), kind="application/json"), 422, "import-invalid")

    assert [(i["row"], i["field"]) for i in body["issues"]] == [(2, "contact_name")]
    assert "control character (U+0007)" in body["issues"][0]["message"]
