"""Engine and transactions.

SQLite writers take the lock at BEGIN (BEGIN IMMEDIATE) so two mutations of
one order queue up instead of failing on lock upgrade, and the writers of one
process queue for it in the process first; PostgreSQL mutations lock the order
row. Versions on the order catch anything that slips past.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from ticketing.errors import ConcurrentModification

BUSY_SECONDS = 30.0  # how long a SQLite writer waits for the write lock before the caller hears "busy"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Pooled: every new connection costs an open and four PRAGMAs, which was a large share of an
        # activity's CPU. Writers still queue at BEGIN IMMEDIATE; the pool only saves the set-up.
        memory = not parsed.database or parsed.database == ":memory:"
        pool: dict[str, Any] = {"poolclass": NullPool} if memory else {"pool_size": 8, "max_overflow": 8}
        engine = create_async_engine(url, connect_args={"timeout": BUSY_SECONDS}, **pool, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the lock up front, so two never deadlock upgrading; readers see a WAL
            # snapshot without it, so a long read never holds up the writers.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10, **kwargs)
    _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection is pinged before use only when it sat unused this long. SQLAlchemy's
# `pool_pre_ping` pings at every checkout, and with asyncpg a ping is three round trips (BEGIN, `;`,
# ROLLBACK): three of the nine round trips of a bulk delivery's group commit, and on a busy machine
# each round trip waits for the server process to be scheduled. A connection in use moments ago is
# alive as far as a ping can tell; one that broke since fails its statement (the API answers a
# problem, an activity is retried), which invalidates the whole pool as a failed ping would, so the
# retry gets a fresh connection.
IDLE_PING_SECONDS = 2.0
_IDLE_SINCE = "ticketops_idle_since"


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)  # none on a fresh connection: it was just opened
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the server restarted or the network dropped: reconnect every pooled one
            raise InvalidatePoolError(f"ping failed: {exc}") from exc


READ_ONLY = "ticketops_read_only"


class Store:
    """The one handle to the database that activities and the API share."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_turn():
            try:
                async with self.engine.begin() as conn:
                    yield conn
            except OperationalError as exc:
                if "locked" in str(exc).lower() or "could not serialize" in str(exc).lower():
                    raise ConcurrentModification("the database was busy; try again") from exc
                raise

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """On SQLite, this process's writers take turns before BEGIN IMMEDIATE.

        SQLite has one writer at a time. Without a turn, every pooled connection that wants to write
        waits in SQLite's busy handler, which polls by sleeping 1, 2, 5 ... 100 ms: an event
        cancellation with 10 refunds in flight per batch waited about 100 ms for each BEGIN while
        each transaction took a millisecond or two. Here the next writer starts the moment the last
        one ends; the busy handler is left to arbitrate between processes. The wait is bounded as
        SQLite's is. PostgreSQL writers lock rows, not the database: no turn.
        """
        if self.is_postgres:
            yield
            return
        loop = asyncio.get_running_loop()  # one lock per event loop: a lock is bound to the loop that waits on it
        turn = self._writers.get(loop)
        if turn is None:
            turn = self._writers[loop] = asyncio.Lock()
        try:
            async with asyncio.timeout(BUSY_SECONDS):
                await turn.acquire()
        except TimeoutError as exc:
            raise ConcurrentModification("the database was busy; try again") from exc
        try:
            yield
        finally:
            turn.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that only reads: one consistent snapshot that, on SQLite, does not take
        the write lock (a batch reading 200 orders used to stall every other batch's commits)."""
        options: dict[str, Any] = {READ_ONLY: True}
        if self.is_postgres:  # one snapshot for all the reads, as SQLite's WAL gives
            options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        async with self.engine.connect() as plain:
            conn = await plain.execution_options(**options)
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
