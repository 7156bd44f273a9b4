"""An in-process ticketops for end-to-end tests: real Temporal, real store, real SMTP sink.

Workers poll their own task queues (a prefix per test); the API is the real
FastAPI app over ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from temporalio.client import Client

from activities.deps import Deps
from backoffice.api.app import create_app
from backoffice.api.deps import AppState
from backoffice.operations import Operations
from devtools.smtp_sink import SmtpSink
from devtools.stripe_server.server import StripeServer
from email_providers.factory import make_provider
from email_providers.from_settings import email_settings
from payment_adapters.registry import payment_adapters
from runtime.settings import BlobConfig, EmailConfig, Settings, SmtpConfig, StripeSettings, TemporalSettings
from tests.builders import NOW
from tests.codec_keys import TEST_CODEC
from ticketing.models import Event, Order, OrderEvent, TicketType, TimeSlot
from ticketing.roles import Role
from ticketing.store.api_keys import create_api_key
from ticketing.store.engine import Store
from ticketing.store.orders import adjust_inventory, insert_event, insert_order
from workers.build import build_workers


@dataclass
class Harness:
    settings: Settings
    store: Store
    client: Client
    http: httpx.AsyncClient
    sink: SmtpSink
    prefix: str
    deps: Deps
    extra: dict[str, Any] = field(default_factory=dict)
    keys: dict[tuple[str, Role], str] = field(default_factory=dict)

    async def key_for(self, name: str, role: Role | str = Role.SUPPORT) -> str:
        """An API key for the principal `name` with `role`, created in the test store once."""
        wanted = (name, Role(role))
        if wanted not in self.keys:
            self.keys[wanted], _ = await create_api_key(self.store, name, Role(role))
        return self.keys[wanted]

    async def headers_for(self, name: str, role: Role | str = Role.SUPPORT) -> dict[str, str]:
        """Request headers that authenticate as `name` (the actor recorded in history)."""
        return {"Authorization": f"Bearer {await self.key_for(name, role)}"}

    async def wait_operation(self, operation_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll the API until the operation is no longer running."""
        deadline = time.monotonic() + timeout
        while True:
            resp = await self.http.get(f"/operations/{operation_id}")
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()
            if body["status"] != "running":
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"operation {operation_id} still running: {body}")
            await asyncio.sleep(0.1)


async def seed(
    store: Store, event: Event, types: Sequence[TicketType], slots: Sequence[TimeSlot], orders: Sequence[Order]
) -> None:
    async with store.transaction() as conn:
        await insert_event(conn, event, types, slots)
        for order in orders:
            await insert_order(conn, order, [OrderEvent(type="order-created", actor="test", at=NOW)])
            for ticket in order.tickets:
                await adjust_inventory(conn, ticket.ticket_type_id, ticket.time_slot_id, 1)


def worker_env(app: Harness, **extra: str) -> dict[str, str]:
    """Environment for a real worker process (`python -m workers.main`) serving this harness."""
    codec = app.settings.codec
    keys = {k: v.get_secret_value() for k, v in codec.keys.items()}
    return {
        **os.environ,
        "TICKETOPS_DATABASE_URL": app.settings.database_url,
        "TICKETOPS_TEMPORAL__ADDRESS": app.settings.temporal.address,
        "TICKETOPS_TEMPORAL__QUEUE_PREFIX": app.prefix,
        "TICKETOPS_EMAIL__SMTP__PORT": str(app.sink.port),
        "TICKETOPS_BLOBS__ROOT": app.settings.blobs.root,
        "TICKETOPS_CODEC__KEYS": json.dumps(keys),
        "TICKETOPS_CODEC__ACTIVE_KEY_ID": codec.active_key_id,
        "TICKETOPS_STRIPE__BASE_URL": app.settings.stripe.base_url or "",
        **extra,
    }


def make_settings(store: Store, client: Client, prefix: str, smtp_port: int, **overrides: Any) -> Settings:
    return Settings(
        database_url=store.url,
        temporal=TemporalSettings(
            address=client.service_client.config.target_host, queue_prefix=prefix
        ),
        **({"codec": TEST_CODEC, "email": EmailConfig(smtp=SmtpConfig(port=smtp_port, timeout=5.0))} | overrides),
    )


@contextlib.asynccontextmanager
async def serve_http(app: Any) -> AsyncIterator[str]:
    """Serve the ASGI app on a free loopback port (for webhooks from the Stripe stand-in)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no started event
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def running(
    client: Client,
    store: Store,
    tmp_path: Path,
    prefix: str,
    *,
    stripe: StripeServer | None = None,
    settings_overrides: dict[str, Any] | None = None,
    with_workers: bool = True,
    webhooks: bool = False,
    skip_queues: tuple[str, ...] = (),
) -> AsyncIterator[Harness]:
    sink = SmtpSink(tmp_path / "mail")
    await sink.start()
    overrides = dict(settings_overrides or {})
    overrides.setdefault("blobs", BlobConfig(root=str(tmp_path / "blobs")))  # reports, ticket PDFs: not in var/
    if stripe is not None:
        overrides["stripe"] = StripeSettings(base_url=stripe.base_url)
    settings = make_settings(store, client, prefix, sink.port, **overrides)
    payments = payment_adapters(settings)
    deps = Deps(
        settings=settings,
        store=store,
        email=make_provider(email_settings(settings.email)),
        payments=payments,
    )
    app = create_app(
        AppState(
            settings=settings, store=store, operations=Operations(client, f"{prefix}orders"), payments=payments
        )
    )
    async with contextlib.AsyncExitStack() as stack:
        if with_workers:
            queues = tuple(q for q in ("orders", "email", "payments", "render") if q not in skip_queues)
            for worker in build_workers(client, deps, prefix=prefix, queues=queues):
                await stack.enter_async_context(worker)
        if webhooks and stripe is not None:
            url = await stack.enter_async_context(serve_http(app))
            stripe.set_webhook_url(f"{url}/webhooks/stripe")
        admin_key, _ = await create_api_key(store, "backoffice", Role.ADMIN)
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://api",
                headers={"Authorization": f"Bearer {admin_key}"},
            )
        )
        harness = Harness(settings, store, client, http, sink, prefix, deps)
        harness.keys[("backoffice", Role.ADMIN)] = admin_key
        harness.extra["app"] = app
        harness.extra["stripe"] = stripe
        harness.extra["build_workers"] = lambda *queues: build_workers(client, deps, prefix=prefix, queues=queues)
        yield harness
    await deps.email.close()
    if deps.pdfs is not None:
        deps.pdfs.close()
    await sink.stop()
