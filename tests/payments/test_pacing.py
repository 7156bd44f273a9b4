"""The pacer: starts never above the rate, a call's own duration costs no throughput, back-off holds everyone."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any

from activities.event_cancellation import MAX_IN_FLIGHT, in_flight
from activities.pacing import Pacer


class VirtualTime:
    """A clock that moves only when every caller sleeps, to the earliest wake-up: the pacer's
    schedule exactly, free of a loaded machine's jitter."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driven = False

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if not self._driven:  # one caller alone: its sleep simply passes
            self.now += seconds
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), woken))
        await woken

    async def run(self, *coros: Coroutine[Any, Any, None]) -> None:
        """Run callers side by side; whenever all of them sleep, wake the earliest."""
        self._driven = True
        tasks = [asyncio.create_task(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(10):  # let every runnable caller reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers:
                at, _, woken = heapq.heappop(self._sleepers)
                self.now = max(self.now, at)
                woken.set_result(None)
        await asyncio.gather(*tasks)
        self._driven = False


def _pacer(t: VirtualTime, rate: float) -> Pacer:
    return Pacer(rate, clock=t.clock, sleep=t.sleep)


async def test_callers_waiting_at_once_get_evenly_spaced_slots() -> None:
    t = VirtualTime()
    pacer = _pacer(t, 50.0)  # one start every 20 ms
    starts: list[float] = []

    async def caller() -> None:
        await pacer.wait()
        starts.append(t.now)

    await t.run(*(caller() for _ in range(10)))
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.02] * 9  # never above the rate, and the rate is reached


async def test_a_calls_own_duration_costs_no_throughput() -> None:
    """Scheduled against a running start time: a 15 ms call in a 20 ms slot still gives 50 starts/s."""
    t = VirtualTime()
    pacer = _pacer(t, 50.0)
    starts: list[float] = []
    for _ in range(10):
        await pacer.wait()
        starts.append(t.now)
        t.now += 0.015  # the call
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(starts)]
    # Sleeping 1/rate after each call would give 35 ms gaps (315 ms in all).
    assert gaps == [0.02] * 9


async def test_a_call_longer_than_its_slot_delays_only_itself() -> None:
    t = VirtualTime()
    pacer = _pacer(t, 50.0)
    await pacer.wait()
    first = t.now
    t.now += 0.05  # a slow call: two and a half slots
    await pacer.wait()
    assert t.now == first + 0.05  # starts at once, no sleep owed
    await pacer.wait()
    assert round(t.now - first, 9) == 0.07  # and the next one a full slot later, not a burst


async def test_a_late_caller_does_not_get_missed_slots_back() -> None:
    t = VirtualTime()
    pacer = _pacer(t, 50.0)
    await pacer.wait()
    t.now += 0.1  # five slots pass unused
    first = t.now
    await pacer.wait()
    assert t.now == first
    await pacer.wait()
    assert round(t.now - first, 9) == 0.02  # no burst to catch up


async def test_back_off_holds_callers_already_asleep_for_a_slot() -> None:
    t = VirtualTime()
    pacer = _pacer(t, 10.0)  # one start every 100 ms
    began = t.now
    starts: list[float] = []

    async def caller() -> None:
        await pacer.wait()
        starts.append(round(t.now - began, 9))

    async def processor_says_429() -> None:
        await t.sleep(0.05)  # the first started; two sleep until 100 and 200 ms
        pacer.back_off(0.5)

    await t.run(caller(), caller(), caller(), processor_says_429())
    # Nobody starts inside the hold, and after it the slots are spaced at the rate again.
    assert starts == [0.0, 0.55, 0.65]


def test_orders_in_flight_cover_the_latency_at_the_batch_pace() -> None:
    assert in_flight(6.25) == 8  # a quarter of 25/s, for a second of latency
    assert in_flight(2.0) == 3
    assert in_flight(0.5) == 2
    assert in_flight(1000.0) == in_flight(0) == MAX_IN_FLIGHT
