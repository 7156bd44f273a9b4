"""The FastAPI application; its state is built by the caller so tests can inject theirs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from backoffice.api import operations, orders, problems
from backoffice.api.deps import AppState


def create_app(app_state: AppState) -> FastAPI:
    app = FastAPI(
        title="ticketops backoffice API",
        version="0.1.0",
        description=(
            "Order operations of a ticketing backoffice, carried out as durable Temporal "
            "workflows. Every action answers 202 with an operation id; errors are RFC 7807 "
            "problem details with a stable `type`."
        ),
    )
    app.state.ticketops = app_state
    problems.install(app)
    app.include_router(orders.router)
    app.include_router(operations.router)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        async with app_state.store.transaction() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    return app
