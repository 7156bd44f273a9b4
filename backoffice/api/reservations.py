"""Reservations with a payment deadline: open one, extend it, mark it paid, list those due soon.

`POST /orders/{code}/reservation` starts `Reservation` (id `reservation/{code}`: one per order)
for a reserved order; it reminds the buyer with the payment link and expires the order at the
deadline. Extending and marking paid are updates of that workflow, answered when they took
effect (or refused, e.g. `reservation-closed` once it expired). `GET /reservations` asks
Temporal's visibility for the running ones by `PaymentDeadline`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from temporalio.common import SearchAttributePair

from backoffice.api.auth import FINANCE, SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.orders import Accepted, accepted
from ticketing.models import Processor
from ticketing.reservations import check_deadline
from ticketing.store.orders import load_event, load_order
from workflows.contracts import ExtendDeadline, ReservationInput, ReservationPayment
from workflows.reservation import ReservationWorkflow
from workflows.search_attributes import ORDER_ID, PAYMENT_DEADLINE

router = APIRouter(tags=["reservations"])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]


def reservation_id(code: str) -> str:
    return f"reservation/{code}"


class OpenBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"days": 14}]})

    deadline: datetime | None = Field(default=None, description="With a time zone; or give `days`.")
    days: float | None = Field(default=None, gt=0, le=365)

    @model_validator(mode="after")
    def _one(self) -> OpenBody:
        if self.deadline is not None and self.days is not None:
            raise ValueError("give a deadline or days, not both")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise ValueError("the deadline needs a time zone")
        return self


class ExtendBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"deadline": "2026-12-24T12:00:00Z"}]})

    deadline: datetime

    @model_validator(mode="after")
    def _zone(self) -> ExtendBody:
        if self.deadline.tzinfo is None:
            raise ValueError("the deadline needs a time zone")
        return self


class PaidBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reference": "INV-2026-0042"}]})

    reference: str | None = Field(default=None, max_length=100, description="The bank transfer's or invoice's id.")


class ReservationView(BaseModel):
    order_code: str
    status: str
    deadline: datetime | None = None
    operation_id: str


class DueReservation(BaseModel):
    order_code: str
    deadline: datetime
    operation_id: str


@router.post(
    "/orders/{code}/reservation",
    status_code=202,
    response_model=Accepted,
    dependencies=[Depends(SUPPORT), Depends(check_idempotency_key)],
)
async def open_reservation(
    code: str, request: Request, st: StateDep, who: ActorDep, body: OpenBody | None = None
) -> JSONResponse:
    """Hold a reserved order until its payment deadline, reminding the buyer with the payment link."""
    code = code.upper()
    body = body or OpenBody()
    now = datetime.now(UTC)
    deadline = body.deadline or now + timedelta(days=body.days or st.settings.reservations.default_days)
    deadline = deadline.astimezone(UTC).replace(microsecond=0)

    async def act(key: str) -> dict[str, Any]:
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
        check_deadline(order, event, deadline, now=now)
        operation_id = reservation_id(code)
        await st.operations.start(
            ReservationWorkflow.run,
            ReservationInput(order_code=code, actor=who, deadline=deadline,
                             reminder_hours=st.settings.reservations.reminder_hours),
            operation_id=operation_id,
            search_attributes=[SearchAttributePair(ORDER_ID, code), SearchAttributePair(PAYMENT_DEADLINE, deadline)],
            summary=f"Reservation {code}: payment due {deadline.isoformat()}",
            memo={"actor": who},
        )
        return accepted(operation_id)

    return await idempotent(st.store, request, who, body.model_dump(mode="json") | {"code": code}, act)


@router.post("/orders/{code}/reservation/extend", response_model=ReservationView, dependencies=[Depends(SUPPORT)])
async def extend_reservation(code: str, body: ExtendBody, st: StateDep, who: ActorDep) -> ReservationView:
    """Move the payment deadline later; the reminders follow the new deadline."""
    code = code.upper()
    deadline = body.deadline.astimezone(UTC).replace(microsecond=0)
    await st.operations.update(reservation_id(code), ReservationWorkflow.extend,
                               ExtendDeadline(deadline=deadline, actor=who))
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
    return ReservationView(order_code=code, status=order.status.value, deadline=deadline,
                           operation_id=reservation_id(code))


@router.post("/orders/{code}/reservation/paid", response_model=ReservationView, dependencies=[Depends(FINANCE)])
async def mark_paid(code: str, st: StateDep, who: ActorDep, body: PaidBody | None = None) -> ReservationView:
    """Finance saw the invoice paid: the order becomes paid (by `manual`, so a refund is finance's payout)."""
    code = code.upper()
    done = await st.operations.update(
        reservation_id(code), ReservationWorkflow.pay,
        ReservationPayment(actor=who, reference=body.reference if body else None, processor=Processor.MANUAL),
    )
    status = done.get("status") if isinstance(done, dict) else getattr(done, "status", "paid")
    return ReservationView(order_code=code, status=str(status), operation_id=reservation_id(code))


@router.get("/reservations", response_model=list[DueReservation], dependencies=[Depends(SUPPORT)])
async def due_reservations(
    st: StateDep,
    within_hours: Annotated[float, Query(gt=0, le=24 * 365, description="Deadlines before now plus this.")] = 48,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DueReservation]:
    """Running reservations whose payment deadline is within the given hours, soonest first."""
    until = (datetime.now(UTC) + timedelta(hours=within_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f"WorkflowType = 'Reservation' AND ExecutionStatus = 'Running' AND PaymentDeadline < '{until}'"
    found: list[DueReservation] = []
    async for wf in st.operations.client.list_workflows(query, limit=limit):
        deadline = wf.typed_search_attributes.get(PAYMENT_DEADLINE)
        code = wf.typed_search_attributes.get(ORDER_ID)
        if deadline is not None and code is not None:
            found.append(DueReservation(order_code=code, deadline=deadline, operation_id=wf.id))
    return sorted(found, key=lambda r: r.deadline)
