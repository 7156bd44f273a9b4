"""State of the fake Stripe account, in SQLite (a file survives restarts).

One connection guarded by a re-entrant lock: the ASGI loop and test hooks
(called from another thread) share it, and `transaction()` makes a multi-step
change (refund + charge + events) atomic, so money never moves half-way.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created INTEGER NOT NULL,
    payment_intent TEXT,
    charge TEXT,
    type TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_kind ON objects (kind, seq);
CREATE INDEX IF NOT EXISTS objects_pi ON objects (payment_intent);
CREATE INDEX IF NOT EXISTS objects_charge ON objects (charge);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    params TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS transitions (
    refund_id TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    due_at REAL NOT NULL,
    PRIMARY KEY (refund_id, action)
);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL,
    url TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY (event_id, url)
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, next_at);
"""

_INDEXED = ("payment_intent", "charge", "type", "source", "currency")
# Columns added after the first release: a state file from then gains them on open.
_ADDED_COLUMNS = ("source", "currency")
_ADDED_INDEXES = "CREATE INDEX IF NOT EXISTS objects_source ON objects (source);"


def new_id(prefix: str) -> str:
    """An id shaped like Stripe's (`re_3Nx...`): prefix plus 24 random chars."""
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'z')}"


@dataclass(frozen=True)
class StoredResult:
    endpoint: str
    params: str
    status: int
    body: str
    request_id: str


@dataclass(frozen=True)
class Transition:
    refund_id: str
    action: str
    reason: str | None
    due_at: float


@dataclass(frozen=True)
class Delivery:
    event_id: str
    url: str
    attempts: int


