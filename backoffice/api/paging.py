"""Bounds on every list route's paging, in one place so none is left unbounded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# Past this depth a search or a filter is the tool (and SQLite's integers end at 2^63).
MAX_OFFSET = 100_000

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"Rows to skip, at most {MAX_OFFSET}")]
