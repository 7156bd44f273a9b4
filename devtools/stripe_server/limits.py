"""Ways the server misbehaves on purpose: a rate limit and injected 500s.

Both are thread-safe: the ASGI loop consults them while test hooks in another
thread change them.
"""

from __future__ import annotations

import random
import threading
import time


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
    """Decides which requests fail; the same seed gives the same sequence of decisions."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self) -> bool:
        with self._lock:
            draw = self._random.random()
            return self.rate > 0 and draw < self.rate
