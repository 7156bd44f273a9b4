"""A small catalogue to import against, file writers, and a snapshot of what the store holds."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
import typer
from typer.testing import CliRunner, Result

from backoffice.cli.data import demo_app, orders_app
from runtime.settings import get_settings
from tests.builders import NOW, eur, make_event, make_order
from ticketing.importing import COLUMNS
from ticketing.models import Event, EventPolicy, OrderEvent, TicketType, TimeSlot
from ticketing.store.engine import Store
from ticketing.store.orders import insert_event, insert_order
from ticketing.store.tables import order_events, orders, ticket_types, tickets, time_slots


def base_row(**changes: Any) -> dict[str, Any]:
    """One valid CSV row: two general-admission tickets for the concert's evening show."""
    row = {
        "order_code": "",
        "event_id": "evt_concert",
        "ticket_type_id": "evt_concert_ga",
        "time_slot_id": "evt_concert_eve",
        "quantity": "2",
        "contact_name": "Ada Lovelace",
        "contact_email": "ada@example.com",
        "contact_mobile": "+31 6 1234 5678",
        "payment_method": "card",
        "payment_reference": "pi_import_1",
        "status": "paid",
        "service_fee": "250",
        "booking_fee": "100",
        "created_at": "2026-05-01T18:00:00+02:00",
    }
    row.update(changes)
    return row


def write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@dataclass
class Catalogue:
    """The concert (two slots, ample quotas), a hall with 4 seats left, a club night with 2
    places left, a cancelled event, and one existing order."""

    existing_code: str


async def seed_catalogue(store: Store) -> Catalogue:
    concert, concert_types, concert_slots = make_event("evt_concert")
    policy = EventPolicy(refund_service_fees=True, refund_booking_fees=False)
    hall = Event(id="evt_hall", name="Town Hall", starts_at=NOW + timedelta(days=9), currency="EUR",
                 policy=policy)
    hall_types = [TicketType(id="evt_hall_ga", event_id="evt_hall", name="Seat", price=eur(2000),
                             quota=6, sold=2)]
    club = Event(id="evt_club", name="Club Night", starts_at=NOW + timedelta(days=3), currency="EUR")
    club_types = [TicketType(id="evt_club_ga", event_id="evt_club", name="Entry", price=eur(1500),
                             quota=100)]
    club_slots = [TimeSlot(id="evt_club_night", event_id="evt_club", label="Night",
                           starts_at=club.starts_at, capacity=3, sold=1)]
    gone = Event(id="evt_gone", name="Called off", starts_at=NOW, currency="EUR", cancelled=True)
    gone_types = [TicketType(id="evt_gone_ga", event_id="evt_gone", name="Entry", price=eur(1000),
                             quota=10)]
    existing = make_order(concert, concert_types)
    async with store.transaction() as conn:
        await insert_event(conn, concert, concert_types, concert_slots)
        await insert_event(conn, hall, hall_types, [])
        await insert_event(conn, club, club_types, club_slots)
        await insert_event(conn, gone, gone_types, [])
        await insert_order(conn, existing, [OrderEvent(type="order-created", actor="t", at=NOW)])
    return Catalogue(existing_code=existing.code)


async def snapshot(store: Store) -> dict[str, Any]:
    """Row counts and inventory: equal before and after a refused import."""
    async with store.transaction() as conn:
        result: dict[str, Any] = {}
        for table in (orders, tickets, order_events):
            result[table.name] = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar()
        result["type_sold"] = dict((await conn.execute(sa.select(ticket_types.c.id, ticket_types.c.sold))).all())
        result["slot_sold"] = dict((await conn.execute(sa.select(time_slots.c.id, time_slots.c.sold))).all())
    return result


@pytest.fixture
def csv_file(tmp_path: Path) -> Callable[..., Path]:
    def make(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> Path:
        return write_csv(tmp_path / "orders.csv", rows, columns)

    return make


# --- the CLI -------------------------------------------------------------------------------------


def cli_app() -> typer.Typer:
    """The sub-apps mounted as the `ticketops` console script mounts them."""
    app = typer.Typer()
    app.add_typer(orders_app, name="orders")
    app.add_typer(demo_app, name="demo")
    return app


async def run_cli(*args: str) -> Result:
    """Run a command in a thread: it starts its own event loop, as from a shell."""
    return await asyncio.to_thread(CliRunner().invoke, cli_app(), list(args))


@pytest_asyncio.fixture
async def cli_store(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Store]:
    """A migrated SQLite file that the CLI finds through TICKETOPS_DATABASE_URL."""
    path = tmp_path / "cli.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    monkeypatch.setenv("TICKETOPS_DATABASE_URL", url)
    get_settings.cache_clear()
    store = Store(url)
    yield store
    await store.dispose()
    get_settings.cache_clear()
