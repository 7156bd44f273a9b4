"""RefundWorkflow on its own: every status, update, validator refusal and race of its state machine.

`Ledger` stands in for the refund's ledger row: it moves only as the domain's transition table
allows (a move the real store would refuse fails the test) and keeps every status the row took.
The processor and the email are scripted fakes. Durable waits run on the time-skipping server;
a test that must act while the run waits starts it with time skipping off and moves its clock
with `fast_forward`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.contracts import (
    DeliveryOutcome,
    OpenRefund,
    ProcessorRefundView,
    RefundSnapshot,
    RefundTransition,
    SettleRefund,
)
from tests.workflows.fakes import Fakes, refused, running
from ticketing import refund_ledger
from ticketing.calendar import add_business_days
from ticketing.refund_ledger import ProcessorOutcome, RefundAction, Settlement
from ticketing.states import REFUND_TRANSITIONS, RefundStatus
from workflows.contracts import (
    ApproveRefund,
    MarkRefunded,
    NewsReceipt,
    ProcessorUpdate,
    RefundInput,
    RefundProgress,
    RefundResult,
    RefundTiming,
    RetryRefund,
)
from workflows.refund import RefundWorkflow
from workflows.search_attributes import REFUND_STATUS

Handle = WorkflowHandle[RefundWorkflow, RefundResult]
SENT = DeliveryOutcome(message_id="m-1", status="sent", ticket_count=0)
_TARGET = {
    RefundAction.SUBMITTED: RefundStatus.CONFIRMING,
    RefundAction.SUCCEEDED: RefundStatus.SUCCEEDED,
    RefundAction.FAILED: RefundStatus.FAILED,
    RefundAction.RETRY: RefundStatus.REFUNDING,
    RefundAction.REJECT: RefundStatus.REJECTED,
}


@dataclass
class Ledger:
    """One refund's ledger row (`rf-1`, 25.00 EUR on order ORD-1).

    A processor's answer (`settle_refund`) is judged by the domain's rule (`refund_ledger`), as the
    real activity does; finance's and the workflow's moves go through the transition table."""

    status: str = "refunding"
    processor: str = "stripe"
    attempt: int = 1
    processor_refund_id: str | None = None
    failure_reason: str | None = None
    reference: str | None = None
    history: list[str] = field(default_factory=list)  # every status the row took, in order
    moves: list[tuple[RefundAction, str]] = field(default_factory=list)  # (action, actor) of each move
    settled: list[ProcessorOutcome] = field(default_factory=list)  # every answer handed to the ledger

    def __post_init__(self) -> None:
        self.history.append(self.status)

    def snapshot(self) -> RefundSnapshot:
        return RefundSnapshot(
            refund_id="rf-1", order_code="ORD-1", event_id="ev-1", status=self.status, processor=self.processor,
            amount=2500, currency="EUR", ticket_count=2, attempt=self.attempt, idempotency_key=f"rf-1/{self.attempt}",
            payment_reference="pi_1" if self.processor == "stripe" else None,
            processor_refund_id=self.processor_refund_id, failure_reason=self.failure_reason,
            paid_manually=self.reference is not None,
        )

    def open(self, req: OpenRefund) -> RefundSnapshot:
        return self.snapshot()

    def get(self, refund_id: str) -> RefundSnapshot:
        return self.snapshot()

    def move(self, req: RefundTransition) -> RefundSnapshot:
        if req.expect_attempt != self.attempt:
            raise refused("stale-refund-attempt")
        return self._apply(req.action, req.actor, req.processor_refund_id, req.reason, req.reference)

    def settle(self, req: SettleRefund) -> RefundSnapshot:
        if req.expect_attempt != self.attempt:
            raise refused("stale-refund-attempt")
        self.settled.append(req.outcome)
        status, outcome = RefundStatus(self.status), req.outcome
        verdict = refund_ledger.judge_state(
            status, self.processor_refund_id, self.reference is not None, outcome, self.failure_reason
        )
        reason = refund_ledger.failure_text(outcome)
        if verdict in (Settlement.MOVE, Settlement.LATE_FAILURE):
            for action in refund_ledger.steps(status, outcome.status):
                self._apply(action, req.actor, outcome.processor_refund_id, reason, None)
        elif verdict is Settlement.LATE_ANSWER and outcome.status == "succeeded":
            self._apply(RefundAction.SUCCEEDED, req.actor, outcome.processor_refund_id, None, None)
        elif verdict is Settlement.LATE_ANSWER:  # stays refund-error, with the processor's reason
            self.failure_reason = reason
        return self.snapshot()

    def _apply(
        self, action: RefundAction, actor: str, processor_refund_id: str | None, reason: str | None,
        reference: str | None,
    ) -> RefundSnapshot:
        if action is RefundAction.APPROVE:
            target = RefundStatus.REFUNDING if self.processor == "stripe" else RefundStatus.AWAITING_MANUAL
        else:
            target = _TARGET[action]
        if target not in REFUND_TRANSITIONS[RefundStatus(self.status)]:
            raise refused("refund-transition-not-allowed", f"{self.status} -> {target.value}")
        self.moves.append((action, actor))
        if action is RefundAction.RETRY:
            self.attempt += 1
            self.processor_refund_id = self.failure_reason = None
        self.processor_refund_id = processor_refund_id or self.processor_refund_id
        if target in (RefundStatus.FAILED, RefundStatus.REJECTED):
            self.failure_reason = reason
        self.reference = reference or self.reference
        self.status = target.value
        self.history.append(self.status)
        return self.snapshot()

    def script(self, fakes: Fakes) -> Fakes:
        fakes.on("open_refund", self.open).on("get_refund_snapshot", self.get)
        return fakes.on("move_refund", self.move).on("settle_refund", self.settle)


def view(status: str, refund_id: str = "re_1", reason: str | None = None) -> ProcessorRefundView:
    return ProcessorRefundView.model_validate({"id": refund_id, "status": status, "failure_reason": reason})


def _input(**kw: object) -> RefundInput:
    return RefundInput.model_validate(
        {"order_code": "ORD-1", "actor": "finance-1", "refund_id": "rf-1", "reason": "customer asked", **kw}
    )


def _emails(fakes: Fakes) -> list[tuple[str, int]]:
    return [(e.kind, e.sequence) for e in fakes.args("send_refund_email")]


async def _start(client: Client, queue: str, wf_id: str, **kw: object) -> Handle:
    return await client.start_workflow(RefundWorkflow.run, _input(**kw), id=wf_id, task_queue=queue)


async def _until(handle: Handle, check: Callable[[RefundProgress], bool]) -> RefundProgress:
    for _ in range(500):
        progress = await handle.query(RefundWorkflow.progress)
        if check(progress):
            return progress
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached; last progress {progress}")


def _waiting_in(status: str, attempt: int | None = None) -> Callable[[RefundProgress], bool]:
    return lambda p: p.status == status and bool(p.waiting_for) and attempt in (None, p.attempt)


async def _act(handle: Handle, update: Any, action: MarkRefunded | RetryRefund | ApproveRefund) -> RefundProgress:
    """A finance action, as the API sends it (by method reference), and the progress it answers."""
    progress: Any = await handle.execute_update(update, action)
    assert isinstance(progress, RefundProgress)
    return progress


async def _refusal(call: object) -> str | None:
    """The type of the validator's refusal of an update."""
    with pytest.raises(WorkflowUpdateFailedError) as refused_update:
        await call  # type: ignore[misc]
    cause = refused_update.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.type


