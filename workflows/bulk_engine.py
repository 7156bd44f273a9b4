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
SLIDING_WINDOW = "bulk-sliding-window"  # runs started before it keep their waves on replay


def batch_rates(ranges: Sequence[tuple[int, int]], rate: float) -> list[float]:
    """Each batch of a wave gets the share of the rate its size asks for, so the wave's batches
    finish together: an even split left a short last batch idle early, and its share unused.
    (Only an activity's input changes with this, which replaying older histories does not check.)"""
    sizes = [last - first + 1 for first, last in ranges]
    total = sum(sizes)
    return [rate * size / total for size in sizes] if total > 0 else [rate for _ in sizes]


def window_slots(first: int, last: int, batch_size: int, window: int) -> int:
    """How many batches of a range can be in flight at once."""
    return max(1, min(window, -(-(last - first + 1) // max(1, batch_size))))


def staggered_size(batch_size: int, slots: int, slot: int) -> int:
    """Slot k of n takes batches of (n + k + 1) / 2n of the size: 5/8, 6/8, 7/8 and 8/8 for four.
    Batches that start together end together, and then the sender idles while they all start
    again (dispatch, read, claim); slots of different sizes keep their ends an eighth apart."""
    return max(1, batch_size * (slots + slot + 1) // (2 * slots))


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

    async def before_phases(self, inp: BulkInput) -> None:
        """Hook for work between choosing the items and the first phase (event cancellation closes transfers)."""

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
                    params={**inp.params.model_dump(mode="json", exclude={"kind"}), "actor": inp.actor},
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
        if inp.progress is None:  # the first run of the operation (a continued run has done it)
            await self.before_phases(inp)
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
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.report

    async def _run_phases(self, inp: BulkInput) -> None:
        while self.progress.phase < len(self.phases) and not self.cancelled:
            phase = self.phases[self.progress.phase]
            if workflow.patched(SLIDING_WINDOW):
                await self._slide(phase, inp)
            while self.progress.cursor <= self.progress.last and not self.cancelled:  # runs before the patch
                self._publish("paused" if self.paused else "running", phase)
                await workflow.wait_condition(lambda: not self.paused or self.cancelled)
                if self.cancelled:
                    break
                if self._continue_due(inp):
                    await self._continue_as_new(inp)
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

    def _continue_due(self, inp: BulkInput) -> bool:
        return self.batches_this_run >= inp.continue_after_batches or workflow.info().is_continue_as_new_suggested()

    async def _continue_as_new(self, inp: BulkInput) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(inp.model_copy(update={"progress": self.progress, "paused": self.paused}))

    async def _slide(self, phase: str, inp: BulkInput) -> None:
        """Up to `window` batches in flight over consecutive id ranges; a slot starts its next batch as
        soon as its last one ends.

        Waves (all of a window's batches, then the next window) left the sender idle while each
        wave's slowest batch finished and the next wave's batches all read and claimed at once.
        Here each slot keeps a size and a share of the rate in proportion: batches at a paced rate
        all take the same time and use all of it, and a sender that is faster than the rate keeps
        the slots' ends apart (the sizes are staggered), so while one slot starts the others send.
        The last round's worth of items goes out as one wave sharing the whole rate, and the run
        pauses or continues as new only with nothing in flight: everything below the cursor is done.
        """
        slots = window_slots(self.progress.first, self.progress.last, inp.batch_size, inp.window)
        sizes = [staggered_size(inp.batch_size, slots, k) for k in range(slots)]
        shares = [inp.rate_per_second * size / sum(sizes) for size in sizes]
        running: dict[asyncio.Task[BatchCounts], int] = {}  # in flight -> its slot
        tail = False  # the last round: a wave, launched once the slots have drained
        while True:
            ranges: list[tuple[int, int]] = []
            free = [k for k in range(slots) if k not in running.values()]
            if self._may_start(inp) and not (tail and running):
                left = self.progress.last - self.progress.cursor + 1
                tail = tail or left <= sum(sizes)
                if tail and not running:  # what is left, in batches sharing the whole rate by size
                    while self.progress.cursor <= self.progress.last and len(ranges) < slots:
                        ranges.append(self._take(inp.batch_size))
                    wave = zip(ranges, batch_rates(ranges, inp.rate_per_second), strict=True)
                    for k, ((first, last), share) in enumerate(wave):
                        running[self._batch(phase, inp, first, last, share)] = k
                elif not tail:
                    for k in free:
                        first, last = self._take(sizes[k])
                        running[self._batch(phase, inp, first, last, shares[k])] = k
            if running:
                self._publish("paused" if self.paused else "running", phase)
                done, _ = await workflow.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del running[task]
                    await self._absorb(phase, task.result())  # a batch out of retries fails the run, as in a wave
                continue
            if self.cancelled or self.progress.cursor > self.progress.last:
                return
            if self._continue_due(inp):
                await self._continue_as_new(inp)
            self._publish("paused", phase)
            await workflow.wait_condition(lambda: not self.paused or self.cancelled)

    def _may_start(self, inp: BulkInput) -> bool:
        return self.progress.cursor <= self.progress.last and not (
            self.paused or self.cancelled or self._continue_due(inp)
        )

    def _take(self, size: int) -> tuple[int, int]:
        """The next `size` ids from the cursor (fewer at the end)."""
        first = self.progress.cursor
        last = min(first + size - 1, self.progress.last)
        self.progress.cursor = last + 1
        self.batches_this_run += 1
        return first, last

    async def _absorb(self, phase: str, result: BatchCounts) -> None:
        """A finished batch's counts into the progress, then its follow-up work."""
        for status, n in result.counts.items():
            self.progress.counts[status] = self.progress.counts.get(status, 0) + n
        self.progress.batches += 1
        await self.after_batch(phase, result)

    def _batch(self, phase: str, inp: BulkInput, first: int, last: int, rate: float) -> asyncio.Task[BatchCounts]:
        return asyncio.ensure_future(
            workflow.execute_activity_method(
                self.phase_activities[phase],
                BulkBatch(bulk_id=inp.bulk_id, first=first, last=last, rate=rate, phase=phase),
                task_queue=options.sibling_queue(workflow.info().task_queue, self.phase_queues.get(phase, "email")),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_seconds),
                retry_policy=BATCH_RETRY,
            )
        )

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
                self._batch(phase, inp, first, last, share)
                for (first, last), share in zip(ranges, batch_rates(ranges, inp.rate_per_second), strict=True)
            )
        )
        for result in results:
            await self._absorb(phase, result)

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
