"""Order actions (`ticketops orders resend|cancel|reissue|transfer|...`) and the gate's `ticketops scan`.

Workflow actions print their operation id and follow it with `--wait`;
corrections (edits, comments, scan status) are answered at once and print
what changed. Each workflow action sends an Idempotency-Key, printed, so a
repeat with `--idempotency-key` returns the first run instead of acting twice.
"""

from __future__ import annotations

from enum import StrEnum
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
    new_key,
    out,
    path,
)
from backoffice.cli.operations_cmds import started

order_actions = typer.Typer(add_completion=False)
scan_app = typer.Typer(add_completion=False)

CodeArg = Annotated[str, typer.Argument(help="The order code.")]


class ScanStatus(StrEnum):
    UNSCANNED = "unscanned"
    SCANNED_IN = "scanned-in"
    SCANNED_OUT = "scanned-out"
    BLACKLISTED = "blacklisted"


def _act(
    api: Api, code: str, action: str, body: dict[str, Any] | None, key: str | None, wait: bool, **extra: Any
) -> dict[str, Any]:
    key = key or new_key()
    accepted: dict[str, Any] = api.post(path("orders", code, action), body, idempotency_key=key)
    started(api, accepted, wait=wait, key=key, **{k: accepted.get(v) for k, v in extra.items()})
    return accepted


@order_actions.command("resend")
@api_command
def resend(api: Api, code: CodeArg, wait: WaitOption = False, idempotency_key: IdempotencyOption = None) -> None:
    """Re-deliver the order's valid tickets to its contact email; nothing new is created."""
    _act(api, code, "resend", None, idempotency_key, wait)