async def _timers(handle: Handle) -> list[float]:
    """The durations of the run's durable timers, in order (the poll cadence, the deadline)."""
    events = (await handle.fetch_history()).events
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in events
        if e.HasField("timer_started_event_attributes")
    ]


# --- refunding -> refunded / confirming-refund -----------------------------------------------


async def test_a_refund_the_processor_makes_at_once(client: Client, fakes: Fakes, wf_id: str) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("succeeded")).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _start(client, queue, wf_id, approval_threshold=10_000)
        result = await handle.result()
        described = await handle.describe()
    assert (result.status, result.amount, result.currency, result.attempts) == ("refunded", 2500, "EUR", 1)
    assert ledger.history == ["refunding", "refunded"] and ledger.processor_refund_id == "re_1"
    [opened], [submitted] = fakes.args("open_refund"), fakes.args("submit_refund")
    assert (opened.workflow_id, opened.approval_threshold, opened.reason) == (wf_id, 10_000, "customer asked")
    assert (submitted.idempotency_key, submitted.amount, submitted.payment_reference) == ("rf-1/1", 2500, "pi_1")
    assert submitted.metadata == {"refund_id": "rf-1", "order_code": "ORD-1", "workflow_id": wf_id}
    assert fakes.queues("submit_refund") == {"payments"} and fakes.queues("send_refund_email") == {"email"}
    assert _emails(fakes) == [("receipt", 0)]
    assert described.typed_search_attributes.get(REFUND_STATUS) == "refunded"


