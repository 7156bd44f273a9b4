from __future__ import annotations

import pytest
from pydantic import ValidationError

from ticketing.money import CurrencyMismatch, Money


def test_arithmetic_and_display() -> None:
    a = Money(amount=3500, currency="eur")
    assert a.currency == "EUR"
    assert (a + Money(amount=250, currency="EUR")).display() == "EUR 37.50"
    assert Money(amount=-5, currency="EUR").display() == "EUR -0.05"
    assert Money(amount=1200, currency="JPY").display() == "JPY 1200"
    assert a.percent(33).amount == 1155  # rounded down, never a cent too much


def test_currencies_do_not_mix() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money(amount=1, currency="EUR") + Money(amount=1, currency="USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money(amount=1, currency="EUR") < Money(amount=1, currency="USD")


def test_no_floats_and_valid_codes() -> None:
    with pytest.raises(ValidationError):
        Money(amount=1.5, currency="EUR")
    with pytest.raises(ValidationError):
        Money(amount=1, currency="E1R")
