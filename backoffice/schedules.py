"""Reconciliation schedules as code, and the ways an operator runs a reconciliation by hand.

One Temporal Schedule per processor that has something to reconcile, made from
settings by `ticketops schedules apply`: created when missing, updated in place
when present (a second apply changes nothing but the update time). A paused
schedule stays paused: pause-on-failure paused it for a reason a person reads.

Runs started by the schedule derive their window from `TemporalScheduledStartTime`
(so "run now" is `trigger()` and "backfill from ... to ..." is `backfill()` over
the schedule times of those windows); an explicit window is a direct start under
`reconcile/{processor}/{window.label}`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from runtime.settings import ReconciliationSettings, Settings
from ticketing.errors import ActionNotAllowed
from ticketing.models import Processor
from ticketing.processors import reconcilable
from ticketing.reconciliation_records import ReconWindow
from ticketing.reconciliation_windows import schedule_times_for, windows_between
from workflows.contracts import RefundTiming
from workflows.options import queue_names
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput, reconcile_workflow_id

MANAGED_BY = "ticketops schedules apply"


class AppliedSchedule(BaseModel):
    schedule_id: str
    processor: str
    outcome: str  # created | updated
    paused: bool
    note: str | None = None


class ScheduleView(BaseModel):
    schedule_id: str
    processor: str
    exists: bool
    paused: bool = False
    note: str | None = None
    spec: str = ""
    time_zone: str | None = None
    jitter_seconds: float | None = None
    overlap: str | None = None
    catchup_window_seconds: float | None = None
    pause_on_failure: bool | None = None
    num_actions: int = 0
    next_runs: list[str] = []
    recent_runs: list[str] = []


def schedule_id(settings: Settings, processor: Processor | str) -> str:
    """Prefixed like the task queues, so tests (and a staging namespace shared by stacks) never collide."""
    return f"{settings.temporal.queue_prefix}reconcile-{Processor(processor).value}"


def reconciled_processors(config: ReconciliationSettings) -> list[Processor]:
    """The configured processors that have a reconciliation source (manual and free have none)."""
    found = []
    for name in config.processors:
        processor = Processor(name)
        if reconcilable(processor) and processor not in found:
            found.append(processor)
    return found


def reconcile_input(
    settings: Settings, processor: Processor, window: ReconWindow | None = None, *, actor: str = "schedule"
) -> ReconcileInput:
    """The one place the workflow's input is made: by the schedule (no window), run now, or an explicit window."""
    config = settings.reconciliation
    return ReconcileInput(
        processor=processor,
        window=window,
        window_hours=config.window_hours,
        settlement_lag_hours=config.settlement_lag_hours,
        actor=actor,
        refund_timing=RefundTiming(**settings.refunds.model_dump(exclude={"approval_threshold"})),
    )


def _spec(config: ReconciliationSettings) -> ScheduleSpec:
    jitter = timedelta(minutes=config.jitter_minutes) if config.jitter_minutes else None
    if config.cron:
        return ScheduleSpec(cron_expressions=[config.cron], jitter=jitter, time_zone_name=config.time_zone)
    return ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                hour=[ScheduleRange(config.hour)],
                minute=[ScheduleRange(config.minute)],
                comment="daily reconciliation",
            )
        ],
        jitter=jitter,
        time_zone_name=config.time_zone,
    )


def desired_schedule(settings: Settings, processor: Processor) -> Schedule:
    config = settings.reconciliation
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconcileWorkflow.run,
            reconcile_input(settings, processor),
            # The server appends the scheduled time; the run's window comes from that time.
            id=f"reconcile/{processor.value}/scheduled",
            task_queue=queue_names(settings.temporal.queue_prefix)[0],
            static_summary=f"Scheduled reconciliation of {processor.value} refunds against the ledger",
        ),
        spec=_spec(config),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(hours=config.catchup_window_hours),
            pause_on_failure=config.pause_on_failure,
        ),
        state=ScheduleState(paused=config.paused, note=MANAGED_BY + (" (paused by settings)" if config.paused else "")),
    )


