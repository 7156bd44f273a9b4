"""The running server's state: the account's store plus the knobs tests turn.

One `ServerState` per app. The ASGI loop owns the request path; test hooks
may run in another thread, so every knob is read and written under a lock and
waking the background task goes through `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .config import StripeServerConfig
from .limits import FaultInjector, TokenBucket
from .store import Store

FaultMode = Literal["before", "after"]


class LoggedRequest(NamedTuple):
    method: str
    path: str
    idempotency_key: str | None
    status: int


@dataclass(frozen=True)
class RequestContext:
    """What an operation needs to know about the request that caused it (for events)."""

    request_id: str | None = None
    idempotency_key: str | None = None


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop the server's private bookkeeping (keys starting with `_`)."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def key_scope(api_key: str) -> str:
    """Idempotency keys are per API key; store a digest, never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass
class ServerState:
    config: StripeServerConfig
    store: Store
    clock: Callable[[], float] = time.time
    request_log: list[LoggedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _inflight: set[tuple[str, str]] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def __post_init__(self) -> None:
        cfg = self.config
        self.faults = FaultInjector(cfg.fault_rate, cfg.seed)
        self.fault_mode: FaultMode = cfg.fault_mode
        self.limiter = TokenBucket(cfg.rate_limit_per_second) if cfg.rate_limit_per_second else None
        self.latency_ms = cfg.latency_ms
        self.webhook_url = cfg.webhook_url

    # knobs -------------------------------------------------------------------

    def set_faults(
        self,
        rate: float,
        mode: FaultMode | None = None,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be within [0, 1]")
        with self._lock:
            if seed is not None:
                self.faults = FaultInjector(rate, seed)
            self.faults.rate = rate
            if mode is not None:
                self.fault_mode = mode

    def set_rate_limit(self, per_second: float | None) -> None:
        with self._lock:
            self.limiter = TokenBucket(per_second) if per_second else None

    def allow_request(self) -> bool:
        with self._lock:
            limiter = self.limiter
        return limiter is None or limiter.take()

    def log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.request_log.append(entry)

    # idempotency keys being executed right now --------------------------------

    def claim(self, scope: str, key: str) -> bool:
        with self._lock:
            if (scope, key) in self._inflight:
                return False
            self._inflight.add((scope, key))
            return True

    def release(self, scope: str, key: str) -> None:
        with self._lock:
            self._inflight.discard((scope, key))

    # background task wake-up ----------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        self._loop, self._wake = loop, wake

    def wake(self) -> None:
        """Ask the background task to settle refunds and deliver events now."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)
