"""`ticketops reconcile run|backfill|runs|show|items`: finance's side of reconciliation, through the API.

`run` without a window triggers the processor's schedule (the window the nightly
run would reconcile now); `run --from --to` reconciles exactly that window;
`backfill --from --to` runs every whole window in between, one after another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from backoffice.cli.client import Api, CliFailure, IdempotencyOption, WaitOption, api_command, new_key, out, path
from backoffice.cli.operations_cmds import follow, show_outcome

reconcile_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Reconciliation of the ledger against the processor."
)

ProcessorOption = Annotated[str, typer.Option("--processor", "-p", help="Whose records: stripe.")]
FromOption = Annotated[
    str | None, typer.Option("--from", show_default=False, help="Start, ISO 8601 (a date means 00:00 UTC).")
]
ToOption = Annotated[
    str | None, typer.Option("--to", show_default=False, help="End (exclusive), ISO 8601 (a date means 00:00 UTC).")
]


def _instant(value: str, option: str) -> str:
    """`2026-12-01` or a full timestamp; a time without a zone is refused rather than guessed."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliFailure(f"{option} {value!r} is not a date or an ISO 8601 time", label="usage") from None
    if len(text) == 10:
        return parsed.strftime("%Y-%m-%dT00:00:00+00:00")
    if parsed.tzinfo is None:
        raise CliFailure(f"{option} {value!r} needs a time zone, e.g. {text}Z", label="usage")
    return parsed.isoformat()


def _print_started(accepted: dict[str, Any], key: str) -> None:
    how = {"trigger": "triggered the schedule", "start": "started", "backfill": "backfill through the schedule"}
    out().print(f"{how.get(accepted['how'], accepted['how'])} for {accepted['processor']} (idempotency key {key})")
    for window in accepted.get("windows") or []:
        out().print(f"  window {window['start'][:16]} .. {window['end'][:16]}")
    for operation_id in accepted.get("operation_ids") or []:
        out().print(f"  run {operation_id}")


@reconcile_app.command("run")
@api_command
def run(
    api: Api,
    processor: ProcessorOption = "stripe",
    start: FromOption = None,
    end: ToOption = None,
    wait: WaitOption = False,
    idempotency_key: IdempotencyOption = None,
) -> None:
    """Reconcile now: the schedule's window of now, or exactly --from .. --to."""
    if (start is None) != (end is None):
        raise CliFailure("give both --from and --to, or neither", label="usage")
    body: dict[str, Any] = {"processor": processor}
    if start is not None and end is not None:
        body["window"] = {"start": _instant(start, "--from"), "end": _instant(end, "--to")}
    key = idempotency_key or new_key()
    accepted = api.post("/reconciliation/runs", body, idempotency_key=key)
    _print_started(accepted, key)
    if wait:
        for operation_id in accepted.get("operation_ids") or []:
            show_outcome(follow(api, operation_id))


@reconcile_app.command("backfill")
@api_command
def backfill(
    api: Api,
    start: Annotated[str, typer.Option("--from", help="Start, ISO 8601 (a date means 00:00 UTC).")],
    end: Annotated[str, typer.Option("--to", help="End (exclusive), ISO 8601 (a date means 00:00 UTC).")],
    processor: ProcessorOption = "stripe",
    idempotency_key: IdempotencyOption = None,
) -> None:
    """One run per whole window from --from to --to, one after another."""
    key = idempotency_key or new_key()
    body = {"processor": processor, "start": _instant(start, "--from"), "end": _instant(end, "--to")}
    _print_started(api.post("/reconciliation/backfill", body, idempotency_key=key), key)


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    return table


__all__ = ["path", "reconcile_app"]
