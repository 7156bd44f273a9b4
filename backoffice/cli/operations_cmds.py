"""`ticketops operations watch ID`, and the `--wait` of every action: follow an operation to its end.

Polling uses the API's long poll (`GET /operations/{id}?wait=5s`), which
answers as soon as the operation ends, so following costs one request per
five seconds at most and shows the outcome without a polling delay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from backoffice.cli.client import Api, CliFailure, api_command, out, path
from ticketing.money import Money

LONG_POLL = "5s"
SHORT_POLL = "1s"  # when something besides the operation is watched too

# Asked between polls: None to go on, or a message to stop with while the operation still runs
# (a refund waiting days for finance has done all an agent can wait for). It may raise CliFailure.
Settled = Callable[[], str | None]
EXIT_STILL_RUNNING = 3

operations_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Operations: the durable workflow behind each action."
)


def _value(value: Any) -> str:
    if isinstance(value, dict) and "display" in value:
        return str(value["display"])
    if isinstance(value, dict) and isinstance(value.get("amount"), int) and isinstance(value.get("currency"), str):
        return Money(amount=value["amount"], currency=value["currency"]).display()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def _with_money(result: dict[str, Any]) -> dict[str, Any]:
    """Results carry money as minor units beside a currency (`amount 3900`, `currency EUR`): print `EUR 39.00`."""
    currency = result.get("currency")
    if not isinstance(currency, str):
        return result
    shown: dict[str, Any] = {}
    for key, value in result.items():
        if key == "currency":
            continue
        is_money = key == "amount" or key.endswith(("_amount", "_total"))
        shown[key] = {"amount": value, "currency": currency} if is_money and isinstance(value, int) else value
    return shown


def follow(api: Api, operation_id: str, timeout: float | None = None, settled: Settled | None = None) -> dict[str, Any]:
    """Poll until the operation ends, `timeout` seconds pass or `settled` says stop; a spinner shows its step."""
    deadline = None if timeout is None else time.monotonic() + timeout
    url = path("operations", *operation_id.split("/"))  # the id's slashes are part of the route
    console = out()
    shown = None
    with console.status(f"{operation_id}: running") as spinner:
        while True:
            view: dict[str, Any] = api.get(url, wait=SHORT_POLL if settled else LONG_POLL)
            if view.get("status") != "running":
                return view
            details = view.get("details") or "running"
            spinner.update(f"{operation_id}: {details}")
            if details != shown:  # a line per change too: a spinner is invisible in logs and pipes
                console.print(f"  {operation_id}: {details}")
                shown = details
            if settled is not None and (message := settled()) is not None:
                return {**view, "settled": message}
            if deadline is not None and time.monotonic() >= deadline:
                return view


def show_outcome(view: dict[str, Any]) -> None:
    """Completed: the result as a table. Failed: the problem as `type: detail`, exit 2."""
    operation_id = view.get("operation_id", "")
    status = view.get("status")
    if view.get("settled"):
        out().print(view["settled"])
        return
    if status == "running":
        raise CliFailure(
            f"{operation_id} is still running ({view.get('details') or 'no details'}); "
            f"follow it with `ticketops operations watch {operation_id}`",
            EXIT_STILL_RUNNING,
            label="still-running",
        )
    if status == "failed":
        error = view.get("error") or {}
        raise CliFailure(str(error.get("detail") or "the operation failed"), label=str(error.get("type") or "failed"))
    console = out()
    console.print(f"[bold green]completed[/] {operation_id} ({view.get('workflow', '')})")
    result = view.get("result")
    if isinstance(result, dict) and result:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for key, value in _with_money(result).items():
            table.add_row(str(key), _value(value))
        console.print(table)
    elif result is not None:
        console.print(_value(result))


def started(
    api: Api, accepted: dict[str, Any], *, wait: bool, key: str, settled: Settled | None = None, **extra: Any
) -> None:
    """What every action prints after its 202: the operation id and how to follow it; then follows if asked."""
    operation_id = str(accepted["operation_id"])
    console = out()
    console.print(f"started operation [bold]{operation_id}[/] (Idempotency-Key {key})")
    for label, value in extra.items():
        if value not in (None, "", []):
            console.print(f"  {label.replace('_', ' ')}: {_value(value)}")
    if wait:
        show_outcome(follow(api, operation_id, settled=settled))
    else:
        console.print(f"  follow it: ticketops operations watch {operation_id}")


@operations_app.command("watch")
@api_command
def watch(
    api: Api,
    operation_id: Annotated[str, typer.Argument(help="As an action printed it, e.g. resend/A1B2C3/cli-...")],
    timeout: Annotated[
        float | None, typer.Option(min=0, help="Give up after this many seconds (exit 3); default: until it ends.")
    ] = None,
) -> None:
    """Follow an operation until it ends, then print its result, or its problem (exit 2)."""
    show_outcome(follow(api, operation_id, timeout))
