"""Ways the server misbehaves on purpose: a rate limit and injected faults.

Both are thread-safe: the ASGI loop consults them while test hooks in another
thread (or the admin endpoint) change them.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Literal

# "before": a 500 and nothing happens. "after": the request runs (its idempotent
# result is kept) but the answer is a 500, as when a response is lost on the way.
# "rate_limited": a 429 and nothing happens. "slow": the request waits
# `delay_seconds` before it runs (past the caller's timeout), then runs.
# "after_expired": as "after", and its idempotency key is forgotten at once, so a
# retry with the same key runs again (a retry after Stripe's 24 hours).
FaultMode = Literal["before", "after", "rate_limited", "slow", "after_expired"]
FAULT_MODES: tuple[FaultMode, ...] = ("before", "after", "rate_limited", "slow", "after_expired")


class TokenBucket:
    """`rate` requests per second on average, bursts of up to one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class FaultInjector:
    """Decides which requests fail; the same seed gives the same sequence of decisions.

    Only requests matching `method` and `path_prefix` (None: any) roll the dice.
    `count` (None: unlimited) turns faults off after that many have been injected,
    so "the next two refund creations answer 500" is exact.
    """

    def __init__(
        self,
        rate: float,
        seed: int,
        *,
        mode: FaultMode = "before",
        count: int | None = None,
        method: str | None = None,
        path_prefix: str | None = None,
        delay_seconds: float = 30.0,
    ) -> None:
        self.rate = rate
        self.mode: FaultMode = mode
        self.count = count
        self.method = method.upper() if method else None
        self.path_prefix = path_prefix
        self.delay_seconds = delay_seconds
        self.injected = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def configure(
        self,
        *,
        rate: float,
        mode: FaultMode,
        count: int | None,
        method: str | None,
        path_prefix: str | None,
        delay_seconds: float,
    ) -> None:
        with self._lock:
            self.rate, self.mode, self.count = rate, mode, count
            self.method = method.upper() if method else None
            self.path_prefix = path_prefix
            self.delay_seconds = delay_seconds

    def roll(self, method: str = "", path: str = "") -> FaultMode | None:
        """The fault to inject into this request, or None."""
        with self._lock:
            if self.method and method.upper() != self.method:
                return None
            if self.path_prefix and not path.startswith(self.path_prefix):
                return None
            draw = self._random.random()
            if not (self.rate > 0 and draw < self.rate):
                return None
            if self.count is not None:
                if self.count <= 0:
                    return None
                self.count -= 1
            self.injected += 1
            return self.mode

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "rate": self.rate,
                "mode": self.mode,
                "count": self.count,
                "method": self.method,
                "path_prefix": self.path_prefix,
                "delay_seconds": self.delay_seconds,
                "injected": self.injected,
            }
