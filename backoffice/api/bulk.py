"""Bulk routes: deliveries to every buyer of an event, event cancellation, and their control.

Operators (admin) start, pause, resume, cancel and retry; everyone who can read
sees progress. The operation's store row exists from the request on, so a
scheduled delivery is visible before it starts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, TypeAdapter, model_validator
from temporalio.common import SearchAttributePair

from backoffice.api.auth import ADMIN, SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from blob_storage.factory import make_blob_store
from ticketing.bulk import Audience, BulkKind, BulkStatus, RefundPlan, Selection
from ticketing.errors import ActionNotAllowed
from ticketing.states import OrderStatus
from ticketing.store.bulk import create_bulk, load_bulk, status_counts
from ticketing.store.orders import load_event, load_time_slots
from workflows.bulk_delivery import BulkDeliveryWorkflow
from workflows.bulk_engine import BulkEngine
from workflows.contracts import BulkInput, BulkParams, CancellationParams, DeliveryParams
from workflows.event_cancellation import EventCancellationWorkflow
from workflows.search_attributes import BULK_STATUS, EVENT_ID

router = APIRouter(tags=["bulk"])
StateDep = Annotated[AppState, Depends(state)]
BULK_PARAMS: TypeAdapter[DeliveryParams | CancellationParams] = TypeAdapter(BulkParams)
ActorDep = Annotated[str, Depends(actor)]


class DeliveryBody(BaseModel):
    template: Literal["tickets", "message"] = Field(
        default="tickets", description="`tickets` re-sends the PDFs; `message` sends subject and body."
    )
    subject: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=20_000)
    time_slot_id: str | None = Field(default=None, max_length=64)
    statuses: list[OrderStatus] = Field(default=[OrderStatus.PAID], min_length=1)
    unscanned_only: bool = False
    audience: Audience = Audience.BUYERS
    scheduled_at: datetime | None = Field(default=None, description="Send later; ISO 8601 with a time zone.")

    @model_validator(mode="after")
    def _message_has_text(self) -> DeliveryBody:
        if self.template == "message" and not (self.subject and self.body):
            raise ValueError("a message needs a subject and a body")
        if self.scheduled_at is not None and self.scheduled_at.tzinfo is None:
            raise ValueError("scheduled_at needs a time zone")
        return self

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "template": "message",
                    "subject": "Doors open at 18:30",
                    "body": "See you tonight.",
                    "unscanned_only": True,
                }
            ]
        }
    }


class CancelEventBody(BaseModel):
    reason: str = Field(min_length=3, max_length=500)
    time_slot_id: str | None = Field(default=None, max_length=64)
    refund: RefundPlan = RefundPlan()
    notify: bool = Field(default=True, description="Email every buyer before the refunds start.")

    model_config = {
        "json_schema_extra": {"examples": [{"reason": "the show was called off", "refund": {"mode": "full"}}]}
    }


class BulkAccepted(BaseModel):
    operation_id: str
    bulk_id: str
    status_url: str


class BulkState(BaseModel):
    bulk_id: str
    kind: str
    event_id: str
    operation_id: str
    status: str
    phase: str | None = None
    total: int
    processed: int | None = None
    counts: dict[str, int]
    report_uri: str | None = None
    retry_of: str | None = None


def bulk_id_for(operation_id: str) -> str:
    return "bk_" + hashlib.sha256(operation_id.encode()).hexdigest()[:16]


async def _start(
    st: AppState,
    request: Request,
    who: str,
    *,
    kind: BulkKind,
    event_id: str,
    selection: Selection,
    params: DeliveryParams | CancellationParams,
    body: Any,
    prefix: str,
    scheduled_at: datetime | None = None,
    retry_of: str | None = None,
) -> JSONResponse:
    async with st.store.transaction() as conn:
        event = await load_event(conn, event_id)
        if selection.time_slot_id and selection.time_slot_id not in {
            s.id for s in await load_time_slots(conn, event.id)
        }:
            raise ActionNotAllowed(
                f"time slot {selection.time_slot_id} is not part of event {event.id}", type="slot-not-in-event"
            )
    if kind is BulkKind.EVENT_CANCELLATION and event.cancelled and retry_of is None:
        raise ActionNotAllowed(
            f"event {event.id} is cancelled already; retry the failed items instead", type="event-already-cancelled"
        )
    bulk_settings = st.settings.bulk
    rate = bulk_settings.refunds_per_second if kind is BulkKind.EVENT_CANCELLATION else bulk_settings.emails_per_second

    async def act(key: str) -> dict[str, Any]:
        operation_id = f"{prefix}/{event_id}/{key}"
        bulk_id = bulk_id_for(operation_id)
        delay = scheduled_at - datetime.now(UTC) if scheduled_at is not None else None
        if delay is not None and delay <= timedelta(0):
            delay = None
        async with st.store.transaction() as conn:
            await create_bulk(
                conn,
                bulk_id=bulk_id,
                kind=kind.value,
                event_id=event_id,
                workflow_id=operation_id,
                params={
                    "selection": selection.model_dump(mode="json"),
                    **params.model_dump(mode="json", exclude={"kind"}),
                    "actor": who,
                },
                created_by=who,
                retry_of=retry_of,
                status=BulkStatus.SCHEDULED if delay else BulkStatus.RUNNING,
            )
        await st.operations.start(
            BulkDeliveryWorkflow.run if kind is BulkKind.DELIVERY else EventCancellationWorkflow.run,
            BulkInput(
                bulk_id=bulk_id,
                kind=kind.value,
                event_id=event_id,
                actor=who,
                selection=selection.model_dump(mode="json"),
                params=params,
                retry_of=retry_of,
                batch_size=bulk_settings.batch_size,
                window=bulk_settings.window,
                rate_per_second=rate,
                continue_after_batches=bulk_settings.continue_after_batches,
                heartbeat_seconds=bulk_settings.heartbeat_seconds,
                deferred_retries=bulk_settings.deferred_retries,
                deferred_retry_seconds=bulk_settings.deferred_retry_seconds,
                refund_timing=st.settings.refunds.timing(),
            ),
            operation_id=operation_id,
            search_attributes=[
                SearchAttributePair(EVENT_ID, event_id),
                SearchAttributePair(BULK_STATUS, "scheduled" if delay else "running"),
            ],
            summary=f"{'Bulk delivery' if kind is BulkKind.DELIVERY else 'Event cancellation'} for event {event_id}",
            memo={"actor": who, "bulk_id": bulk_id},
            start_delay=delay,
        )
        return {"operation_id": operation_id, "bulk_id": bulk_id, "status_url": f"/bulk/{bulk_id}"}

    return await idempotent(st.store, request, who, body, act)


@router.post(
    "/events/{event_id}/deliveries",
    status_code=202,
    response_model=BulkAccepted,
    dependencies=[Depends(ADMIN), Depends(check_idempotency_key)],
)
async def deliver_to_event(
    event_id: str, body: DeliveryBody, request: Request, st: StateDep, who: ActorDep
) -> JSONResponse:
    """Tickets, or a message, to every buyer (or personalised attendee) of the event; one email per address."""
    selection = Selection(
        event_id=event_id,
        time_slot_id=body.time_slot_id,
        statuses=body.statuses,
        unscanned_only=body.unscanned_only,
        audience=body.audience,
    )
    params = DeliveryParams(template=body.template, subject=body.subject, body=body.body)
    return await _start(
        st,
        request,
        who,
        kind=BulkKind.DELIVERY,
        event_id=event_id,
        selection=selection,
        params=params,
        body=body.model_dump(mode="json") | {"event": event_id},
        prefix="bulk-delivery",
        scheduled_at=body.scheduled_at,
    )


@router.post(
    "/events/{event_id}/cancel",
    status_code=202,
    response_model=BulkAccepted,
    dependencies=[Depends(ADMIN), Depends(check_idempotency_key)],
)
async def cancel_event(
    event_id: str, body: CancelEventBody, request: Request, st: StateDep, who: ActorDep
) -> JSONResponse:
    """Cancel every order of the event (or one time slot) and refund it under the plan, at the processor's pace."""
    selection = Selection(
        event_id=event_id, time_slot_id=body.time_slot_id, statuses=[OrderStatus.PAID, OrderStatus.RESERVED]
    )
    params = CancellationParams(reason=body.reason, refund=body.refund, notify=body.notify)
    return await _start(
        st,
        request,
        who,
        kind=BulkKind.EVENT_CANCELLATION,
        event_id=event_id,
        selection=selection,
        params=params,
        body=body.model_dump(mode="json") | {"event": event_id},
        prefix="event-cancel",
    )