def news(status: str, refund_id: str = "re_1", reason: str | None = None) -> ProcessorUpdate:
    """What a verified webhook tells the run."""
    fields = {"processor_refund_id": refund_id, "status": status, "failure_reason": reason}
    return ProcessorUpdate.model_validate(fields)


async def _tell(handle: Handle, update: ProcessorUpdate) -> NewsReceipt:
    """Processor news as the webhook sends it now: an update the run answers."""
    receipt: Any = await handle.execute_update(RefundWorkflow.processor_news, update)
    return NewsReceipt(receipt)


async def test_an_email_that_cannot_be_sent_does_not_undo_the_refund(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("succeeded"))
    fakes.on("send_refund_email", refused("no-contact-email"))
    async with running(client, fakes, [RefundWorkflow]) as queue:
        result = await (await _start(client, queue, wf_id)).result()
    assert result.status == "refunded" and _emails(fakes) == [("receipt", 0)]


async def test_a_webhook_confirms_a_pending_refund(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """News about another processor refund changes nothing; news about ours ends the wait, unpolled."""
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("pending")).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        waiting = await _until(handle, _waiting_in("confirming-refund"))
        assert await _tell(handle, news("failed", "re_9")) is NewsReceipt.TAKEN
        assert (await handle.query(RefundWorkflow.progress)).status == "confirming-refund"
        assert await _tell(handle, news("succeeded")) is NewsReceipt.TAKEN
        result = await handle.result()
    assert "re_1" in waiting.waiting_for
    assert result.status == "refunded" and ledger.history == ["refunding", "confirming-refund", "refunded"]
    assert fakes.args("fetch_refund") == []  # the webhook answered before the first poll
    assert [o.processor_refund_id for o in ledger.settled] == ["re_1", "re_1"]  # re_9 never reached the ledger


async def test_a_webhook_before_the_processor_id_is_known(client: Client, fakes: Fakes, wf_id: str) -> None:
    """The news is buffered by processor refund id and used as soon as the submit tells us the id.
    (The signal that runs started before the update still receive fills the same buffer: see the
    signal-with-start test below, and `test_refund_news_race.py`.)"""
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("pending")).on("send_refund_email", SENT)
    gate = fakes.hold("submit_refund")
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _start(client, queue, wf_id)
        await fakes.wait_for("submit_refund")
        assert await _tell(handle, news("succeeded")) is NewsReceipt.TAKEN
        gate.set()
        result = await handle.result()
    assert result.status == "refunded" and ledger.history == ["refunding", "confirming-refund", "refunded"]
    assert fakes.args("fetch_refund") == [] and await _timers(handle) == []


async def test_the_poll_backs_off_until_the_processor_answers(client: Client, fakes: Fakes, wf_id: str) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("pending")).on("send_refund_email", SENT)
    fakes.on("fetch_refund", [view("pending")] * 3 + [view("succeeded")])
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _start(client, queue, wf_id, timing=RefundTiming(poll_initial_seconds=60, poll_max_seconds=200))
        result = await handle.result()
        cadence = await _timers(handle)
    assert result.status == "refunded" and ledger.history[-1] == "refunded"
    assert cadence == [60, 120, 200, 200]  # doubling, capped: one fetch after each timer
    assert [f.processor_refund_id for f in fakes.args("fetch_refund")] == ["re_1"] * 4
    assert fakes.queues("fetch_refund") == {"payments"}


