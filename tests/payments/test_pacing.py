"""The pacer: starts never above the rate, a call's own duration costs no throughput, back-off holds everyone."""

from __future__ import annotations

import asyncio
import itertools
import time

from activities.event_cancellation import MAX_IN_FLIGHT, in_flight
from activities.pacing import Pacer

SLACK = 0.002  # asyncio.sleep may wake a little early on some clocks; never by more than this


async def test_callers_waiting_at_once_get_evenly_spaced_slots() -> None:
    pacer = Pacer(50.0)  # one start every 20 ms
    starts: list[float] = []

    async def caller() -> None:
        await pacer.wait()
        starts.append(time.monotonic())

    await asyncio.gather(*(caller() for _ in range(10)))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.02 - SLACK
    assert starts[-1] - starts[0] < 0.18 + 0.1  # the rate is reached, not just respected


class VirtualTime:
    """A clock that moves only when a single caller sleeps: the pacer's schedule, free of machine load."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_a_calls_own_duration_costs_no_throughput() -> None:
    """Scheduled against a running start time: a 15 ms call in a 20 ms slot still gives 50 starts/s."""
    t = VirtualTime()
    pacer = Pacer(50.0, clock=t.clock, sleep=t.sleep)
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
    pacer = Pacer(50.0, clock=t.clock, sleep=t.sleep)
    await pacer.wait()
    first = t.now
    t.now += 0.05  # a slow call: two and a half slots
    await pacer.wait()
    assert t.now == first + 0.05  # starts at once, no sleep owed
    await pacer.wait()
    assert round(t.now - first, 9) == 0.07  # and the next one a full slot later, not a burst


async def test_a_late_caller_does_not_get_missed_slots_back() -> None:
    t = VirtualTime()
    pacer = Pacer(50.0, clock=t.clock, sleep=t.sleep)
    await pacer.wait()
    t.now += 0.1  # five slots pass unused
    first = t.now
    await pacer.wait()
    assert t.now == first
    await pacer.wait()
    assert round(t.now - first, 9) == 0.02  # no burst to catch up


async def test_back_off_holds_callers_already_asleep_for_a_slot() -> None:
    pacer = Pacer(10.0)  # one start every 100 ms
    began = time.monotonic()
    starts: list[float] = []

    async def caller() -> None:
        await pacer.wait()
        starts.append(time.monotonic() - began)

    callers = [asyncio.create_task(caller()) for _ in range(3)]
    await asyncio.sleep(0.05)  # the first started; two sleep until 100 and 200 ms
    pacer.back_off(0.5)  # the service said 429
    await asyncio.gather(*callers)
    assert starts[0] < 0.05
    assert min(starts[1:]) >= 0.55 - SLACK
    assert starts[2] - starts[1] >= 0.1 - SLACK


def test_orders_in_flight_cover_the_latency_at_the_batch_pace() -> None:
    assert in_flight(6.25) == 8  # a quarter of 25/s, for a second of latency
    assert in_flight(2.0) == 3
    assert in_flight(0.5) == 2
    assert in_flight(1000.0) == in_flight(0) == MAX_IN_FLIGHT
