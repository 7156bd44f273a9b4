"""The CLI's way to the API: one key, one sync HTTP client, problems as one line and an exit code.

The agent commands talk to the backoffice API, never to Temporal or the store,
so a terminal acts with exactly the rights of its key and leaves the same
history (actor = the key's principal) as any other backoffice client.

Exit codes: 0 done; 2 refused (a problem detail from the API, a failed
operation, or a usage error); 1 the API is unreachable or failed itself.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.text import Text

from ticketing.money import Money

DEFAULT_URL = "http://127.0.0.1:8000"
DEV_KEYS = Path("var") / "dev-api-keys.json"
EXIT_REFUSED = 2
EXIT_UNREACHABLE = 1
TIMEOUT = httpx.Timeout(35.0, connect=5.0)  # above the 30 s cap of `?wait=`


class DevRole(StrEnum):
    SUPPORT = "support"
    FINANCE = "finance"
    ADMIN = "admin"


def out() -> Console:
    """A console per call, so COLUMNS and a redirected stdout (tests, pipes) are read when printing."""
    return Console(highlight=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


class CliFailure(Exception):
    """Ends the command with `message` on stderr and `code` as the exit code."""

    def __init__(self, message: str, code: int = EXIT_REFUSED, label: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.label = label


def problem_failure(status: int, body: Any) -> CliFailure:
    """RFC 7807 body to `type: detail` (the type's last path segment; validation errors listed)."""
    if isinstance(body, dict) and body.get("type"):
        slug = str(body["type"]).rstrip("/").rsplit("/", 1)[-1]
        detail = str(body.get("detail") or body.get("title") or "")
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            detail += " (" + "; ".join(f"{'.'.join(e.get('loc', []))}: {e.get('msg', '')}" for e in errors) + ")"
    else:
        slug, detail = f"http-{status}", str(body)[:300]
    return CliFailure(detail, EXIT_REFUSED if status < 500 else EXIT_UNREACHABLE, label=slug)


def path(*segments: str) -> str:
    """`/a/b`, each segment quoted whole, so a typed code or id cannot reach another route."""
    return "/" + "/".join(quote(s, safe="") for s in segments)


class Api:
    """A thin sync client: JSON in and out, errors as `CliFailure`."""

    def __init__(self, base_url: str, key: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "ticketops-cli"},
            timeout=TIMEOUT,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self.http.request(method, url, json=body, params=query, headers=headers)
        except httpx.TransportError as exc:
            raise CliFailure(
                f"cannot reach the API at {self.base_url} ({type(exc).__name__}); is it running? "
                "(--api-url or TICKETOPS_API_URL)",
                EXIT_UNREACHABLE,
                label="unreachable",
            ) from None
        if resp.status_code >= 400:
            try:
                problem: Any = resp.json()
            except ValueError:
                problem = resp.text
            raise problem_failure(resp.status_code, problem)
        return resp

    def get(self, url: str, **params: Any) -> Any:
        return self.send("GET", url, params=params).json()

    def post(self, url: str, body: Any = None, *, idempotency_key: str | None = None, **params: Any) -> Any:
        return self.send("POST", url, body=body, params=params, idempotency_key=idempotency_key).json()

    def patch(self, url: str, body: Any) -> Any:
        return self.send("PATCH", url, body=body).json()


def resolve_key(api_key: str | None, role: DevRole | None, keys_file: Path = DEV_KEYS) -> str:
    """The dev stack's key for `role` when one is asked for (it beats TICKETOPS_API_KEY), else the key given."""
    if role is None and api_key:
        return api_key.strip()
    if role is None:
        raise CliFailure(
            "no API key: pass --api-key, set TICKETOPS_API_KEY, or use --role admin|finance|support "
            f"on a dev machine ({keys_file} is written by `ticketops dev`)",
            label="no-api-key",
        )
    try:
        keys = json.loads(keys_file.read_text())
    except (OSError, ValueError):
        raise CliFailure(
            f"--role {role.value} reads {keys_file}, which is missing or unreadable; run `ticketops dev` "
            "or pass --api-key",
            label="no-api-key",
        ) from None
    key = keys.get(role.value) if isinstance(keys, dict) else None
    if not key:
        raise CliFailure(f"{keys_file} has no key for the {role.value} role", label="no-api-key")
    return str(key)


def fail(failure: CliFailure) -> typer.Exit:
    """Print the failure as one line on stderr; the caller raises the returned Exit."""
    line = Text.assemble((failure.label, "bold red"), ": ", failure.message) if failure.label else Text(
        failure.message, style="bold red"
    )
    err().print(line, soft_wrap=True)
    return typer.Exit(failure.code)


ApiUrlOption = Annotated[
    str, typer.Option("--api-url", envvar="TICKETOPS_API_URL", help="The backoffice API.", rich_help_panel="API")
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="TICKETOPS_API_KEY", show_default=False, help="An API key (tk_...).", rich_help_panel="API"
    ),
]
RoleOption = Annotated[
    DevRole | None,
    typer.Option(
        "--role", help=f"Use the dev stack's key for this role ({DEV_KEYS}), not --api-key.", rich_help_panel="API"
    ),
]
_CONNECTION = [
    inspect.Parameter("api_url", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_URL, annotation=ApiUrlOption),
    inspect.Parameter("api_key", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ApiKeyOption),
    inspect.Parameter("role", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=RoleOption),
]


