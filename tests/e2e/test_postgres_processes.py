"""The production shape on PostgreSQL: two worker processes and two API processes share one database.

Refunds, a cancellation with refund, a bulk delivery and concurrent scans go through both API
processes at once (alternating), while two worker processes poll the same queues. Nothing is
lost or done twice: one processor refund per refund, one email per buyer, one admitted scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from tests.e2e.bulk_support import buyers, event_with_orders, per_recipient
from tests.e2e.refund_support import card_order, stripe_refunds_for
from tests.harness import Harness, running, worker_env
from ticketing.roles import Role
from ticketing.store.engine import Store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _processes(app: Harness, tmp_path: Path, api_ports: list[int]) -> Iterator[None]:
    procs = [
        subprocess.Popen([sys.executable, "-m", "workers.main"], env=worker_env(app),
                         stdout=(tmp_path / f"worker-{i}.log").open("ab"), stderr=subprocess.STDOUT)
        for i in range(2)
    ] + [
        subprocess.Popen([str(BIN / "ticketops"), "api", "--host", "127.0.0.1", "--port", str(port)],
                         env=worker_env(app), stdout=(tmp_path / f"api-{port}.log").open("ab"),
                         stderr=subprocess.STDOUT)
        for port in api_ports
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig(pending_refund_settle_seconds=0.5)) as server:
        yield server


class Fleet:
    def __init__(self, app: Harness, apis: list[httpx.AsyncClient]) -> None:
        self.app, self.apis, self._turn = app, apis, 0

    def api(self) -> httpx.AsyncClient:
        """The API processes in turn, as a load balancer spreads requests."""
        self._turn += 1
        return self.apis[self._turn % len(self.apis)]

    async def wait_operation(self, operation_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body: dict[str, Any] = (await self.api().get(f"/operations/{operation_id}")).json()
            if body.get("status") not in (None, "running"):
                return body
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)


@pytest_asyncio.fixture
async def fleet(
    temporal_client: Client, pg_store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Fleet]:
    ports = [_free_port(), _free_port()]
    async with running(temporal_client, pg_store, tmp_path, queue_prefix, stripe=stripe, with_workers=False) as app:
        stripe.set_webhook_url(f"http://127.0.0.1:{ports[0]}/webhooks/stripe")
        key = await app.key_for("backoffice", Role.ADMIN)
        with _processes(app, tmp_path, ports):
            async with contextlib.AsyncExitStack() as stack:
                apis = [
                    await stack.enter_async_context(httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30
                    ))
                    for port in ports
                ]
                for api in apis:  # each process is ready once it reaches the database and Temporal
                    for _ in range(600):
                        with contextlib.suppress(httpx.TransportError):
                            if (await api.get("/ready")).status_code == 200:
                                break
                        await asyncio.sleep(0.1)
                    else:
                        raise AssertionError(f"API on {api.base_url} never got ready")
                yield Fleet(app, apis)


async def _refund(fleet: Fleet, code: str) -> dict[str, Any]:
    body = {"kind": "full", "reason": "postgres fleet"}
    preview = await fleet.api().post(f"/orders/{code}/refunds/preview", json=body)
    assert preview.status_code == 200, preview.text
    resp = await fleet.api().post(f"/orders/{code}/refunds", json={**body, "quote_hash": preview.json()["quote_hash"]},
                                  headers={"Idempotency-Key": f"pg-{code}"})
    assert resp.status_code == 202, resp.text
    return await fleet.wait_operation(resp.json()["operation_id"])


async def test_refunds_cancellation_bulk_and_scans_across_processes(fleet: Fleet, stripe: StripeServer) -> None:
    app = fleet.app
    # Refunds, all at once through both API processes.
    orders = [await card_order(app, stripe, tickets=2) for _ in range(6)]
    done = await asyncio.gather(*(_refund(fleet, o.code) for o in orders))
    assert [d["status"] for d in done] == ["completed"] * 6, done
    assert {d["result"]["status"] for d in done} == {"refunded"}
    for order, outcome in zip(orders, done, strict=True):
        at_stripe = stripe_refunds_for(stripe, order.payment.reference)
        assert [r["status"] for r in at_stripe] == ["succeeded"], at_stripe  # exactly one, never two
        ledger = (await fleet.api().get(f"/refunds/{outcome['result']['refund_id']}")).json()
        assert ledger["status"] == "refunded" and ledger["processor_refund_id"] == at_stripe[0]["id"]

    # A cancellation with refund.
    cancelled = await card_order(app, stripe, tickets=2)
    resp = await fleet.api().post(f"/orders/{cancelled.code}/cancel", json={"reason": "fleet", "refund": True},
                                  headers={"Idempotency-Key": "pg-cancel"})
    assert resp.status_code == 202, resp.text
    outcome = await fleet.wait_operation(resp.json()["operation_id"])
    assert outcome["status"] == "completed" and outcome["result"]["refund"] == "refunded", outcome
    assert len(stripe_refunds_for(stripe, cancelled.payment.reference)) == 1
    assert (await fleet.api().get(f"/orders/{cancelled.code}")).json()["status"] == "cancelled"

    # A bulk delivery, started through one process and followed through the other.
    app.sink.clear()
    emails = buyers(30)
    event, _, _ = await event_with_orders(app, emails)
    started = await fleet.api().post(f"/events/{event.id}/deliveries", json={})
    assert started.status_code == 202, started.text
    for _ in range(1200):
        bulk = (await fleet.api().get(f"/bulk/{started.json()['bulk_id']}")).json()
        if bulk["status"] in ("completed", "cancelled"):
            break
        await asyncio.sleep(0.1)
    assert bulk["status"] == "completed" and bulk["counts"] == {"sent": 30}, bulk
    received = per_recipient(app)
    assert set(received) == set(emails) and set(received.values()) == {1}

    # Six gates scan one barcode at once, through both processes: one admission.
    _, _, gate_orders = await event_with_orders(app, ["gate@example.com"])
    barcode = gate_orders[0].tickets[0].barcode
    results = await asyncio.gather(*(
        fleet.api().post("/scan", json={"barcode": barcode, "access_point": f"gate-{i}"}) for i in range(6)
    ))
    assert sorted(r.json()["result"] for r in results) == ["accepted"] + ["rejected"] * 5

