"""PostgreSQL's pool: a connection idle past the ping window is pinged and replaced if dead; a busy one is
not pinged, and one that died under it fails one transaction, after which the whole pool is fresh."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

import ticketing.store.engine as engine_module
from tests.builders import make_event, make_order
from tests.conftest import PG_DSN
from tests.harness import seed
from ticketing.models import OrderEvent
from ticketing.store.engine import Store
from ticketing.store.orders import append_histories
from ticketing.store.tables import order_events

pytestmark = pytest.mark.postgres


async def _backend_pid(store: Store) -> int:
    async with store.transaction() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(pid: int) -> None:
    """End the server process behind a pooled connection, and wait until it is gone."""
    admin = await asyncpg.connect(PG_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)  # waits until it has exited
    finally:
        await admin.close()


async def test_an_idle_connection_that_died_is_pinged_and_replaced(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)
    pid = await _backend_pid(pg_store)
    await _terminate(pid)  # as a server restart would, while the connection sat in the pool
    assert await _backend_pid(pg_store) != pid  # no error: the ping found it dead and the pool reconnected


async def test_a_busy_connection_is_not_pinged_and_one_that_died_fails_once(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 3600.0)
    first = await _backend_pid(pg_store)
    second_conn_pid = 0
    async with pg_store.transaction() as a, pg_store.transaction() as b:  # two pooled connections
        second_conn_pid = int((await b.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())
        assert int((await a.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()) == first
    await _terminate(first)
    await _terminate(second_conn_pid)
    with pytest.raises(DBAPIError) as caught:  # not pinged within the window: the statement finds it dead
        await _backend_pid(pg_store)
    assert caught.value.connection_invalidated
    # The failure invalidated every connection pooled before it, so the other dead one is not handed out.
    pids = {await _backend_pid(pg_store) for _ in range(3)}
    assert not pids & {first, second_conn_pid}


async def test_the_same_history_entry_from_two_transactions_at_once_is_written_once(pg_store: Store) -> None:
    """The second writer of a dedupe key waits for the first's commit and skips it, instead of failing."""
    event, types, slots = make_event()
    order = make_order(event, types, tickets=1)
    await seed(pg_store, event, types, slots, [order])
    entry = OrderEvent(type="note", actor="test", at=datetime.now(UTC), data={}, dedupe_key="note:once")
    other = OrderEvent(type="note", actor="test", at=datetime.now(UTC), data={}, dedupe_key="note:other")
    async with pg_store.transaction() as first:
        await append_histories(first, [(order.code, entry)])

        async def second() -> None:
            async with pg_store.transaction() as conn:
                await append_histories(conn, [(order.code, entry), (order.code, other)])

        racing = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not racing.done()  # waits on the first transaction's uncommitted key
    await asyncio.wait_for(racing, 5)
    async with pg_store.read() as conn:
        rows = await conn.execute(sa.select(order_events.c.dedupe_key).where(order_events.c.order_code == order.code))
        keys = [r.dedupe_key for r in rows]
    assert keys.count("note:once") == 1
    assert keys.count("note:other") == 1
