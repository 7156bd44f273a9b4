"""The FastAPI application; its state is built by the caller so tests can inject theirs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI

from backoffice.api import (
    bulk,
    codec,
    events,
    openapi,
    operations,
    order_actions,
    order_documents,
    order_edits,
    orders,
    personalisation,
    problems,
    reconciliation,
    refunds,
    scanning,
    webhooks,
)
from backoffice.api.auth import authenticated_unless_public
from backoffice.api.deps import AppState
from backoffice.api.input_guard import guard_input
from backoffice.api.waiting import WaitForOperation


def create_app(app_state: AppState | None = None, *, lifespan: Any = None) -> FastAPI:
    """With `app_state` the caller owns the resources (tests); else `lifespan` builds them."""
    app = FastAPI(
        lifespan=lifespan,
        dependencies=[Depends(authenticated_unless_public), Depends(guard_input)],
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
    openapi.install(app)
    app.include_router(orders.router)
    app.include_router(order_actions.router)
    app.include_router(refunds.router)
    app.include_router(webhooks.router)
    app.include_router(operations.router)
    app.include_router(order_edits.router)
    app.include_router(scanning.router)
    app.include_router(personalisation.router)
    app.include_router(order_documents.router)
    app.include_router(bulk.router)
    app.include_router(reconciliation.router)
    app.include_router(events.router)
    codec.install(app)
    app.add_middleware(WaitForOperation)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        async with app.state.ticketops.store.transaction() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    return app
