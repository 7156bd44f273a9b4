"""`ticketops schedules apply|list`: the reconciliation schedules, made from settings (an operator's command).

Unlike the agent commands these talk to Temporal directly, like `ticketops
worker`: schedules are deployment configuration, applied by whoever deploys.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from temporalio.client import Client

from backoffice.cli.client import out
from backoffice.schedules import apply_schedules, view_schedules
from runtime.settings import Settings, get_settings
from runtime.temporal import connect

T = TypeVar("T")

schedules_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Reconciliation schedules (one per processor), from settings."
)


def _with_client(work: Callable[[Client, Settings], Awaitable[T]]) -> T:
    settings = get_settings()

    async def main() -> T:
        try:
            client = await connect(settings.temporal, codec=settings.codec)
        except Exception as exc:  # the SDK raises its own RuntimeError for a refused connection
            raise typer.Exit(_unreachable(settings, exc)) from None
        return await work(client, settings)

    return asyncio.run(main())


def _unreachable(settings: Settings, exc: Exception) -> int:
    out().print(f"[bold red]unreachable[/]: Temporal at {settings.temporal.address} ({type(exc).__name__})")
    return 1


@schedules_app.command("apply")
def apply(
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Create or update the schedules from settings; a second apply changes nothing."""

    async def work(client: Client, settings: Settings) -> None:
        applied = await apply_schedules(client, settings)
        if as_json:
            typer.echo(json.dumps([a.model_dump() for a in applied]))
            return
        if not applied:
            out().print("no processor to reconcile in settings (TICKETOPS_RECONCILIATION__PROCESSORS)")
        for a in applied:
            paused = f" [yellow]paused[/] ({a.note})" if a.paused else ""
            out().print(f"{a.schedule_id}: {a.outcome}{paused}")

    _with_client(work)


@schedules_app.command("list")
def list_schedules(
    as_json: Annotated[bool, typer.Option("--json", help="Print the schedules as JSON.")] = False,
) -> None:
    """The configured schedules: spec, policies, state, next and recent runs."""

    async def work(client: Client, settings: Settings) -> None:
        views = await view_schedules(client, settings)
        if as_json:
            typer.echo(json.dumps([v.model_dump() for v in views]))
            return
        table = Table(title=f"{len(views)} reconciliation schedule(s)")
        for column in ("Schedule", "When", "Zone", "State", "Runs", "Next", "Policy"):
            table.add_column(column)
        for v in views:
            if not v.exists:
                table.add_row(v.schedule_id, "[red]missing[/]: run `ticketops schedules apply`", "", "", "", "", "")
                continue
            policy = f"overlap {v.overlap}, catch-up {(v.catchup_window_seconds or 0) / 3600:g} h" + (
                ", pause on failure" if v.pause_on_failure else ""
            )
            table.add_row(
                v.schedule_id,
                v.spec + (f" ± {(v.jitter_seconds or 0) / 60:g} min" if v.jitter_seconds else ""),
                v.time_zone or "UTC",
                "[yellow]paused[/]" if v.paused else "active",
                str(v.num_actions),
                (v.next_runs[0].replace("T", " ")[:16] if v.next_runs and not v.paused else ""),
                policy,
            )
        out().print(table)

    _with_client(work)
