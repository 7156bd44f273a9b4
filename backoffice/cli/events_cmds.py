"""`ticketops events list`: the events, with their orders counted by status."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from backoffice.cli.client import Api, api_command, out

events_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Events and their orders.")

_SHOWN = ("paid", "reserved", "cancelled", "expired")


@events_app.command("list")
@api_command
def list_events(
    api: Api,
    active: Annotated[bool, typer.Option("--active", help="Leave cancelled events out.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """Events, soonest first, with how many orders each has in each status."""
    found: list[dict[str, Any]] = api.get("/events", include_cancelled=not active, limit=limit)
    if not found:
        out().print("no events")
        return
    table = Table(title=f"{len(found)} event(s)")
    for column in ("Event", "Name", "Starts", "Venue", *(s.capitalize() for s in _SHOWN), "Orders", "State"):
        table.add_column(column, justify="right" if column in (*(s.capitalize() for s in _SHOWN), "Orders") else "left")
    for e in found:
        counts = e["orders"]
        others = [s for s, n in counts.items() if n and s not in _SHOWN]
        table.add_row(
            e["id"], e["name"], e["starts_at"].replace("T", " ")[:16], e.get("venue") or "",
            *(str(counts.get(s, 0)) for s in _SHOWN), str(e["orders_total"]),
            "cancelled" if e["cancelled"] else "on sale" + (f" (+{', '.join(others)})" if others else ""),
        )
    out().print(table)
