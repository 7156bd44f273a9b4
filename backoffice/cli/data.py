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
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from devtools.demo_data import DemoReport, seed_demo
from runtime.settings import get_settings
from ticketing.importing import ImportFailed, ImportReport, parse_file
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
    actor: Annotated[
        str | None, typer.Option(help="Recorded in each order's history [default: cli:<user>].")
    ] = None,
) -> None:
    """Import orders; a file with any error imports nothing and lists every error (exit 2).

    The columns are described in `ticketing/importing.py`.
    """
    who = actor or _default_actor()
    try:
        parsed = parse_file(file)
        report: ImportReport = _with_store(
            lambda store: import_orders(store, parsed, source=file.name, actor=who)
        )
    except ImportFailed as failed:
        err.print(f"[bold red]Nothing imported:[/] {len(failed.issues)} problem(s) in {file.name}")
        for issue in failed.issues:
            err.print(str(issue), markup=False, highlight=False, soft_wrap=True)
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
