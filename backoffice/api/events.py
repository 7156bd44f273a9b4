"""Events: the list an agent starts from, with how many orders each has in each status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from backoffice.api.auth import SUPPORT
from backoffice.api.deps import AppState, state
from backoffice.api.paging import Offset
from ticketing.states import OrderStatus
from ticketing.store.events import list_events

router = APIRouter(tags=["events"])


class EventSummary(BaseModel):
    id: str
    name: str
    venue: str | None
    starts_at: datetime
    currency: str
    cancelled: bool
    orders: dict[str, int] = Field(description="Orders by status; every status is listed, zero included.")
    orders_total: int


@router.get("/events", response_model=list[EventSummary], dependencies=[Depends(SUPPORT)])
async def get_events(
    st: Annotated[AppState, Depends(state)],
    include_cancelled: Annotated[bool, Query(description="List cancelled events too")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[EventSummary]:
    """Soonest first."""
    async with st.store.transaction() as conn:
        found = await list_events(conn, include_cancelled=include_cancelled, limit=limit, offset=offset)
    return [
        EventSummary(
            id=event.id,
            name=event.name,
            venue=event.venue,
            starts_at=event.starts_at,
            currency=event.currency,
            cancelled=event.cancelled,
            orders={status.value: counts.get(status.value, 0) for status in OrderStatus},
            orders_total=sum(counts.values()),
        )
        for event, counts in found
    ]
