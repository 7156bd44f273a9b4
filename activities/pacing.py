"""Pacing calls to an outside service at a set rate, inside one activity."""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """At most `rate` starts per second, evenly spaced; several batches share a limit by splitting it.

    Slots are scheduled against a running start time, not slept after each call, so a call's own
    duration costs no throughput, and callers that wait at once (several calls in flight) each
    get their own slot. A caller that comes late does not get the missed slots back: the pace
    never goes above `rate`. A back-off holds every caller, including those already asleep for
    a slot, until it has passed.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()
        self.hold_until = 0.0

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            start = max(self.next_at, now)
            self.next_at = start + self.interval
            if start > now:
                await asyncio.sleep(start - now)
            if time.monotonic() >= self.hold_until:
                return
            # A back-off arrived while this caller slept: its slot is forfeit; take one after the hold.

    def back_off(self, seconds: float) -> None:
        """The service said 429: nobody in this batch starts again before `seconds` from now."""
        self.hold_until = max(self.hold_until, time.monotonic() + seconds)
        self.next_at = max(self.next_at, self.hold_until)
