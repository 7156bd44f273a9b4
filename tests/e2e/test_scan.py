"""Bulk scan-status operations (seed 002) and the gate's POST /scan, through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from tests.e2e.action_support import action, force, history, problem, seeded, stored
from tests.harness import Harness, running
from ticketing.states import ScanState, TicketState
from ticketing.store.engine import Store


@pytest_asyncio.fixture
async def api(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    async with running(temporal_client, store, tmp_path, queue_prefix, with_workers=False) as harness:
        yield harness


async def _scan(h: Harness, barcode: str, access_point: str | None = "north-gate") -> dict[str, Any]:
    resp = await h.http.post("/scan", json={"barcode": barcode, "access_point": access_point})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_bulk_statuses_and_what_the_gate_says(api: Harness) -> None:
    _, order = await seeded(api, tickets=3)
    t0, t1, t2 = order.tickets
    url = f"/orders/{order.code}/tickets/scan-status"
    agent = await api.headers_for("agent-5", "admin")  # scan operations are for admins
    used = await api.http.post(url, json={"ticket_ids": [t0.id, t1.id], "status": "scanned-in"}, headers=agent)
    assert used.status_code == 200, used.text
    assert used.json()["changed"] == [t0.id, t1.id]
    assert {t["scan_state"] for t in used.json()["tickets"]} == {"scanned-in"}

    banned = await api.http.post(url, json={"ticket_ids": [t2.id], "status": "blacklisted"}, headers=agent)
    assert banned.json()["tickets"] == [
        {"id": t2.id, "status": "invalid", "invalid_reason": "blacklisted", "scan_state": "unscanned"}
    ]
    rejected = await _scan(api, t2.barcode)
    assert (rejected["result"], rejected["reason"], rejected["order_code"]) == (
        "rejected", "ticket is blacklisted", order.code
    )
    # "Unscanned" makes the blacklisted ticket valid and un-used again.
    restored = await api.http.post(url, json={"ticket_ids": [t2.id, t0.id], "status": "unscanned"}, headers=agent)
    assert restored.json()["changed"] == [t2.id, t0.id]
    assert (await _scan(api, t2.barcode))["result"] == "accepted"
    assert (await _scan(api, t0.barcode))["result"] == "accepted"

    after = await stored(api, order.code)
    assert after.ticket(t2.id).state is TicketState.VALID
    assert after.ticket(t1.id).scan_state is ScanState.SCANNED_IN
    changes = await history(api, order.code, "scan-status-changed")
    assert [(h.actor, h.data) for h in changes] == [
        ("agent-5", {"status": "scanned-in", "tickets": [t0.id, t1.id]}),
        ("agent-5", {"status": "blacklisted", "tickets": [t2.id]}),
        ("agent-5", {"status": "unscanned", "tickets": [t2.id, t0.id]}),
    ]
    detail = (await api.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "set-scan-status")["enabled"]


async def test_scan_status_refusals_change_nothing(api: Harness) -> None:
    _, order = await seeded(api, tickets=2)
    await force(api, order.code, {1: TicketState.CANCELLED})
    before = await stored(api, order.code)
    url = f"/orders/{order.code}/tickets/scan-status"
    ids = [t.id for t in order.tickets]
    body = problem(await api.http.post(url, json={"ticket_ids": ids, "status": "scanned-in"}), 409, "ticket-invalid")
    assert body["ticket_id"] == ids[1]
    problem(await api.http.post(url, json={"ticket_ids": ["tkt_nope"], "status": "unscanned"}), 404, "ticket-not-found")
    for bad in ({"ticket_ids": [], "status": "unscanned"}, {"ticket_ids": ids[:1], "status": "used"}, {"status": "x"}):
        problem(await api.http.post(url, json=bad), 422, "validation-error")
    assert await stored(api, order.code) == before
    assert await history(api, order.code, "scan-status-changed") == []


async def test_gate_admits_once_records_every_scan_and_rejects_invalid_tickets(api: Harness) -> None:
    _, order = await seeded(api, tickets=4)
    t0, t1, t2, t3 = order.tickets
    first = await _scan(api, t0.barcode)
    assert first == {
        "result": "accepted", "reason": None, "reason_type": None,
        "ticket_id": t0.id, "order_code": order.code, "scan_state": "scanned-in",
    }  # fmt: skip
    again = await _scan(api, t0.barcode, access_point="south-gate")
    assert (again["result"], again["reason_type"]) == ("rejected", "already-scanned-in")
    out = await api.http.post(
        f"/orders/{order.code}/tickets/scan-status", json={"ticket_ids": [t0.id], "status": "scanned-out"}
    )
    assert out.status_code == 200
    assert (await _scan(api, t0.barcode))["result"] == "accepted"  # re-entry after scanning out

    await force(api, order.code, {1: TicketState.REISSUED, 2: TicketState.CANCELLED, 3: TicketState.REFUNDED})
    reasons = [(await _scan(api, t.barcode))["reason"] for t in (t1, t2, t3)]
    assert reasons == ["ticket was reissued", "ticket was cancelled", "ticket was refunded"]
    unknown = await _scan(api, "NOT-A-BARCODE")
    assert unknown == {
        "result": "rejected", "reason": "unknown barcode", "reason_type": "unknown-barcode",
        "ticket_id": None, "order_code": None, "scan_state": None,
    }  # fmt: skip

    tickets = {t["id"]: t for t in (await api.http.get(f"/orders/{order.code}")).json()["tickets"]}
    assert [(s["result"], s["reason"], s["access_point"]) for s in tickets[t0.id]["scan_history"]] == [
        ("accepted", None, "north-gate"),
        ("rejected", "ticket is already scanned in", "south-gate"),
        ("accepted", None, "north-gate"),
    ]
    assert tickets[t0.id]["scan_state"] == "scanned-in"
    assert tickets[t1.id]["last_scan"]["reason"] == "ticket was reissued"
    problem(await api.http.post("/scan", json={"barcode": ""}), 422, "validation-error")
    problem(await api.http.post("/scan", json={"code": t0.barcode}), 422, "validation-error")


async def test_concurrent_scans_of_one_barcode_admit_once(
    temporal_client: Client, any_store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    async with running(temporal_client, any_store, tmp_path, queue_prefix, with_workers=False) as h:
        _, order = await seeded(h, tickets=1)
        barcode = order.tickets[0].barcode
        results = await asyncio.gather(*(_scan(h, barcode, access_point=f"gate-{i}") for i in range(6)))
        assert sorted(r["result"] for r in results) == ["accepted"] + ["rejected"] * 5
        assert {r["reason_type"] for r in results if r["result"] == "rejected"} == {"already-scanned-in"}
        scans = (await stored(h, order.code)).tickets[0].scans
        assert len(scans) == 6 and [s.result for s in scans].count("accepted") == 1
