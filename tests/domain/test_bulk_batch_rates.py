"""A wave's batches share the rate limit by size, so they finish together and none idles early."""

from __future__ import annotations

import pytest

from workflows.bulk_engine import batch_rates


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