@order_actions.command("cancel")
@api_command
def cancel(
    api: Api,
    code: CodeArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Recorded in the history; 3 characters or more.")],
    refund: Annotated[bool, typer.Option("--refund", help="Refund right after cancelling (finance role).")] = False,
    ticket: TicketsOption = None,
    wait: WaitOption = False,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Cancel the order, or some tickets where the event allows it; cancelling alone never refunds."""
    body = {"reason": reason, "refund": refund, "ticket_ids": ticket or None}
    _act(
        api, code, "cancel", body, idempotency_key, wait,
        tickets="tickets", refund="refund", refund_refusal="refund_refusal", refund_id="refund_id",
    )


@order_actions.command("reissue")
@api_command
def reissue(
    api: Api, code: CodeArg, ticket: TicketsOption = None, wait: WaitOption = False,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """New barcodes for the tickets (all valid ones when none are given), sent to the buyer; old ones stop working."""
    _act(api, code, "reissue", {"ticket_ids": ticket or None}, idempotency_key, wait, tickets="tickets")


@order_actions.command("reschedule")
@api_command
def reschedule(
    api: Api,
    code: CodeArg,
    slot: Annotated[str, typer.Option("--slot", "-s", help="The time slot id to move to.")],
    ticket: TicketsOption = None,
    wait: WaitOption = False,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Move tickets to another time slot of the same event (new barcodes, sent to the buyer)."""
    body = {"time_slot_id": slot, "ticket_ids": ticket or None}
    _act(api, code, "reschedule", body, idempotency_key, wait, tickets="tickets")


@order_actions.command("personalisation")
@api_command
def personalisation(
    api: Api, code: CodeArg, wait: WaitOption = False, idempotency_key: IdempotencyOption = None
) -> None:
    """Reset the personalisation of the order's personalised tickets and mail the booker a new link."""
    _act(api, code, "personalisation", None, idempotency_key, wait)


@order_actions.command("receipt")
@api_command
def receipt(api: Api, code: CodeArg, wait: WaitOption = False, idempotency_key: IdempotencyOption = None) -> None:
    """Email the payment receipt (PDF attached) to the order's contact."""
    _act(api, code, "receipt", None, idempotency_key, wait)


@order_actions.command("transfer")
@api_command
def transfer(
    api: Api,
    code: CodeArg,
    ticket: Annotated[str, typer.Argument(help="The ticket id.")],
    name: Annotated[str, typer.Option(help="The recipient's name.")],
    email: Annotated[str, typer.Option(help="The recipient's email; the accept link goes there.")],
    wait: WaitOption = False,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Offer a ticket to a new holder; it is theirs once they accept the emailed link in time."""
    key = idempotency_key or new_key()
    body = {"ticket_id": ticket, "name": name, "email": email}
    accepted: dict[str, Any] = api.post(path("orders", code, "transfers"), body, idempotency_key=key)
    started(api, accepted, wait=wait, key=key)


@order_actions.command("transfer-cancel")
@api_command
def transfer_cancel(
    api: Api,
    code: CodeArg,
    ticket: Annotated[str, typer.Argument(help="The ticket id.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Recorded in the history; 3 characters or more.")],
) -> None:
    """Cancel a ticket's open transfer; the ticket is valid again for its holder."""
    result = api.post(path("orders", code, "tickets", ticket, "transfer", "cancel"), {"reason": reason})
    out().print(f"transfer of ticket {result['ticket_id']} on order {result['order_code']}: {result['status']}")


@order_actions.command("reserve")
@api_command
def reserve(
    api: Api,
    code: CodeArg,
    days: Annotated[float | None, typer.Option(help="Days until the payment deadline [default: the setting].")] = None,
    deadline: Annotated[str | None, typer.Option(help="The deadline, ISO 8601 with a time zone.")] = None,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Hold a reserved order until its payment deadline; the buyer is reminded with the payment link."""
    key = idempotency_key or new_key()
    body = {k: v for k, v in {"days": days, "deadline": deadline}.items() if v is not None}
    accepted: dict[str, Any] = api.post(path("orders", code, "reservation"), body or None, idempotency_key=key)
    started(api, accepted, wait=False, key=key)


@order_actions.command("extend-deadline")
@api_command
def extend_deadline(
    api: Api,
    code: CodeArg,
    deadline: Annotated[str, typer.Argument(help="The new deadline, ISO 8601 with a time zone; later than now.")],
) -> None:
    """Move a reservation's payment deadline later."""
    result = api.post(path("orders", code, "reservation", "extend"), {"deadline": deadline})
    out().print(f"order {result['order_code']}: payment due {result['deadline']}")


@order_actions.command("mark-paid")
@api_command
def mark_paid(
    api: Api,
    code: CodeArg,
    reference: Annotated[str | None, typer.Option(help="The bank transfer's or invoice's id.")] = None,
) -> None:
    """Finance: the reservation's invoice is paid; the order becomes paid and its tickets are sent."""
    result = api.post(path("orders", code, "reservation", "paid"), {"reference": reference})
    out().print(f"order {result['order_code']}: {result['status']}")


@order_actions.command("return")
@api_command
def request_return(
    api: Api,
    code: CodeArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why the buyer returns it; 3 characters or more.")],
    wait: WaitOption = False,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Ask, for the buyer, to return the order; it shows return-requested until finance decides."""
    _act(api, code, "returns", {"reason": reason}, idempotency_key, wait)


@order_actions.command("return-approve")
@api_command
def return_approve(api: Api, code: CodeArg) -> None:
    """Finance: approve the return; a full refund runs with the event's policy, then the order is returned."""
    result = api.post(path("orders", code, "returns", "approve"), {})
    out().print(f"order {result['order_code']}: return approved, refund {result['refund_id']} "
                f"(operation {result['operation_id']})")


@order_actions.command("return-decline")
@api_command
def return_decline(
    api: Api,
    code: CodeArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Emailed to the buyer; 3 characters or more.")],
) -> None:
    """Decline the return; the buyer is told the reason and the order is paid again."""
    result = api.post(path("orders", code, "returns", "decline"), {"reason": reason})
    out().print(f"order {result['order_code']}: return declined")


def _edited(result: dict[str, Any]) -> None:
    changed = result.get("changed") or []
    message = f"changed {', '.join(changed)}" if changed else "nothing changed (the values were the same)"
    out().print(f"order {result['order_code']}: {message} (version {result['version']})")


def _fields(**values: str | None) -> dict[str, str]:
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise CliFailure(f"give at least one of {', '.join('--' + k for k in values)}", label="nothing-to-change")
    return given


@order_actions.command("edit-ticket")
@api_command
def edit_ticket(
    api: Api,
    code: CodeArg,
    ticket: Annotated[str, typer.Argument(help="The ticket id.")],
    name: Annotated[str | None, typer.Option(help="The holder's name.")] = None,
    email: Annotated[str | None, typer.Option(help="The holder's email.")] = None,
    phone: Annotated[str | None, typer.Option(help="The holder's phone.")] = None,
) -> None:
    """Overwrite one ticket's holder data; only the fields given change."""
    _edited(api.patch(path("orders", code, "tickets", ticket), _fields(name=name, email=email, phone=phone)))


@order_actions.command("edit-contact")
@api_command
def edit_contact(
    api: Api,
    code: CodeArg,
    name: Annotated[str | None, typer.Option(help="The booker's name.")] = None,
    email: Annotated[str | None, typer.Option(help="The booker's email (a verified account keeps its own).")] = None,
    mobile: Annotated[str | None, typer.Option(help="The booker's mobile number.")] = None,
) -> None:
    """Correct the main booker's name, email or mobile."""
    _edited(api.patch(path("orders", code, "contact"), _fields(name=name, email=email, mobile=mobile)))


@order_actions.command("comment")
@api_command
def comment(
    api: Api,
    code: CodeArg,
    text: Annotated[str, typer.Argument(help="The comment.")],
    buyer: Annotated[bool, typer.Option("--buyer", help="Show it on every order of this buyer.")] = False,
) -> None:
    """Add an internal comment to the order (or, with --buyer, to every order of its contact)."""
    body = {"scope": "buyer" if buyer else "purchase", "text": text}
    made = api.post(path("orders", code, "comments"), body)
    out().print(f"comment {made['id']} added ({made['scope']}) by {made['author']}")


@order_actions.command("scan-status")
@api_command
def scan_status(
    api: Api,
    code: CodeArg,
    status: Annotated[ScanStatus, typer.Argument(help="The scan status to set.")],
    ticket: Annotated[list[str], typer.Option("--ticket", "-t", help="A ticket id; repeat for more.")],
) -> None:
    """Set tickets unscanned, scanned in, scanned out or blacklisted; all of them or none."""
    result = api.post(path("orders", code, "tickets", "scan-status"), {"ticket_ids": ticket, "status": status.value})
    table = Table(title=f"Order {result['order_code']}: {len(result['changed'])} ticket(s) changed")
    for column in ("Ticket", "Status", "Scan state"):
        table.add_column(column)
    for t in result["tickets"]:
        valid = t["status"] if t["status"] == "valid" else f"invalid: {t.get('invalid_reason') or ''}"
        table.add_row(t["id"], valid, t["scan_state"])
    out().print(table)


@scan_app.command("scan")
@api_command
def scan(
    api: Api,
    barcode: Annotated[str, typer.Argument(help="The barcode as read at the gate.")],
    access_point: Annotated[str | None, typer.Option(help="Which gate or door.")] = None,
) -> None:
    """Admit or reject one barcode at the gate; a rejection prints its reason and exits 2."""
    outcome: dict[str, Any] = api.post("/scan", {"barcode": barcode, "access_point": access_point})
    where = " ".join(x for x in (outcome.get("order_code"), outcome.get("ticket_id")) if x)
    if outcome["result"] == "rejected":
        raise CliFailure(f"{outcome.get('reason') or 'rejected'} {where}".strip(),
                         label=f"rejected {outcome.get('reason_type') or ''}".strip())
    out().print(f"[bold green]{outcome['result']}[/] {where} ({outcome.get('scan_state') or ''})")
