"""The auditor against a real system: clean after real refunds, and each violation, injected
into the store, the relay's mail or the processor, reported exactly as itself."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from temporalio.client import Client

from backoffice.cli.audit_cmds import figures, run_audit
from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from tests.builders import make_event, make_order
from tests.e2e.refund_support import card_order, request_refund
from tests.harness import Harness, running, seed, worker_env
from ticketing.audit import Check, check_barcodes, check_sent_once
from ticketing.models import Order, Processor, Refund, RefundKind
from ticketing.money import Money
from ticketing.reconciliation_records import ReconWindow
from ticketing.states import RefundStatus
from ticketing.store.engine import Store
from ticketing.store.refunds import insert_refund
from ticketing.store.tables import deliveries, orders, tickets


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    server = StripeServer(StripeServerConfig())
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, any_store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    """On SQLite and on PostgreSQL: the auditor's reads are plain SQL on both."""
    async with running(temporal_client, any_store, tmp_path, queue_prefix, stripe=stripe) as harness:
        yield harness


def _window() -> ReconWindow:
    now = datetime.now(UTC)
    return ReconWindow(start=now - timedelta(hours=1), end=now + timedelta(hours=1))


async def _found(app: Harness, **kw: Any) -> list[tuple[Check, str]]:
    kw.setdefault("email_window", timedelta(minutes=60))
    found = await run_audit(app.settings, now=datetime.now(UTC), **kw)
    return sorted((f.check, f.subject) for f in found)


async def _refunded(app: Harness, stripe: StripeServer) -> Order:
    order = await card_order(app, stripe)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded", done
    return order


def _refund(order: Order, status: RefundStatus, amount: int, *, processor: Processor, ago: timedelta) -> Refund:
    at = datetime.now(UTC) - ago
    return Refund(
        id=f"rf_{uuid.uuid4().hex[:10]}", order_code=order.code, kind=RefundKind.AMOUNT,
        amount=Money(amount=amount, currency=order.currency), fees_kept=Money.zero(order.currency),
        reason="audit test", status=status, processor=processor, workflow_id=f"refund/{uuid.uuid4().hex[:8]}",
        manual_reference="bank-1" if status is RefundStatus.SUCCEEDED else None,
        requested_by="finance-1", created_at=at, updated_at=at,
    )


async def _plain_order(app: Harness) -> Order:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=2)
    await seed(app.store, event, types, slots, [order])
    return order


