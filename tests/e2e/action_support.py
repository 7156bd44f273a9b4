"""Helpers for the store-level action tests: seed an order, force ticket states, read history."""

from __future__ import annotations

import uuid
from typing import Any

from tests.builders import make_event, make_order
from tests.harness import Harness, seed
from ticketing.models import Contact, Event, Order, OrderEvent
from ticketing.states import TicketState
from ticketing.store.orders import load_history, load_order, save_order


async def seeded(h: Harness, *, personalised: bool = False, **kw: Any) -> tuple[Event, Order]:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}", personalised=personalised)
    order = make_order(event, types, **kw)
    await seed(h.store, event, types, slots, [order])
    return event, order


async def force(h: Harness, code: str, states: dict[int, TicketState] | None = None, **order_fields: Any) -> Order:
    """Put tickets (by position) or order fields into a state another workflow would have left."""
    async with h.store.transaction() as conn:
        current = await load_order(conn, code)
        tickets = [
            t.model_copy(update={"state": (states or {}).get(i, t.state)}) for i, t in enumerate(current.tickets)
        ]
        after = current.model_copy(update={"tickets": tickets, **order_fields})
        return await save_order(conn, current, after, [])


async def verified(h: Harness, code: str) -> Order:
    async with h.store.transaction() as conn:
        contact: Contact = (await load_order(conn, code)).contact
    return await force(h, code, contact=contact.model_copy(update={"verified": True}))


async def history(h: Harness, code: str, type_: str | None = None) -> list[OrderEvent]:
    async with h.store.transaction() as conn:
        events = await load_history(conn, code)
    return [e for e in events if type_ is None or e.type == type_]


async def stored(h: Harness, code: str) -> Order:
    async with h.store.transaction() as conn:
        return await load_order(conn, code)


def problem(resp: Any, status: int, type_: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["type"].endswith(f"/{type_}"), body
    return body


def action(detail: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in detail["actions"] if a["name"] == name)
