"""How batches share the rate limit: by size within a wave (runs before the sliding window), by slot when sliding."""

from __future__ import annotations

import pytest

from workflows.bulk_engine import batch_rates, staggered_size, window_slots


def test_equal_batches_split_the_rate_evenly() -> None:
    assert batch_rates([(1, 100), (101, 200), (201, 300), (301, 400)], 25.0) == [6.25] * 4


def test_a_short_last_batch_gets_a_smaller_share_and_the_wave_still_uses_the_whole_rate() -> None:
    ranges = [(1, 100), (101, 200), (201, 300), (301, 350)]
    rates = batch_rates(ranges, 35.0)
    assert rates == pytest.approx([10.0, 10.0, 10.0, 5.0])
    assert sum(rates) == pytest.approx(35.0)
    # Each batch takes as long as the others at its pace: none finishes early and leaves its share unused.
    assert {round((last - first + 1) / rate, 9) for (first, last), rate in zip(ranges, rates, strict=True)} == {10.0}


def test_a_single_batch_gets_the_whole_rate() -> None:
    assert batch_rates([(7, 7)], 25.0) == [25.0]
    assert batch_rates([], 25.0) == []


def test_slots_are_the_batches_a_range_can_have_in_flight() -> None:
    assert window_slots(1, 2000, 200, 4) == 4
    assert window_slots(1, 85, 100, 4) == 1  # a small send: one batch, which then gets the whole rate
    assert window_slots(1, 250, 100, 4) == 3
    assert window_slots(5, 4, 100, 4) == 1  # an empty range still divides by something


def test_slots_have_staggered_sizes_up_to_the_batch_size() -> None:
    assert [staggered_size(200, 4, k) for k in range(4)] == [125, 150, 175, 200]
    assert [staggered_size(3, 2, k) for k in range(2)] == [2, 3]
    assert staggered_size(100, 1, 0) == 100  # alone in its window: nothing to stagger against
    assert staggered_size(1, 4, 0) == 1  # never an empty batch
