"""search (issue 15): finding an order by part of an email or name at a million orders.

N orders (default 1,000,000) are written straight into a fresh, migrated store
(no workflows: this measures the query). Then, one query at a time, the
product's `search_orders` for parts of emails and names (`ada.dub`, `dubois`,
`example.org`-style domains, two-letter prefixes), against the baseline of the
same store: a lookup by order code (a primary-key probe). The ratio is the
baseline's median time over the search's, so 1.0 means as fast as a key lookup.
The same substring search as a plain `LIKE '%part%'` scan (what an index-less
search costs) is timed too, on fewer queries.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.report import Result
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade_sync
from ticketing.store.search import search_orders
from ticketing.store.tables import events, orders

NAME = "search"
_FIRST = ["ada", "grace", "alan", "edsger", "barbara", "donald", "frances", "john", "margaret", "tim", "ken", "linus"]
_LAST = ["dubois", "hopper", "turing", "dijkstra", "liskov", "knuth", "allen", "backus", "hamilton", "lee", "thompson"]
_DOMAINS = ["example.org", "example.com", "mail.example.net", "post.example.eu"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search")
    group.add_argument("--search-orders", type=int, default=1_000_000, help="orders in the store (default 1,000,000)")
    group.add_argument("--search-queries", type=int, default=60, help="queries timed per kind (default 60)")
    group.add_argument(
        "--search-store", choices=("sqlite", "postgres"), default="sqlite", help="the database (default sqlite)"
    )
    group.add_argument(
        "--search-pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432", help="PostgreSQL server for postgres"
    )


def _row(i: int, now: datetime, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "code": f"B{i:09d}",
        "event_id": "evt_search",
        "status": "paid",
        "contact_name": f"{first.title()} {last.title()} {i}",
        "contact_name_search": f"{first} {last} {i}",
        "contact_email": f"{first}.{last}{i}@{rng.choice(_DOMAINS)}",
        "contact_verified": False,
        "payment_method": "card",
        "processor": "stripe",
        "payment_status": "succeeded",
        "payment_amount": 3900,
        "currency": "EUR",
        "dispute_open": False,
        "fees": [],
        "refunded_total": 0,
        "pending_refund_total": 0,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


async def _fill(store: Store, count: int) -> float:
    started = time.perf_counter()
    now = datetime.now(UTC)
    rng = random.Random(7)
    async with store.transaction() as conn:
        await conn.execute(
            events.insert().values(
                id="evt_search", name="Search", starts_at=now, currency="EUR", policy={}, cancelled=False
            )
        )
    batch = 20_000
    for first in range(0, count, batch):
        async with store.transaction() as conn:
            await conn.execute(orders.insert(), [_row(i, now, rng) for i in range(first, min(count, first + batch))])
    return time.perf_counter() - started


async def _timed(store: Store, terms: list[str]) -> tuple[float, int]:
    """Median seconds per search, and the matches of the last one (to show it found something)."""
    times, found = [], 0
    for term in terms:
        started = time.perf_counter()
        async with store.read() as conn:
            codes = await search_orders(conn, term, None, limit=50)
        times.append(time.perf_counter() - started)
        found = len(codes)
    return statistics.median(times), found


async def _scan(store: Store, terms: list[str]) -> float:
    times = []
    for term in terms:
        started = time.perf_counter()
        async with store.read() as conn:
            part = f"%{term}%"
            stmt = sa.select(orders.c.code).where(
                sa.or_(orders.c.contact_email.like(part), orders.c.contact_name_search.like(part))
            )
            await conn.execute(stmt.limit(50))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    count, queries = args.search_orders, args.search_queries
    if args.search_store == "postgres":
        import asyncpg

        name = f"ticketops_bench_search_{int(time.time())}"
        server = args.search_pg.replace("postgresql+asyncpg://", "postgresql://")
        admin = await asyncpg.connect(f"{server}/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{args.search_pg}/{name}"
    else:
        url = f"sqlite+aiosqlite:///{workdir / 'search.sqlite'}"
    upgrade_sync(url)
    store = Store(url)
    result = Result(NAME, {"orders": count, "queries": queries, "store": args.search_store})
    try:
        fill_seconds = await _fill(store, count)
        rng = random.Random(11)
        by_code = [f"B{rng.randrange(count):09d}" for _ in range(queries)]
        # What an agent types: the distinctive part of one buyer's address or name (few matches)...
        parts = [f"{rng.choice(_LAST)[1:]}{rng.randrange(count)}" for _ in range(queries)]
        # ...or a common part that matches a good share of all orders (the newest 50 are shown).
        common = [rng.choice([f"{f}.{l[:3]}" for f in _FIRST for l in _LAST] + _LAST) for _ in range(queries)]
        short = [rng.choice(_FIRST)[:2] for _ in range(queries)]
        baseline, _ = await _timed(store, by_code)
        product, found = await _timed(store, parts)
        broad, _ = await _timed(store, common)
        prefix, _ = await _timed(store, short)
        scan = await _scan(store, parts[: max(3, queries // 10)])
    finally:
        await store.dispose()
        if args.search_store == "postgres":
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    result.add("fill", fill_seconds, "s")
    result.add("lookup by order code (baseline), median", baseline * 1000, "ms")
    result.add("search by part of email or name, median", product * 1000, "ms", note=f"last found {found}")
    result.add("search by a common part (thousands match), median", broad * 1000, "ms")
    result.add("search by two-letter prefix, median", prefix * 1000, "ms")
    result.add("the same part as a LIKE scan, median", scan * 1000, "ms")
    result.ratio("code lookup / part search", baseline / product if product else 0.0)
    result.ratio("LIKE scan / part search (speed-up of the index)", scan / product if product else 0.0)
    return result
