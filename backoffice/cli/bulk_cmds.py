"""`ticketops bulk ...` and `ticketops event cancel`: start a bulk operation and watch it to the end.

The progress bar polls `GET /bulk/{id}` (the store's item counts, which
survive worker restarts and continue-as-new), so what it shows is what the
report will say. Ctrl-C stops watching, not the operation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from backoffice.cli.client import Api, CliFailure, IdempotencyOption, api_command, new_key, out, path

POLL_SECONDS = 0.5
ENDED = ("completed", "cancelled")

bulk_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Bulk operations over an event's orders.")
event_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Whole events.")

BulkIdArg = Annotated[str, typer.Argument(help="The bulk id (bk_...).")]
EventArg = Annotated[str, typer.Argument(help="The event id.")]
FollowOption = Annotated[bool, typer.Option("--follow/--no-follow", help="Show live progress until it ends.")]


def _counts(state: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(state["counts"].items()) if v) or "selecting"


def _done(state: dict[str, Any]) -> int:
    """Items no longer pending: what the report already knows the outcome of."""
    return int(state["total"]) - int(state["counts"].get("pending", 0))


def _summary(state: dict[str, Any]) -> None:
    console = out()
    table = Table(show_header=False, box=None, padding=(0, 2),
                  title=f"Bulk {state['bulk_id']} ({state['kind']}, event {state['event_id']})", title_justify="left")
    running = state.get("phase") and state["status"] not in ENDED
    table.add_row("Status", f"[bold]{state['status']}[/]" + (f" ({state['phase']})" if running else ""))
    table.add_row("Processed", f"{_done(state)} of {state['total']}")
    for status, count in sorted(state["counts"].items()):
        table.add_row(f"  {status}", str(count))
    table.add_row("Operation", state["operation_id"])
    if state.get("retry_of"):
        table.add_row("Retry of", state["retry_of"])
    console.print(table)
    failed = state["counts"].get("failed", 0) + state["counts"].get("refund-error", 0)
    if state["status"] in ENDED:
        if failed:
            console.print(f"[yellow]{failed} item(s) failed[/]: ticketops bulk retry-failed {state['bulk_id']}")
        if state.get("report_uri"):
            console.print(f"report: ticketops bulk report {state['bulk_id']} --out report.csv")


def watch_bulk(api: Api, bulk_id: str) -> dict[str, Any]:
    """A live bar (processed of total, counts by status) until the operation completes or is cancelled."""
    url = path("bulk", bulk_id)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn())
    with Progress(*columns, console=out()) as progress:
        task = progress.add_task("starting", total=None, counts="")
        while True:
            state: dict[str, Any] = api.get(url)
            phase = f" ({state['phase']})" if state.get("phase") and state["status"] not in ENDED else ""
            progress.update(task, description=f"{state['status']}{phase}", total=state["total"] or None,
                            completed=_done(state), counts=_counts(state))
            if state["status"] in ENDED:
                break
            time.sleep(POLL_SECONDS)
    _summary(state)
    return state


def _started(api: Api, accepted: dict[str, Any], key: str, follow: bool) -> None:
    out().print(f"started bulk [bold]{accepted['bulk_id']}[/] (operation {accepted['operation_id']}, "
                f"Idempotency-Key {key})")
    if follow:
        watch_bulk(api, accepted["bulk_id"])
    else:
        out().print(f"  follow it: ticketops bulk show {accepted['bulk_id']} --follow")


@bulk_app.command("deliver")
@api_command
def deliver(
    api: Api,
    event: EventArg,
    message: Annotated[bool, typer.Option("--message", help="Send --subject and --body, not the tickets.")] = False,
    subject: Annotated[str | None, typer.Option(help="The message's subject.")] = None,
    body: Annotated[str | None, typer.Option(help="The message's text.")] = None,
    slot: Annotated[str | None, typer.Option("--slot", "-s", help="Only this time slot's orders.")] = None,
    unscanned_only: Annotated[bool, typer.Option(help="Only orders with unscanned tickets.")] = False,
    attendees: Annotated[bool, typer.Option("--attendees", help="Personalised holders instead of buyers.")] = False,
    at: Annotated[str | None, typer.Option("--at", help="Send later: ISO 8601 with a time zone.")] = None,
    follow: FollowOption = True,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Tickets, or a message, to every buyer (or attendee) of the event; one email per address."""
    if (subject or body) and not message:
        message = True
    payload = {
        "template": "message" if message else "tickets", "subject": subject, "body": body, "time_slot_id": slot,
        "unscanned_only": unscanned_only, "audience": "attendees" if attendees else "buyers", "scheduled_at": at,
    }
    key = idempotency_key or new_key()
    accepted = api.post(path("events", event, "deliveries"), {k: v for k, v in payload.items() if v is not None},
                        idempotency_key=key)
    _started(api, accepted, key, follow)


