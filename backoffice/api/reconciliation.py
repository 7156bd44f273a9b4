"""Reconciliation routes (finance): run now, backfill, runs and their reports, and finance's item queue.

"Run now" triggers the processor's schedule, so the run reconciles the window
the nightly run would; with an explicit window it starts that window's run
directly. A backfill goes through the schedule too. Reports and items hold
ids, amounts and statuses only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from backoffice.api.auth import FINANCE
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.paging import Offset
from backoffice.api.views import MoneyView
from backoffice.schedules import RunStarted, backfill, run_now, run_window
from blob_storage.factory import make_blob_store
from ticketing.errors import ActionNotAllowed
from ticketing.money import Money
from ticketing.reconciliation.items import DiscrepancyClass, ItemState
from ticketing.reconciliation.models import ReconItem, ReconRun
from ticketing.reconciliation_records import ReconWindow
from ticketing.reconciliation_report import report_keys
from ticketing.store.reconciliation import get_item, get_run, list_items, list_runs, transition_item

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
        return _accepted(await run_window(client, st.settings, body.processor, window, actor=who))

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
        return _accepted(
            await backfill(st.operations.client, st.settings, body.processor, body.start, body.end, actor=who)
        )

    return await idempotent(st.store, request, who, body.model_dump(mode="json"), act)


# --- runs, reports and finance's item queue -----------------------------------------------------


class RunView(BaseModel):
    id: str
    processor: str
    window: ReconWindow
    status: str
    dry_run: bool
    passes: int
    counts: dict[str, int]
    totals: list[dict[str, Any]]
    staged: dict[str, int]
    healed: int
    resolved: int
    open_items: int
    reports: dict[str, str] = Field(description="Download paths of the CSV and the JSON summary, once written.")
    error: str | None = None
    started_at: str
    ended_at: str | None = None


class ItemView(BaseModel):
    id: str
    processor: str
    kind: str = Field(description="The discrepancy class, e.g. status-mismatch.")
    severity: str
    state: str
    suggested_action: str
    order_code: str | None
    refund_id: str | None
    processor_refund_id: str | None
    amount: MoneyView | None
    ledger: dict[str, Any] | None
    processor_side: dict[str, Any] | None
    reason: str | None
    actor: str | None
    state_at: str
    first_seen_run: str
    last_seen_run: str
    healed_at: str | None
    created_at: str


class ItemActionBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "dashboard refund confirmed with the venue"}]})

    reason: str = Field(min_length=3, max_length=500, description="Why; recorded with the actor.")


def run_view(run: ReconRun) -> RunView:
    totals = [
        {
            "currency": currency,
            "processor": MoneyView.of(Money(amount=int(t.get("processor", 0)), currency=currency)),
            "ledger": MoneyView.of(Money(amount=int(t.get("ledger", 0)), currency=currency)),
            "difference": MoneyView.of(
                Money(amount=int(t.get("processor", 0)) - int(t.get("ledger", 0)), currency=currency)
            ),
        }
        for currency, t in sorted(run.totals.items())
    ]
    base = f"/reconciliation/runs/{run.id}"
    return RunView(
        id=run.id,
        processor=run.processor,
        window=ReconWindow(start=run.window_start, end=run.window_end),
        status=run.status,
        dry_run=run.dry_run,
        passes=run.passes,
        counts=run.counts,
        totals=totals,
        staged=run.staged,
        healed=run.healed,
        resolved=run.resolved,
        open_items=run.open_items,
        reports={"csv": f"{base}/report.csv", "json": f"{base}/report.json"} if run.report_uris else {},
        error=run.error,
        started_at=run.started_at.isoformat(),
        ended_at=run.ended_at.isoformat() if run.ended_at else None,
    )


def item_view(item: ReconItem) -> ItemView:
    return ItemView(
        id=item.id,
        processor=item.processor,
        kind=item.cls.value,
        severity=item.severity.label,
        state=item.state.value,
        suggested_action=item.suggested_action.value,
        order_code=item.order_code,
        refund_id=item.refund_id,
        processor_refund_id=item.processor_refund_id,
        amount=MoneyView.of(Money(amount=item.amount, currency=item.currency))
        if item.amount is not None and item.currency
        else None,
        ledger=item.ledger,
        processor_side=item.processor_side,
        reason=item.reason,
        actor=item.actor,
        state_at=item.state_at.isoformat(),
        first_seen_run=item.first_seen_run,
        last_seen_run=item.last_seen_run,
        healed_at=item.healed_at.isoformat() if item.healed_at else None,
        created_at=item.created_at.isoformat(),
    )


@router.get("/reconciliation/runs", response_model=list[RunView], dependencies=[Depends(FINANCE)])
async def find_runs(
    st: StateDep,
    processor: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> list[RunView]:
    """Runs, newest window first."""
    async with st.store.transaction() as conn:
        runs = await list_runs(conn, processor=processor, status=status, limit=limit, offset=offset)
    return [run_view(r) for r in runs]


async def _report(st: AppState, run_id: str, which: int, media_type: str) -> Response:
    async with st.store.transaction() as conn:
        run = await get_run(conn, run_id)
    if not run.report_uris:
        raise ActionNotAllowed("the report is written when the run ends", type="report-not-ready")
    data = await make_blob_store(st.settings.blobs).get(report_keys(run.id)[which])
    return Response(data, media_type=media_type)


# The run id is the workflow id (`reconcile/stripe/<window>`), slashes included: the report
# routes come first so that their suffix is not read as part of an id.
@router.get("/reconciliation/runs/{run_id:path}/report.csv", dependencies=[Depends(FINANCE)], response_class=Response)
async def run_report_csv(run_id: str, st: StateDep) -> Response:
    """One row per item: class, severity, state, keys, both sides' amounts and statuses, suggested action."""
    return await _report(st, run_id, 0, "text/csv")