async def test_no_answer_within_the_business_days_is_a_confirmation_timeout(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    """Polled up to the deadline, not past it; then refund-error, finance told once, and after the
    finance window the run ends in refund-error."""
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("pending")).on("send_refund_email", SENT)
    fakes.on("fetch_refund", view("pending"))
    timing = RefundTiming(
        confirmation_business_days=1, poll_initial_seconds=43200, poll_max_seconds=86400, finance_action_days=1
    )
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _start(client, queue, wf_id, timing=timing)
        result = await handle.result()
        history = await handle.fetch_history()
    *polling, finance_window = await _timers(handle)
    assert (result.status, result.failure_reason) == ("refund-error", "confirmation-timeout")
    assert ledger.history == ["refunding", "confirming-refund", "refund-error"]
    started = history.events[0].event_time.ToDatetime()
    left = (add_business_days(started, 1) - started).total_seconds()  # a day, or three over a weekend
    expected, interval = [], 43200.0
    while left > 0:  # doubling, capped at a day, the last wait cut to the deadline
        expected.append(min(interval, left))
        left, interval = left - expected[-1], min(interval * 2, 86400)
    assert polling[:-1] == expected[:-1] and abs(polling[-1] - expected[-1]) < 60
    assert len(fakes.args("fetch_refund")) == len(polling) - 1  # no poll once the deadline has passed
    assert finance_window == 86400
    assert _emails(fakes) == [("refund-error", 0)]


def _with_start(queue: str, wf_id: str) -> WithStartWorkflowOperation[RefundWorkflow, RefundResult]:
    """The API's start: update-with-start, the `opened` update answered once the ledger row is open."""
    return WithStartWorkflowOperation(
        RefundWorkflow.run,
        _input(),
        id=wf_id,
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def test_started_with_the_opened_update_it_answers_once_the_row_is_open(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("succeeded")).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        start = _with_start(queue, wf_id)
        opened: Any = await client.execute_update_with_start_workflow(
            RefundWorkflow.opened, start_workflow_operation=start
        )
        result = await (await start.workflow_handle()).result()
    assert (opened.refund_id, opened.attempt) == ("rf-1", 1) and opened.status in ("refunding", "refunded")
    assert result.status == "refunded"


async def test_a_refused_open_answers_the_opened_update_and_fails_the_run(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    """A loser of two requests on one quote hears the ledger's refusal, with its type, at once."""
    fakes.on("open_refund", refused("amount-exceeds-refundable", "only 10.00 EUR is left to refund"))
    async with running(client, fakes, [RefundWorkflow]) as queue:
        start = _with_start(queue, wf_id)
        refusal = await _refusal(
            client.execute_update_with_start_workflow(RefundWorkflow.opened, start_workflow_operation=start)
        )
        with pytest.raises(WorkflowFailureError):
            await (await start.workflow_handle()).result()
    assert refusal == "amount-exceeds-refundable"
    assert fakes.names() == ["open_refund"]


# --- refund-error: finance marks or retries -----------------------------------------------------


async def test_a_rejection_then_finance_marks_it_refunded(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("send_refund_email", SENT)
    fakes.on("submit_refund", refused("processor-rejected", "The charge was disputed", {"code": "charge_disputed"}))
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        waiting = await _until(handle, _waiting_in("refund-error"))
        assert await _refusal(
            _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="  "))
        ) == "reference-required"
        assert await _refusal(
            _act(handle, RefundWorkflow.approve, ApproveRefund(actor="finance-2"))
        ) == "refund-not-awaiting-approval"
        marked = await _act(
            handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="bank-transfer-123")
        )
        result = await handle.result()
    assert waiting.failure_reason == "charge_disputed: The charge was disputed"
    assert (marked.status, result.status) == ("refunded", "refunded")
    assert ledger.history == ["refunding", "refund-error", "refunded"] and ledger.reference == "bank-transfer-123"
    assert ledger.moves[-1] == (RefundAction.SUCCEEDED, "finance-2")
    assert _emails(fakes) == [("refund-error", 0), ("receipt", 0)]


