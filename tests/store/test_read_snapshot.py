"""`Store.read()`: one consistent snapshot that never holds up a writer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.store.engine import Store
from ticketing.store.tables import webhook_events


async def _count(conn: AsyncConnection) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(webhook_events))).scalar_one())


async def _write(store: Store, n: int) -> None:
    async with store.transaction() as conn:
        await conn.execute(
            webhook_events.insert().values(id=f"evt_{n}", source="test", type="t", received_at=datetime.now(UTC))
        )


async def test_a_writer_commits_while_a_read_is_open_and_the_read_keeps_its_snapshot(any_store: Store) -> None:
    await _write(any_store, 1)
    async with any_store.read() as conn:
        assert await _count(conn) == 1
        # A writer's transaction (BEGIN IMMEDIATE on SQLite) would wait out busy_timeout (30 s)
        # if the read held the write lock, as every transaction used to.
        async with asyncio.timeout(5):
            await _write(any_store, 2)
            await _write(any_store, 3)
        assert await _count(conn) == 1  # still the snapshot the read began with
    async with any_store.read() as conn:
        assert await _count(conn) == 3


async def test_reads_and_writes_interleave_from_many_tasks(any_store: Store) -> None:
    async def reader() -> list[int]:
        seen = []
        for _ in range(20):
            async with any_store.read() as conn:
                seen.append(await _count(conn))
            await asyncio.sleep(0)
        return seen

    async with asyncio.timeout(20):
        readers = [asyncio.ensure_future(reader()) for _ in range(2)]
        await asyncio.gather(*readers, *(_write(any_store, n) for n in range(30)))
    for seen in (r.result() for r in readers):
        assert seen == sorted(seen) and all(0 <= s <= 30 for s in seen)  # counts only ever grow
    async with any_store.read() as conn:
        assert await _count(conn) == 30
