"""Group commit: concurrent records share transactions, and nobody returns before its record is durable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.builders import make_event, make_order
from tests.harness import seed
from ticketing.models import OrderEvent
from ticketing.store.engine import Store
from ticketing.store.group_commit import GroupCommit
from ticketing.store.orders import append_histories, load_history
from ticketing.store.tables import order_events


def _event(code: str, n: int) -> tuple[str, OrderEvent]:
    return code, OrderEvent(type="note", actor="test", at=make_event()[0].starts_at, data={"n": n}, dedupe_key=f"k{n}")


async def _order_code(store: Store) -> str:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=1)
    await seed(store, event, types, slots, [order])
    return order.code


async def test_concurrent_records_share_transactions_and_all_commit(any_store: Store) -> None:
    code = await _order_code(any_store)
    seen_by_caller: list[int] = []

    async def write(conn: AsyncConnection, batch: Sequence[tuple[str, OrderEvent]]) -> None:
        await append_histories(conn, batch)

    commits: GroupCommit[tuple[str, OrderEvent]] = GroupCommit(any_store, write)

    async def one(n: int) -> None:
        await commits.record(_event(code, n))
        async with any_store.transaction() as conn:  # durable the moment record() returns
            written = {h.data.get("n") for h in await load_history(conn, code)}
        assert n in written
        seen_by_caller.append(n)

    await asyncio.gather(*(one(n) for n in range(40)))
    assert sorted(seen_by_caller) == list(range(40))
    assert 1 <= commits.transactions < 40  # records that arrived together were written together
    async with any_store.transaction() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).where(order_events.c.type == "note"))).scalar()
    assert count == 40


async def test_a_failed_transaction_fails_its_callers_and_later_records_still_commit(store: Store) -> None:
    code = await _order_code(store)
    fail = {"next": True}

    async def write(conn: AsyncConnection, batch: Sequence[tuple[str, OrderEvent]]) -> None:
        await append_histories(conn, batch)
        if fail["next"]:
            fail["next"] = False
            raise RuntimeError("disk full")

    commits: GroupCommit[tuple[str, OrderEvent]] = GroupCommit(store, write)
    with pytest.raises(RuntimeError, match="disk full"):
        await commits.record(_event(code, 1))
    await commits.record(_event(code, 2))
    async with store.transaction() as conn:
        written = [h.data["n"] for h in await load_history(conn, code) if h.type == "note"]
    assert written == [2]  # the failed transaction was rolled back whole


async def test_one_bad_record_fails_alone_and_the_rest_of_its_group_commits(store: Store) -> None:
    code = await _order_code(store)

    async def write(conn: AsyncConnection, batch: Sequence[tuple[str, OrderEvent]]) -> None:
        await append_histories(conn, batch)
        if any(event.data["n"] == 3 for _, event in batch):
            raise ValueError("record 3 cannot be written")

    commits: GroupCommit[tuple[str, OrderEvent]] = GroupCommit(store, write, linger=0.02)
    results = await asyncio.gather(*(commits.record(_event(code, n)) for n in range(6)), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["ValueError"] + ["NoneType"] * 2
    async with store.transaction() as conn:
        written = sorted(h.data["n"] for h in await load_history(conn, code) if h.type == "note")
    assert written == [0, 1, 2, 4, 5]


async def test_a_cancelled_caller_does_not_cancel_the_commit_others_wait_on(store: Store) -> None:
    code = await _order_code(store)
    started = asyncio.Event()

    async def write(conn: AsyncConnection, batch: Sequence[tuple[str, OrderEvent]]) -> None:
        started.set()
        await asyncio.sleep(0.2)
        await append_histories(conn, batch)

    commits: GroupCommit[tuple[str, OrderEvent]] = GroupCommit(store, write)
    first = asyncio.create_task(commits.record(_event(code, 1)))
    await started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await commits.record(_event(code, 2))
    async with store.transaction() as conn:
        written = sorted(h.data["n"] for h in await load_history(conn, code) if h.type == "note")
    assert written == [1, 2]


async def test_linger_gathers_records_that_arrive_close_together(store: Store) -> None:
    code = await _order_code(store)

    async def write(conn: AsyncConnection, batch: Sequence[tuple[str, OrderEvent]]) -> None:
        await append_histories(conn, batch)

    commits: GroupCommit[tuple[str, OrderEvent]] = GroupCommit(store, write, linger=0.05)

    async def one(n: int) -> None:
        await asyncio.sleep(0.002 * (n % 5))  # arriving over 8 ms, not all at once
        await commits.record(_event(code, n))

    await asyncio.gather(*(one(n) for n in range(20)))
    assert commits.transactions == 1 and commits.records == 20


async def test_on_postgresql_the_next_group_commits_while_one_is_still_being_written(any_store: Store) -> None:
    """PostgreSQL writes a second group beside a slow one; SQLite, with one writer, after it."""
    code = await _order_code(any_store)
    first_written = asyncio.Event()
    release = asyncio.Event()

    async def write(conn: AsyncConnection, batch: Sequence[tuple[str, OrderEvent]]) -> None:
        await append_histories(conn, batch)
        if any(event.data["n"] == 0 for _, event in batch):
            first_written.set()
            await release.wait()  # a slow transaction: the first group holds on

    commits: GroupCommit[tuple[str, OrderEvent]] = GroupCommit(any_store, write)
    first = asyncio.create_task(commits.record(_event(code, 0)))
    await first_written.wait()
    second = asyncio.create_task(commits.record(_event(code, 1)))
    done, _ = await asyncio.wait({second}, timeout=1.0)
    assert bool(done) is any_store.is_postgres
    release.set()
    await asyncio.gather(first, second)
    async with any_store.transaction() as conn:
        written = sorted(h.data["n"] for h in await load_history(conn, code) if h.type == "note")
    assert written == [0, 1]
    assert commits.transactions == 2
