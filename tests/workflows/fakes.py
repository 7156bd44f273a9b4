"""Fake activities under the real activity names, for testing a workflow's state machine on its own.

The pattern of samples-python's `tests/hello/hello_activity_test.py`: a function registered with
`@activity.defn(name="open_refund")` stands in for the real one, so the workflow code runs
unchanged against a real Temporal dev server while the store, Stripe and SMTP stay out of it.
When `TICKETOPS_RECORD_HISTORIES` names a folder, `running` also writes the histories of the
production workflows a test ran there: the replay corpus (`python -m tests.replay.record`).
Each fake records its call (name, input, the queue kind it ran on) and answers with what the test
scripted: a value, a list of values taken in turn, or a function of the input (which may raise).
`test_fakes.py` checks every fake against the real activity of the same name.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.contracts import (
    BatchCounts,
    BulkBatch,
    BulkRange,
    BulkReport,
    CancellationEmails,
    CancellationNote,
    CancelOrder,
    CancelOutcome,
    CloseEventTransfers,
    DeliverTickets,
    DeliveryOutcome,
    EmailsOutcome,
    EventTransfersClosed,
    FetchRefund,
    FinishBulk,
    OpenPersonalisationRound,
    OpenRefund,
    OrderRef,
    PaymentReminder,
    PersonalisationLinkEmail,
    PersonalisationRound,
    PrepareBulk,
    ProcessorRefundView,
    ReceiptEmail,
    RefundEmail,
    RefundSnapshot,
    RefundToStart,
    RefundTransition,
    ReissueOutcome,
    ReissueTickets,
    ResendPlan,
    ReservationState,
    ReservationStep,
    ReturnDeclinedEmail,
    ReturnState,
    ReturnStep,
    SettleRefund,
    SubmitRefund,
    TransferOfferEmail,
    TransferState,
    TransferStep,
    VoidOutcome,
    VoidPayment,
)
from tests.codec_keys import RECORD_ENV
from workers.build import BUILD_ID, SANDBOX, WORKFLOWS
from workflows.contracts import RefundInput, RefundResult
from workflows.options import queue_names


@dataclass
class Call:
    name: str
    arg: Any
    queue: str  # the queue kind it ran on: orders, payments, email or render
    local: bool = False  # run as a local activity, inside the workflow's own task


Answer = Any  # a value, a list of values (taken in turn), or a callable of the input


class Fakes:
    """Every fake activity, recording its calls; `on(name, answer)` scripts what it returns."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.answers: dict[str, Answer] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.changed = asyncio.Condition()

    def on(self, name: str, answer: Answer) -> Fakes:
        self.answers[name] = answer
        return self

    def hold(self, name: str) -> asyncio.Event:
        """Calls to `name` wait until the returned event is set (to put a run in a given step)."""
        self.gates[name] = asyncio.Event()
        return self.gates[name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> None:
        """Until `name` has been called `count` times (the run is then in that step)."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: len(self.args(name)) >= count)

    def args(self, name: str) -> list[Any]:
        return [c.arg for c in self.calls if c.name == name]

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def queues(self, name: str) -> set[str]:
        return {c.queue for c in self.calls if c.name == name}

    def local(self, name: str) -> set[bool]:
        """Whether each call to `name` ran as a local activity."""
        return {c.local for c in self.calls if c.name == name}

    async def answer(self, name: str, arg: Any) -> Any:
        info = activity.info()
        self.calls.append(Call(name, arg, info.task_queue.rsplit("-", 1)[-1], info.is_local))
        async with self.changed:
            self.changed.notify_all()
        gate = self.gates.get(name)
        if gate is not None:
            await gate.wait()
        if name not in self.answers:
            raise ApplicationError(f"the test scripted no answer for {name}", type="unscripted", non_retryable=True)
        answer = self.answers[name]
        if isinstance(answer, list):
            if not answer:
                raise ApplicationError(f"no scripted answers left for {name}", type="unscripted", non_retryable=True)
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(arg)
            if inspect.isawaitable(answer):
                answer = await answer
        return answer

    # --- orders queue (store) -------------------------------------------------------------

    @activity.defn(name="plan_resend")
    async def plan_resend(self, ref: OrderRef) -> ResendPlan:
        return await self.answer("plan_resend", ref)

    @activity.defn(name="open_personalisation_round")
    async def open_personalisation_round(self, req: OpenPersonalisationRound) -> PersonalisationRound:
        return await self.answer("open_personalisation_round", req)

    @activity.defn(name="reissue_tickets")
    async def reissue_tickets(self, req: ReissueTickets) -> ReissueOutcome:
        return await self.answer("reissue_tickets", req)

    @activity.defn(name="reschedule_tickets")
    async def reschedule_tickets(self, req: ReissueTickets) -> ReissueOutcome:
        return await self.answer("reschedule_tickets", req)

    @activity.defn(name="cancel_order")
    async def cancel_order(self, req: CancelOrder) -> CancelOutcome:
        return await self.answer("cancel_order", req)

    @activity.defn(name="record_cancellation_note")
    async def record_cancellation_note(self, req: CancellationNote) -> None:
        await self.answer("record_cancellation_note", req)

    @activity.defn(name="open_refund")
    async def open_refund(self, req: OpenRefund) -> RefundSnapshot:
        return await self.answer("open_refund", req)

    @activity.defn(name="move_refund")
    async def move_refund(self, req: RefundTransition) -> RefundSnapshot:
        return await self.answer("move_refund", req)

    @activity.defn(name="settle_refund")
    async def settle_refund(self, req: SettleRefund) -> RefundSnapshot:
        return await self.answer("settle_refund", req)

    @activity.defn(name="get_refund_snapshot")
    async def get_refund_snapshot(self, refund_id: str) -> RefundSnapshot:
        return await self.answer("get_refund_snapshot", refund_id)

    @activity.defn(name="prepare_bulk")
    async def prepare_bulk(self, req: PrepareBulk) -> BulkRange:
        return await self.answer("prepare_bulk", req)

    @activity.defn(name="finish_bulk")
    async def finish_bulk(self, req: FinishBulk) -> BulkReport:
        return await self.answer("finish_bulk", req)

    @activity.defn(name="close_event_transfers")
    async def close_event_transfers(self, req: CloseEventTransfers) -> EventTransfersClosed:
        return await self.answer("close_event_transfers", req)

    # --- payments queue -------------------------------------------------------------------

    @activity.defn(name="void_payment")
    async def void_payment(self, req: VoidPayment) -> VoidOutcome:
        return await self.answer("void_payment", req)

    @activity.defn(name="submit_refund")
    async def submit_refund(self, req: SubmitRefund) -> ProcessorRefundView:
        return await self.answer("submit_refund", req)

    @activity.defn(name="find_refund")
    async def find_refund(self, req: SubmitRefund) -> ProcessorRefundView | None:
        return await self.answer("find_refund", req)

    @activity.defn(name="fetch_refund")
    async def fetch_refund(self, req: FetchRefund) -> ProcessorRefundView:
        return await self.answer("fetch_refund", req)

    @activity.defn(name="cancel_refund_batch")
    async def cancel_refund_batch(self, batch: BulkBatch) -> BatchCounts:
        return await self.answer("cancel_refund_batch", batch)

    # --- email queue ----------------------------------------------------------------------

    @activity.defn(name="deliver_tickets")
    async def deliver_tickets(self, req: DeliverTickets) -> DeliveryOutcome:
        return await self.answer("deliver_tickets", req)

    @activity.defn(name="send_refund_email")
    async def send_refund_email(self, req: RefundEmail) -> DeliveryOutcome:
        return await self.answer("send_refund_email", req)

    @activity.defn(name="send_cancellation_emails")
    async def send_cancellation_emails(self, req: CancellationEmails) -> EmailsOutcome:
        return await self.answer("send_cancellation_emails", req)

    @activity.defn(name="send_personalisation_link")
    async def send_personalisation_link(self, req: PersonalisationLinkEmail) -> DeliveryOutcome:
        return await self.answer("send_personalisation_link", req)

    @activity.defn(name="send_payment_receipt")
    async def send_payment_receipt(self, req: ReceiptEmail) -> DeliveryOutcome:
        return await self.answer("send_payment_receipt", req)

    @activity.defn(name="deliver_bulk_batch")
    async def deliver_bulk_batch(self, batch: BulkBatch) -> BatchCounts:
        return await self.answer("deliver_bulk_batch", batch)

    @activity.defn(name="notify_cancellation_batch")
    async def notify_cancellation_batch(self, batch: BulkBatch) -> BatchCounts:
        return await self.answer("notify_cancellation_batch", batch)

    # --- issue 16's flows: transfers, imports, reservations, returns --------------------------

    @activity.defn(name="open_transfer")
    async def open_transfer(self, req: TransferStep) -> TransferState:
        return await self.answer("open_transfer", req)

    @activity.defn(name="accept_transfer")
    async def accept_transfer(self, req: TransferStep) -> TransferState:
        return await self.answer("accept_transfer", req)

    @activity.defn(name="close_transfer")
    async def close_transfer(self, req: TransferStep) -> TransferState:
        return await self.answer("close_transfer", req)

    @activity.defn(name="send_transfer_offer")
    async def send_transfer_offer(self, req: TransferOfferEmail) -> DeliveryOutcome:
        return await self.answer("send_transfer_offer", req)

    @activity.defn(name="import_batch")
    async def import_batch(self, req: BulkBatch) -> BatchCounts:
        return await self.answer("import_batch", req)

    @activity.defn(name="deliver_import_batch")
    async def deliver_import_batch(self, req: BulkBatch) -> BatchCounts:
        return await self.answer("deliver_import_batch", req)

    # --- render queue ---------------------------------------------------------------------

    @activity.defn(name="prerender_ticket_pdfs")
    async def prerender_ticket_pdfs(self, req: BulkBatch) -> BatchCounts:
        return await self.answer("prerender_ticket_pdfs", req)

    @activity.defn(name="record_reservation_deadline")
    async def record_reservation_deadline(self, req: ReservationStep) -> ReservationState:
        return await self.answer("record_reservation_deadline", req)

    @activity.defn(name="expire_reservation")
    async def expire_reservation(self, req: ReservationStep) -> ReservationState:
        return await self.answer("expire_reservation", req)

    @activity.defn(name="pay_reservation")
    async def pay_reservation(self, req: ReservationStep) -> ReservationState:
        return await self.answer("pay_reservation", req)

    @activity.defn(name="send_payment_reminder")
    async def send_payment_reminder(self, req: PaymentReminder) -> DeliveryOutcome:
        return await self.answer("send_payment_reminder", req)

    @activity.defn(name="open_return")
    async def open_return(self, req: ReturnStep) -> ReturnState:
        return await self.answer("open_return", req)

    @activity.defn(name="decline_return")
    async def decline_return(self, req: ReturnStep) -> ReturnState:
        return await self.answer("decline_return", req)

    @activity.defn(name="approve_return")
    async def approve_return(self, req: ReturnStep) -> RefundToStart:
        return await self.answer("approve_return", req)

    @activity.defn(name="settle_return")
    async def settle_return(self, req: ReturnStep) -> ReturnState:
        return await self.answer("settle_return", req)

    @activity.defn(name="send_return_declined")
    async def send_return_declined(self, req: ReturnDeclinedEmail) -> DeliveryOutcome:
        return await self.answer("send_return_declined", req)

    def activities(self) -> list[Callable[..., Any]]:
        """Every fake, as bound methods a Worker registers."""
        return [
            getattr(self, name)
            for name, member in inspect.getmembers(type(self))
            if hasattr(member, "__temporal_activity_definition")
        ]


@workflow.defn(name="Refund")
class StandInRefund:
    """A child refund for the parents' tests; `reason` is its script: `end:<status>`, `fail:<type>`,
    anything else runs until the test terminates it."""

    @workflow.run
    async def run(self, req: RefundInput) -> RefundResult:
        verb, _, arg = req.reason.partition(":")
        if verb == "fail":
            raise ApplicationError("the order changed under the quote", type=arg, non_retryable=True)
        if verb != "end":
            await workflow.wait_condition(lambda: False)
        return RefundResult(
            refund_id=req.refund_id, order_code=req.order_code, status=arg, amount=1500, currency="EUR", attempts=1
        )


async def record_histories(client: Client, queue: str, workflows: Sequence[type], target: Path) -> None:
    """Write the closed runs of the production workflows a test ran on `queue` to the replay corpus,
    as `<target>/<Type>/<test name>[-n].json` (stand-ins registered under a real name are left out)."""
    production = {workflow._Definition.must_from_class(cls).name: cls for cls in WORKFLOWS}
    registered = {workflow._Definition.must_from_class(cls).name: cls for cls in workflows}
    test = os.environ.get("PYTEST_CURRENT_TEST", "run").split("::")[-1].split(" ")[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", test).strip("-")
    runs = [e async for e in client.list_workflows(f"TaskQueue = '{queue}'")]
    for execution in sorted(runs, key=lambda e: e.start_time):
        kind = execution.workflow_type
        if kind not in production or registered.get(kind) is not production[kind]:
            continue
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            continue
        history = await handle.fetch_history()
        folder = target / kind
        folder.mkdir(parents=True, exist_ok=True)
        path, n = folder / f"{stem}.json", 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.json"
        # The workflow id is not part of a history's JSON, and a replay needs it (child ids derive from it).
        path.write_text(json.dumps({"workflowId": execution.id, **json.loads(history.to_json())}, indent=2) + "\n")


def refused(type_: str, message: str = "refused", *details: Any) -> ApplicationError:
    """A business refusal, as the real activities raise it (non-retryable, with a stable type)."""
    return ApplicationError(message, *details, type=type_, non_retryable=True)


@asynccontextmanager
async def running(
    client: Client, fakes: Fakes, workflows: Sequence[type], *, activities: Sequence[Callable[..., Any]] = ()
) -> AsyncIterator[str]:
    """Workers on a fresh `{prefix}orders` / `payments` / `email` / `render` set, each with every fake; yields
    the orders queue. The fakes record which queue each call ran on, so routing is asserted too."""
    orders, payments, email, render = queue_names(f"w{uuid.uuid4().hex[:10]}-")
    fake_activities = [*fakes.activities(), *activities]
    workers = [
        Worker(
            client,
            task_queue=queue,
            build_id=BUILD_ID,
            workflows=list(workflows) if queue == orders else [],
            workflow_runner=SANDBOX,
            activities=fake_activities,
            graceful_shutdown_timeout=timedelta(seconds=1),
        )
        for queue in (orders, payments, email, render)
    ]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield orders
        if os.environ.get(RECORD_ENV):
            await record_histories(client, orders, workflows, Path(os.environ[RECORD_ENV]))
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
