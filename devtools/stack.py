"""`ticketops dev`: the whole local stack as child processes, stopped together on Ctrl-C.

Order matters: Temporal, the Stripe and SMTP stand-ins, then the schema and
demo data (card orders get real payment intents on the Stripe stand-in), then
the worker and the API.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from workflows import search_attributes

VAR = Path("var")
TEMPORAL_PORT, UI_PORT, API_PORT, STRIPE_PORT, SMTP_PORT = 7233, 8233, 8000, 12111, 1025


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    port: int


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed in this environment; run `make dev`")
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(child: Child, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise SystemExit(f"{child.name} exited with {child.process.returncode}; see var/logs/{child.name}.log")
        if _port_open(child.port):
            return
        time.sleep(0.1)
    raise SystemExit(f"{child.name} did not open port {child.port} in {timeout:.0f}s")


def _start(name: str, argv: list[str], port: int, env: dict[str, str]) -> Child:
    if _port_open(port):
        raise SystemExit(f"port {port} is taken: is another `ticketops dev` running?")
    log = (VAR / "logs" / f"{name}.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    child = Child(name, proc, port)
    _wait_port(child)
    print(f"  {name:<9} up (pid {proc.pid}, port {port})", flush=True)
    return child


def _stop(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in reversed(children):
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            child.process.kill()


async def _seed(env: dict[str, str]) -> str:
    from devtools.demo_data import seed_demo
    from devtools.demo_payments import stripe_payment_creator
    from runtime.settings import Settings
    from ticketing.store.engine import Store
    from ticketing.store.migrate import upgrade

    settings = Settings()
    await upgrade(settings.database_url)
    store = Store(settings.database_url)
    try:
        report = await seed_demo(store, create_payment=stripe_payment_creator(settings))
    finally:
        await store.dispose()
    return str(report)


async def _apply_schedules() -> str:
    """The reconciliation schedules, as `ticketops schedules apply` makes them (Web UI: Schedules)."""
    from backoffice.schedules import apply_schedules
    from runtime.settings import Settings
    from runtime.temporal import connect

    settings = Settings()
    client = await connect(settings.temporal, codec=settings.codec)
    applied = await apply_schedules(client, settings)
    return ", ".join(f"{a.schedule_id} {a.outcome}" for a in applied) or "none configured"


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_stack(*, fresh: bool = False) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the stack as cleanly as Ctrl-C
    if fresh and VAR.exists():
        shutil.rmtree(VAR)
    for sub in ("logs", "mail"):
        (VAR / sub).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TICKETOPS_STRIPE__BASE_URL": f"http://127.0.0.1:{STRIPE_PORT}",
        "TICKETOPS_EMAIL__SMTP__PORT": str(SMTP_PORT),
        "TICKETOPS_PUBLIC_URL": f"http://127.0.0.1:{API_PORT}",
    }
    os.environ.update(env)
    python = sys.executable
    attrs = [
        arg
        for key in search_attributes.ALL
        for arg in ("--search-attribute", f"{key.name}={key.indexed_value_type.name.title()}")
    ]
    children: list[Child] = []
    print("starting the ticketops stack (logs in var/logs/)", flush=True)
    try:
        children.append(
            _start(
                "temporal",
                [
                    _bin("temporal"),
                    "server",
                    "start-dev",
                    "--db-filename",
                    str(VAR / "temporal.sqlite"),
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(TEMPORAL_PORT),
                    "--ui-port",
                    str(UI_PORT),
                    "--ui-codec-endpoint",
                    f"http://127.0.0.1:{API_PORT}/codec",
                    "--log-level",
                    "warn",
                    *attrs,
                ],
                TEMPORAL_PORT,
                env,
            )
        )
        children.append(
            _start(
                "stripe",
                [
                    python,
                    "-m",
                    "devtools.stripe_server",
                    "--port",
                    str(STRIPE_PORT),
                    "--db",
                    str(VAR / "stripe.sqlite"),
                    "--webhook-url",
                    f"http://127.0.0.1:{API_PORT}/webhooks/stripe",
                ],
                STRIPE_PORT,
                env,
            )
        )
        children.append(
            _start(
                "smtp",
                [python, "-m", "devtools.smtp_sink", "--dir", str(VAR / "mail"), "--port", str(SMTP_PORT)],
                SMTP_PORT,
                env,
            )
        )
        print(f"  demo data: {asyncio.run(_seed(env))}", flush=True)
        print(f"  schedules: {asyncio.run(_apply_schedules())}", flush=True)
        from devtools.dev_keys import ensure_dev_keys
        from runtime.settings import Settings

        keys_file = VAR / "dev-api-keys.json"
        made = ensure_dev_keys(Settings().database_url, keys_file)
        print(
            f"  API keys:  {'new, ' if made else ''}one per role in {keys_file} as {{role: key}}; send one as\n"
            f"             Authorization: Bearer <key>  (e.g. jq -r .support {keys_file})",
            flush=True,
        )
        worker = subprocess.Popen(
            [_bin("ticketops"), "worker"],
            stdout=(VAR / "logs" / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        children.append(Child("worker", worker, 0))
        print(f"  worker    up (pid {worker.pid})", flush=True)
        children.append(_start("api", [_bin("ticketops"), "api", "--port", str(API_PORT)], API_PORT, env))
        print(
            "\nticketops is running:\n"
            f"  API        http://127.0.0.1:{API_PORT}  (docs: /docs)\n"
            f"  Web UI     http://127.0.0.1:{UI_PORT}\n"
            f"  Temporal   127.0.0.1:{TEMPORAL_PORT}\n"
            f"  Stripe     http://127.0.0.1:{STRIPE_PORT}  (Stripe-compatible stand-in)\n"
            f"  SMTP sink  127.0.0.1:{SMTP_PORT}  (messages in {VAR / 'mail'}/)\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while True:
            for child in children:
                if child.process.poll() is not None:
                    print(f"{child.name} exited with {child.process.returncode}; stopping", flush=True)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        _stop(children)
