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

from backoffice.cli.client import (
    Api,
    CliFailure,
    IdempotencyOption,
    WaitOption,
    api_command,
    money,
    new_key,
    out,
    path,
)
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
        table.add_column(column, justify="right" if column in ("Amount", "Open", "Healed", "Found") else "left")
    return table


def _window(window: dict[str, Any]) -> str:
    return f"{window['start'][:16].replace('T', ' ')} .. {window['end'][:16].replace('T', ' ')}"


def _run_path(run_id: str, *rest: str) -> str:
    """The run id's slashes are part of the route (`reconcile/stripe/<window>`)."""
    return path("reconciliation", "runs", *run_id.split("/"), *rest)


@reconcile_app.command("runs")
@api_command
def runs(
    api: Api,
    processor: Annotated[str | None, typer.Option("--processor", "-p", help="Only this processor's runs.")] = None,
    status: Annotated[str | None, typer.Option(help="running, completed or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Runs, newest window first."""
    found = api.get("/reconciliation/runs", processor=processor, status=status, limit=limit)
    table = _table(f"{len(found)} run(s)", ("Run", "Window", "Status", "Found", "Healed", "Open", "Difference"))
    for r in found:
        diffs = ", ".join(t["difference"]["display"] for t in r["totals"] if t["difference"]["amount"]) or "none"
        table.add_row(
            r["id"], _window(r["window"]), r["status"], str(sum(r["counts"].values())), str(r["healed"]),
            str(r["open_items"]), diffs,
        )
    out().print(table)


@reconcile_app.command("show")
@api_command
def show(api: Api, run_id: Annotated[str, typer.Argument(help="The run id (reconcile/stripe/<window>).")]) -> None:
    """One run: window, totals per currency, what it found by class, where its report is."""
    r = api.get(_run_path(run_id))
    table = Table(show_header=False, box=None, padding=(0, 2), title=f"Run {r['id']}", title_justify="left")
    table.add_row("Window", _window(r["window"]))
    dry = " (dry run)" if r["dry_run"] else ""
    table.add_row("Status", f"[bold]{r['status']}[/]{dry}, pass {r['passes']}")
    table.add_row("Read", ", ".join(f"{k} {v}" for k, v in sorted(r["staged"].items())) or "nothing")
    for t in r["totals"]:
        table.add_row(
            f"Totals {t['currency']}",
            f"processor {t['processor']['display']}, ledger {t['ledger']['display']}, "
            f"difference {t['difference']['display']}",
        )
    for kind, count in sorted(r["counts"].items()):
        table.add_row("Found", f"{kind}: {count}")
    table.add_row("Healed / resolved", f"{r['healed']} / {r['resolved']}")
    table.add_row("Open items", str(r["open_items"]))
    if r.get("error"):
        table.add_row("Error", r["error"])
    for kind, url in sorted(r["reports"].items()):
        table.add_row(f"Report {kind}", url)
    out().print(table)


@reconcile_app.command("report")
@api_command
def report(
    api: Api,
    run_id: Annotated[str, typer.Argument(help="The run id (reconcile/stripe/<window>).")],
    as_json: Annotated[bool, typer.Option("--json", help="The JSON summary instead of the CSV.")] = False,
) -> None:
    """Print a run's report (CSV, one row per item) or its JSON summary, for a file or a spreadsheet."""
    resp = api.send("GET", _run_path(run_id, "report.json" if as_json else "report.csv"))
    typer.echo(resp.text, nl=False)


items_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Finance's queue of reconciliation items.")
reconcile_app.add_typer(items_app, name="items")


def _items_table(found: list[dict[str, Any]]) -> Table:
    columns = ("Item", "Class", "Severity", "State", "Order", "Refund", "Processor", "Amount", "Suggested")
    table = _table(f"{len(found)} item(s)", columns)
    for i in found:
        table.add_row(
            i["id"], i["kind"], i["severity"], i["state"], i.get("order_code") or "", i.get("refund_id") or "",
            i.get("processor_refund_id") or "", money(i.get("amount")), i["suggested_action"],
        )
    return table


@items_app.command("list")
@api_command
def list_items(
    api: Api,
    state: Annotated[str | None, typer.Option(help="open, acknowledged or resolved ('' for all).")] = "open",
    kind: Annotated[str | None, typer.Option("--class", help="A discrepancy class, e.g. status-mismatch.")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Items last seen by this run.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """The queue, most severe first (open items by default)."""
    found = api.get("/reconciliation/items", state=state or None, **{"class": kind}, run=run_id, limit=limit)
    out().print(_items_table(found))


ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why; recorded with your name.")]
ItemArg = Annotated[str, typer.Argument(help="The item id (ri_...).")]


def _evidence(side: dict[str, Any] | None) -> str:
    if not side:
        return ""
    return ", ".join(f"{k} {v}" for k, v in side.items() if v is not None and not isinstance(v, dict | list))


def _print_item(i: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2), title=f"Item {i['id']}", title_justify="left")
    rows = [
        ("Class", f"{i['kind']} ({i['severity']})"),
        ("State", f"[bold]{i['state']}[/]" + (f" by {i['actor']}: {i['reason']}" if i.get("actor") else "")),
        ("Order", i.get("order_code")),
        ("Refund", i.get("refund_id")),
        ("Processor refund", i.get("processor_refund_id")),
        ("Amount", money(i.get("amount"))),
        ("Ledger", _evidence(i.get("ledger"))),
        ("Processor", _evidence(i.get("processor_side"))),
        ("Suggested", i["suggested_action"]),
        ("Seen", f"first {i['first_seen_run']}, last {i['last_seen_run']}"),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, value)
    out().print(table)


@items_app.command("show")
@api_command
def show_item(api: Api, item_id: ItemArg) -> None:
    """One item with both sides' evidence."""
    _print_item(api.get(path("reconciliation", "items", item_id)))


@items_app.command("acknowledge")
@api_command
def acknowledge(api: Api, item_id: ItemArg, reason: ReasonOption) -> None:
    """Take an open item: someone is on it (the next runs still re-check it)."""
    _print_item(api.post(path("reconciliation", "items", item_id, "acknowledge"), {"reason": reason}))


@items_app.command("resolve")
@api_command
def resolve(api: Api, item_id: ItemArg, reason: ReasonOption) -> None:
    """Settle an item, with the reason (a later run that finds it again opens it again)."""
    _print_item(api.post(path("reconciliation", "items", item_id, "resolve"), {"reason": reason}))
