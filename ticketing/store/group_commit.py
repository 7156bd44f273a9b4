"""Group commit: records from concurrent tasks share one transaction, each caller still waits for its own.

A bulk batch sends several emails at once and must record each one as sent before it
counts as done. One transaction per email makes the store's single writer (SQLite's
lock, or a PostgreSQL row lock per order) the bottleneck: the sends queue behind each
other's commits. Here the records that arrive while a transaction is being written
are written together in the next one, so the number of transactions follows the
store's speed, not the number of emails, and no caller returns before its record is
durable: the window between "the provider accepted" and "we know it" stays one
in-flight message wide per sender.

On SQLite one group is written at a time (the database has one writer). On PostgreSQL
a group's transaction is a handful of round trips to the server, each a wait for its
process to be scheduled on a busy machine, so while one group is being written the
next one is gathered and written beside it: groups never share a record, so they touch
different rows and cannot deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.store.engine import Store

T = TypeVar("T")
PG_WRITERS = 2


class GroupCommit(Generic[T]):
    """`await record(x)` returns once `x` is committed by `write(conn, [..., x, ...])`.

    If a group's transaction fails, each record is tried again alone, so one bad record fails
    only its own caller (a record that is not written means its email may go out again).
    `linger`
    holds a transaction back that long for more records to join it: callers wait a little
    longer, the store writes far fewer transactions. Up to `PG_WRITERS` groups are written at
    once on PostgreSQL, one on SQLite.
    """

    def __init__(
        self,
        store: Store,
        write: Callable[[AsyncConnection, Sequence[T]], Awaitable[None]],
        *,
        linger: float = 0.0,
    ) -> None:
        self._store = store
        self._write = write
        self._linger = linger
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._writers: set[asyncio.Task[None]] = set()
        self._max_writers = PG_WRITERS if store.is_postgres else 1
        self._gathering = 0  # writers lingering: the records waiting now will be theirs
        self.transactions = 0
        self.records = 0

    async def record(self, item: T) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        self._writers = {w for w in self._writers if not w.done()}  # one that just ended takes nothing more
        if not self._gathering and len(self._writers) < self._max_writers:  # every writer is busy writing
            self._writers.add(asyncio.create_task(self._drain()))
        await asyncio.shield(done)  # a cancelled caller must not cancel a commit other callers wait on

    async def _drain(self) -> None:
        while self._waiting:
            self._gathering += 1
            try:
                if self._linger:
                    await asyncio.sleep(self._linger)
            finally:
                self._gathering -= 1
            group, self._waiting = self._waiting, []
            if not group:  # another writer took them
                continue
            try:
                await self._commit(group)
            except Exception:
                if len(group) == 1:
                    continue
                for one in group:  # one bad record must not take the others' commits with it
                    with contextlib.suppress(Exception):
                        await self._commit([one])
            except BaseException:  # cancelled or shutting down: nobody learns a commit happened
                for _, done in [*group, *self._waiting]:
                    done.cancel()
                self._waiting = []
                raise

    async def _commit(self, group: list[tuple[T, asyncio.Future[None]]]) -> None:
        """One transaction for the group; its callers learn the outcome (an error is also raised here)."""
        try:
            async with self._store.transaction() as conn:
                await self._write(conn, [item for item, _ in group])
        except Exception as exc:
            if len(group) == 1 and not group[0][1].done():
                group[0][1].set_exception(exc)
            raise
        self.transactions += 1
        self.records += len(group)
        for _, done in group:
            if not done.done():
                done.set_result(None)
