"""SMTP sink: a real SMTP server (aiosmtpd) that keeps every accepted message as a .eml file.

Used by `dev` and by tests, which read what was "sent" from `messages` or from the folder.
It can refuse chosen recipients with 550, require AUTH, offer STARTTLS, and be stopped and
started again on the same port to simulate an outage. The server runs in its own thread
(aiosmtpd's Controller), so it answers even while the caller's event loop is blocked.

    python -m devtools.smtp_sink --dir var/mail --port 1025

Fault switches of a running sink process (the soak's, or by hand), by signal:
  SIGUSR1  the relay goes down (stops listening, drops connections); again: back up.
  SIGUSR2  recipients matching `--defer-matching REGEX` get 451 (greylisted); again: accepted.
Each switch prints a line with its new state.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import itertools
import os
import re
import signal
import ssl
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

STAMP = "%Y%m%dT%H%M%S%fZ"  # each .eml is named after its arrival: `20261122T012345123456Z-7.eml`


def arrived_at(path: Path) -> float:
    """When the sink accepted the message in `path` (a Unix time, to the microsecond), from its name:
    benchmarks time sends by it, whether the sink ran in their process or in its own."""
    return datetime.strptime(path.name.split("-", 1)[0], STAMP).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Delivery:
    """Envelope of one accepted message: who the client said it was from and for."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    path: Path


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self._sink.fail_recipients:
            return "550 5.1.1 Recipient address rejected: unknown user"
        if address.lower() in self._sink.defer_recipients or self._sink.deferring(address):
            return "451 4.7.1 Greylisted: try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        path = self._sink._store(envelope.mail_from or "", tuple(envelope.rcpt_tos), content)
        return f"250 2.0.0 OK: queued as {path.stem}"


class _Controller(Controller):
    """Controller that can bind port 0 and counts client connections."""

    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(_Handler(sink), **kwargs)
        self._sink = sink

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        async def create() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=self.port, reuse_address=True
            )
            self.port = server.sockets[0].getsockname()[1]  # the real port when asked for 0
            return server

        return create()

    def factory(self) -> SMTP:
        self._sink._count_connection()
        return super().factory()


class SmtpSink:
    """SMTP server that stores what it accepts; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        fail_recipients: set[str] | None = None,
        require_auth: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.fail_recipients = {address.lower() for address in fail_recipients or set()}
        self.defer_recipients: set[str] = set()  # answered 451 (greylisting) until removed
        self.defer_pattern: re.Pattern[str] | None = None  # with `defer_on`, matching recipients get 451
        self.defer_on = False
        self.require_auth = require_auth
        self.tls_context = tls_context
        self.deliveries: list[Delivery] = []
        self._raw: list[bytes] = []
        self._parsed: list[EmailMessage] = []
        self._controller: _Controller | None = None
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)
        self._connections = 0
        self._starts = 0

    @property
    def connections(self) -> int:
        """Client connections accepted so far (the start-up self-check excluded)."""
        return self._connections - self._starts

    @property
    def messages(self) -> list[EmailMessage]:
        """Accepted messages, parsed on first read (parsing in the server thread would halve
        the rate the sink accepts mail at)."""
        with self._lock:
            raw = self._raw[len(self._parsed) :]
        for content in raw:
            parsed = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self._parsed.append(parsed)
        return list(self._parsed)

    def deferring(self, address: str) -> bool:
        return self.defer_on and self.defer_pattern is not None and bool(self.defer_pattern.search(address.lower()))

    @property
    def running(self) -> bool:
        return self._controller is not None

    async def start(self) -> None:
        """Start listening; after a stop, on the same port as before."""
        if self._controller is not None:
            raise RuntimeError("SmtpSink is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = _Controller(self, hostname=self.host, port=self.port, **self._smtp_options())
        await asyncio.to_thread(controller.start)
        self._starts += 1  # Controller.start() opens one connection to check the server
        self.port = controller.port
        self._controller = controller

    async def stop(self) -> None:
        """Stop listening and drop open connections, as a crashed relay would."""
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop)

    async def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least `count` messages arrived; return them all."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self._raw) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{len(self._raw)} of {count} messages arrived")
            await asyncio.sleep(0.02)
        return list(self.messages)

    def clear(self) -> None:
        """Forget the messages in memory (the .eml files stay)."""
        with self._lock:
            self._raw.clear()
            self._parsed.clear()
            self.deliveries.clear()

    def _smtp_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"server_hostname": "smtp-sink.local"}
        if self.tls_context is not None:
            options["tls_context"] = self.tls_context
            options["require_starttls"] = self.require_auth is not None
        if self.require_auth is not None:
            options["authenticator"] = self._authenticate
            options["auth_required"] = True
            options["auth_require_tls"] = self.tls_context is not None
        return options

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.require_auth is not None
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.require_auth[0]
            and auth_data.password.decode() == self.require_auth[1]
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd replies 535

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def _store(self, mail_from: str, rcpt_tos: tuple[str, ...], content: bytes) -> Path:
        """Write the .eml atomically (temp name, then rename), then record it in memory."""
        stamp = datetime.now(UTC).strftime(STAMP)
        with self._lock:
            number = next(self._sequence)
        path = self.directory / f"{stamp}-{number}.eml"
        tmp = self.directory / f".{path.name}.tmp"
        tmp.write_bytes(content)
        os.replace(tmp, path)
        with self._lock:
            self.deliveries.append(Delivery(mail_from, rcpt_tos, path))
            self._raw.append(content)
        return path


async def _serve(args: argparse.Namespace) -> None:
    sink = SmtpSink(Path(args.dir), host=args.host, port=args.port, fail_recipients=set(args.fail_recipient))
    if args.defer_matching:
        sink.defer_pattern = re.compile(args.defer_matching)
    await sink.start()
    print(f"SMTP sink on {sink.host}:{sink.port}, writing to {sink.directory}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    switching = asyncio.Lock()

    async def toggle_relay() -> None:
        async with switching:
            if sink.running:
                await sink.stop()
                print("fault: relay down", flush=True)
            else:
                await sink.start()
                print("fault: relay up", flush=True)

    def toggle_defer() -> None:
        sink.defer_on = not sink.defer_on
        print(f"fault: deferring {args.defer_matching!r}: {'on' if sink.defer_on else 'off'}", flush=True)

    tasks: set[asyncio.Task[None]] = set()

    def relay_signal() -> None:
        task = loop.create_task(toggle_relay())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGUSR1, relay_signal)
    loop.add_signal_handler(signal.SIGUSR2, toggle_defer)
    try:
        await stop.wait()
    finally:
        await sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="SMTP sink that stores messages as .eml files")
    parser.add_argument("--dir", default="var/mail", help="folder for the .eml files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025, help="0 picks a free port")
    parser.add_argument("--fail-recipient", action="append", default=[], help="refuse this address with 550")
    parser.add_argument("--defer-matching", help="regex: matching recipients get 451 while SIGUSR2 has deferral on")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
