"""`ticketops dev`: the whole local stack as child processes, stopped together; and `Stack`, the
same processes on any ports and in any directory, for the fault soak.

Order matters: Temporal, the Stripe and SMTP stand-ins, then the schema and
demo data (card orders get real payment intents on the Stripe stand-in), then
the worker and the API.

As a supervisor would, `dev` restarts a worker that died (a line in the log says
so) and stops everything when another child dies. Every child runs in its own
session, so a signal to the stack's process group (a supervisor's SIGTERM, or
`make` passing one on) reaches only `dev`, which stops the children itself; a
second signal while it stops is ignored rather than cutting the stop short and
leaving a Temporal server or a stand-in holding its port.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devtools.finance_links import finance_links
from workflows import search_attributes

VAR = Path("var")
# `make dev` passes its own start (TICKETOPS_DEV_T0), so the seconds count the install step too.
_STARTED = float(os.environ.get("TICKETOPS_DEV_T0") or time.time())


# Shadows the builtin in this module only: every line `dev` prints carries its time.
def print(*parts: object, flush: bool = True) -> None:
    """A line with the wall clock and the seconds since `make dev` began (where the time goes)."""
    stamp = f"{time.strftime('%H:%M:%S')} +{time.time() - _STARTED:5.1f}s"
    text = " ".join(str(p) for p in parts)
    lead = len(text) - len(text.lstrip("\n"))
    builtins.print(f"{text[:lead]}[{stamp}] {text[lead:]}", flush=flush)


def _dev_port(name: str, default: int) -> int:
    """TICKETOPS_DEV_<NAME>_PORT moves one service, so a second stack (a tour check, a helper) can run beside."""
    return int(os.environ.get(f"TICKETOPS_DEV_{name}_PORT", default))


@dataclass(frozen=True)
class Ports:
    temporal: int = 7233
    ui: int = 8233
    api: int = 8000
    stripe: int = 12111
    smtp: int = 1025

    @classmethod
    def from_env(cls) -> Ports:
        """The defaults, each moved by its TICKETOPS_DEV_<NAME>_PORT."""
        return cls(
            _dev_port("TEMPORAL", 7233), _dev_port("UI", 8233), _dev_port("API", 8000),
            _dev_port("STRIPE", 12111), _dev_port("SMTP", 1025),
        )

    @classmethod
    def parse(cls, text: str) -> Ports:
        """`temporal,ui,api,stripe,smtp`, e.g. `17233,18233,18000,22111,11025`."""
        numbers = [int(p) for p in text.split(",")]
        if len(numbers) != 5:
            raise ValueError("ports are five numbers: temporal,ui,api,stripe,smtp")
        return cls(*numbers)

    @classmethod
    def free(cls) -> Ports:
        """Five ports nobody listens on now (the kernel's choice), for a stack beside others."""
        sockets = [socket.socket() for _ in range(5)]
        try:
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            return cls(*(sock.getsockname()[1] for sock in sockets))
        finally:
            for sock in sockets:
                sock.close()


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


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    """The stack's processes under `var`, on `ports`; each child logs to `var/logs/<name>.log`."""

    var: Path = VAR
    ports: Ports = field(default_factory=Ports)
    extra_env: dict[str, str] = field(default_factory=dict)
    stripe_args: Sequence[str] = ()
    smtp_args: Sequence[str] = ()
    children: dict[str, Child] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sub in ("logs", "mail"):
            (self.var / sub).mkdir(parents=True, exist_ok=True)
        p = self.ports
        self.env = {
            **os.environ,
            "TICKETOPS_DATABASE_URL": os.environ.get(
                "TICKETOPS_DATABASE_URL", f"sqlite+aiosqlite:///{self.var / 'ticketops.sqlite'}"
            ),
            "TICKETOPS_TEMPORAL__ADDRESS": f"127.0.0.1:{p.temporal}",
            "TICKETOPS_STRIPE__BASE_URL": f"http://127.0.0.1:{p.stripe}",
            "TICKETOPS_EMAIL__SMTP__PORT": str(p.smtp),
            "TICKETOPS_PUBLIC_URL": f"http://127.0.0.1:{p.api}",
            "TICKETOPS_API_URL": f"http://127.0.0.1:{p.api}",
            "TICKETOPS_BLOBS__ROOT": str(self.var / "blobs"),
            # The Web UI on this machine decodes payloads without a token (refused in production).
            "TICKETOPS_CODEC__TRUST_LOCAL_UI": "true",
            **self.extra_env,
        }

    def argv(self, name: str) -> tuple[list[str], int]:
        """The command line and port of one child: temporal, stripe, smtp, api, or worker[-N]."""
        p, python = self.ports, sys.executable
        if name == "temporal":
            attrs = [
                arg
                for key in search_attributes.ALL
                for arg in ("--search-attribute", f"{key.name}={key.indexed_value_type.name.title()}")
            ]
            return [
                _bin("temporal"), "server", "start-dev", "--db-filename", str(self.var / "temporal.sqlite"),
                "--ip", "127.0.0.1", "--port", str(p.temporal), "--ui-port", str(p.ui),
                "--ui-codec-endpoint", f"http://127.0.0.1:{p.api}/codec", "--ui-disable-news-fetch",
                "--log-level", "warn", *attrs,
            ], p.temporal
        if name == "stripe":
            return [
                python, "-m", "devtools.stripe_server", "--port", str(p.stripe),
                "--db", str(self.var / "stripe.sqlite"),
                "--webhook-url", f"http://127.0.0.1:{p.api}/webhooks/stripe", *self.stripe_args,
            ], p.stripe
        if name == "smtp":
            return [
                python, "-m", "devtools.smtp_sink", "--dir", str(self.var / "mail"), "--port", str(p.smtp),
                *self.smtp_args,
            ], p.smtp
        if name == "api":
            return [_bin("ticketops"), "api", "--port", str(p.api)], p.api
        if name.startswith("worker"):
            return [_bin("ticketops"), "worker"], 0
        raise ValueError(name)

    def start(self, name: str, *, timeout: float = 180.0) -> Child:
        argv, port = self.argv(name)
        if port and port_open(port):
            raise SystemExit(f"port {port} is taken: is another `ticketops dev` running?")
        log = (self.var / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        child = Child(name, proc, port)
        self.children[name] = child
        deadline = time.monotonic() + timeout
        while port and not port_open(port):
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}; see {self.var}/logs/{name}.log")
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not open port {port} in {timeout:.0f}s")
            time.sleep(0.1)
        return child

    def kill(self, name: str, sig: int = signal.SIGKILL, *, wait: float = 15.0) -> None:
        child = self.children[name]
        if child.process.poll() is None:
            child.process.send_signal(sig)
        try:
            child.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()

    def stop(self) -> None:
        """SIGTERM to every child, newest first; SIGKILL to what is still there after 10 s."""
        children = list(self.children.values())
        for child in reversed(children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in reversed(children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()

    def prepare(self, *, demo_orders: int = 200) -> str:
        """Schema and demo data (card payments on the stand-in), in this process, whose environment
        becomes the stack's."""
        os.environ.update(self.env)
        return asyncio.run(_seed(demo_orders))


async def _seed(orders: int) -> str:
    from devtools.demo_data import seed_demo
    from devtools.demo_payments import stripe_payment_creator
    from runtime.settings import Settings
    from ticketing.store.engine import Store
    from ticketing.store.migrate import upgrade

    settings = Settings()
    await upgrade(settings.database_url)
    store = Store(settings.database_url)
    try:
        report = await seed_demo(store, orders=orders, create_payment=stripe_payment_creator(settings))
    finally:
        await store.dispose()
    return str(report)


def _finance_text(ui_base: str) -> str:
    lines = ["\nFinance in the Web UI (decoded for you here; add the Order/Amount/Status columns, see README):"]
    lines += [f"  {label:<26} {url}" for label, url in finance_links(ui_base)]
    return "\n".join(lines)


def _apply_schedules(env: dict[str, str]) -> str:
    """`ticketops schedules apply`, as an operator runs it (its own process, as the worker is):
    the reconciliation schedules appear in the Web UI's Schedules page."""
    done = subprocess.run(
        [_bin("ticketops"), "schedules", "apply"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        return f"not applied ({(done.stdout + done.stderr).strip()[-300:]}); run `ticketops schedules apply`"
    return "; ".join(line.strip() for line in done.stdout.splitlines() if line.strip()) or "none configured"


class _Stopping(Exception):
    """The first SIGTERM or SIGINT: stop the stack."""


def _first_signal(_signum: int, _frame: object) -> None:
    # From here on the stop must finish: a supervisor's or make's second signal is ignored.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise _Stopping


def run_stack(*, fresh: bool = False, ports: Ports | None = None, var: Path = VAR) -> int:
    """The dev stack until a signal."""
    signal.signal(signal.SIGTERM, _first_signal)
    signal.signal(signal.SIGINT, _first_signal)
    if fresh and var.exists():
        shutil.rmtree(var)
    stack = Stack(var=var, ports=ports or Ports.from_env())
    os.environ.update(stack.env)
    p = stack.ports
    print(f"starting the ticketops stack (logs in {var}/logs/); starting Temporal...", flush=True)
    restarts = 0
    try:
        for name in ("temporal", "stripe", "smtp"):
            child = stack.start(name)
            print(f"  {name:<9} up (pid {child.process.pid}, port {child.port})", flush=True)
        print("  migrating the schema and seeding the demo data (skipped when the store has it)...", flush=True)
        print(f"  demo data: {stack.prepare()}", flush=True)
        print(f"  schedules: {_apply_schedules(stack.env)}", flush=True)
        from devtools.dev_keys import ensure_dev_keys

        keys_file = var / "dev-api-keys.json"
        made = ensure_dev_keys(stack.env["TICKETOPS_DATABASE_URL"], keys_file)
        print(
            f"  API keys:  {'new, ' if made else ''}one per role in {keys_file} as {{role: key}}; send one as\n"
            f"             Authorization: Bearer <key>  (e.g. jq -r .support {keys_file})",
            flush=True,
        )
        worker = stack.start("worker")
        print(f"  worker    up (pid {worker.process.pid})", flush=True)
        api = stack.start("api")
        print(f"  api       up (pid {api.process.pid}, port {api.port})", flush=True)
        print(
            "\nticketops is running:\n"
            f"  API        http://127.0.0.1:{p.api}  (docs: /docs)\n"
            f"  Web UI     http://127.0.0.1:{p.ui}\n"
            f"  Temporal   127.0.0.1:{p.temporal}\n"
            f"  Stripe     http://127.0.0.1:{p.stripe}  (Stripe-compatible stand-in)\n"
            f"  SMTP sink  127.0.0.1:{p.smtp}  (messages in {var / 'mail'}/)\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        print(_finance_text(f"http://127.0.0.1:{p.ui}"), flush=True)
        while True:
            for child in list(stack.children.values()):
                code = child.process.poll()
                if code is None:
                    continue
                if child.name == "worker":
                    restarts += 1
                    print(f"worker exited with {code}; restarting it (restart {restarts})", flush=True)
                    worker = stack.start("worker")
                    print(f"  worker    up (pid {worker.process.pid})", flush=True)
                    continue
                print(f"{child.name} exited with {code}; stopping", flush=True)
                return 1
            time.sleep(0.5)
    except (_Stopping, KeyboardInterrupt):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\nstopping...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        print("stopped", flush=True)
