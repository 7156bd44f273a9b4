"""Helpers for bulk tests: events with many orders, and waiting for a bulk run to end."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tests.builders import make_event, make_order
from tests.harness import Harness, seed
from ticketing.models import Contact, Event, Order, Personalisation, TicketType


def buyers(n: int, *, shared: int = 0) -> list[str]:
    """n buyer addresses; the last `shared` orders reuse the first address (one person, several orders)."""
    emails = [f"buyer{i}@example.com" for i in range(n - shared)]
    return emails + [emails[0]] * shared


async def event_with_orders(
    app: Harness, emails: Sequence[str | None], *, tickets: int = 1, personalised: bool = False, **kw: Any
) -> tuple[Event, list[TicketType], list[Order]]:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}", personalised=personalised)
    orders = []
    for i, email in enumerate(emails):
        order = make_order(event, types, tickets=tickets, email=email, **kw)
        order = order.model_copy(update={"contact": Contact(name=f"Buyer {i}", email=email)})
        orders.append(order)
    await seed(app.store, event, types, slots, orders)
    return event, types, orders


def with_holder(order: Order, index: int, name: str, email: str) -> Order:
    tickets = list(order.tickets)
    tickets[index] = tickets[index].model_copy(update={"personalisation": Personalisation(name=name, email=email)})
    return order.model_copy(update={"tickets": tickets})


async def wait_bulk(
    app: Harness, bulk_id: str, timeout: float = 60.0, until: tuple[str, ...] = ("completed", "cancelled")
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resp = await app.http.get(f"/bulk/{bulk_id}")
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if body["status"] in until:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"bulk {bulk_id} still {body['status']}: {body}")
        await asyncio.sleep(0.1)


def per_recipient(app: Harness) -> Counter[str]:
    return Counter(m["To"] for m in app.sink.messages)
