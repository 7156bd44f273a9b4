"""Heartbeats from activities that work through many items."""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity


class Heartbeat:
    """Heartbeats at most every `every` seconds: each one encodes its details through the payload
    codec and enters the SDK, which was a large share of an item's CPU when sent per item (an email
    of a bulk delivery, a refund of an event cancellation). The heartbeat timeout is a minute."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.last = -every

    def __call__(self, *details: Any) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            activity.heartbeat(*details)