async def apply_schedules(client: Client, settings: Settings) -> list[AppliedSchedule]:
    """Create or update one schedule per reconciled processor; idempotent."""
    applied = []
    for processor in reconciled_processors(settings.reconciliation):
        sid = schedule_id(settings, processor)
        schedule = desired_schedule(settings, processor)
        try:
            handle = await client.create_schedule(sid, schedule, memo={"managed_by": MANAGED_BY})
            outcome = "created"
        except ScheduleAlreadyRunningError:
            handle = client.get_schedule_handle(sid)

            def keep_state(current: ScheduleUpdateInput, desired: Schedule = schedule) -> ScheduleUpdate:
                # Spec, action and policy follow settings; the state (paused by a failure, its note) is kept.
                state = current.description.schedule.state
                return ScheduleUpdate(schedule=dataclasses.replace(desired, state=state))

            await handle.update(keep_state)
            if settings.reconciliation.paused and not (await handle.describe()).schedule.state.paused:
                await handle.pause(note=f"{MANAGED_BY} (paused by settings)")
            outcome = "updated"
        state = (await handle.describe()).schedule.state
        applied.append(
            AppliedSchedule(
                schedule_id=sid, processor=processor.value, outcome=outcome, paused=state.paused, note=state.note
            )
        )
    return applied


def _spec_text(desc: ScheduleDescription) -> str:
    spec = desc.schedule.spec
    parts = list(spec.cron_expressions)
    for cal in spec.calendars:
        hours = ",".join(str(r.start) for r in cal.hour)
        minutes = ",".join(f"{r.start:02d}" for r in cal.minute)
        parts.append(f"daily at {hours}:{minutes}")
    return "; ".join(parts)


async def view_schedules(client: Client, settings: Settings) -> list[ScheduleView]:
    views = []
    for processor in reconciled_processors(settings.reconciliation):
        sid = schedule_id(settings, processor)
        try:
            desc = await client.get_schedule_handle(sid).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            views.append(ScheduleView(schedule_id=sid, processor=processor.value, exists=False))
            continue
        spec, policy, state = desc.schedule.spec, desc.schedule.policy, desc.schedule.state
        views.append(
            ScheduleView(
                schedule_id=sid,
                processor=processor.value,
                exists=True,
                paused=state.paused,
                note=state.note,
                spec=_spec_text(desc),
                time_zone=spec.time_zone_name,
                jitter_seconds=spec.jitter.total_seconds() if spec.jitter else None,
                overlap=policy.overlap.name,
                catchup_window_seconds=policy.catchup_window.total_seconds() if policy.catchup_window else None,
                pause_on_failure=policy.pause_on_failure,
                num_actions=desc.info.num_actions,
                next_runs=[t.isoformat() for t in desc.info.next_action_times[:3]],
                recent_runs=[
                    getattr(a.action, "workflow_id", "") for a in desc.info.recent_actions[-5:]
                ],
            )
        )
    return views


def _processor(settings: Settings, name: str) -> Processor:
    try:
        processor = Processor(name)
    except ValueError:
        raise ActionNotAllowed(f"unknown processor {name!r}", type="unknown-processor") from None
    if processor not in reconciled_processors(settings.reconciliation):
        raise ActionNotAllowed(
            f"{processor.value} is not reconciled (no processor records, or not in the settings)",
            type="processor-not-reconciled",
        )
    return processor


async def _schedule_handle(client: Client, settings: Settings, processor: Processor) -> ScheduleHandle | None:
    handle = client.get_schedule_handle(schedule_id(settings, processor))
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return handle


class RunStarted(BaseModel):
    processor: str
    how: str  # trigger | start | backfill
    schedule_id: str | None = None
    operation_ids: list[str] = []
    windows: list[ReconWindow] = []