@event_app.command("cancel")
@api_command
def cancel_event(
    api: Api,
    event: EventArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Told to buyers and recorded on every order.")],
    keep_service_fees: Annotated[bool, typer.Option(help="Refund everything but the service fees.")] = False,
    percent: Annotated[int | None, typer.Option(min=1, max=100, help="Refund this percentage.")] = None,
    slot: Annotated[str | None, typer.Option("--slot", "-s", help="Only this time slot.")] = None,
    notify: Annotated[bool, typer.Option("--notify/--no-notify", help="Email every buyer first.")] = True,
    follow: FollowOption = True,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Cancel every order of the event (or one slot) and refund it, at the processor's pace."""
    if keep_service_fees and percent is not None:
        raise CliFailure("choose --keep-service-fees or --percent, not both", label="usage")
    plan: dict[str, Any] = {"mode": "full"}
    if keep_service_fees:
        plan = {"mode": "keep-service-fees"}
    elif percent is not None:
        plan = {"mode": "percent", "percent": percent}
    payload = {"reason": reason, "refund": plan, "notify": notify, "time_slot_id": slot}
    key = idempotency_key or new_key()
    accepted = api.post(path("events", event, "cancel"), payload, idempotency_key=key)
    _started(api, accepted, key, follow)


@bulk_app.command("show")
@api_command
def show(api: Api, bulk_id: BulkIdArg, follow: Annotated[bool, typer.Option("--follow")] = False) -> None:
    """The operation's status and counts by item status; --follow shows live progress until it ends."""
    if follow:
        watch_bulk(api, bulk_id)
    else:
        _summary(api.get(path("bulk", bulk_id)))


@bulk_app.command("pause")
@api_command
def pause(api: Api, bulk_id: BulkIdArg) -> None:
    """Batches in flight finish; no new batch starts until resumed."""
    _summary(api.post(path("bulk", bulk_id, "pause")))


@bulk_app.command("resume")
@api_command
def resume(api: Api, bulk_id: BulkIdArg) -> None:
    """Carry on after a pause."""
    _summary(api.post(path("bulk", bulk_id, "resume")))


@bulk_app.command("cancel")
@api_command
def cancel(api: Api, bulk_id: BulkIdArg) -> None:
    """Stop; items not reached are reported as skipped."""
    _summary(api.post(path("bulk", bulk_id, "cancel")))


@bulk_app.command("retry-failed")
@api_command
def retry_failed(
    api: Api, bulk_id: BulkIdArg, follow: FollowOption = True, idempotency_key: IdempotencyOption = None
) -> None:
    """A new run over only the items that failed (emails) or ended in refund-error (cancellations)."""
    key = idempotency_key or new_key()
    _started(api, api.post(path("bulk", bulk_id, "retry-failed"), idempotency_key=key), key, follow)


@bulk_app.command("report")
@api_command
def report(
    api: Api,
    bulk_id: BulkIdArg,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Write the CSV here instead of stdout.")] = None,
) -> None:
    """The CSV report: every item with its outcome and reason (names recipients: admin only)."""
    data = api.send("GET", path("bulk", bulk_id, "report.csv")).content
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    output.write_bytes(data)
    lines = max(data.count(b"\n") - 1, 0)
    out().print(f"wrote {output} ({lines} item(s))")
