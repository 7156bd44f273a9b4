"""`ticketops dev | worker | api | db upgrade`: the commands that start a process of the stack.

The `ticketops` command is the process launcher as well as the agents' HTTP client, so
`backoffice.cli` is the top layer of the backoffice: it starts the dev stack (`devtools`)
and the worker (`workers`), and it serves the API (`backoffice.api`). That is an honest
arrow down, not a loop: nothing below the CLI imports it, and nothing else in `backoffice`
imports `devtools` or `workers` (the import-linter contracts in pyproject.toml hold it).
The imports stay inside the functions, so `ticketops orders show` does not pay to load
the worker or the dev stack.
"""

from __future__ import annotations

from typing import Annotated

import typer


def dev(
    fresh: Annotated[bool, typer.Option(help="Wipe var/ first: new database, mail and Temporal history.")] = False,
) -> None:
    """Run the whole local stack: Temporal dev server, Stripe and SMTP stand-ins, worker, API, demo data."""
    from devtools.stack import run_stack

    raise typer.Exit(run_stack(fresh=fresh))


def worker() -> None:
    """Run a worker on the orders, payments and email task queues."""
    from workers.main import main as worker_main

    worker_main()


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


def db_upgrade() -> None:
    """Bring the database to the newest schema."""
    from runtime.settings import get_settings
    from ticketing.store.migrate import upgrade_sync

    upgrade_sync(get_settings().database_url)
    typer.echo("database is at the newest schema")
