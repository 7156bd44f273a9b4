"""The refunds of one processor's window (reconciliation's ledger side, the audit's totals) are read
through `ix_refunds_processor_created_at`: it exists after migrating, and PostgreSQL's planner picks it
for the real statements over a ledger with history outside the window."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.builders import NOW, make_event, make_order
from tests.harness import seed
from ticketing.models import Processor
from ticketing.reconciliation_records import ReconWindow
from ticketing.store import audit as audit_reads
from ticketing.store import reconciliation as rs
from ticketing.store.engine import Store
from ticketing.store.refunds import ledger_refund_ids_page
from ticketing.store.tables import refunds

INDEX = "ix_refunds_processor_created_at"
WINDOW = ReconWindow(start=NOW - timedelta(days=10), end=NOW - timedelta(days=9))
RUN = f"reconcile/stripe/{WINDOW.label}"


async def test_the_window_index_exists_after_migrating(any_store: Store) -> None:
    async with any_store.read() as conn:
        indexes = await conn.run_sync(lambda c: sa.inspect(c).get_indexes("refunds"))
    assert {i["name"]: i["column_names"] for i in indexes}[INDEX] == ["processor", "created_at"]


async def _history(store: Store, count: int) -> list[str]:
    """`count` refunds, one a minute from 20 days before now, of two processors (the window's day
    holds more than a page of them); one in a thousand (a manual one) still waiting. Ids are random,
    as the product's: their order says nothing of time. Returns the ids of the processor refunds
    Stripe made in the window."""
    event, types, slots = make_event()
    order = make_order(event, types)
    await seed(store, event, types, slots, [order])
    rows: list[dict[str, Any]] = []
    for i in range(count):
        at = NOW - timedelta(days=20) + timedelta(minutes=i)
        rows.append(
            {
                "id": f"rf_{uuid.uuid4().hex[:12]}", "order_code": order.code, "kind": "amount", "amount": 100,
                "currency": "EUR", "ticket_ids": [], "fees_kept": 0, "reason": "history",
                "status": "refunded" if i % 1000 else "confirming-refund",
                "processor": "stripe" if i % 5 else "manual", "workflow_id": f"refund/{order.code}/{i}",
                "attempt": 1, "processor_refund_id": f"re_{i}", "requested_by": "fin", "created_at": at,
                "updated_at": at,
            }
        )  # fmt: skip
    async with store.transaction() as conn:
        await conn.execute(refunds.insert(), rows)
        await conn.execute(sa.text("ANALYZE"))
    made = [r for r in rows if r["processor"] == "stripe" and WINDOW.start <= r["created_at"] < WINDOW.end]
    return [r["processor_refund_id"] for r in made]


@contextmanager
def _statements(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """The SQL the store sends, as sent (statement and parameters)."""
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", grab)


@pytest.mark.postgres
async def test_postgres_plans_the_window_reads_on_the_index(pg_store: Store) -> None:
    made = await _history(pg_store, 50_000)
    async with pg_store.transaction() as conn:
        await rs.begin_run(conn, run_id=RUN, processor="stripe", window=WINDOW, dry_run=True, now=NOW)
        await rs.stage(
            conn, RUN, "refund",
            [{"record_id": pid, "ledger_refund_id": None, "idempotency_key": None, "link": None, "data": {}}
             for pid in made],
        )  # fmt: skip
    reads = {
        "ledger page": lambda c: ledger_refund_ids_page(
            c, Processor.STRIPE, WINDOW.start, WINDOW.end, after="", limit=500
        ),
        "reconciliation totals": lambda c: rs.ledger_window_totals(c, RUN, Processor.STRIPE, WINDOW),
        "audit totals": lambda c: audit_reads.ledger_window_totals(
            c, Processor.STRIPE, WINDOW, listed=made, naming=[], elsewhere=[]
        ),
        "audit unclaimed": lambda c: audit_reads.unclaimed_in_window(
            c, Processor.STRIPE, WINDOW, listed=made, naming=[]
        ),
    }
    for name, read in reads.items():
        async with pg_store.read() as conn:
            with _statements(pg_store) as sent:
                result = await read(conn)
            statement, parameters = next((s, p) for s, p in sent if "refunds" in s)
            plan = "\n".join((await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)).scalars())
        assert f"Index Scan on {INDEX}" in plan or f"Index Scan using {INDEX}" in plan, f"{name}:\n{plan}"
        assert "Seq Scan on refunds" not in plan, f"{name}:\n{plan}"
        if name in {"reconciliation totals", "audit totals"}:
            assert result == {"EUR": 100 * len(made)}  # every processor refund of the day, each once
