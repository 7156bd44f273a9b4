"""`ticketops`: run the stack, the worker, the API, and the data commands.

The commands that start a process (`dev`, `worker`, `api`, `db upgrade`) are in
`backoffice/cli/launch.py`, which says why the CLI is the top layer.

Every command ends the process with `os._exit`, because the temporalio core
can crash at interpreter exit after correct work.
"""

from __future__ import annotations

import os
import sys

import typer

from backoffice.cli.actions_cmds import order_actions, scan_app
from backoffice.cli.audit_cmds import audit
from backoffice.cli.bulk_cmds import bulk_app, event_app
from backoffice.cli.data import demo_app, orders_app
from backoffice.cli.events_cmds import events_app
from backoffice.cli.flows_cmds import flow_reads, reservations_app
from backoffice.cli.keys import keys_app
from backoffice.cli.launch import api, db_upgrade, dev, worker
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
app.command()(dev)
app.command()(worker)
app.command()(api)
app.command()(audit)
db_app.command("upgrade")(db_upgrade)

# The agent commands talk to the API (backoffice/cli/client.py); `orders` merges them with `orders import`.
orders_app.add_typer(order_reads)
orders_app.add_typer(order_actions)
orders_app.add_typer(flow_reads)
app.add_typer(orders_app, name="orders", help="Find, show, act on and import orders.")
app.add_typer(refunds_app, name="refunds")
app.add_typer(reservations_app, name="reservations")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(operations_app, name="operations")
app.add_typer(bulk_app, name="bulk")
app.add_typer(event_app, name="event")
app.add_typer(events_app, name="events")
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
