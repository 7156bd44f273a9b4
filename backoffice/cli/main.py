"""`ticketops`: run the stack, the worker, the API, and the data commands.

Every command ends the process with `os._exit`, because the temporalio core
can crash at interpreter exit after correct work.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from backoffice.cli.actions_cmds import order_actions, scan_app
from backoffice.cli.bulk_cmds import bulk_app, event_app
from backoffice.cli.data import demo_app, orders_app
from backoffice.cli.keys import keys_app
from backoffice.cli.operations_cmds import operations_app
from backoffice.cli.orders_cmds import order_reads
from backoffice.cli.reconcile_cmds import reconcile_app
from backoffice.cli.refunds_cmds import refunds_app
from backoffice.cli.schedules_cmds import schedules_app

app = typer.Typer(no_args_is_help=True, help="ticketops: order operations as durable workflows.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(schedules_app, name="schedules")


@app.command()
def dev(
    fresh: Annotated[bool, typer.Option(help="Wipe var/ first: new database, mail and Temporal history.")] = False,
) -> None:
    """Run the whole local stack: Temporal dev server, Stripe and SMTP stand-ins, worker, API, demo data."""
    from devtools.stack import run_stack

    raise typer.Exit(run_stack(fresh=fresh))


@app.command()
def worker() -> None:
    """Run a worker on the orders, payments and email task queues."""
    from workers.main import main as worker_main

    worker_main()


@app.command()
def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the backoffice API."""
    import uvicorn

    from backoffice.api.server import build_app
    from runtime.logging import configure_logging
    from runtime.settings import get_settings

    settings = get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    uvicorn.run(build_app(settings), host=host, port=port, log_level="warning")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database to the newest schema."""
    from runtime.settings import get_settings
    from ticketing.store.migrate import upgrade_sync

    upgrade_sync(get_settings().database_url)
    typer.echo("database is at the newest schema")


# The agent commands talk to the API (backoffice/cli/client.py); `orders` merges them with `orders import`.
orders_app.add_typer(order_reads)
orders_app.add_typer(order_actions)
app.add_typer(orders_app, name="orders", help="Find, show, act on and import orders.")
app.add_typer(refunds_app, name="refunds")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(operations_app, name="operations")
app.add_typer(bulk_app, name="bulk")
app.add_typer(event_app, name="event")
app.add_typer(scan_app)
app.add_typer(demo_app, name="demo", help="Demo data.")


def main() -> None:
    code = 0
    try:
        # With standalone_mode=False click returns a command's exit code instead of raising it.
        result = app(standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # click's usage errors and the rest
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            code = exc.exit_code
        else:
            raise
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
