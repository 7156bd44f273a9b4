"""The FastAPI application; its state is built by the caller so tests can inject theirs."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi_offline import FastAPIOffline
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from backoffice.api import (
    bulk,
    codec,
    events,
    imports,
    metrics,
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
    reservations,
    returns,
    scanning,
    transfers,
    webhooks,
)
from backoffice.api.auth import authenticated_unless_public
from backoffice.api.deps import AppState
from backoffice.api.input_guard import guard_input
from backoffice.api.tracing import RequestTracing
from backoffice.api.waiting import WaitForOperation

READY_TIMEOUT_SECONDS = 2.0


def create_app(app_state: AppState | None = None, *, lifespan: Any = None) -> FastAPI:
    """With `app_state` the caller owns the resources (tests); else `lifespan` builds them.

    `/docs` and `/redoc` load Swagger UI and ReDoc from the assets fastapi-offline
    ships (under `/static-offline-docs`), not from a CDN: they work offline.
    """
    app = FastAPIOffline(
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry spans record the URL path and query (search terms, emails):
        # RequestTracing below names spans by route template and records neither.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
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
    app.include_router(transfers.router)
    app.include_router(imports.router)
    app.include_router(reservations.router)
    app.include_router(returns.router)
    app.include_router(reconciliation.router)
    app.include_router(events.router)
    codec.install(app)
    app.add_middleware(WaitForOperation)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        """Liveness: the process and its event loop answer. It asks nothing of the database or
        Temporal, so an outage of either marks pods unready (`/ready`) instead of restarting them all."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["health"],
        responses={503: {"description": "The database or Temporal is unreachable (problem details)."}},
    )
    async def ready(request: Request) -> Any:
        """Readiness: the database answers and Temporal answers; a 503 problem otherwise, so the
        load balancer stops sending requests this process cannot turn into workflows."""
        state = app.state.ticketops
        failing = []
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                async with state.store.transaction() as conn:
                    await conn.execute(sa.text("SELECT 1"))
        except Exception:
            failing.append("database")
        try:
            await state.operations.client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=READY_TIMEOUT_SECONDS)
            )
        except Exception:
            failing.append("temporal")
        if failing:
            return problems.problem_response(
                request, 503, "not-ready", f"unreachable: {', '.join(failing)}", extra={"failing": failing}
            )
        return {"status": "ready"}

    metrics.install(app)
    app.add_middleware(RequestTracing)  # outermost: the span covers everything the request does
    return app
