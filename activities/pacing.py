"""Pacing calls to an outside service at a set rate, inside one activity."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    """At most `rate` starts per second, evenly spaced; several batches share a limit by splitting it.

    Slots are scheduled against a running start time, not slept after each call, so a call's own
    duration costs no throughput, and callers that wait at once (several calls in flight) each
    get their own slot. A caller that comes late does not get the missed slots back: the pace
    never goes above `rate`. A back-off holds every caller, including those already asleep for
    a slot, until it has passed.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`clock` and `sleep` are replaceable so tests can check the schedule without a loaded machine's jitter."""
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self.next_at = clock()
        self.hold_until = 0.0

    async def wait(self) -> None:
        while True:
            now = self._clock()
            start = max(self.next_at, now)
            self.next_at = start + self.interval
            if start > now:
                await self._sleep(start - now)
            if self._clock() >= self.hold_until:
                return
            # A back-off arrived while this caller slept: its slot is forfeit; take one after the hold.

    def back_off(self, seconds: float) -> None:
        """The service said 429: nobody in this batch starts again before `seconds` from now."""
        self.hold_until = max(self.hold_until, self._clock() + seconds)
        self.next_at = max(self.next_at, self.hold_until)