@contextmanager
def connect(api_url: str, api_key: str | None, role: DevRole | None) -> Iterator[Api]:
    api = Api(api_url, resolve_key(api_key, role))
    try:
        yield api
    finally:
        api.close()


def api_command(func: Callable[..., None]) -> Callable[..., None]:
    """Give a command `--api-url/--api-key/--role` and an `Api` as its first argument.

    The options sit on every command (`ticketops orders show X --role admin`)
    rather than on a group, so they go where people type them; the command's
    own parameters stay as declared. A `CliFailure` becomes one stderr line and
    its exit code.
    """
    hints = typing.get_type_hints(func, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(func).parameters.values()
        if p.name != "api"
    ]
    params = own + _CONNECTION

    @functools.wraps(func)
    def wrapper(*args: Any, api_url: str, api_key: str | None, role: DevRole | None, **kwargs: Any) -> None:
        try:
            with connect(api_url, api_key, role) as api:
                func(api, *args, **kwargs)
        except CliFailure as failure:
            raise fail(failure) from None
        except KeyboardInterrupt:
            err().print("interrupted; an operation already started goes on (see `ticketops operations watch`)")
            raise typer.Exit(130) from None

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def new_key() -> str:
    """An Idempotency-Key per invocation, printed, so a repeat with `--idempotency-key` finds the same operation."""
    return f"cli-{uuid.uuid4().hex[:16]}"


IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        show_default=False,
        help="Repeat a request safely: the same key returns the first request's operation.",
    ),
]
WaitOption = Annotated[bool, typer.Option("--wait", help="Follow the operation until it ends.")]
TicketsOption = Annotated[
    list[str] | None, typer.Option("--ticket", "-t", show_default=False, help="A ticket id; repeat for more.")
]


def to_minor(amount: str, currency: str) -> int:
    """`12.50` in EUR to 1250; refuses more decimals than the currency has (no floats anywhere)."""
    exponent = len(Money.zero(currency).display().partition(".")[2])
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise CliFailure(f"{amount!r} is not an amount; write it like 12.50", label="bad-amount") from None
    minor = value.scaleb(exponent)
    if not value.is_finite() or minor != minor.to_integral_value() or minor <= 0:
        raise CliFailure(
            f"{amount} is not a positive {currency} amount with at most {exponent} decimals", label="bad-amount"
        )
    return int(minor)


def money(view: dict[str, Any] | None) -> str:
    return str(view.get("display", "")) if view else ""
