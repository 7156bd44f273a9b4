"""Date formatting shared by PDFs and emails, so a customer sees one format everywhere."""

from __future__ import annotations

from datetime import date, datetime

# English names regardless of the process locale (strftime %A/%B would follow it).
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def format_date(value: date) -> str:
    """`Saturday 14 March 2026`."""
    return f"{_DAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]} {value.year}"


def format_datetime(value: datetime | str) -> str:
    """`Saturday 14 March 2026, 20:00`, in the datetime's own timezone; strings pass through."""
    if isinstance(value, str):
        return value
    return f"{format_date(value)}, {value:%H:%M}"
