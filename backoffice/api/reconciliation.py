"""Reconciliation routes (finance): run now, backfill, runs and their reports, and finance's item queue.

"Run now" triggers the processor's schedule, so the run reconciles the window
the nightly run would; with an explicit window it starts that window's run
directly. A backfill goes through the schedule too. Reports and items hold
ids, amounts and statuses only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backoffice.api.auth import FINANCE
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.schedules import RunStarted, backfill, run_now, run_window
from ticketing.reconciliation_records import ReconWindow

router = APIRouter(tags=["reconciliation"])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} needs a time zone (ISO 8601, e.g. 2026-12-01T00:00:00Z)")
    return value


class WindowBody(BaseModel):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> WindowBody:
        _aware(self.start, "start")
        _aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("the window must end after it starts")
        return self


class RunBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"processor": "stripe"},
                {"processor": "stripe", "window": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}},
            ]
        }
    )

    processor: str = Field(default="stripe", max_length=20)
    window: WindowBody | None = Field(
        default=None, description="Reconcile exactly this window; without it, the window the schedule would run now."
    )


class BackfillBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"processor": "stripe", "start": "2026-11-01T00:00:00Z", "end": "2026-11-08T00:00:00Z"}]
        }
    )

    processor: str = Field(default="stripe", max_length=20)
    start: datetime = Field(description="From (inclusive): the first whole window starting at or after it.")
    end: datetime = Field(description="To (exclusive): the last whole window ending at or before it.")

    @model_validator(mode="after")
    def _ordered(self) -> BackfillBody:
        _aware(self.start, "start")
        _aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class RunsAccepted(BaseModel):
    operation_id: str
    processor: str
    how: str = Field(description="trigger (the schedule), start (an explicit window) or backfill (the schedule's)")
    schedule_id: str | None
    operation_ids: list[str]
    windows: list[ReconWindow]


def _accepted(started: RunStarted) -> dict[str, Any]:
    first = started.operation_ids[0] if started.operation_ids else f"schedule/{started.schedule_id}"
    return {"operation_id": first, **started.model_dump(mode="json")}


@router.post(
    "/reconciliation/runs",
    status_code=202,
    response_model=RunsAccepted,
    dependencies=[Depends(FINANCE), Depends(check_idempotency_key)],
)
async def start_run(body: RunBody, request: Request, st: StateDep, who: ActorDep) -> JSONResponse:
    """Run now (the schedule's trigger: the window of now minus the settlement lag), or one explicit window."""
    client = st.operations.client

    async def act(_key: str) -> dict[str, Any]:
        if body.window is None:
            return _accepted(await run_now(client, st.settings, body.processor))
        window = ReconWindow(start=body.window.start, end=body.window.end)
        return _accepted(await run_window(client, st.settings, body.processor, window))

    return await idempotent(st.store, request, who, body.model_dump(mode="json"), act)


@router.post(
    "/reconciliation/backfill",
    status_code=202,
    response_model=RunsAccepted,
    dependencies=[Depends(FINANCE), Depends(check_idempotency_key)],
)
async def start_backfill(body: BackfillBody, request: Request, st: StateDep, who: ActorDep) -> JSONResponse:
    """One run per whole window from `start` to `end`, one after another, as the schedule would have run them."""

    async def act(_key: str) -> dict[str, Any]:
        return _accepted(await backfill(st.operations.client, st.settings, body.processor, body.start, body.end))

    return await idempotent(st.store, request, who, body.model_dump(mode="json"), act)
