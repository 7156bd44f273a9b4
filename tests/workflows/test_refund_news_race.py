"""RefundWorkflow never ends with unread processor news: the lost late-failure race, made deterministic.

The failure webhook used to arrive while the run was sending the receipt after `refunded`; the
handler buffered it, `run()` returned, and the failure was lost (issue 11). Here the fake
`send_refund_email` holds the receipt until the test has delivered the failure, so the news lands
in exactly that window every time. Fake activities under the real names (the pattern of
samples-python's tests/hello/hello_activity_test.py) on a real dev server; the ledger's rule is
the real one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.contracts import (
    DeliveryOutcome,
    OpenRefund,
    ProcessorRefundView,
    RefundEmail,
    RefundSnapshot,
    RefundTransition,
    SettleRefund,
    SubmitRefund,
)
from backoffice.operations import Operations
from ticketing import refund_ledger
from ticketing.reconciliation_records import ProcessorRefundStatus
from ticketing.refund_ledger import ProcessorOutcome, RefundAction, Settlement
from ticketing.states import RefundStatus
from workers.build import SANDBOX
from workflows.contracts import MarkRefunded, NewsReceipt, RefundInput, RefundProgress, RefundResult
from workflows.refund import RefundWorkflow

FAILED_LATER = ProcessorOutcome(
    processor_refund_id="re_1", status=ProcessorRefundStatus.FAILED, failure_reason="expired_or_canceled_card"
)
_AFTER = {
    RefundAction.SUBMITTED: RefundStatus.CONFIRMING,
    RefundAction.SUCCEEDED: RefundStatus.SUCCEEDED,
    RefundAction.FAILED: RefundStatus.FAILED,
    RefundAction.RETRY: RefundStatus.REFUNDING,
}


class FakeRefund:
    """One refund's ledger row and its processor, in memory; the receipt waits for `release_receipt`."""

    def __init__(self) -> None:
        self.snap = RefundSnapshot(
            refund_id="rf_race",
            order_code="RACE0001",
            event_id="evt_race",
            status=RefundStatus.REFUNDING,
            processor="stripe",
            amount=7000,
            currency="EUR",
            ticket_count=2,
            attempt=1,
            idempotency_key="refund/RACE0001/k/attempt-1",
            payment_reference="pi_race",
        )
        self.emails: list[str] = []
        self.settled: list[ProcessorOutcome] = []
        self.receipt_started = asyncio.Event()
        self.release_receipt = asyncio.Event()

    def _move(self, action: RefundAction, **changes: Any) -> RefundSnapshot:
        self.snap = self.snap.model_copy(update={"status": _AFTER[action], **changes})
        return self.snap

    def activities(self) -> dict[str, list[Callable[..., Any]]]:
        @activity.defn(name="open_refund")
        async def open_refund(req: OpenRefund) -> RefundSnapshot:
            return self.snap

        @activity.defn(name="settle_refund")
        async def settle_refund(req: SettleRefund) -> RefundSnapshot:
            self.settled.append(req.outcome)
            snap = self.snap
            verdict = refund_ledger.judge_state(
                RefundStatus(snap.status), snap.processor_refund_id, snap.paid_manually, req.outcome
            )
            if verdict in (Settlement.MOVE, Settlement.LATE_FAILURE):
                for action in refund_ledger.steps(RefundStatus(snap.status), req.outcome.status):
                    self._move(
                        action,
                        processor_refund_id=req.outcome.processor_refund_id,
                        failure_reason=req.outcome.failure_reason if action is RefundAction.FAILED else None,
                    )
            return self.snap

        @activity.defn(name="move_refund")
        async def move_refund(req: RefundTransition) -> RefundSnapshot:
            paid = req.action is RefundAction.SUCCEEDED and req.reference is not None
            return self._move(req.action, paid_manually=paid or self.snap.paid_manually)

        @activity.defn(name="submit_refund")
        async def submit_refund(req: SubmitRefund) -> ProcessorRefundView:
            return ProcessorRefundView(id="re_1", status=ProcessorRefundStatus.SUCCEEDED)

        @activity.defn(name="send_refund_email")
        async def send_refund_email(req: RefundEmail) -> DeliveryOutcome:
            self.emails.append(req.kind)
            if req.kind == "receipt" and not self.receipt_started.is_set():
                self.receipt_started.set()
                await self.release_receipt.wait()  # the SMTP relay is slow: news arrives meanwhile
            return DeliveryOutcome(message_id=f"m{len(self.emails)}", status="sent", ticket_count=0)

        return {
            "orders": [open_refund, settle_refund, move_refund],
            "payments": [submit_refund],
            "email": [send_refund_email],
        }