async def _newest_actions(handle: ScheduleHandle, before: ScheduleDescription, wait: float) -> list[str] | None:
    """Workflow ids of the actions taken since `before`; None when the server skipped the action (overlap)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        info = (await handle.describe()).info
        taken = info.num_actions - before.info.num_actions
        if taken > 0 or asyncio.get_running_loop().time() > deadline:
            return [getattr(a.action, "workflow_id", "") for a in info.recent_actions[-taken:]] if taken > 0 else []
        if info.num_actions_skipped_overlap > before.info.num_actions_skipped_overlap:
            return None
        await asyncio.sleep(0.1)


async def run_now(client: Client, settings: Settings, processor_name: str, *, wait: float = 3.0) -> RunStarted:
    """Trigger the processor's schedule: the run reconciles the window of "now" as if scheduled now.

    The schedule's overlap policy holds: while one of its runs is still going the trigger is
    skipped, and the caller is told so rather than handed an id that never ran.
    """
    processor = _processor(settings, processor_name)
    handle = await _schedule_handle(client, settings, processor)
    if handle is None:
        raise ActionNotAllowed(
            f"{processor.value} has no reconciliation schedule; run `ticketops schedules apply`, "
            "or give an explicit window",
            type="schedule-missing",
        )
    before = await handle.describe()
    await handle.trigger()
    ids = await _newest_actions(handle, before, wait)
    if ids is None:
        running = [getattr(a, "workflow_id", "") for a in before.info.running_actions]
        raise ActionNotAllowed(
            f"a reconciliation run of {processor.value} is still going ({', '.join(running) or 'just started'}); "
            "the schedule skips overlapping runs",
            type="run-in-progress",
        )
    return RunStarted(processor=processor.value, how="trigger", schedule_id=handle.id, operation_ids=ids)


async def run_window(
    client: Client, settings: Settings, processor_name: str, window: ReconWindow, *, actor: str = "schedule"
) -> RunStarted:
    """Start (or find running) the run of one explicit window; a finished window may run again."""
    processor = _processor(settings, processor_name)
    if window.end > datetime.now(UTC):
        raise ActionNotAllowed("the window has not ended yet", type="window-not-ended")
    operation_id = reconcile_workflow_id(processor.value, window.label)
    await client.start_workflow(
        ReconcileWorkflow.run,
        reconcile_input(settings, processor, window, actor=actor),
        id=operation_id,
        task_queue=queue_names(settings.temporal.queue_prefix)[0],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Reconciliation of {processor.value} refunds, {window.label}",
    )
    return RunStarted(processor=processor.value, how="start", operation_ids=[operation_id], windows=[window])


MAX_BACKFILL_WINDOWS = 400


async def backfill(
    client: Client, settings: Settings, processor_name: str, start: datetime, end: datetime, *, actor: str = "schedule"
) -> RunStarted:
    """One run per whole window in `[start, end)`: the schedule's backfill when there is a schedule, else direct starts.

    Through the schedule the runs are buffered one after another (never two
    readers of one processor at once) and each derives its window from its
    scheduled time, exactly as the nightly run would have.
    """
    processor = _processor(settings, processor_name)
    config = settings.reconciliation
    length, lag = timedelta(hours=config.window_hours), timedelta(hours=config.settlement_lag_hours)
    now = datetime.now(UTC)
    windows = windows_between(start, min(end, now), length=length)
    if not windows:
        raise ActionNotAllowed("the range holds no whole window that has ended", type="empty-range")
    if len(windows) > MAX_BACKFILL_WINDOWS:
        raise ActionNotAllowed(
            f"{len(windows)} windows; backfill at most {MAX_BACKFILL_WINDOWS} at once", type="range-too-long"
        )
    handle = await _schedule_handle(client, settings, processor)
    if handle is None or windows[-1].end + lag > now:
        # No schedule, or the last window's scheduled time is still ahead: start each window directly.
        started = [await run_window(client, settings, processor.value, w, actor=actor) for w in windows]
        return RunStarted(
            processor=processor.value,
            how="start",
            operation_ids=[op for s in started for op in s.operation_ids],
            windows=windows,
        )
    first, last = schedule_times_for(windows[0].start, windows[-1].end, length=length, lag=lag)
    await handle.backfill(
        ScheduleBackfill(
            start_at=first - timedelta(seconds=1), end_at=last, overlap=ScheduleOverlapPolicy.BUFFER_ALL
        )
    )
    return RunStarted(processor=processor.value, how="backfill", schedule_id=handle.id, windows=windows)
