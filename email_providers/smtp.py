"""SMTP provider over aiosmtplib with a small pool of open connections.

Opening a connection (TCP, EHLO, STARTTLS, AUTH) costs several round trips, more than
sending a small message, so connections are kept open and reused; the pool size is also
the number of messages in flight. A pooled connection the server closed while it was idle
fails at MAIL FROM, before anything was accepted, so that one send is retried on a fresh
connection; every other failure is classified and raised for the caller to retry or not.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
from aiosmtplib import (
    SMTPConnectError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from pydantic import BaseModel, Field, SecretStr

from email_providers.base import (
    EmailError,
    OutgoingEmail,
    PermanentEmailError,
    SendResult,
    TransientEmailError,
)
from email_providers.mime import build_mime, envelope_address

log = logging.getLogger(__name__)

_QUEUE_ID = re.compile(r"queued as ([^\s;]+)", re.IGNORECASE)
_SERVICE_CLOSING = 421
# "530 authentication / STARTTLS required", "534 mechanism too weak", "538 encryption
# required": the relay refuses our session setup, not this message.
_SESSION_REFUSALS = frozenset({530, 534, 538})


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1025
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "none"
    timeout: float = 30.0
    pool_size: int = Field(default=8, ge=1)
    ca_file: str | None = None  # extra CA bundle to trust, for a relay with a private CA
    validate_certs: bool = True
    idle_timeout: float = 60.0  # drop pooled connections idle longer than this
    local_hostname: str | None = None  # EHLO name; default: this machine's hostname


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    idle_since: float


class _StaleConnection(Exception):
    """A pooled connection failed before MAIL FROM was accepted: safe to resend."""


def classify(exc: BaseException) -> EmailError:
    """Map an aiosmtplib or socket error to Transient (retry later) or Permanent.

    Failures to connect, greet, start TLS or log in are Transient even with a 5xx code: they
    say nothing about the message, and once the relay or its credentials are fixed every
    queued email can still go out; so are the 530/534/538 replies that ask for TLS or AUTH.
    Other replies to MAIL, RCPT and DATA follow their code: 4xx Transient, 5xx Permanent.
    """
    if isinstance(exc, EmailError):
        return exc
    if isinstance(exc, SMTPConnectError | SMTPServerDisconnected | SMTPTimeoutError):
        return TransientEmailError(f"SMTP connection failed: {exc}")
    if isinstance(exc, ssl.SSLError):  # also a ValueError when the certificate is refused
        return TransientEmailError(f"SMTP TLS failed: {exc}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPHeloError):
        return TransientEmailError(f"SMTP session refused: {exc.message}", exc.code)
    if isinstance(exc, SMTPResponseException):
        if exc.code in _SESSION_REFUSALS:
            return TransientEmailError(f"SMTP session refused: {exc.message}", exc.code)
        if 500 <= exc.code < 600:
            return PermanentEmailError(exc.message, exc.code)
        return TransientEmailError(exc.message, exc.code)
    if isinstance(exc, SMTPNotSupported | ValueError):
        return PermanentEmailError(f"message cannot be sent over SMTP: {exc}")
    if isinstance(exc, SMTPException | OSError | TimeoutError):
        return TransientEmailError(f"SMTP failed: {exc}")
    raise exc


def _all_refused(refusals: list[SMTPRecipientRefused]) -> EmailError:
    """Transient if any refusal is temporary (4xx: greylisting, full mailbox), else Permanent."""
    temporary = [exc for exc in refusals if 400 <= exc.code < 500]
    if temporary:
        return TransientEmailError(temporary[0].message, temporary[0].code, recipient=True)
    return PermanentEmailError(refusals[0].message, refusals[0].code)


class SmtpProvider:
    """EmailProvider over SMTP; `connections_opened` counts connects, for tests and metrics."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._closed = False
        self._local_hostname = settings.local_hostname or socket.gethostname()
        self.connections_opened = 0

    async def send(self, email: OutgoingEmail) -> SendResult:
        if self._closed:
            raise RuntimeError("SmtpProvider is closed")
        try:
            mime = build_mime(email)
        except ValueError as exc:  # a header with a line break, an address that is none: never sendable
            raise PermanentEmailError(f"message cannot be built: {exc}") from exc
        sender = envelope_address(email.sender)
        recipients = [envelope_address(address) for address in email.to]
        if not sender or not recipients:
            raise PermanentEmailError("sender or recipient address is missing or malformed")
        async with self._slots:
            try:
                return await self._send_pooled(sender, recipients, mime)
            except (EmailError, SMTPException, OSError, TimeoutError, ValueError) as exc:
                error = classify(exc)
                log.warning(
                    "smtp send failed",
                    extra={"message_id": email.message_id, "error_code": error.code,
                           "error_class": type(error).__name__},
                )  # fmt: skip
                raise error from (None if error is exc else exc)

    async def _send_pooled(self, sender: str, recipients: list[str], mime: bytes) -> SendResult:
        connection = self._take_idle()
        if connection is not None:
            try:
                return await self._transaction(connection, sender, recipients, mime, reused=True)
            except _StaleConnection:
                log.info("smtp pooled connection was closed by the server; reconnecting")
        connection = await self._connect()
        return await self._transaction(connection, sender, recipients, mime, reused=False)

    async def _transaction(
        self,
        connection: _Connection,
        sender: str,
        recipients: list[str],
        mime: bytes,
        *,
        reused: bool,
    ) -> SendResult:
        client = connection.client
        try:
            try:
                options = [f"SIZE={len(mime)}"] if client.supports_extension("size") else []
                await client.mail(sender, options=options)
            except (SMTPServerDisconnected, ConnectionError) as exc:
                if reused:
                    raise _StaleConnection from exc
                raise
            except SMTPResponseException as exc:
                if reused and exc.code == _SERVICE_CLOSING:
                    raise _StaleConnection from exc
                raise
            refused: dict[str, SMTPRecipientRefused] = {}
            for recipient in recipients:
                try:
                    await client.rcpt(recipient)
                except SMTPRecipientRefused as exc:
                    refused[recipient] = exc
            if len(refused) == len(recipients):
                raise _all_refused(list(refused.values()))
            response = await client.data(mime)
        except (_StaleConnection, SMTPServerDisconnected, ConnectionError, TimeoutError):
            client.close()
            raise
        except (SMTPResponseException, EmailError):
            await self._reset(connection)
            raise
        except BaseException:
            client.close()
            raise
        self._give_back(connection)
        match = _QUEUE_ID.search(response.message)
        return SendResult(
            provider_message_id=match.group(1) if match else None,
            rejected_recipients={
                address: f"{exc.code} {exc.message}" for address, exc in refused.items()
            },
        )

    async def _connect(self) -> _Connection:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            local_hostname=self._local_hostname,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            validate_certs=settings.validate_certs,
            cert_bundle=settings.ca_file,
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
        except BaseException:
            client.close()
            raise
        self.connections_opened += 1
        return _Connection(client=client, idle_since=time.monotonic())

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.client.is_connected and now - connection.idle_since < (
                self._settings.idle_timeout
            ):
                return connection
            connection.client.close()
        return None

    def _give_back(self, connection: _Connection) -> None:
        if self._closed or not connection.client.is_connected:
            connection.client.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def _reset(self, connection: _Connection) -> None:
        """RSET after a refused transaction so the connection can carry the next one."""
        try:
            await connection.client.rset()
        except (SMTPException, OSError, TimeoutError):
            connection.client.close()
            return
        self._give_back(connection)

    async def close(self) -> None:
        """Say QUIT on idle connections; connections in use close when their send ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            try:
                await asyncio.wait_for(connection.client.quit(), timeout=2)
            except (SMTPException, OSError, TimeoutError):
                pass
            finally:
                connection.client.close()
