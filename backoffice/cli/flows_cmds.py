"""What an agent reads of the long-running flows: buyers' signed links, open transfers, reservations due.

`ticketops orders transfer-link|transfer-show|return-link` (merged into `orders`) and
`ticketops reservations due`. They only read through the API; acting on a flow is in
`actions_cmds` (transfer, transfer-cancel, reserve, mark-paid, return, ...).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from backoffice.cli.client import Api, api_command, out, path

flow_reads = typer.Typer(add_completion=False)
reservations_app = typer.Typer(no_args_is_help=True, add_completion=False,
                               help="Reservations waiting for their payment.")

CodeArg = Annotated[str, typer.Argument(help="The order code.")]
TicketArg = Annotated[str, typer.Argument(help="The ticket id.")]


def _link(kind: str, link: dict[str, Any]) -> None:
    out().print(f"{kind} link, valid until {link['expires_at']}:")
    out().print(link["url"], soft_wrap=True)  # whole, so it can be copied into a message to the buyer


@flow_reads.command("transfer-link")
@api_command
def transfer_link(api: Api, code: CodeArg, ticket: TicketArg) -> None:
    """The holder's signed "manage your ticket" link (starts a transfer), valid until the event starts."""
    _link("Transfer", api.get(path("orders", code, "tickets", ticket, "transfer-link")))


@flow_reads.command("transfer-show")
@api_command
def transfer_show(api: Api, code: CodeArg, ticket: TicketArg) -> None:
    """The ticket's open transfer: its id, status and until when the recipient may accept."""
    t: dict[str, Any] = api.get(path("orders", code, "tickets", ticket, "transfer"))
    table = Table(show_header=False, box=None, padding=(0, 2), title=f"Transfer of ticket {t['ticket_id']}",
                  title_justify="left")
    for label, value in (("Order", t["order_code"]), ("Status", t["status"]), ("Expires", t.get("expires_at")),
                         ("Operation", t["transfer_id"]), ("New order", t.get("new_order_code")),
                         ("New ticket", t.get("new_ticket_id"))):
        if value:
            table.add_row(label, str(value))
    out().print(table)


@flow_reads.command("return-link")
@api_command
def return_link(api: Api, code: CodeArg) -> None:
    """The buyer's signed return link, valid for 30 days or until the event starts."""
    _link("Return", api.get(path("orders", code, "return-link")))


@reservations_app.command("due")
@api_command
def due(
    api: Api,
    within_hours: Annotated[float, typer.Option(min=0.01, max=24 * 365, help="Deadlines before now plus this.")] = 48,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """Running reservations whose payment deadline is within the given hours, soonest first."""
    found: list[dict[str, Any]] = api.get("/reservations", within_hours=within_hours, limit=limit)
    table = Table(title=f"{len(found)} reservation(s) due within {within_hours:g} h")
    for column in ("Order", "Deadline", "Operation"):
        table.add_column(column)
    for r in found:
        table.add_row(r["order_code"], r["deadline"], r["operation_id"])
    out().print(table)