@router.get("/reconciliation/runs/{run_id:path}/report.json", dependencies=[Depends(FINANCE)], response_class=Response)
async def run_report_json(run_id: str, st: StateDep) -> Response:
    """Totals per currency (processor, ledger, difference) and counts per class, severity and state."""
    return await _report(st, run_id, 1, "application/json")


@router.get("/reconciliation/runs/{run_id:path}", response_model=RunView, dependencies=[Depends(FINANCE)])
async def get_reconciliation_run(run_id: str, st: StateDep) -> RunView:
    async with st.store.transaction() as conn:
        return run_view(await get_run(conn, run_id))


@router.get("/reconciliation/items", response_model=list[ItemView], dependencies=[Depends(FINANCE)])
async def find_items(
    st: StateDep,
    item_state: Annotated[ItemState | None, Query(alias="state")] = None,
    kind: Annotated[DiscrepancyClass | None, Query(alias="class")] = None,
    run: Annotated[str | None, Query(max_length=300, description="Items last seen by this run.")] = None,
    refund: Annotated[str | None, Query(max_length=40)] = None,
    processor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[ItemView]:
    """Finance's queue: most severe first, then oldest. `?state=open` is what needs someone."""
    async with st.store.transaction() as conn:
        items = await list_items(
            conn, state=item_state, cls=kind, run_id=run, refund_id=refund, processor=processor, limit=limit,
            offset=offset,
        )
    return [item_view(i) for i in items]


@router.get("/reconciliation/items/{item_id}", response_model=ItemView, dependencies=[Depends(FINANCE)])
async def get_reconciliation_item(item_id: str, st: StateDep) -> ItemView:
    async with st.store.transaction() as conn:
        return item_view(await get_item(conn, item_id))


async def _move(st: AppState, item_id: str, target: ItemState, reason: str, who: str) -> ItemView:
    async with st.store.transaction() as conn:
        item = await transition_item(conn, item_id, target, reason=reason, actor=who, now=datetime.now(UTC))
    return item_view(item)


@router.post(
    "/reconciliation/items/{item_id}/acknowledge", response_model=ItemView, dependencies=[Depends(FINANCE)]
)
async def acknowledge_item(item_id: str, body: ItemActionBody, st: StateDep, who: ActorDep) -> ItemView:
    """Someone owns it now; the next runs still re-check it."""
    return await _move(st, item_id, ItemState.ACKNOWLEDGED, body.reason, who)


@router.post("/reconciliation/items/{item_id}/resolve", response_model=ItemView, dependencies=[Depends(FINANCE)])
async def resolve_item(item_id: str, body: ItemActionBody, st: StateDep, who: ActorDep) -> ItemView:
    """Finance settled it (with the reason); a later run that finds it again opens it again."""
    return await _move(st, item_id, ItemState.RESOLVED, body.reason, who)