class Store:
    """Objects by id and kind, idempotent results, scheduled transitions, deliveries."""

    def __init__(self, path: str | None) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(objects)")}
        for column in _ADDED_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE objects ADD COLUMN {column} TEXT")
        self._db.executescript(_ADDED_INDEXES)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and one SQLite transaction; nested calls join the outer one."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # objects -----------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> None:
        """Insert or replace an object, keeping its list position (seq)."""
        cols = {k: obj.get(k) if isinstance(obj.get(k), str) else None for k in _INDEXED}
        with self._lock:
            self._db.execute(
                "INSERT INTO objects (id, kind, created, payment_intent, charge, type, source, currency, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                (
                    obj["id"],
                    obj["object"],
                    obj["created"],
                    *(cols[k] for k in _INDEXED),
                    json.dumps(obj),
                ),
            )

    def get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM objects WHERE id = ? AND kind = ?", (object_id, kind)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, kind: str, object_ids: list[str]) -> dict[str, dict[str, Any]]:
        """{id: object} for those of these ids that exist, in one query (an expanded list page)."""
        if not object_ids:
            return {}
        marks = ",".join("?" * len(object_ids))
        # By id alone: with `kind = ?` in the WHERE, SQLite walks the kind index (every object of the kind).
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, kind, data FROM objects WHERE id IN ({marks})", tuple(object_ids)
            ).fetchall()
        return {str(r[0]): json.loads(r[2]) for r in rows if r[1] == kind}

    def seq_of(self, kind: str, object_id: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT seq FROM objects WHERE id = ? AND kind = ?", (object_id, kind)).fetchone()
        return int(row[0]) if row else None

    def query(
        self,
        kind: str,
        *,
        equals: dict[str, str] | None = None,
        created: dict[str, int] | None = None,
        types: list[str] | None = None,
        delivered: bool | None = None,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Objects of a kind, filtered on indexed columns, in list (seq) order.

        `types` may end in `*` (`refund.*`), as Stripe's event type filter does.
        `delivered` (events): True keeps events delivered to every endpoint,
        False those still pending or failed at one endpoint at least.
        """
        where: list[str] = ["kind = ?"]
        args: list[Any] = [kind]
        for col, text in (equals or {}).items():
            if col not in _INDEXED:
                raise ValueError(col)
            where.append(f"{col} = ?")
            args.append(text)
        ops = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "="}
        for op, stamp in (created or {}).items():
            where.append(f"created {ops[op]} ?")
            args.append(stamp)
        if types:
            exact = [t for t in types if not t.endswith("*")]
            ors = [f"type IN ({','.join('?' * len(exact))})"] if exact else []
            args.extend(exact)
            for prefix in (t[:-1] for t in types if t.endswith("*")):
                ors.append("substr(type, 1, ?) = ?")
                args.extend([len(prefix), prefix])
            where.append(f"({' OR '.join(ors)})")
        if delivered is not None:
            undelivered = "id IN (SELECT event_id FROM deliveries WHERE state != 'delivered')"
            where.append(f"NOT {undelivered}" if delivered else undelivered)
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        if after_seq is not None:
            where.append("seq > ?")
            args.append(after_seq)
        sql = f"SELECT data FROM objects WHERE {' AND '.join(where)} ORDER BY seq {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    # idempotency -------------------------------------------------------------

    def get_result(self, scope: str, key: str, *, newer_than: float | None = None) -> StoredResult | None:
        with self._lock:
            row = self._db.execute(
                "SELECT endpoint, params, status, body, request_id FROM idempotency "
                "WHERE scope = ? AND key = ? AND created >= ?",
                (scope, key, float("-inf") if newer_than is None else newer_than),
            ).fetchone()
        return StoredResult(*row) if row else None

    def save_result(self, scope: str, key: str, result: StoredResult, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (scope, key, result.endpoint, result.params, result.status, result.body, result.request_id, now),
            )

    def forget_result(self, scope: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE scope = ? AND key = ?", (scope, key))

    def prune_results(self, older_than: float) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM idempotency WHERE created < ?", (older_than,)).rowcount

    # scheduled refund transitions -------------------------------------------

    def schedule(
        self,
        refund_id: str,
        action: str,
        due_at: float,
        reason: str | None = None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO transitions VALUES (?, ?, ?, ?)", (refund_id, action, reason, due_at)
            )

    def due_transitions(self, now: float) -> list[Transition]:
        with self._lock:
            rows = self._db.execute(
                "SELECT refund_id, action, reason, due_at FROM transitions WHERE due_at <= ? ORDER BY due_at", (now,)
            ).fetchall()
        return [Transition(*r) for r in rows]

    def unschedule(self, refund_id: str, action: str | None = None) -> None:
        with self._lock:
            if action is None:
                self._db.execute("DELETE FROM transitions WHERE refund_id = ?", (refund_id,))
            else:
                self._db.execute("DELETE FROM transitions WHERE refund_id = ? AND action = ?", (refund_id, action))

    # webhook deliveries ------------------------------------------------------

    def add_delivery(self, event_id: str, url: str, now: float, *, state: str = "pending") -> None:
        """Queue an event for an endpoint once (idempotent by event id and url)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO deliveries (event_id, url, next_at, state) VALUES (?, ?, ?, ?)",
                (event_id, url, now, state),
            )

    def redeliver(self, event_id: str, url: str | None, now: float) -> None:
        """Send an event again (as the Dashboard's "Resend"): one more attempt per endpoint."""
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET state = 'pending', next_at = ? WHERE event_id = ? AND url LIKE 'http%'",
                (now, event_id),
            )
            if url:
                self._db.execute(
                    "INSERT OR IGNORE INTO deliveries (event_id, url, next_at) VALUES (?, ?, ?)", (event_id, url, now)
                )

    def pending_webhooks(self, event_ids: list[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, COUNT(*) FROM deliveries WHERE state != 'delivered' "
                f"AND event_id IN ({','.join('?' * len(event_ids))}) GROUP BY event_id",
                event_ids,
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def due_deliveries(self, now: float, limit: int = 50) -> list[Delivery]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, url, attempts FROM deliveries WHERE state = 'pending' "
                "AND next_at <= ? ORDER BY next_at LIMIT ?",
                (now, limit),
            ).fetchall()
        return [Delivery(*r) for r in rows]

    def finish_delivery(self, delivery: Delivery, *, ok: bool, next_at: float | None) -> None:
        """Record an attempt: delivered, retried at `next_at`, or given up (next_at None)."""
        state = "delivered" if ok else ("pending" if next_at is not None else "failed")
        with self._lock:
            self._db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, state = ?, next_at = ? WHERE event_id = ? AND url = ?",
                (state, next_at or 0.0, delivery.event_id, delivery.url),
            )

    def delivery_states(self) -> dict[str, str]:
        """Event id -> `delivered` when every endpoint has it, else `pending` or `failed`."""
        with self._lock:
            rows = self._db.execute("SELECT event_id, state FROM deliveries").fetchall()
        rank = {"delivered": 0, "pending": 1, "failed": 2}
        states: dict[str, str] = {}
        for event_id, state in rows:
            if rank.get(state, 2) >= rank.get(states.get(event_id, "delivered"), 0):
                states[event_id] = state
        return states

    def delivery_attempts(self, event_id: str) -> list[tuple[str, int, str]]:
        """(url, attempts, state) per endpoint for one event."""
        with self._lock:
            rows = self._db.execute(
                "SELECT url, attempts, state FROM deliveries WHERE event_id = ? ORDER BY url", (event_id,)
            ).fetchall()
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]