async def _bulk_state(st: AppState, bulk_id: str) -> BulkState:
    async with st.store.transaction() as conn:
        row = await load_bulk(conn, bulk_id)
        counts = await status_counts(conn, bulk_id)
    progress = await st.operations.query(row.workflow_id, BulkEngine.view)
    live = progress.model_dump() if progress is not None else {}
    status = row.status
    # The store knows scheduled and ended; the running workflow knows paused.
    if live.get("status") in ("paused", "running") and row.status == BulkStatus.RUNNING.value:
        status = live["status"]
    return BulkState(
        bulk_id=bulk_id,
        kind=row.kind,
        event_id=row.event_id,
        operation_id=row.workflow_id,
        status=status,
        phase=live.get("phase"),
        total=sum(counts.values()),
        processed=live.get("processed"),
        counts=counts,
        report_uri=row.report_uri,
        retry_of=row.retry_of,
    )


@router.get("/bulk/{bulk_id}", response_model=BulkState, dependencies=[Depends(SUPPORT)])
async def get_bulk(bulk_id: str, st: StateDep) -> BulkState:
    return await _bulk_state(st, bulk_id)


async def _control(st: AppState, bulk_id: str, signal: Callable[[BulkEngine], None]) -> BulkState:
    async with st.store.transaction() as conn:
        row = await load_bulk(conn, bulk_id)
    if row.status in (BulkStatus.COMPLETED.value, BulkStatus.CANCELLED.value):
        raise ActionNotAllowed(f"bulk operation {bulk_id} has ended ({row.status})", type="bulk-ended")
    if not await st.operations.signal(row.workflow_id, signal):
        raise ActionNotAllowed(f"bulk operation {bulk_id} is not running", type="bulk-not-running")
    return await _bulk_state(st, bulk_id)


