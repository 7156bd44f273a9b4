"""Reservation: a reserved order waits for its payment until a deadline (workflow id `reservation/{code}`).

Reminders with the payment link go out before the deadline (`reminder_hours`); at the deadline
a durable timer expires the order and releases its seats. A payment (finance marking the
invoice paid, or the processor) and an agent's extension are updates, so the caller learns at
once whether it took; the first of payment and expiry wins and the other is refused. The
`PaymentDeadline` search attribute follows every extension, so the reservations due soon are
one visibility query away.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import DeliverTickets, PaymentReminder, ReservationState, ReservationStep
    from activities.delivery import DeliveryActivities
    from activities.reservations import ReservationActivities, ReservationEmailActivities
    from ticketing.reservations import reminder_times
    from workflows import options
    from workflows.contracts import ExtendDeadline, ReservationInput, ReservationPayment, ReservationResult
    from workflows.failures import refusals_surface
    from workflows.search_attributes import EVENT_ID, ORDER_ID, PAYMENT_DEADLINE


@workflow.defn(name="Reservation")
class ReservationWorkflow:
    def __init__(self) -> None:
        self._deadline: datetime | None = None
        self._state: ReservationState | None = None
        self._settling = False  # payment or expiry running: nothing else may start
        self._settled = False
        self._changed = False
        self._sent: set[datetime] = set()  # reminder times done (sent, or already past when set)
        self._reminders = 0
        self._before: list[timedelta] = []
        self._emails: list[asyncio.Task[Any]] = []  # reminders in flight: an email outage never holds the deadline

    async def _store(self, method: Any, step: ReservationStep) -> ReservationState:
        state: ReservationState = await refusals_surface(
            workflow.execute_activity_method(
                method, step, start_to_close_timeout=options.STORE_TIMEOUT, retry_policy=options.STORE_RETRY
            )
        )
        return state

    def _set_deadline(self, deadline: datetime) -> None:
        self._deadline = deadline
        now = workflow.now()
        self._sent |= {t for t in reminder_times(deadline, self._before) if t <= now}
        workflow.upsert_search_attributes([PAYMENT_DEADLINE.value_set(deadline)])
        workflow.set_current_details(f"Waiting for payment until {deadline.isoformat()}")

    @workflow.run
    async def run(self, req: ReservationInput) -> ReservationResult:
        operation_id = workflow.info().workflow_id
        self._before = [timedelta(hours=h) for h in req.reminder_hours]
        workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
        self._state = await self._store(
            ReservationActivities.record_deadline,
            ReservationStep(order_code=req.order_code, operation_id=operation_id, actor=req.actor,
                            deadline=req.deadline),
        )
        workflow.upsert_search_attributes([EVENT_ID.value_set(self._state.event_id)])
        self._set_deadline(req.deadline)
        while True:
            await workflow.wait_condition(lambda: not self._settling)
            if self._settled:
                break
            assert self._deadline is not None
            now = workflow.now()
            if now >= self._deadline:
                self._settling = True
                self._state = await self._store(
                    ReservationActivities.expire,
                    ReservationStep(order_code=req.order_code, operation_id=operation_id, actor="ticketops"),
                )
                self._settled = True
                break
            due = [t for t in reminder_times(self._deadline, self._before) if t <= now and t not in self._sent]
            if due:
                self._sent |= set(due)
                self._remind(req.order_code, operation_id)
                continue
            upcoming = [t for t in reminder_times(self._deadline, self._before) if t not in self._sent]
            wake = min([*upcoming, self._deadline])
            self._changed = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._changed or self._settling or self._settled, timeout=wake - now
                )
        for email in self._emails:
            if not email.done():
                email.cancel()  # the reservation is settled: a late reminder would only confuse
            with contextlib.suppress(ActivityError):
                await email
        delivery = None
        if self._state.status == "paid":
            delivery = await self._deliver(self._state, req.actor, operation_id)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.set_current_details("")
        assert self._deadline is not None
        return ReservationResult(order_code=req.order_code, status=self._state.status, deadline=self._deadline,
                                 reminders_sent=self._reminders, delivery=delivery)

    def _remind(self, code: str, operation_id: str) -> None:
        """Start a reminder and go on waiting; one that cannot go out is given up when the reservation settles."""
        assert self._deadline is not None
        self._reminders += 1
        self._emails.append(
            workflow.start_activity_method(
                ReservationEmailActivities.send_payment_reminder,
                PaymentReminder(order_code=code, operation_id=operation_id, deadline=self._deadline,
                                sequence=self._reminders),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        )

    async def _deliver(self, state: ReservationState, actor: str, operation_id: str) -> str:
        workflow.set_current_details("Delivering the tickets of the paid reservation")
        try:
            delivered = await workflow.execute_activity_method(
                DeliveryActivities.deliver_tickets,
                DeliverTickets(order_code=state.order_code, ticket_ids=state.ticket_ids, operation_id=operation_id,
                               actor=actor, history_type="tickets-sent"),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            return f"failed:{cause.type}" if isinstance(cause, ApplicationError) and cause.type else "failed"
        return delivered.status

    def _refuse_unless_open(self) -> None:
        if self._settled or self._settling:
            status = self._state.status if self._state and self._settled else "being settled"
            raise ApplicationError(f"the reservation is {status}", type="reservation-closed")

    @workflow.update
    async def pay(self, req: ReservationPayment) -> ReservationState:
        await workflow.wait_condition(lambda: self._state is not None)
        self._refuse_unless_open()
        self._settling = True
        try:
            assert self._state is not None
            self._state = await self._store(
                ReservationActivities.pay,
                ReservationStep(order_code=self._state.order_code, operation_id=workflow.info().workflow_id,
                                actor=req.actor, reference=req.reference, processor=req.processor),
            )
            self._settled = True
        finally:
            self._settling = False
        return self._state

    @pay.validator
    def _check_pay(self, req: ReservationPayment) -> None:
        self._refuse_unless_open()

    @workflow.update
    async def extend(self, req: ExtendDeadline) -> datetime:
        await workflow.wait_condition(lambda: self._state is not None)
        self._check_extend(req)
        assert self._state is not None
        await self._store(
            ReservationActivities.record_deadline,
            ReservationStep(order_code=self._state.order_code, operation_id=workflow.info().workflow_id,
                            actor=req.actor, deadline=req.deadline, extended=True),
        )
        self._check_extend(req)  # the deadline may have passed while the record was written
        self._set_deadline(req.deadline)
        self._changed = True
        return req.deadline

    @extend.validator
    def _check_extend(self, req: ExtendDeadline) -> None:
        self._refuse_unless_open()
        if self._deadline is not None and req.deadline <= self._deadline:
            raise ApplicationError("an extension moves the deadline later", type="deadline-not-later")
        if req.deadline <= workflow.now():
            raise ApplicationError("the deadline must be in the future", type="deadline-in-past")

    @workflow.query
    def deadline(self) -> datetime | None:
        return self._deadline
