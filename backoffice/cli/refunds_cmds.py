"""`ticketops refunds ...`: preview, request (confirming the quote), list, show, and finance's actions.

`request` always previews first and sends the quote's hash back, so the
refund executed is the one the agent saw; if the order changed in between the
API refuses with `quote-mismatch` and nothing is paid.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from backoffice.cli.client import (
    Api,
    CliFailure,
    IdempotencyOption,
    TicketsOption,
    WaitOption,
    api_command,
    money,
    new_key,
    out,
    path,
    to_minor,
)
from backoffice.cli.operations_cmds import Settled, started

refunds_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Refunds: preview, request, follow up.")

CodeArg = Annotated[str, typer.Argument(help="The order code.")]
RefundIdArg = Annotated[str, typer.Argument(help="The refund id (rf_...).")]
FullOption = Annotated[bool, typer.Option("--full", help="Everything refundable on the order.")]
AmountOption = Annotated[
    str | None, typer.Option("--amount", help="A goodwill amount in the order's currency, e.g. 12.50; tickets stay.")
]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why; recorded and shown to finance.")]
WAITING_FOR_FINANCE = ("awaiting-manual", "awaiting-approval", "refund-error")


def _body(
    api: Api, code: str, full: bool, tickets: list[str] | None, amount: str | None, reason: str
) -> dict[str, Any]:
    """Exactly one of --full, --ticket, --amount; an amount is converted in the order's own currency."""
    if sum((full, bool(tickets), amount is not None)) != 1:
        raise CliFailure("choose one of --full, --ticket T (repeatable) or --amount 12.50", label="usage")
    if full:
        return {"kind": "full", "reason": reason}
    if tickets:
        return {"kind": "tickets", "reason": reason, "ticket_ids": tickets}
    assert amount is not None
    currency = api.get(path("orders", code))["payment"]["amount"]["currency"]
    return {"kind": "amount", "reason": reason, "amount": {"amount": to_minor(amount, currency), "currency": currency}}


def _print_quote(quote: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2),
                  title=f"Refund quote for order {quote['order_code']}", title_justify="left")
    table.add_row("Refund", f"[bold]{money(quote['amount'])}[/] ({quote['kind']})")
    for t in quote["tickets"]:
        table.add_row("", f"ticket {t['ticket_id']}: {money(t['amount'])}")
    for i, k in enumerate(quote.get("kept") or []):
        line = f"ticket {k['ticket_id']}: {money(k['amount'])} ({k['reason_type']})"
        table.add_row("" if i else "Not refunded", line)
    table.add_row("Fees kept", money(quote["fees_kept"]))
    table.add_row("Tickets invalidated", ", ".join(quote["tickets_invalidated"]) or "none")
    how = "automatic" if quote["automatic"] else "manual: finance pays it and marks it refunded"
    table.add_row("Processor", f"{quote['processor']} ({how})")
    if quote["needs_approval"]:
        table.add_row("Approval", "[yellow]needed: another finance user approves it[/]")
    out().print(table)


@refunds_app.command("preview")
@api_command
def preview(
    api: Api, code: CodeArg, reason: ReasonOption, full: FullOption = False, ticket: TicketsOption = None,
    amount: AmountOption = None,
) -> None:
    """Price a refund without starting it."""
    body = _body(api, code, full, ticket, amount, reason)
    _print_quote(api.post(path("orders", code, "refunds", "preview"), body))


