"""Money as integer minor units plus an ISO-4217 currency; never a float."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Currencies whose minor unit is not the cent. Everything else has two decimals.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "JOD": 3}


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: int = Field(description="Amount in minor units (cents).")
    currency: str = Field(min_length=3, max_length=3, description="ISO-4217 code, upper case.")

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        if not value.isalpha():
            raise ValueError("currency must be three letters")
        return value.upper()

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=0, currency=currency)

    def _check(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._check(other)
        return self.amount >= other.amount

    def times(self, factor: int) -> Money:
        return Money(amount=self.amount * factor, currency=self.currency)

    def percent(self, pct: int) -> Money:
        """`pct` percent of this amount, rounded down so we never pay out a cent too much."""
        return Money(amount=self.amount * pct // 100, currency=self.currency)

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    def display(self) -> str:
        """`EUR 35.00`: for summaries and emails, never for arithmetic."""
        exp = _EXPONENTS.get(self.currency, 2)
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exp)
        return f"{self.currency} {sign}{units}" + (f".{minor:0{exp}d}" if exp else "")


def total(amounts: list[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