@asynccontextmanager
async def _workers(client: Client, prefix: str, fake: FakeRefund) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for kind, acts in fake.activities().items():
            workflows = [RefundWorkflow] if kind == "orders" else []
            await stack.enter_async_context(
                Worker(
                    client,
                    task_queue=f"{prefix}{kind}",
                    workflows=workflows,
                    activities=acts,
                    workflow_runner=SANDBOX,
                )
            )
        yield


async def _start(client: Client, prefix: str) -> WorkflowHandle[RefundWorkflow, RefundResult]:
    return await client.start_workflow(
        RefundWorkflow.run,
        RefundInput(order_code="RACE0001", actor="finance-1", refund_id="rf_race", quote_hash="h"),
        id=f"refund/RACE0001/{uuid.uuid4().hex[:8]}",
        task_queue=f"{prefix}orders",
    )


async def _progress_until(handle: WorkflowHandle[Any, Any], status: str, waiting: str) -> RefundProgress:
    for _ in range(200):
        progress = await handle.query(RefundWorkflow.progress)
        if progress.status == status and waiting in progress.waiting_for:
            return progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"the run never reached {status} waiting for {waiting!r}: {progress}")


@pytest.mark.parametrize("channel", ["signal", "update"])
async def test_a_failure_that_arrives_during_the_receipt_is_acted_on(
    temporal_client: Client, queue_prefix: str, channel: str
) -> None:
    fake = FakeRefund()
    async with _workers(temporal_client, queue_prefix, fake):
        handle = await _start(temporal_client, queue_prefix)
        await asyncio.wait_for(fake.receipt_started.wait(), 30)
        assert fake.snap.status == RefundStatus.SUCCEEDED  # refunded; the receipt is on its way
        if channel == "signal":  # as runs were told before the update, and by signal-with-start
            await handle.signal(RefundWorkflow.processor_update, FAILED_LATER)
        else:
            assert await handle.execute_update(RefundWorkflow.processor_news, FAILED_LATER) is NewsReceipt.TAKEN
        fake.release_receipt.set()

        # Not "refunded": the run reopened the refund, told finance and waits for them.
        progress = await _progress_until(handle, RefundStatus.FAILED, "waiting for finance")
        assert progress.failure_reason == "expired_or_canceled_card"
        assert fake.snap.status == RefundStatus.FAILED
        assert fake.emails == ["receipt", "refund-error", "failed-later"]  # finance, then the buyer, told
        assert fake.settled[-1] == FAILED_LATER

        # Finance pays by hand; the run ends refunded, and now nothing is unread.
        marked = MarkRefunded(actor="finance-2", reference="B-1")
        await handle.execute_update(RefundWorkflow.mark_refunded, marked)
        result = await handle.result()
        assert result.status == RefundStatus.SUCCEEDED and fake.snap.paid_manually
        assert fake.emails == ["receipt", "refund-error", "failed-later", "receipt"]


async def test_news_for_an_ended_run_is_refused_so_the_sender_acts(
    temporal_client: Client, queue_prefix: str
) -> None:
    """The webhook learns that no run took its news (and starts the late-failure run itself)."""
    fake = FakeRefund()
    fake.release_receipt.set()
    async with _workers(temporal_client, queue_prefix, fake):
        handle = await _start(temporal_client, queue_prefix)
        assert (await handle.result()).status == RefundStatus.SUCCEEDED
        with pytest.raises((RPCError, WorkflowUpdateFailedError)):
            await handle.execute_update(RefundWorkflow.processor_news, FAILED_LATER)
        operations = Operations(temporal_client, f"{queue_prefix}orders")
        assert await operations.offer(handle.id, RefundWorkflow.processor_news, FAILED_LATER) is None
        assert fake.emails == ["receipt"] and fake.settled == [
            ProcessorOutcome(processor_refund_id="re_1", status=ProcessorRefundStatus.SUCCEEDED)
        ]