@refunds_app.command("request")
@api_command
def request(
    api: Api,
    code: CodeArg,
    reason: ReasonOption,
    full: FullOption = False,
    ticket: TicketsOption = None,
    amount: AmountOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; confirm the quote as previewed.")] = False,
    wait: WaitOption = False,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Preview, show the quote, ask to confirm (unless --yes), then start the refund exactly as quoted."""
    body = _body(api, code, full, ticket, amount, reason)
    quote = api.post(path("orders", code, "refunds", "preview"), body)
    _print_quote(quote)
    if not yes and not _confirmed(f"Refund {money(quote['amount'])}?"):
        out().print("not confirmed; nothing was requested")
        return
    key = idempotency_key or new_key()
    accepted = api.post(path("orders", code, "refunds"), {**body, "quote_hash": quote["quote_hash"]},
                        idempotency_key=key)
    refund_id = str(accepted["refund_id"])
    started(api, accepted, wait=wait, key=key, settled=_handed_to_finance(api, refund_id), refund_id=refund_id)


def _handed_to_finance(api: Api, refund_id: str) -> Settled:
    """`--wait` ends when the refund waits for finance (days, maybe): the agent's part is done then."""

    def check() -> str | None:
        refund = api.get(path("refunds", refund_id))
        if refund["status"] == "refund-error":
            raise CliFailure(f"{refund.get('failure_reason') or 'the processor refused'}; finance can retry it "
                             f"(ticketops refunds retry {refund_id})", label="refund-error")
        if refund["status"] in WAITING_FOR_FINANCE:
            return f"refund {refund_id} is {refund['status']}: {refund.get('waiting_for') or 'finance acts next'}"
        return None

    return check


def _confirmed(question: str) -> bool:
    """No answer (end of input, Ctrl-C at the prompt) is a no, never a traceback."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        return False


def _refunds_table(refunds: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(refunds)} refund(s)")
    columns = ("Refund", "Order", "Kind", "Status", "Amount", "Processor", "Try", "Failure", "Waiting for",
               "Requested by", "Created")
    for column in columns:
        table.add_column(column, justify="right" if column in ("Amount", "Try") else "left")
    for r in refunds:
        table.add_row(
            r["id"], r["order_code"], r["kind"], r["status"], money(r["amount"]), r["processor"], str(r["attempt"]),
            r.get("failure_reason") or "", r.get("waiting_for") or "", r["requested_by"],
            r["created_at"].replace("T", " ")[:16],
        )
    return table


@refunds_app.command("list")
@api_command
def list_refunds(
    api: Api,
    status: Annotated[str | None, typer.Option(help="e.g. refund-error, awaiting-manual, awaiting-approval.")] = None,
    event: Annotated[str | None, typer.Option("--event", "-e", help="Only this event's refunds.")] = None,
    order: Annotated[str | None, typer.Option(help="Only this order's refunds.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """Refunds, newest first, filtered by status, event or order."""
    out().print(_refunds_table(api.get("/refunds", status=status, event=event, order=order, limit=limit)))


def _print_refund(r: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2), title=f"Refund {r['id']}", title_justify="left")
    rows = [
        ("Status", f"[bold]{r['status']}[/]"),
        ("Waiting for", r.get("waiting_for")),
        ("Order", r["order_code"]),
        ("Amount", f"{money(r['amount'])} ({r['kind']}), fees kept {money(r['fees_kept'])}"),
        ("Tickets", ", ".join(r["ticket_ids"])),
        ("Reason", r["reason"]),
        ("Processor", f"{r['processor']} {r.get('processor_refund_id') or ''}, attempt {r['attempt']}"),
        ("Failure", r.get("failure_reason")),
        ("Manual reference", r.get("manual_reference")),
        ("Requested by", r["requested_by"]),
        ("Approved by", r.get("approved_by")),
        ("Confirmed by", r.get("confirmed_by")),
        ("Operation", r["operation_id"]),
        ("Updated", r["updated_at"].replace("T", " ")[:19]),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, value)
    out().print(table)


@refunds_app.command("show")
@api_command
def show(api: Api, refund_id: RefundIdArg) -> None:
    """One refund: status, what it waits for, amounts, who did what."""
    _print_refund(api.get(path("refunds", refund_id)))


@refunds_app.command("retry")
@api_command
def retry(api: Api, refund_id: RefundIdArg) -> None:
    """A new processor attempt (with a new idempotency key) for a refund in refund-error.

    If the processor paid an earlier attempt after all (or may still), that refund is adopted and
    nothing is paid again."""
    _print_refund(api.post(path("refunds", refund_id, "retry")))


@refunds_app.command("mark-refunded")
@api_command
def mark_refunded(
    api: Api,
    refund_id: RefundIdArg,
    reference: Annotated[str, typer.Option("--reference", help="The payout's bank or voucher reference.")],
) -> None:
    """Finance paid the customer outside the processor; record the reference."""
    _print_refund(api.post(path("refunds", refund_id, "mark-refunded"), {"reference": reference}))


@refunds_app.command("approve")
@api_command
def approve(api: Api, refund_id: RefundIdArg) -> None:
    """Four eyes: approve a refund above the threshold (not the one who requested it)."""
    _print_refund(api.post(path("refunds", refund_id, "approve")))
