"""SQLite writers of one process take turns before BEGIN IMMEDIATE: all of them commit, in order of
arrival, none waits in SQLite's busy handler, and a turn that never comes ends as "busy", as
SQLite's own wait would."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import ticketing.store.engine as engine_module
from ticketing.errors import ConcurrentModification
from ticketing.store.engine import Store
from ticketing.store.tables import webhook_events


async def _write(store: Store, n: int, order: list[int] | None = None) -> None:
    async with store.transaction() as conn:
        if order is not None:
            order.append(n)
        await conn.execute(
            webhook_events.insert().values(id=f"evt_{n}", source="test", type="t", received_at=datetime.now(UTC))
        )


async def _count(store: Store) -> int:
    async with store.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(webhook_events))).scalar_one())


async def test_many_writers_at_once_all_commit_in_turn(sqlite_store: Store) -> None:
    order: list[int] = []
    await asyncio.gather(*(_write(sqlite_store, n, order) for n in range(40)))
    assert order == list(range(40))  # first come, first written
    assert await _count(sqlite_store) == 40


async def test_a_writer_whose_turn_never_comes_hears_busy(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "BUSY_SECONDS", 0.3)
    async with sqlite_store.transaction():
        with pytest.raises(ConcurrentModification):
            await _write(sqlite_store, 1)
    await _write(sqlite_store, 2)  # the turn is free again
    assert await _count(sqlite_store) == 1


async def test_reads_do_not_wait_for_a_writers_turn(sqlite_store: Store) -> None:
    async with sqlite_store.transaction():
        async with asyncio.timeout(5):
            assert await _count(sqlite_store) == 0


def test_one_store_serves_writers_on_two_event_loops(sqlite_template: Path, tmp_path: Path) -> None:
    """A CLI that runs asyncio.run twice, or a thread with its own loop, gets a turn on its own loop."""
    path = tmp_path / "loops.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    store = Store(f"sqlite+aiosqlite:///{path}")

    async def some(first: int) -> None:
        await asyncio.gather(*(_write(store, n) for n in range(first, first + 5)))
        await store.engine.dispose()  # connections belong to the loop that opened them

    asyncio.run(some(0))
    thread = threading.Thread(target=lambda: asyncio.run(some(5)))
    thread.start()
    thread.join()
    asyncio.run(some(10))

    async def count() -> int:
        try:
            return await _count(store)
        finally:
            await store.dispose()

    assert asyncio.run(count()) == 15
