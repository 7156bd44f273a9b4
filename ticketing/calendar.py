"""Business days, for the refund confirmation window (Stripe: up to 10 business days)."""

from __future__ import annotations

from datetime import datetime, timedelta


def add_business_days(start: datetime, days: int) -> datetime:
    """`start` plus `days` weekdays, keeping the time of day; weekends do not count."""
    current = start
    left = days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current
