"""The engine under every bulk workflow: batches of items by id range, a bounded window, pause and cancel.

Items live in the store; the workflow carries only ids, counts and a cursor.
Each activity works through a range of items (heartbeating), several run at
once, and the run continues-as-new after a set number of batches so its
history stays bounded at any size.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from activities.bulk_common import BulkActivities
    from activities.contracts import BatchCounts, BulkBatch, BulkReport, FinishBulk, PrepareBulk
    from workflows import options
    from workflows.contracts import BulkInput, BulkProgress, BulkView
    from workflows.search_attributes import BULK_DONE, BULK_FAILED, BULK_STATUS, EVENT_ID

BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
FAILED_STATES = ("failed", "refund-error")


def batch_rates(ranges: Sequence[tuple[int, int]], rate: float) -> list[float]:
    """Each batch of a wave gets the share of the rate its size asks for, so the wave's batches
    finish together: an even split left a short last batch idle early, and its share unused.
    (Only an activity's input changes with this, which replaying older histories does not check.)"""
    sizes = [last - first + 1 for first, last in ranges]
    total = sum(sizes)
    return [rate * size / total for size in sizes] if total > 0 else [rate for _ in sizes]


class BulkEngine:
    """Mixin with the run loop; subclasses name their phases, and each phase's activity and queue."""

    phases: Sequence[str] = ()  # a subclass may narrow it per run (event cancellation without notices)
    phase_activities: dict[str, Any] = {}
    phase_queues: dict[str, str] = {}

    def __init__(self) -> None:
        self.paused = False
        self.cancelled = False
        self.status = "running"
        self.progress = BulkProgress()
        self.report: BulkReport | None = None
        self.inp: BulkInput | None = None
        self.batches_this_run = 0

    async def after_batch(self, phase: str, result: BatchCounts) -> None:
        """Hook for follow-up work a batch asks for (event cancellation starts refund runs)."""

    # --- the loop -------------------------------------------------------------------------

    async def run_bulk(self, inp: BulkInput) -> BulkReport:
        self.inp = inp
        self.paused = inp.paused
        if inp.progress is None:
            found = await workflow.execute_activity_method(
                BulkActivities.prepare_bulk,
                PrepareBulk(
                    bulk_id=inp.bulk_id,
                    workflow_id=workflow.info().workflow_id,
                    kind=inp.kind,
                    event_id=inp.event_id,
                    selection=inp.selection,
                    params={**inp.params, "actor": inp.actor},
                    actor=inp.actor,
                    retry_of=inp.retry_of,
                ),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=options.STORE_RETRY,
            )
            self.progress = BulkProgress(first=found.first, last=found.last, total=found.total, cursor=found.first)
        else:
            self.progress = inp.progress
        workflow.upsert_search_attributes([EVENT_ID.value_set(inp.event_id)])
        self.batches_this_run = 0
        await self._run_phases(inp)
        while (
            not self.cancelled
            and self.progress.counts.get("deferred", 0) > 0
            and self.progress.deferred_passes < inp.deferred_retries
        ):
            await self._retry_deferred(inp)
        final = "cancelled" if self.cancelled else "completed"
        self.report = await workflow.execute_activity_method(
            BulkActivities.finish_bulk,
            FinishBulk(bulk_id=inp.bulk_id, status=final),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=options.STORE_RETRY,
        )
        self.progress.counts = dict(self.report.counts)
        self._publish(final, "done")
        return self.report

    async def _run_phases(self, inp: BulkInput) -> None:
        while self.progress.phase < len(self.phases) and not self.cancelled:
            phase = self.phases[self.progress.phase]
            while self.progress.cursor <= self.progress.last and not self.cancelled:
                self._publish("paused" if self.paused else "running", phase)
                await workflow.wait_condition(lambda: not self.paused or self.cancelled)
                if self.cancelled:
                    break
                if (
                    self.batches_this_run >= inp.continue_after_batches
                    or workflow.info().is_continue_as_new_suggested()
                ):
                    workflow.continue_as_new(inp.model_copy(update={"progress": self.progress, "paused": self.paused}))
                await self._wave(phase, inp)
                self.batches_this_run += inp.window
            if not self.cancelled:
                self.progress.phase += 1
                self.progress.cursor = self.progress.first

    async def _retry_deferred(self, inp: BulkInput) -> None:
        """Another pass of the last phase over the items a server deferred, after a doubling wait.

        A greylisted or full mailbox must not hold up everyone else, nor be given up after a
        few seconds: the first pass goes on without it, and it is tried again minutes later.
        """
        wait = inp.deferred_retry_seconds * 2**self.progress.deferred_passes
        deferred = self.progress.counts.get("deferred", 0)
        self.status = "running"
        workflow.set_current_details(f"waiting {wait:.0f}s to retry {deferred} deferred recipient(s)")
        with contextlib.suppress(TimeoutError):  # the wait ran out: time for the pass
            await workflow.wait_condition(lambda: self.cancelled, timeout=timedelta(seconds=wait))
        if self.cancelled:
            return
        self.progress.deferred_passes += 1
        self.progress.phase = len(self.phases) - 1
        self.progress.cursor = self.progress.first
        await self._run_phases(inp)

    async def _wave(self, phase: str, inp: BulkInput) -> None:
        """Up to `window` batches at once over consecutive id ranges."""
        ranges = []
        for _ in range(inp.window):
            if self.progress.cursor > self.progress.last:
                break
            first = self.progress.cursor
            last = min(first + inp.batch_size - 1, self.progress.last)
            ranges.append((first, last))
            self.progress.cursor = last + 1
        results = await asyncio.gather(
            *(
                workflow.execute_activity_method(
                    self.phase_activities[phase],
                    BulkBatch(bulk_id=inp.bulk_id, first=first, last=last, rate=share, phase=phase),
                    task_queue=options.sibling_queue(workflow.info().task_queue, self.phase_queues.get(phase, "email")),
                    start_to_close_timeout=timedelta(minutes=30),
                    heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
                    retry_policy=BATCH_RETRY,
                )
                for (first, last), share in zip(ranges, batch_rates(ranges, inp.rate_per_second), strict=True)
            )
        )
        for result in results:
            for status, n in result.counts.items():
                self.progress.counts[status] = self.progress.counts.get(status, 0) + n
            await self.after_batch(phase, result)
        self.progress.batches += len(ranges)

    def _publish(self, status: str, phase: str) -> None:
        self.status = status
        done = sum(self.progress.counts.values())
        failed = sum(self.progress.counts.get(s, 0) for s in FAILED_STATES)
        pairs: list[SearchAttributeUpdate[Any]] = [
            BULK_STATUS.value_set(status),
            BULK_DONE.value_set(done),
            BULK_FAILED.value_set(failed),
        ]
        workflow.upsert_search_attributes(pairs)
        workflow.set_current_details(f"{status}: {phase}, {done} of {self.progress.total} items done ({failed} failed)")

    # --- control ----------------------------------------------------------------------------

    @workflow.signal(name="pause")
    def pause(self) -> None:
        """Batches in flight finish; the next wave waits."""
        self.paused = True
        if self.status == "running":
            self.status = "paused"

    @workflow.signal(name="resume")
    def resume(self) -> None:
        self.paused = False
        if self.status == "paused":
            self.status = "running"

    @workflow.signal(name="cancel")
    def cancel(self) -> None:
        self.cancelled = True

    @workflow.query(name="progress")
    def view(self) -> BulkView:
        phase = self.phases[self.progress.phase] if self.progress.phase < len(self.phases) else "done"
        return BulkView(
            bulk_id=self.inp.bulk_id if self.inp else "",
            status=self.status,
            phase=phase,
            total=self.progress.total,
            processed=sum(self.progress.counts.values()),
            counts=dict(self.progress.counts),
            report_uri=self.report.report_uri if self.report else None,
        )
