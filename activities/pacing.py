"""Pacing calls to an outside service at a set rate, inside one activity."""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """At most `rate` starts per second, evenly spaced; several batches share a limit by splitting it."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self.next_at > now:
            await asyncio.sleep(self.next_at - now)
        self.next_at = max(self.next_at, now) + self.interval

    def back_off(self, seconds: float) -> None:
        """The service said 429: nobody in this batch starts again before `seconds` from now."""
        self.next_at = max(self.next_at, time.monotonic() + seconds)
