"""Seat movements as data: what an order change gives back to, or takes from, the quotas.

The pure functions that cancel or move tickets return these; the activity applies
them with `adjust_inventory` in the same transaction as the order, where the
CHECK constraints refuse overselling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from ticketing.models import Ticket


class InventoryDelta(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket_type_id: str
    time_slot_id: str | None
    delta: int


def seat_deltas(moves: Iterable[tuple[Ticket, str | None, int]]) -> list[InventoryDelta]:
    """Group (ticket, time slot, +1/-1) moves by ticket type and slot; releases come first.

    Releasing before taking keeps every intermediate count within the CHECK
    constraints when a ticket type is full and only its slot changes.
    """
    counts: Counter[tuple[str, str | None]] = Counter()
    for ticket, slot_id, delta in moves:
        counts[(ticket.ticket_type_id, slot_id)] += delta
    deltas = [InventoryDelta(ticket_type_id=t, time_slot_id=s, delta=d) for (t, s), d in counts.items() if d]
    return sorted(deltas, key=lambda d: d.delta)