async def test_retries_are_new_attempts_and_finance_hears_of_each_failure(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("send_refund_email", SENT)
    fakes.on("submit_refund", [view("failed", "re_1", "lost_card"), view("failed", "re_2", "lost_card"),
                               view("succeeded", "re_3")])
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        for attempt in (1, 2):
            failed = await _until(handle, _waiting_in("refund-error", attempt))
            assert failed.failure_reason == "lost_card" and ledger.processor_refund_id == f"re_{attempt}"
            retried = await _act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-2"))
            assert retried.attempt == attempt + 1
        result = await handle.result()
    assert (result.status, result.attempts) == ("refunded", 3)
    assert [s.idempotency_key for s in fakes.args("submit_refund")] == ["rf-1/1", "rf-1/2", "rf-1/3"]
    assert ledger.history == ["refunding", "confirming-refund", "refund-error"] * 2 + ["refunding", "refunded"]
    assert _emails(fakes) == [("refund-error", 0), ("refund-error", 0), ("receipt", 0)]


@pytest.mark.parametrize(("found", "status", "reason"), [
    (None, "refund-error", "processor-unavailable"),
    (view("succeeded"), "refunded", None),
], ids=["not-made", "made-unheard"])
async def test_out_of_time_the_refund_is_looked_up_by_its_key(
    client: Client, fakes: Fakes, wf_id: str, found: ProcessorRefundView | None, status: str, reason: str | None
) -> None:
    """A day of 429s or 5xx ends the submit; the processor may have made the refund all the same."""
    ledger = Ledger()
    ledger.script(fakes).on("send_refund_email", SENT).on("find_refund", [found])
    fakes.on("submit_refund", ApplicationError("503 for a day", type="processor-unavailable", non_retryable=True))
    async with running(client, fakes, [RefundWorkflow]) as queue:
        result = await (await _start(client, queue, wf_id)).result()
    assert (result.status, result.failure_reason) == (status, reason)
    [submitted], [looked_up] = fakes.args("submit_refund"), fakes.args("find_refund")
    assert looked_up == submitted and fakes.queues("find_refund") == {"payments"}


# --- awaiting-approval ---------------------------------------------------------------------------


async def test_approval_by_a_second_person(client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str) -> None:
    ledger = Ledger(status="awaiting-approval")
    ledger.script(fakes).on("submit_refund", view("succeeded")).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        await _until(handle, _waiting_in("awaiting-approval"))
        refusals = [
            await _refusal(_act(handle, RefundWorkflow.approve, ApproveRefund(actor="finance-1"))),
            await _refusal(
                _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="x"))
            ),
            await _refusal(_act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-2"))),
        ]
        approved = await _act(handle, RefundWorkflow.approve, ApproveRefund(actor="finance-2"))
        result = await handle.result()
    assert refusals == ["four-eyes-required", "refund-not-markable", "refund-not-retryable"]
    assert approved.status in ("refunding", "refunded") and result.status == "refunded"
    assert ledger.history == ["awaiting-approval", "refunding", "refunded"]
    assert ledger.moves[0] == (RefundAction.APPROVE, "finance-2")


async def test_an_approved_manual_refund_waits_for_finance(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger(status="awaiting-approval", processor="manual")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        await _until(handle, _waiting_in("awaiting-approval"))
        await _act(handle, RefundWorkflow.approve, ApproveRefund(actor="finance-2"))
        await _until(handle, _waiting_in("awaiting-manual"))
        await _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="tr-3"))
        result = await handle.result()
    assert result.status == "refunded" and ledger.history == ["awaiting-approval", "awaiting-manual", "refunded"]
    assert "submit_refund" not in fakes.names()


async def test_an_approval_nobody_gives_expires(client: Client, fakes: Fakes, wf_id: str) -> None:
    ledger = Ledger(status="awaiting-approval")
    ledger.script(fakes)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _start(client, queue, wf_id, timing=RefundTiming(approval_expiry_hours=48))
        result = await handle.result()
    assert (result.status, result.failure_reason) == ("rejected", "approval-expired")
    assert ledger.history == ["awaiting-approval", "rejected"] and ledger.moves[0] == (RefundAction.REJECT, "ticketops")
    assert await _timers(handle) == [48 * 3600] and _emails(fakes) == []


