"""Which window a reconciliation run covers, and which schedule times cover given windows.

Windows are aligned to UTC multiples of their length (a day by default), so the
same window comes out of a run whenever it starts within the slot: a jittered,
delayed or re-triggered run reconciles the same days, and its workflow id
(`reconcile/{processor}/{window.label}`) is the same. A run scheduled at T
covers the last whole window that ended at least `lag` before T.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticketing.reconciliation_records import ReconWindow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _floor(at: datetime, length: timedelta) -> datetime:
    return _EPOCH + ((at.astimezone(UTC) - _EPOCH) // length) * length


def window_for_run(scheduled_start: datetime, *, length: timedelta, lag: timedelta) -> ReconWindow:
    """The window a run scheduled at `scheduled_start` (`TemporalScheduledStartTime`) reconciles."""
    end = _floor(scheduled_start - lag, length)
    return ReconWindow(start=end - length, end=end)


def windows_between(start: datetime, end: datetime, *, length: timedelta) -> list[ReconWindow]:
    """The aligned windows inside `[start, end)`; a partial window at either edge is not included."""
    first = _floor(start, length)
    if first < start.astimezone(UTC):
        first += length
    found: list[ReconWindow] = []
    while first + length <= end.astimezone(UTC):
        found.append(ReconWindow(start=first, end=first + length))
        first += length
    return found


def schedule_times_for(
    start: datetime, end: datetime, *, length: timedelta, lag: timedelta
) -> tuple[datetime, datetime]:
    """The schedule-time range `[from, to]` whose runs reconcile exactly the windows inside `[start, end)`.

    A window ending at E is reconciled by a run scheduled in `[E + lag, E + lag + length)`,
    so a backfill over this range starts one run per window (the server backfills
    `[from, to]` inclusive since 1.24, hence one second short of the next slot).
    """
    windows = windows_between(start, end, length=length)
    if not windows:
        raise ValueError("the range holds no whole reconciliation window")
    return windows[0].end + lag, windows[-1].end + lag + length - timedelta(seconds=1)