@router.post("/bulk/{bulk_id}/pause", response_model=BulkState, dependencies=[Depends(ADMIN)])
async def pause_bulk(bulk_id: str, st: StateDep) -> BulkState:
    """Batches in flight finish; no new batch starts until resumed."""
    return await _control(st, bulk_id, BulkEngine.pause)


@router.post("/bulk/{bulk_id}/resume", response_model=BulkState, dependencies=[Depends(ADMIN)])
async def resume_bulk(bulk_id: str, st: StateDep) -> BulkState:
    return await _control(st, bulk_id, BulkEngine.resume)


@router.post("/bulk/{bulk_id}/cancel", response_model=BulkState, dependencies=[Depends(ADMIN)])
async def cancel_bulk(bulk_id: str, st: StateDep) -> BulkState:
    """Stop: what was not reached is reported as skipped."""
    return await _control(st, bulk_id, BulkEngine.cancel)


@router.post(
    "/bulk/{bulk_id}/retry-failed",
    status_code=202,
    response_model=BulkAccepted,
    dependencies=[Depends(ADMIN), Depends(check_idempotency_key)],
)
async def retry_failed(bulk_id: str, request: Request, st: StateDep, who: ActorDep) -> JSONResponse:
    """A new run over only the items that failed (emails) or ended in refund-error (cancellations)."""
    async with st.store.transaction() as conn:
        row = await load_bulk(conn, bulk_id)
        counts = await status_counts(conn, bulk_id)
    if row.status not in (BulkStatus.COMPLETED.value, BulkStatus.CANCELLED.value):
        raise ActionNotAllowed("wait until the operation has finished", type="bulk-still-running")
    if not (counts.get("failed", 0) or counts.get("refund-error", 0)):
        raise ActionNotAllowed("nothing failed", type="nothing-to-retry")
    kept = {k: v for k, v in dict(row.params).items() if k not in ("selection", "actor")}
    params = BULK_PARAMS.validate_python({**kept, "kind": row.kind})
    selection = Selection.model_validate(row.params["selection"])
    return await _start(
        st,
        request,
        who,
        kind=BulkKind(row.kind),
        event_id=row.event_id,
        selection=selection,
        params=params,
        body={"retry_of": bulk_id},
        prefix=f"bulk-retry/{bulk_id}",
        retry_of=bulk_id,
    )


@router.get("/bulk/{bulk_id}/report.csv", dependencies=[Depends(ADMIN)], response_class=Response)
async def bulk_report(bulk_id: str, st: StateDep) -> Response:
    """The CSV report: every item with its outcome and reason (it names recipients, so admin only)."""
    async with st.store.transaction() as conn:
        row = await load_bulk(conn, bulk_id)
    if not row.report_uri:
        raise ActionNotAllowed("the report is written when the operation ends", type="report-not-ready")
    data = await make_blob_store(st.settings.blobs).get(f"reports/{bulk_id}.csv")
    return Response(data, media_type="text/csv")