# --- awaiting-manual -----------------------------------------------------------------------------


async def test_a_manual_refund_reminds_finance_until_marked(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger(status="awaiting-manual", processor="manual")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id, timing=RefundTiming(manual_reminder_days=3))
        await _until(handle, _waiting_in("awaiting-manual"))
        await env.fast_forward(handle, timedelta(days=7))
        await fakes.wait_for("send_refund_email", 2)
        assert await _refusal(
            _act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-2"))
        ) == "refund-not-retryable"
        await _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="tr-7"))
        result = await handle.result()
    assert result.status == "refunded" and ledger.history == ["awaiting-manual", "refunded"]
    assert _emails(fakes) == [("manual-reminder", 1), ("manual-reminder", 2), ("receipt", 0)]
    assert "submit_refund" not in fakes.names()


async def test_only_processor_refunds_can_be_retried(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """A follow-up run that finds a manual refund in refund-error: finance may mark it, not retry it."""
    ledger = Ledger(status="refund-error", processor="manual", failure_reason="payout bounced")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id, existing_refund_id="rf-1")
        await _until(handle, _waiting_in("refund-error"))
        refusal = await _refusal(_act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-2")))
        await _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="tr-8"))
        result = await handle.result()
    assert refusal == "refund-not-retryable" and result.status == "refunded"
    assert fakes.args("open_refund") == [] and ledger.history == ["refund-error", "refunded"]


# --- follow-up runs ------------------------------------------------------------------------------


async def test_a_late_failure_reopens_a_refunded_refund(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger(status="refunded", processor_refund_id="re_1")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(
                client, queue, wf_id, existing_refund_id="rf-1", late_failure_reason="charge_reversed"
            )
        waiting = await _until(handle, _waiting_in("refund-error"))
        await _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="tr-9"))
        result = await handle.result()
    assert waiting.failure_reason == "charge_reversed" and result.status == "refunded"
    assert ledger.history == ["refunded", "refund-error", "refunded"]
    assert ledger.moves[0] == (RefundAction.FAILED, "processor") and fakes.args("submit_refund") == []
    # finance is told, and the buyer, who was told it succeeded; then the receipt of the payout
    assert _emails(fakes) == [("refund-error", 0), ("failed-later", 0), ("receipt", 0)]


async def test_a_late_failure_of_a_refund_paid_by_hand_is_not_news(client: Client, fakes: Fakes, wf_id: str) -> None:
    ledger = Ledger(status="refunded", processor_refund_id="re_1", reference="tr-1")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        result = await (
            await _start(client, queue, wf_id, existing_refund_id="rf-1", late_failure_reason="charge_reversed")
        ).result()
    assert result.status == "refunded" and ledger.history == ["refunded"] and ledger.moves == []
    assert _emails(fakes) == []


async def test_a_run_started_by_a_webhook_resumes_in_confirming(client: Client, fakes: Fakes, wf_id: str) -> None:
    """The webhook found the refund confirming with no run: signal-with-start, and the news is used."""
    ledger = Ledger(status="confirming-refund", processor_refund_id="re_1")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await client.start_workflow(
            RefundWorkflow.run,
            _input(existing_refund_id="rf-1", actor="processor"),
            id=wf_id,
            task_queue=queue,
            start_signal="processor_update",
            start_signal_args=[news("succeeded")],
        )
        result = await handle.result()
    assert result.status == "refunded" and ledger.history == ["confirming-refund", "refunded"]
    assert fakes.names() == ["get_refund_snapshot", "settle_refund", "send_refund_email"]


# --- news while the run finishes -----------------------------------------------------------------


