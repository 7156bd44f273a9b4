"""The FastAPI application; its state is built by the caller so tests can inject theirs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from backoffice.api import operations, orders, problems, refunds, webhooks
from backoffice.api.deps import AppState


def create_app(app_state: AppState | None = None, *, lifespan: Any = None) -> FastAPI:
    """With `app_state` the caller owns the resources (tests); else `lifespan` builds them."""
    app = FastAPI(
        lifespan=lifespan,
        title="ticketops backoffice API",
        version="0.1.0",
        description=(
            "Order operations of a ticketing backoffice, carried out as durable Temporal "
            "workflows. Every action answers 202 with an operation id; errors are RFC 7807 "
            "problem details with a stable `type`."
        ),
    )
    if app_state is not None:
        app.state.ticketops = app_state
    problems.install(app)
    app.include_router(orders.router)
    app.include_router(refunds.router)
    app.include_router(webhooks.router)
    app.include_router(operations.router)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        async with app.state.ticketops.store.transaction() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    return app
