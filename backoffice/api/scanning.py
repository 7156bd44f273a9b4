"""Scanning: the gate's `POST /scan`, and the backoffice's bulk scan-status operations (seed 002)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from backoffice.api.auth import ADMIN
from backoffice.api.deps import AppState, actor, state
from ticketing.errors import ConcurrentModification
from ticketing.models import OrderEvent
from ticketing.scanning import UNKNOWN_BARCODE, ScanOutcome, ScanStatus, admit, set_scan_status
from ticketing.store.barcodes import order_code_for_barcode
from ticketing.store.orders import load_event, load_order, save_order

# Gate scans and scan-state changes are operations work, not customer service.
router = APIRouter(tags=["scanning"], dependencies=[Depends(ADMIN)])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]


class ScanStatusBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"ticket_ids": ["tkt_4f2a9c01"], "status": "unscanned"}]}
    )

    ticket_ids: list[str] = Field(min_length=1, max_length=500)
    status: ScanStatus


class TicketScanView(BaseModel):
    id: str
    status: str
    invalid_reason: str | None
    scan_state: str


class ScanStatusResult(BaseModel):
    order_code: str
    status: str
    changed: list[str] = Field(description="Tickets that changed; the others were in that status already.")
    tickets: list[TicketScanView]
    version: int


class ScanBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"barcode": "TK4F2A9C01QX", "access_point": "north-gate-1"}]},
    )

    barcode: str = Field(min_length=1, max_length=64)
    access_point: str | None = Field(default=None, max_length=100)


@router.post("/orders/{code}/tickets/scan-status", response_model=ScanStatusResult)
async def post_scan_status(code: str, body: ScanStatusBody, st: StateDep, who: ActorDep) -> ScanStatusResult:
    """Set the selected tickets unscanned, scanned in, scanned out or blacklisted; all or none."""
    async with st.store.transaction() as conn:
        order = await load_order(conn, code.upper(), for_update=True)
        event = await load_event(conn, order.event_id)
        after, changed = set_scan_status(order, event, body.ticket_ids, body.status)
        if changed:
            entry = OrderEvent(
                type="scan-status-changed",
                actor=who,
                at=datetime.now(UTC),
                data={"status": body.status.value, "tickets": changed},
            )
            after = await save_order(conn, order, after, [entry])
    selected = [after.ticket(tid) for tid in dict.fromkeys(body.ticket_ids)]
    return ScanStatusResult(
        order_code=after.code,
        status=body.status.value,
        changed=changed,
        tickets=[
            TicketScanView(
                id=t.id,
                status="valid" if t.is_valid else "invalid",
                invalid_reason=t.state.reason,
                scan_state=t.scan_state.value,
            )
            for t in selected
        ],
        version=after.version,
    )


@router.post("/scan", response_model=ScanOutcome)
async def post_scan(body: ScanBody, st: StateDep) -> ScanOutcome:
    """Admit or reject one barcode at the gate; every scan of a known barcode is recorded.

    A rejection is an answer, not an error: 200 with `result: rejected` and the reason the
    gate shows. Two scans of one barcode serialise on the order (row lock, version check);
    the loser of a race is retried once against fresh state, where it sees the first scan.
    """
    for attempt in (1, 2):
        try:
            return await _scan_once(st, body)
        except ConcurrentModification:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _scan_once(st: AppState, body: ScanBody) -> ScanOutcome:
    async with st.store.transaction() as conn:
        code = await order_code_for_barcode(conn, body.barcode)
        if code is None:
            return UNKNOWN_BARCODE
        order = await load_order(conn, code, for_update=True)
        event = await load_event(conn, order.event_id)
        after, outcome = admit(order, event, body.barcode, at=datetime.now(UTC), access_point=body.access_point)
        await save_order(conn, order, after, [])
    return outcome