async def test_a_finance_action_while_another_is_applied_is_refused(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("send_refund_email", SENT)
    fakes.on("submit_refund", refused("processor-rejected", "no", {"code": "charge_disputed"}))
    gate = fakes.hold("send_refund_email")  # the run is in refund-error, still telling finance
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        await fakes.wait_for("send_refund_email")
        first = await handle.start_update(
            RefundWorkflow.mark_refunded,
            MarkRefunded(actor="finance-2", reference="tr-1"),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        second = await _refusal(
            _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-3", reference="tr-2"))
        )
        retry = await _refusal(_act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-3")))
        gate.set()
        marked: Any = await first.result()
        result = await handle.result()
    assert second == retry == "action-in-progress"
    assert (marked.status, result.status, ledger.reference) == ("refunded", "refunded", "tr-1")


async def test_news_and_actions_while_the_run_finishes(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """Refunded, the receipt on its way: finance's actions are refused; news is taken and judged
    before the run returns, and a repeated success changes nothing (a failure reopens the refund:
    `test_refund_news_race.py`)."""
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("succeeded")).on("send_refund_email", SENT)
    gate = fakes.hold("send_refund_email")
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        await fakes.wait_for("send_refund_email")
        refusals = [
            await _refusal(
                _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="x"))
            ),
            await _refusal(_act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-2"))),
        ]
        assert await _tell(handle, news("succeeded")) is NewsReceipt.TAKEN
        gate.set()
        result = await handle.result()
    assert refusals == ["refund-not-markable", "refund-not-retryable"]
    assert result.status == "refunded" and ledger.history == ["refunding", "refunded"]
    assert len(ledger.settled) == 1 and _emails(fakes) == [("receipt", 0)]


# --- a refund-error whose own processor refund ends later ----------------------------------------

_TIMED_OUT = RefundTiming(confirmation_business_days=0)  # the confirmation window is over at once


async def _in_refund_error_after_timeout(client: Client, env: WorkflowEnvironment, queue: str, wf_id: str) -> Handle:
    """The processor took the refund (pending) and the confirmation window ran out: refund-error, finance told."""
    with env.with_time_skipping_disabled():
        handle = await _start(client, queue, wf_id, timing=_TIMED_OUT)
    waiting = await _until(handle, _waiting_in("refund-error"))
    assert waiting.failure_reason == "confirmation-timeout"
    return handle


async def test_a_late_success_while_the_run_waits_in_refund_error_refunds_it(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """The money moved after the ledger gave up: refunded without finance, one receipt, nothing paid again."""
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("pending")).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _in_refund_error_after_timeout(client, env, queue, wf_id)
        assert await _tell(handle, news("succeeded")) is NewsReceipt.TAKEN
        assert await _tell(handle, news("succeeded")) in (NewsReceipt.TAKEN, NewsReceipt.IGNORED)  # a redelivery
        result = await handle.result()
        described = await handle.describe()
    assert result.status == "refunded" and ledger.processor_refund_id == "re_1"
    assert ledger.history == ["refunding", "confirming-refund", "refund-error", "refunded"]
    assert ledger.moves[-1] == (RefundAction.SUCCEEDED, "processor")
    assert len(fakes.args("submit_refund")) == 1
    assert _emails(fakes) == [("refund-error", 0), ("receipt", 0)]
    assert described.typed_search_attributes.get(REFUND_STATUS) == "refunded"


async def test_a_late_failure_while_the_run_waits_in_refund_error_keeps_it_with_the_processors_reason(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    ledger = Ledger()
    ledger.script(fakes).on("send_refund_email", SENT)
    fakes.on("submit_refund", [view("pending"), view("succeeded", "re_2")])
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _in_refund_error_after_timeout(client, env, queue, wf_id)
        assert await _tell(handle, news("failed", reason="expired_or_canceled_card")) is NewsReceipt.TAKEN
        waiting = await _until(handle, lambda p: p.failure_reason == "expired_or_canceled_card" and bool(p.waiting_for))
        retried = await _act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-2"))
        result = await handle.result()
    assert waiting.status == "refund-error" and retried.attempt == 2
    assert result.status == "refunded" and ledger.processor_refund_id == "re_2"
    assert ledger.history == ["refunding", "confirming-refund", "refund-error", "refunding", "refunded"]
    assert _emails(fakes) == [("refund-error", 0), ("receipt", 0)]  # finance is not told twice of one attempt


async def test_news_of_another_attempt_does_not_end_a_refund_error(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """Only the refund-error's own processor refund (the id the row records) settles it."""
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("pending")).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _in_refund_error_after_timeout(client, env, queue, wf_id)
        await _tell(handle, news("succeeded", refund_id="re_other"))
        await _tell(handle, news("pending"))
        still = await handle.query(RefundWorkflow.progress)
        await _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="tr-1"))
        result = await handle.result()
    assert still.status == "refund-error" and result.status == "refunded"
    assert len(ledger.settled) == 1  # only the submission's answer reached the ledger
    assert ledger.history == ["refunding", "confirming-refund", "refund-error", "refunded"]


async def test_a_follow_up_run_settles_a_late_success_after_the_run_closed(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    """The run's finance window ended; the webhook (or reconciliation) starts the follow-up with the news."""
    ledger = Ledger(status="refund-error", processor_refund_id="re_1", failure_reason="confirmation-timeout")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _start(
            client, queue, wf_id, existing_refund_id="rf-1", actor="processor", late_news=news("succeeded")
        )
        result = await handle.result()
    assert result.status == "refunded" and ledger.history == ["refund-error", "refunded"]
    assert fakes.names() == ["get_refund_snapshot", "settle_refund", "send_refund_email"]
    assert _emails(fakes) == [("receipt", 0)]


async def test_a_follow_up_run_that_finds_it_refunded_already_sends_nothing(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    """The original run took the news first (a race with reconciliation): no second receipt."""
    ledger = Ledger(status="refunded", processor_refund_id="re_1")
    ledger.script(fakes).on("send_refund_email", SENT)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        result = await (
            await _start(client, queue, wf_id, existing_refund_id="rf-1", late_news=news("succeeded"))
        ).result()
    assert result.status == "refunded" and ledger.history == ["refunded"] and _emails(fakes) == []


async def test_a_retry_the_ledger_refuses_is_answered_and_the_run_still_waits(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """`amount-exceeds-refundable` (the amount went to another refund): a refusal with its type, not a failed run."""
    ledger = Ledger()
    ledger.script(fakes).on("send_refund_email", SENT)
    fakes.on("submit_refund", refused("processor-rejected", "no", {"code": "charge_disputed"}))

    def move(req: RefundTransition) -> RefundSnapshot:
        if req.action is RefundAction.RETRY:
            raise refused("amount-exceeds-refundable", "EUR 25.00 is more than the refundable EUR 0.00")
        return ledger.move(req)

    fakes.on("move_refund", move)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await _start(client, queue, wf_id)
        await _until(handle, _waiting_in("refund-error"))
        refusal = await _refusal(_act(handle, RefundWorkflow.retry, RetryRefund(actor="finance-2")))
        still = await _until(handle, _waiting_in("refund-error"))
        marked = await _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="tr-1"))
        result = await handle.result()
    assert refusal == "amount-exceeds-refundable" and still.attempt == 1
    assert (marked.status, result.status) == ("refunded", "refunded")
    assert ledger.history == ["refunding", "refund-error", "refunded"]
    assert _emails(fakes) == [("refund-error", 0), ("receipt", 0)]


async def test_a_late_success_the_ledger_cannot_take_is_handed_over_once(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """The ledger leaves it in refund-error (its amount went to another refund): the run keeps waiting for
    finance; it does not hand the same news over again and again."""
    ledger = Ledger()
    ledger.script(fakes).on("submit_refund", view("pending")).on("send_refund_email", SENT)

    def settle(req: SettleRefund) -> RefundSnapshot:
        if ledger.status == "refund-error":  # no room on the order: nothing written
            ledger.settled.append(req.outcome)
            return ledger.snapshot()
        return ledger.settle(req)

    fakes.on("settle_refund", settle)
    async with running(client, fakes, [RefundWorkflow]) as queue:
        handle = await _in_refund_error_after_timeout(client, env, queue, wf_id)
        await _tell(handle, news("succeeded"))
        await fakes.wait_for("settle_refund", 2)
        await asyncio.sleep(0.3)
        still = await handle.query(RefundWorkflow.progress)
        await _act(handle, RefundWorkflow.mark_refunded, MarkRefunded(actor="finance-2", reference="tr-1"))
        result = await handle.result()
    assert still.status == "refund-error" and bool(still.waiting_for)
    assert len(fakes.args("settle_refund")) == 2 and result.status == "refunded"
