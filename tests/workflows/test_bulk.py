"""The bulk engine on its own, through BulkDelivery and EventCancellation.

`Items` stands in for the store's bulk items: a batch marks the ids of its range once (a retry
pass only resolves the deferred ones) and reports counts as the real batch activities do, so
the tests check that every id is worked once, by at most `window` batches at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.contracts import (
    BatchCounts,
    BulkBatch,
    BulkRange,
    BulkReport,
    CloseEventTransfers,
    EventTransfersClosed,
    FinishBulk,
    FollowUp,
    PrepareBulk,
)
from tests.workflows.fakes import Fakes, StandInRefund, running
from workflows.bulk_delivery import BulkDeliveryWorkflow
from workflows.contracts import BulkInput, BulkView
from workflows.event_cancellation import EventCancellationWorkflow


@dataclass
class Items:
    first: int
    last: int
    defer: dict[int, int] = field(default_factory=dict)  # id -> how many passes it is deferred
    status: dict[int, str] = field(default_factory=dict)
    batches: list[BulkBatch] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    follow_ups: Callable[[BulkBatch], list[FollowUp]] = lambda _batch: []
    await_overlap: bool = False
    overlapped: asyncio.Event = field(default_factory=asyncio.Event)  # two batches were in flight at once

    def prepare(self, req: PrepareBulk) -> BulkRange:
        return BulkRange(first=self.first, last=self.last, total=self.last - self.first + 1)

    async def batch(self, batch: BulkBatch) -> BatchCounts:
        self.batches.append(batch)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        # With `await_overlap` the first batch waits (up to a second) for a second one: batches in
        # flight together are then seen together however slow the machine; a window of one is not.
        if self.in_flight > 1:
            self.overlapped.set()
        if self.await_overlap and len(self.batches) == 1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.overlapped.wait(), 1.0)
        await asyncio.sleep(0.005)
        counts: dict[str, int] = {}
        for item in range(batch.first, batch.last + 1):
            before = self.status.get(item)
            if before not in (None, "deferred"):
                continue  # worked already: a batch is idempotent per item
            now = "deferred" if self.defer.get(item, 0) > 0 else "sent"
            self.defer[item] = self.defer.get(item, 0) - 1
            if before == now:
                continue
            if before == "deferred":
                counts["deferred"] = counts.get("deferred", 0) - 1
            counts[now] = counts.get(now, 0) + 1
            self.status[item] = now
        self.in_flight -= 1
        return BatchCounts(counts={k: v for k, v in counts.items() if v}, follow_ups=self.follow_ups(batch))

    def finish(self, req: FinishBulk) -> BulkReport:
        counts: dict[str, int] = {}
        for status in self.status.values():
            counts[status] = counts.get(status, 0) + 1
        return BulkReport(bulk_id=req.bulk_id, status=req.status, counts=counts, report_uri=f"mem://{req.bulk_id}")

    def worked(self) -> list[int]:
        """Every id a batch covered, in order of the batches (duplicates kept)."""
        return [i for b in self.batches for i in range(b.first, b.last + 1)]


async def _runs(client: Client, wf_id: str, run_id: str | None) -> int:
    """How many runs the workflow took: each continued-as-new event names the next one."""
    count = 0
    while run_id:
        count += 1
        history = await client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None
    return count


async def _children(handle: WorkflowHandle[EventCancellationWorkflow, BulkReport]) -> tuple[list[str], int]:
    """The ids of the children the run started, and how many starts were refused as duplicates."""
    events = (await handle.fetch_history()).events
    started = [e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id for e in events
               if e.HasField("child_workflow_execution_started_event_attributes")]
    refused = sum(1 for e in events if e.HasField("start_child_workflow_execution_failed_event_attributes"))
    return started, refused


def _script(fakes: Fakes, items: Items, batch_activity: str = "deliver_bulk_batch") -> None:
    fakes.on("prepare_bulk", items.prepare).on("finish_bulk", items.finish).on(batch_activity, items.batch)


def _input(**kw: object) -> BulkInput:
    base: dict[str, object] = {
        "bulk_id": "bulk-1", "kind": "delivery", "event_id": "ev-1", "actor": "ops-1", "selection": {"all": True},
        "batch_size": 4, "window": 2, "rate_per_second": 10.0,
    }
    return BulkInput.model_validate({**base, **kw})


async def _until(
    handle: WorkflowHandle[BulkDeliveryWorkflow, BulkReport], check: Callable[[BulkView], bool]
) -> BulkView:
    for _ in range(400):
        view = await handle.query(BulkDeliveryWorkflow.view)
        if check(view):
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached: last view {view}")


async def test_every_item_once_through_a_bounded_window(client: Client, fakes: Fakes, wf_id: str) -> None:
    items = Items(first=11, last=30, await_overlap=True)
    _script(fakes, items)
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        handle = await client.start_workflow(BulkDeliveryWorkflow.run, _input(), id=wf_id, task_queue=queue)
        report = await handle.result()
        view = await handle.query(BulkDeliveryWorkflow.view)
    assert sorted(items.worked()) == list(range(11, 31))  # each id once, none left out
    assert items.most_in_flight == 2  # the window, and it was used
    assert all(b.last - b.first + 1 <= 4 for b in items.batches)
    assert all(0 < b.rate <= 10.0 for b in items.batches)
    assert (report.status, report.counts, report.report_uri) == ("completed", {"sent": 20}, "mem://bulk-1")
    assert (view.status, view.phase, view.processed, view.total) == ("completed", "done", 20, 20)
    [prepared] = fakes.args("prepare_bulk")
    assert (prepared.workflow_id, prepared.params["template"], prepared.params["actor"]) == (wf_id, "tickets", "ops-1")
    assert fakes.queues("deliver_bulk_batch") == {"email"} and fakes.args("finish_bulk")[0].status == "completed"


async def test_an_empty_selection_finishes_without_batches(client: Client, fakes: Fakes, wf_id: str) -> None:
    items = Items(first=0, last=-1)
    _script(fakes, items)
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        report = await client.execute_workflow(BulkDeliveryWorkflow.run, _input(), id=wf_id, task_queue=queue)
    assert (report.status, report.counts, items.batches) == ("completed", {}, [])


async def test_continues_as_new_with_its_progress(client: Client, fakes: Fakes, wf_id: str) -> None:
    items = Items(first=1, last=20)
    _script(fakes, items)
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        handle = await client.start_workflow(
            BulkDeliveryWorkflow.run, _input(continue_after_batches=2), id=wf_id, task_queue=queue
        )
        report = await handle.result()
        runs = await _runs(client, wf_id, handle.first_execution_run_id)
    assert sorted(items.worked()) == list(range(1, 21))
    assert report.counts == {"sent": 20}
    assert runs >= 3  # continued as new, and the last run finished the work of the first
    assert len(fakes.args("prepare_bulk")) == 1  # the range is found once, then carried


async def test_pause_holds_the_next_batch_and_resume_goes_on(client: Client, fakes: Fakes, wf_id: str) -> None:
    items = Items(first=1, last=6)
    _script(fakes, items)
    gate = fakes.hold("deliver_bulk_batch")
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        handle = await client.start_workflow(
            BulkDeliveryWorkflow.run, _input(batch_size=1, window=1), id=wf_id, task_queue=queue
        )
        await fakes.wait_for("deliver_bulk_batch")
        await handle.signal(BulkDeliveryWorkflow.pause)
        gate.set()  # the batch in flight finishes ...
        view = await _until(handle, lambda v: v.processed == 1 and v.status == "paused")
        await asyncio.sleep(0.2)
        assert len(items.batches) == 1  # ... and no other starts while paused
        await handle.signal(BulkDeliveryWorkflow.resume)
        report = await handle.result()
    assert view.phase == "deliver" and report.counts == {"sent": 6} and sorted(items.worked()) == list(range(1, 7))


async def test_cancel_lets_the_batches_in_flight_end_and_starts_no_more(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    items = Items(first=1, last=12)
    _script(fakes, items)
    gate = fakes.hold("deliver_bulk_batch")
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        handle = await client.start_workflow(BulkDeliveryWorkflow.run, _input(), id=wf_id, task_queue=queue)
        await fakes.wait_for("deliver_bulk_batch", 2)
        await handle.signal(BulkDeliveryWorkflow.cancel)
        gate.set()
        report = await handle.result()
    assert report.status == "cancelled" and len(items.batches) == 2  # the two in flight, then no more
    assert report.counts == {"sent": len(items.worked())} and len(items.worked()) < 12


async def test_started_paused_then_cancelled_works_no_item(client: Client, fakes: Fakes, wf_id: str) -> None:
    items = Items(first=1, last=6)
    _script(fakes, items)
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        handle = await client.start_workflow(BulkDeliveryWorkflow.run, _input(paused=True), id=wf_id, task_queue=queue)
        await _until(handle, lambda v: v.status == "paused")
        await handle.signal(BulkDeliveryWorkflow.cancel)
        report = await handle.result()
    assert (report.status, items.batches) == ("cancelled", [])
    assert [f.status for f in fakes.args("finish_bulk")] == ["cancelled"]


async def test_deferred_items_are_retried_after_a_doubling_wait(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    """Ids 3 and 7 are deferred once, id 5 three times: two more passes, then the retries run out."""
    items = Items(first=1, last=8, defer={3: 1, 7: 1, 5: 3})
    _script(fakes, items)
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        handle = await client.start_workflow(
            BulkDeliveryWorkflow.run,
            _input(deferred_retries=2, deferred_retry_seconds=600),
            id=wf_id,
            task_queue=queue,
        )
        report = await handle.result()
        elapsed = await env.get_current_time(handle) - (await handle.describe()).start_time
    assert sorted(items.worked()) == sorted([*range(1, 9), *range(1, 9), *range(1, 9)])  # three passes
    assert report.counts == {"sent": 7, "deferred": 1}
    assert elapsed.total_seconds() >= 600 + 1200  # waited 10 then 20 minutes (virtual time)


async def test_cancel_during_the_deferred_wait_skips_the_retry(
    client: Client, env: WorkflowEnvironment, fakes: Fakes, wf_id: str
) -> None:
    items = Items(first=1, last=4, defer={2: 5})
    _script(fakes, items)
    async with running(client, fakes, [BulkDeliveryWorkflow]) as queue:
        with env.with_time_skipping_disabled():
            handle = await client.start_workflow(
                BulkDeliveryWorkflow.run, _input(deferred_retry_seconds=3600), id=wf_id, task_queue=queue
            )
        await _until(handle, lambda v: v.counts.get("deferred") == 1)
        await handle.signal(BulkDeliveryWorkflow.cancel)
        report = await handle.result()
    assert report.status == "cancelled" and sorted(items.worked()) == [1, 2, 3, 4]


# --- event cancellation: two phases on two queues, follow-up refunds -----------------------


def _follow_up(i: int, workflow_id: str | None = None) -> FollowUp:
    return FollowUp(refund_id=f"rf-{i}", order_code=f"ORD-{i}", workflow_id=workflow_id or f"refund/ORD-{i}")


def _refund_follow_ups(batch: BulkBatch) -> list[FollowUp]:
    if batch.phase != "cancel":
        return []
    return [_follow_up(i) for i in range(batch.first, batch.last + 1) if i % 2 == 0]


async def test_event_cancellation_notifies_then_cancels_and_hands_refunds_on(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    notices, cancels = Items(first=1, last=6), Items(first=1, last=6, follow_ups=_refund_follow_ups)
    fakes.on("prepare_bulk", notices.prepare).on("finish_bulk", cancels.finish)
    fakes.on("close_event_transfers", EventTransfersClosed(closed=1))
    fakes.on("notify_cancellation_batch", notices.batch).on("cancel_refund_batch", cancels.batch)
    async with running(client, fakes, [EventCancellationWorkflow, StandInRefund]) as queue:
        handle = await client.start_workflow(
            EventCancellationWorkflow.run,
            _input(kind="event-cancellation", params={"reason": "storm"}),
            id=wf_id,
            task_queue=queue,
        )
        try:
            report = await handle.result()
            view = await handle.query(EventCancellationWorkflow.view)
            children, _ = await _children(handle)
        finally:
            for i in (2, 4, 6):
                await client.get_workflow_handle(f"refund/ORD-{i}").terminate("test over")
    assert sorted(notices.worked()) == sorted(cancels.worked()) == list(range(1, 7))
    assert fakes.names()[:2] == ["prepare_bulk", "close_event_transfers"]  # transfers closed before any notice
    assert fakes.queues("close_event_transfers") == {"orders"}
    first_cancel = fakes.names().index("cancel_refund_batch")
    assert "notify_cancellation_batch" not in fakes.names()[first_cancel:]  # every notice before any cancel
    assert fakes.queues("notify_cancellation_batch") == {"email"}
    assert fakes.queues("cancel_refund_batch") == {"payments"}
    assert sorted(children) == ["refund/ORD-2", "refund/ORD-4", "refund/ORD-6"]
    assert report.status == "completed" and view.processed == 6
    refund = await client.get_workflow_handle("refund/ORD-2").fetch_history()
    started = refund.events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "Refund" and started.parent_workflow_execution.workflow_id == wf_id


async def test_event_cancellation_without_notices_and_a_duplicate_follow_up(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    """A follow-up already running (a batch retried after its refund started) is not started twice."""
    items = Items(first=1, last=2, follow_ups=lambda b: [_follow_up(1, "refund/dup")])
    _script(fakes, items, "cancel_refund_batch")
    fakes.on("close_event_transfers", EventTransfersClosed())
    async with running(client, fakes, [EventCancellationWorkflow, StandInRefund]) as queue:
        handle = await client.start_workflow(
            EventCancellationWorkflow.run,
            _input(kind="event-cancellation", params={"notify": False}, batch_size=1),
            id=wf_id,
            task_queue=queue,
        )
        try:
            report = await handle.result()
            children, duplicates = await _children(handle)
        finally:
            await client.get_workflow_handle("refund/dup").terminate("test over")
    assert "notify_cancellation_batch" not in fakes.names() and len(items.batches) == 2
    assert report.counts == {"sent": 2}
    assert (children, duplicates) == (["refund/dup"], 1)  # started by the first batch only


# --- event cancellation: the open transfers are closed first, once per operation -------------


def _pages(req: CloseEventTransfers) -> EventTransfersClosed:
    """Two pages of open transfers: 100 (one accepted first), then 3; the cursor is the last id."""
    if req.after is None:
        return EventTransfersClosed(closed=99, accepted=1, next="transfer/ORD-99/t")
    assert req.after == "transfer/ORD-99/t"
    return EventTransfersClosed(closed=3)


async def test_event_cancellation_closes_every_open_transfer_before_it_notifies_or_refunds(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    items = Items(first=1, last=4)
    fakes.on("prepare_bulk", items.prepare).on("finish_bulk", items.finish).on("close_event_transfers", _pages)
    fakes.on("notify_cancellation_batch", items.batch).on("cancel_refund_batch", Items(first=1, last=4).batch)
    async with running(client, fakes, [EventCancellationWorkflow, StandInRefund]) as queue:
        report = await client.execute_workflow(
            EventCancellationWorkflow.run,
            _input(kind="event-cancellation", params={"reason": "storm"}),
            id=wf_id,
            task_queue=queue,
        )
    assert report.status == "completed"
    names = fakes.names()
    assert names[:3] == ["prepare_bulk", "close_event_transfers", "close_event_transfers"]
    assert [a.after for a in fakes.args("close_event_transfers")] == [None, "transfer/ORD-99/t"]
    assert {a.bulk_id for a in fakes.args("close_event_transfers")} == {"bulk-1"}
    assert names.index("notify_cancellation_batch") > 2 and names.index("cancel_refund_batch") > 2


async def test_event_cancellation_goes_on_when_the_transfers_step_is_refused(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    """A refusal no retry mends leaves the transfers open: their orders are then reported failed, as before."""
    items = Items(first=1, last=3)
    _script(fakes, items, "cancel_refund_batch")
    fakes.on("close_event_transfers", ApplicationError("no client", type="no-client", non_retryable=True))
    async with running(client, fakes, [EventCancellationWorkflow, StandInRefund]) as queue:
        report = await client.execute_workflow(
            EventCancellationWorkflow.run,
            _input(kind="event-cancellation", params={"notify": False}),
            id=wf_id,
            task_queue=queue,
        )
    assert report.status == "completed" and sorted(items.worked()) == [1, 2, 3]
    assert len(fakes.args("close_event_transfers")) == 1


async def test_event_cancellation_closes_transfers_once_across_continue_as_new(
    client: Client, fakes: Fakes, wf_id: str
) -> None:
    items = Items(first=1, last=12)
    _script(fakes, items, "cancel_refund_batch")
    fakes.on("close_event_transfers", EventTransfersClosed(closed=2))
    async with running(client, fakes, [EventCancellationWorkflow, StandInRefund]) as queue:
        handle = await client.start_workflow(
            EventCancellationWorkflow.run,
            _input(kind="event-cancellation", params={"notify": False}, batch_size=2, window=1,
                   continue_after_batches=2),
            id=wf_id,
            task_queue=queue,
        )
        report = await handle.result()
        runs = await _runs(client, wf_id, handle.first_execution_run_id)
    assert runs >= 3 and sorted(items.worked()) == list(range(1, 13)) and report.counts == {"sent": 12}
    assert len(fakes.args("close_event_transfers")) == 1  # the first run closed them; the next ones go on
