"""The running server's state: the account's store plus the knobs tests turn.

One `ServerState` per app. The ASGI loop owns the request path; test hooks
may run in another thread, so every knob is read and written under a lock and
waking the background task goes through `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .config import StripeServerConfig
from .limits import FAULT_MODES, FaultInjector, FaultMode, TokenBucket
from .store import Store

__all__ = ["FaultMode", "LoggedRequest", "RequestContext", "ServerState", "WebhookFate", "key_scope", "public"]

# What becomes of an event's webhook: "send" (normal delivery, with retries);
# "dropped": recorded but never sent, so the event stays undelivered
# (`delivery_success=false`); "acknowledged": never sent but recorded as
# delivered, as when an endpoint answered 2xx and then lost the news.
WebhookFate = Literal["send", "dropped", "acknowledged"]


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
class WebhookDrop:
    """Armed by `drop_webhooks`: the next `remaining` matching events are never sent."""

    remaining: int | None
    types: tuple[str, ...] | None = None
    object_id: str | None = None

    def matches(self, event: dict[str, Any]) -> bool:
        if self.types and not any(
            event["type"] == t or (t.endswith("*") and event["type"].startswith(t[:-1])) for t in self.types
        ):
            return False
        return self.object_id is None or event["data"]["object"].get("id") == self.object_id


@dataclass
class ServerState:
    config: StripeServerConfig
    store: Store
    base_clock: Callable[[], float] = time.time
    request_log: list[LoggedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _inflight: set[tuple[str, str]] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def __post_init__(self) -> None:
        cfg = self.config
        self.faults = FaultInjector(
            cfg.fault_rate, cfg.seed, mode=cfg.fault_mode, delay_seconds=cfg.fault_delay_seconds
        )
        self.limiter = TokenBucket(cfg.rate_limit_per_second) if cfg.rate_limit_per_second else None
        self.latency_ms = cfg.latency_ms
        self.webhook_url = cfg.webhook_url
        self.clock_offset = 0.0
        self.clock_frozen_at: float | None = None
        self.webhook_drops: list[WebhookDrop] = []
        self._fate = threading.local()

    def clock(self) -> float:
        """The account's time: real time, shifted or frozen by `set_clock` (objects' `created`)."""
        frozen = self.clock_frozen_at
        return frozen if frozen is not None else self.base_clock() + self.clock_offset

    # knobs -------------------------------------------------------------------

    @property
    def fault_mode(self) -> FaultMode:
        return self.faults.mode

    def set_faults(
        self,
        rate: float,
        mode: FaultMode | None = None,
        seed: int | None = None,
        *,
        count: int | None = None,
        method: str | None = None,
        path_prefix: str | None = None,
        delay_seconds: float | None = None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be within [0, 1]")
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError(f"fault mode must be one of {FAULT_MODES}")
        if count is not None and count < 0:
            raise ValueError("fault count must be >= 0")
        with self._lock:
            if seed is not None:
                self.faults = FaultInjector(rate, seed)
            self.faults.configure(
                rate=rate,
                mode=mode or self.faults.mode,
                count=count,
                method=method,
                path_prefix=path_prefix,
                delay_seconds=self.config.fault_delay_seconds if delay_seconds is None else delay_seconds,
            )

    def set_clock(self, *, offset_seconds: float = 0.0, frozen_at: float | None = None) -> None:
        with self._lock:
            self.clock_offset, self.clock_frozen_at = offset_seconds, frozen_at
        self.wake()

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            if self.clock_frozen_at is not None:
                self.clock_frozen_at += seconds
            else:
                self.clock_offset += seconds
        self.wake()

    # webhook fates ------------------------------------------------------------

    def drop_webhooks(self, drop: WebhookDrop) -> None:
        with self._lock:
            self.webhook_drops.append(drop)

    def clear_webhook_drops(self) -> None:
        with self._lock:
            self.webhook_drops.clear()

    @contextlib.contextmanager
    def events_fate(self, fate: WebhookFate | None) -> Iterator[None]:
        """Events emitted by this thread inside the block get `fate` (None: as switches say)."""
        previous = getattr(self._fate, "value", None)
        self._fate.value = fate
        try:
            yield
        finally:
            self._fate.value = previous

    def webhook_fate(self, event: dict[str, Any]) -> WebhookFate:
        forced: WebhookFate | None = getattr(self._fate, "value", None)
        if forced is not None:
            return forced
        with self._lock:
            for drop in self.webhook_drops:
                if drop.matches(event) and (drop.remaining is None or drop.remaining > 0):
                    if drop.remaining is not None:
                        drop.remaining -= 1
                    return "dropped"
        return "send"

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