async def test_each_violation_is_reported_as_itself(app: Harness, stripe: StripeServer, tmp_path: Path) -> None:
    refunded = await _refunded(app, stripe)
    await _refunded(app, stripe)
    window = _window()
    assert await _found(app, mail_dir=app.sink.directory, window=window) == []  # real work leaves nothing

    async with app.store.transaction() as conn:  # totals that are not the ledger's sum
        await conn.execute(orders.update().where(orders.c.code == refunded.code).values(pending_refund_total=1))
    assert await _found(app) == [(Check.ORDER_TOTALS, refunded.code)]
    async with app.store.transaction() as conn:
        await conn.execute(orders.update().where(orders.c.code == refunded.code).values(pending_refund_total=0))

    # Paid back by hand beyond what was paid: the schema keeps the order's totals within the payment
    # (ck_orders_no_over_refund), so the ledger's rows say it, and the totals differ from them.
    over = await _plain_order(app)
    paid = over.paid_total.amount
    async with app.store.transaction() as conn:
        await insert_refund(conn, _refund(over, RefundStatus.SUCCEEDED, paid + 1, processor=Processor.MANUAL,
                                          ago=timedelta(0)))
    doubled = [(Check.ORDER_TOTALS, over.code), (Check.OVER_REFUNDED, over.code)]
    assert await _found(app) == doubled
    async with app.store.transaction() as conn:  # the order is cancelled, its tickets still open the gate
        await conn.execute(orders.update().where(orders.c.code == over.code).values(status="cancelled"))
    assert await _found(app) == sorted(doubled + [(Check.VALID_ON_CANCELLED, t.id) for t in over.tickets])
    async with app.store.transaction() as conn:
        await conn.execute(tickets.update().where(tickets.c.order_code == over.code).values(state="invalid:cancelled"))
        await conn.execute(orders.update().where(orders.c.code == over.code).values(refunded_total=paid))
        await conn.execute(sa.text("UPDATE refunds SET amount = :a WHERE order_code = :c"), {"a": paid, "c": over.code})
    assert await _found(app) == []

    revived = refunded.tickets[0]  # a refunded ticket valid again
    async with app.store.transaction() as conn:
        await conn.execute(tickets.update().where(tickets.c.id == revived.id).values(state="valid"))
    assert await _found(app) == [(Check.VALID_BUT_REFUNDED, revived.id)]
    async with app.store.transaction() as conn:
        await conn.execute(tickets.update().where(tickets.c.id == revived.id).values(state="invalid:refunded"))

    now = datetime.now(UTC)  # a claimed email nobody resolved
    async with app.store.transaction() as conn:
        await conn.execute(
            deliveries.insert().values(
                message_id="stuck@ticketops", order_code=refunded.code, workflow_id="resend/x", kind="resend",
                provider="smtp", status="queued", attempts=1, created_at=now - timedelta(hours=2),
                updated_at=now - timedelta(hours=2),
            )
        )
    assert await _found(app) == [(Check.DELIVERY_UNRESOLVED, "stuck@ticketops")]
    assert await _found(app, email_window=timedelta(hours=3)) == []
    async with app.store.transaction() as conn:
        await conn.execute(
            deliveries.update().where(deliveries.c.message_id == "stuck@ticketops").values(status="sent")
        )

    mail = tmp_path / "relay"  # the relay accepted one message twice
    shutil.copytree(app.sink.directory, mail)
    first = sorted(mail.glob("*.eml"))[0]
    shutil.copy(first, mail / "again.eml")
    from email import message_from_bytes

    mid = str(message_from_bytes(first.read_bytes())["Message-ID"]).strip("<>")
    assert await _found(app, mail_dir=mail) == [(Check.SENT_TWICE, mid)]

    waiting = await _plain_order(app)  # refunds waiting past their deadline with nobody told
    confirming = _refund(waiting, RefundStatus.CONFIRMING, 100, processor=Processor.STRIPE, ago=timedelta(days=30))
    manual = _refund(waiting, RefundStatus.AWAITING_MANUAL, 200, processor=Processor.MANUAL, ago=timedelta(days=4))
    async with app.store.transaction() as conn:
        await insert_refund(conn, confirming)
        await insert_refund(conn, manual)
        await conn.execute(orders.update().where(orders.c.code == waiting.code).values(pending_refund_total=300))
    assert await _found(app) == sorted(
        [(Check.CONFIRMING_OVERDUE, confirming.id), (Check.MANUAL_UNREMINDED, manual.id)]
    )
    async with app.store.transaction() as conn:  # finance got the reminder
        await conn.execute(
            deliveries.insert().values(
                message_id="reminder@ticketops", order_code=waiting.code, workflow_id=manual.workflow_id,
                kind="refund-manual-reminder", provider="smtp", status="sent", attempts=1, created_at=now,
                updated_at=now,
            )
        )
    assert await _found(app) == [(Check.CONFIRMING_OVERDUE, confirming.id)]

    other = await card_order(app, stripe)  # a refund at the processor the ledger never wrote
    assert other.payment.reference
    stripe.dashboard_refund(other.payment.reference, amount=500)
    found = await _found(app, window=window)
    assert (Check.PROCESSOR_TOTALS, "stripe:EUR") in found, found
    assert [f for f in found if f[0] is Check.PROCESSOR_TOTALS] == [(Check.PROCESSOR_TOTALS, "stripe:EUR")]


async def _audit_command(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    command = [str(Path(sys.executable).parent / "ticketops"), "audit"]
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=PIPE, stderr=PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return subprocess.CompletedProcess(command, proc.returncode or 0, out, err)


async def test_the_command_prints_json_and_exits_non_zero_on_findings(app: Harness, tmp_path: Path) -> None:
    order = await _plain_order(app)
    env = worker_env(app)
    clean = await _audit_command(env)
    assert clean.returncode == 0, clean.stderr.decode()
    assert json.loads(clean.stdout)["findings"] == []
    async with app.store.transaction() as conn:
        await conn.execute(orders.update().where(orders.c.code == order.code).values(refunded_total=7))
    dirty = await _audit_command(env)
    assert dirty.returncode == 1, dirty.stderr.decode()
    report = json.loads(dirty.stdout)
    assert [(f["check"], f["subject"]) for f in report["findings"]] == [(Check.ORDER_TOTALS.value, order.code)]
    assert report["figures"]["impossible"] == 1


def test_pure_checks_for_what_the_schema_already_forbids() -> None:
    """Barcodes are unique in the schema today, and the log's Message-ID is its key: the checks hold anyway."""
    assert [f.subject for f in check_barcodes([("B1", "t1"), ("B1", "t2"), ("B2", "t3")])] == ["B1"]
    found = check_sent_once([("<m1@x>", "mail"), ("m1@x", "mail"), ("m2@x", "history:A"), ("m2@x", "history:B")])
    assert [(f.subject, f.detail["recorded"]) for f in found] == [("m1@x", {"mail": 2})]
    assert figures([]) == {"doubled": 0, "lost": 0, "impossible": 0, "duplicate Message-IDs": 0, "stuck": 0}

