"""`ticketops demo seed`: card payments are real PaymentIntents on the Stripe server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa

from devtools.stripe_server import StripeServer, stripe_client
from runtime.settings import get_settings
from tests.importing.conftest import run_cli
from ticketing.models import PaymentMethod
from ticketing.states import PaymentStatus
from ticketing.store.engine import Store
from ticketing.store.orders import load_orders
from ticketing.store.tables import events, orders


@pytest_asyncio.fixture
async def stripe_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StripeServer]:
    server = StripeServer()
    await server.start()
    monkeypatch.setenv("TICKETOPS_STRIPE__BASE_URL", server.base_url)
    monkeypatch.setenv("TICKETOPS_STRIPE__API_KEY", server.config.api_key)
    get_settings.cache_clear()
    yield server
    await server.stop()


async def _codes(store: Store) -> list[str]:
    async with store.transaction() as conn:
        return [r.code for r in await conn.execute(sa.select(orders.c.code))]


async def test_seed_pays_card_orders_on_the_stripe_server_once(
    cli_store: Store, stripe_server: StripeServer
) -> None:
    result = await run_cli("demo", "seed", "--orders", "30")
    assert result.exit_code == 0, result.output
    assert "Seeded 3 events and 30 orders" in result.stdout

    codes = await _codes(cli_store)
    async with cli_store.transaction() as conn:
        loaded = await load_orders(conn, codes)
    settled = [
        o for o in loaded
        if o.payment.method in (PaymentMethod.CARD, PaymentMethod.WALLET)
        and o.payment.status is PaymentStatus.SUCCEEDED
    ]
    assert len(settled) > 5
    client = stripe_client(stripe_server.base_url, stripe_server.config.api_key)
    for order in settled:
        intent = await client.v1.payment_intents.retrieve_async(order.payment.reference or "")
        assert (intent.status, intent.amount, intent.currency) == (
            "succeeded", order.payment.amount.amount, "eur")

    again = await run_cli("demo", "seed", "--orders", "30")
    assert again.exit_code == 0
    assert "nothing seeded" in again.stdout
    assert len(await _codes(cli_store)) == 30


async def test_an_unreachable_stripe_seeds_nothing(
    cli_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TICKETOPS_STRIPE__BASE_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    result = await run_cli("demo", "seed", "--orders", "10")
    assert result.exit_code == 1, result.output
    assert "--no-stripe" in result.stderr
    async with cli_store.transaction() as conn:
        assert (await conn.execute(sa.select(events.c.id))).first() is None


async def test_no_stripe_uses_made_up_references(cli_store: Store) -> None:
    result = await run_cli("demo", "seed", "--orders", "12", "--no-stripe")
    assert result.exit_code == 0, result.output
    async with cli_store.transaction() as conn:
        refs = [r.payment_reference for r in await conn.execute(
            sa.select(orders.c.payment_reference).where(orders.c.payment_method == "card"))]
    assert refs and all(r is None or r.startswith("pi_demo_") for r in refs)
