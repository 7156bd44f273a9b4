"""`ticketops api`: the API process, with its store and Temporal client built at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from backoffice.api.app import create_app
from backoffice.api.deps import AppState
from backoffice.operations import Operations
from payment_adapters.registry import payment_adapters
from runtime.settings import Settings
from runtime.telemetry import configure_tracing, tracing_interceptors
from runtime.temporal import connect
from ticketing.store.engine import Store
from workflows.options import queue_names


def build_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.database_url)
        tracer_provider = configure_tracing(settings.tracing)
        client = await connect(
            settings.temporal, codec=settings.codec, interceptors=tracing_interceptors(settings.tracing)
        )
        orders_queue = queue_names(settings.temporal.queue_prefix)[0]
        app.state.ticketops = AppState(
            settings=settings,
            store=store,
            operations=Operations(client, orders_queue),
            payments=payment_adapters(settings),
        )
        yield
        await store.dispose()
        if tracer_provider is not None:
            tracer_provider.shutdown()  # flushes spans

    return create_app(lifespan=lifespan)
