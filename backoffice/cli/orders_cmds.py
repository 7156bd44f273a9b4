"""`ticketops orders search|show|download`: what an agent reads before acting.

`show` prints the actions table with the reason of each disabled one, the
same reason the workflow would refuse with, so the agent knows why before
trying.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from backoffice.cli.client import Api, api_command, money, out, path

order_reads = typer.Typer(add_completion=False)


def _time(value: str | None) -> str:
    """ISO timestamps to `2026-11-01 12:00` (UTC as the API gives them); seconds add nothing here."""
    return value.replace("T", " ")[:16] if value else ""


def _data(data: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in data.items())
    return text if len(text) <= 100 else text[:97] + "..."


@order_reads.command("search")
@api_command
def search(
    api: Api,
    q: Annotated[str | None, typer.Argument(help="Any part of an email or name, an order code or a barcode.")] = None,
    event: Annotated[str | None, typer.Option("--event", "-e", help="Only this event's orders.")] = None,
    status: Annotated[str | None, typer.Option("--status", "-s", help="Only orders in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
) -> None:
    """Find orders by buyer, code or barcode, optionally within one event or status."""
    found: list[dict[str, Any]] = api.get("/orders", q=q, event=event, status=status, limit=limit)
    if not found:
        out().print("no orders found")
        return
    table = Table(title=f"{len(found)} order(s)")
    for column in ("Code", "Event", "Status", "Name", "Email", "Tickets", "Total", "Created"):
        table.add_column(column, justify="right" if column in ("Tickets", "Total") else "left")
    for o in found:
        table.add_row(
            o["code"], o["event_id"], o.get("display_status") or o["status"],
            o.get("contact_name") or "", o.get("contact_email") or "",
            str(o["tickets"]), money(o["total"]), _time(o["created_at"]),
        )
    out().print(table)


def _tickets_table(tickets: list[dict[str, Any]]) -> Table:
    table = Table(title="Tickets")
    for column in ("Ticket", "Barcode", "Type", "Slot", "Price", "Status", "Scan", "Last scan", "Holder"):
        table.add_column(column)
    for t in tickets:
        status = t["status"] if t["status"] == "valid" else f"[red]invalid: {t.get('invalid_reason') or ''}[/]"
        if t.get("replaced_by"):
            status += f" -> {t['replaced_by']}"
        last = t.get("last_scan")
        last_text = f"{_time(last['at'])} {last['result']}" if last else ""
        holder = (t.get("personalisation") or {}).get("name") or ("[yellow]needed[/]" if t.get(
            "requires_personalisation") else "")
        table.add_row(
            t["id"], t["barcode"], t["ticket_type"], t.get("time_slot") or "", money(t["price"]), status,
            t["scan_state"], last_text, holder,
        )
    return table


def _actions_table(actions: list[dict[str, Any]]) -> Table:
    table = Table(title="Actions")
    table.add_column("Action")
    table.add_column("Available")
    table.add_column("Why not")
    for a in actions:
        why = f"{a.get('reason_type')}: {a.get('reason')}" if not a["enabled"] else ""
        table.add_row(a["name"], "[green]yes[/]" if a["enabled"] else "[red]no[/]", why)
    return table


@order_reads.command("show")
@api_command
def show(api: Api, code: Annotated[str, typer.Argument(help="The order code.")]) -> None:
    """The order: header, contact, totals, tickets, history, comments, and which actions it offers."""
    o: dict[str, Any] = api.get(path("orders", code))
    console = out()
    event, contact, payment, totals = o["event"], o["contact"], o["payment"], o["totals"]
    head = Table(show_header=False, box=None, padding=(0, 2), title=f"Order {o['code']}", title_justify="left")
    head.add_row("Status", f"[bold]{o.get('display_status') or o['status']}[/]")
    head.add_row("Event", f"{event['name']} ({event['id']}), {_time(event['starts_at'])}")
    head.add_row("Created", _time(o["created_at"]))
    head.add_row("Contact", " | ".join(
        x for x in (contact.get("name"), contact.get("email"), contact.get("mobile")) if x
    ) + (" (verified account)" if contact.get("verified") else ""))
    dispute = " [red]dispute open[/]" if payment.get("dispute_open") else ""
    head.add_row("Payment", f"{payment['method']} via {payment['processor']}, {payment['status']}, "
                            f"{money(payment['amount'])}{dispute}")
    head.add_row("Totals", f"paid {money(totals['paid'])}, refunded {money(totals['refunded'])}, "
                           f"pending refund {money(totals['pending_refund'])}, "
                           f"non-refundable fees {money(totals['non_refundable_fees'])}, "
                           f"refundable {money(totals['refundable'])}")
    console.print(head)
    console.print(_tickets_table(o["tickets"]))
    history = Table(title="History")
    for column in ("When", "What", "Who", "Details"):
        history.add_column(column)
    for h in o["history"]:
        history.add_row(_time(h["at"]), h["type"], h["actor"], _data(h.get("data") or {}))
    console.print(history)
    if o.get("comments"):
        comments = Table(title="Comments")
        for column in ("When", "Scope", "Author", "Text"):
            comments.add_column(column)
        for c in o["comments"]:
            comments.add_row(_time(c["at"]), c["scope"], c["author"], c["text"])
        console.print(comments)
    console.print(_actions_table(o["actions"]))


@order_reads.command("download")
@api_command
def download(
    api: Api,
    code: Annotated[str, typer.Argument(help="The order code.")],
    receipt: Annotated[bool, typer.Option("--receipt", help="The payment receipt instead of the tickets.")] = False,
    ticket: Annotated[str | None, typer.Option("--ticket", "-t", help="One ticket only.")] = None,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="File to write; `-` for stdout.")] = None,
) -> None:
    """Download the tickets (or the receipt) as PDF; the download is recorded in the order's history."""
    url = path("orders", code, "receipt.pdf" if receipt else "tickets.pdf")
    resp = api.send("GET", url, params={"ticket_id": None if receipt else ticket})
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(resp.content)
        return
    disposition = resp.headers.get("content-disposition", "")
    suggested = Path(disposition.partition('filename="')[2].rstrip('"')).name  # never a path from the server
    target = output or Path(suggested or f"{code}.pdf")
    target.write_bytes(resp.content)
    out().print(f"wrote {target} ({len(resp.content)} bytes)")
