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

from pathlib import Path
from typing import Annotated

import typer


def dev(
    fresh: Annotated[bool, typer.Option(help="Wipe var/ first: new database, mail and Temporal history.")] = False,
    ports: Annotated[
        str | None,
        typer.Option(
            envvar="TICKETOPS_DEV_PORTS",
            help="temporal,ui,api,stripe,smtp (default 7233,8233,8000,12111,1025, each moved by "
            "TICKETOPS_DEV_<NAME>_PORT), or `free` for any free ones.",
        ),
    ] = None,
    var: Annotated[
        Path, typer.Option(envvar="TICKETOPS_DEV_VAR", help="Where the stack keeps its data and logs.")
    ] = Path("var"),
) -> None:
    """Run the whole local stack: Temporal dev server, Stripe and SMTP stand-ins, worker, API, demo data."""
    from devtools.stack import Ports, run_stack

    chosen = None if ports is None else Ports.free() if ports == "free" else Ports.parse(ports)
    raise typer.Exit(run_stack(fresh=fresh, ports=chosen, var=var))


def worker() -> None:
    """Run a worker on the orders, payments, email and render task queues."""
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
