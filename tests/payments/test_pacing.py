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


async def test_a_calls_own_duration_costs_no_throughput() -> None:
    """Scheduled against a running start time: a 15 ms call in a 20 ms slot still gives 50 starts/s."""
    pacer = Pacer(50.0)
    starts: list[float] = []
    for _ in range(10):
        await pacer.wait()
        starts.append(time.monotonic())
        await asyncio.sleep(0.015)  # the call
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.02 - SLACK
    # Sleeping 1/rate after each call would take 9 * 35 ms = 315 ms.
    assert starts[-1] - starts[0] < 0.26


async def test_a_late_caller_does_not_get_missed_slots_back() -> None:
    pacer = Pacer(50.0)
    await pacer.wait()
    await asyncio.sleep(0.1)  # five slots pass unused
    first = time.monotonic()
    await pacer.wait()
    await pacer.wait()
    assert time.monotonic() - first >= 0.02 - SLACK  # no burst to catch up


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
