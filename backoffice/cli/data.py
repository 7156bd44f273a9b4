"""`ticketops orders import FILE` and `ticketops demo seed`: data in, from a file or made up.

Both bring the schema to the newest version first, so they work on a fresh
database, then run one event loop. Errors of an import go to stderr, every one
of them, and the exit code is 2: scripts (and `make`) can tell a bad file from
a crash (1).
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from backoffice.cli.bulk_cmds import watch_bulk
from backoffice.cli.client import (
    DEFAULT_URL,
    EXIT_UNREACHABLE,
    ApiKeyOption,
    ApiUrlOption,
    CliFailure,
    IdempotencyOption,
    RoleOption,
    connect,
    fail,
    new_key,
    problem_failure,
)
from devtools.demo_data import DemoReport, seed_demo
from runtime.settings import get_settings
from ticketing.importing import ImportFailed, ImportIssue, ImportReport, parse_file
from ticketing.store.engine import Store
from ticketing.store.importing import import_orders
from ticketing.store.migrate import upgrade

T = TypeVar("T")
SHOWN_CODES = 20

orders_app = typer.Typer(no_args_is_help=True, add_completion=False)
demo_app = typer.Typer(no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)


@orders_app.callback()
def orders() -> None:
    """Orders: import them from a CSV or JSON file."""


@demo_app.callback()
def demo() -> None:
    """Demo data for a development machine."""


def _with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    url = get_settings().database_url

    async def main() -> T:
        await upgrade(url)
        store = Store(url)
        try:
            return await work(store)
        finally:
            await store.dispose()

    return asyncio.run(main())


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "cli"


@orders_app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="A .csv or .json file."),
    ],
    deliver: Annotated[bool, typer.Option("--deliver", help="Email each order's tickets (API only).")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the import until it ends.")] = False,
    direct: Annotated[
        bool, typer.Option("--direct", help="Write straight to the database (TICKETOPS_DATABASE_URL), in one "
                                             "transaction, without the API; for a stack that is not running.")
    ] = False,
    actor: Annotated[
        str | None, typer.Option(help="--direct only: recorded in each order's history [default: cli:<user>].")
    ] = None,
    idempotency_key: IdempotencyOption = None,
    api_url: ApiUrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    role: RoleOption = None,
) -> None:
    """Import orders through `POST /imports`; a file with any error imports nothing and lists every error (exit 2).

    The API stages the checked file and the ImportOrders workflow writes it in batches
    (`ticketops bulk show BULK_ID --follow`). The columns are described in `ticketing/importing.py`.
    """
    if direct:
        _import_direct(file, actor or _default_actor())
        return
    suffix = file.suffix.lower()
    kind = {".csv": "text/csv", ".json": "application/json"}.get(suffix)
    if kind is None:
        _print_issues(file.name, ["file: expected a .csv or .json file"])
        raise typer.Exit(2)
    key = idempotency_key or new_key()
    try:
        with connect(api_url, api_key, role) as api, file.open("rb") as content:
            resp = api.http.post(  # sent as it is read, 64 KiB at a time
                "/imports", content=content, params={"deliver": deliver, "filename": file.name},
                headers={"Content-Type": kind, "Idempotency-Key": key},
            )
            body: Any = resp.json() if resp.content else {}
            if resp.status_code == 422 and isinstance(body, dict) and body.get("issues") is not None:
                _print_issues(file.name, [str(ImportIssue(e["message"], e.get("row"), e.get("field")))
                                          for e in body["issues"]], body.get("issues_total"))
                raise typer.Exit(2)
            if resp.status_code >= 400:
                raise problem_failure(resp.status_code, body)
            out.print(f"importing {body['orders']} order(s), {body['tickets']} ticket(s) from {file.name}: "
                      f"bulk [bold]{body['bulk_id']}[/] (operation {body['operation_id']}, Idempotency-Key {key})")
            if wait:
                watch_bulk(api, body["bulk_id"])
            else:
                out.print(f"  follow it: ticketops bulk show {body['bulk_id']} --follow")
    except CliFailure as failure:
        raise fail(failure) from None
    except httpx.TransportError:
        raise fail(CliFailure(f"cannot reach the API at {api_url}; is it running? (or use --direct)",
                              EXIT_UNREACHABLE, label="unreachable")) from None


def _print_issues(name: str, issues: list[str], total: int | None = None) -> None:
    total = len(issues) if total is None else total
    err.print(f"[bold red]Nothing imported:[/] {total} problem(s) in {name}")
    for issue in issues:
        err.print(issue, markup=False, highlight=False, soft_wrap=True)
    if total > len(issues):
        err.print(f"... and {total - len(issues)} more", markup=False, highlight=False)


def _import_direct(file: Path, who: str) -> None:
    try:
        parsed = parse_file(file)
        report: ImportReport = _with_store(
            lambda store: import_orders(store, parsed, source=file.name, actor=who)
        )
    except ImportFailed as failed:
        _print_issues(file.name, [str(issue) for issue in failed.issues])
        raise typer.Exit(2) from None
    table = Table(title=f"Imported {file.name}", show_header=False)
    table.add_row("Orders", str(report.orders))
    table.add_row("Tickets", str(report.tickets))
    codes = ", ".join(report.codes[:SHOWN_CODES])
    if len(report.codes) > SHOWN_CODES:
        codes += f" and {len(report.codes) - SHOWN_CODES} more"
    table.add_row("Codes", codes)
    out.print(table)


@demo_app.command("seed")
def seed(
    orders: Annotated[int, typer.Option(min=1, help="About how many orders to create.")] = 200,
    stripe: Annotated[
        bool,
        typer.Option(
            help="Create card and wallet payments as PaymentIntents on the configured Stripe "
            "(TICKETOPS_STRIPE__BASE_URL); --no-stripe uses made-up pi_demo_<n> references."
        ),
    ] = True,
) -> None:
    """Seed an empty database with demo events and orders; a database with events is left alone."""
    import stripe as stripe_sdk  # here, not at the top: the import costs every other command time

    from devtools.demo_payments import stripe_payment_creator  # the same payments as `ticketops dev`

    payments = stripe_payment_creator(get_settings()) if stripe else None
    try:
        report: DemoReport = _with_store(
            lambda store: seed_demo(store, orders=orders, create_payment=payments)
        )
    except stripe_sdk.StripeError as exc:
        err.print(f"[bold red]Stripe refused or is unreachable:[/] {exc}", soft_wrap=True)
        err.print("Start it (make dev) or seed with --no-stripe. Nothing was seeded.")
        raise typer.Exit(1) from None
    if not report.seeded:
        out.print(report.message.capitalize() + ".")
        return
    table = Table(title=report.message.capitalize())
    table.add_column("")
    table.add_column("Count", justify="right")
    for label, value in [
        ("Events", report.events),
        ("Orders", report.orders),
        ("Tickets", report.tickets),
        *((f"  payment method {k}", v) for k, v in sorted(report.by_method.items())),
        *((f"  status {k}", v) for k, v in sorted(report.by_status.items())),
        ("Tickets scanned", report.scanned),
        ("Tickets personalised", report.personalised),
    ]:
        table.add_row(label, str(value))
    out.print(table)
