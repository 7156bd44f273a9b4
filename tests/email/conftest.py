"""Fixtures for the email provider tests: an SMTP sink per test, one moto SES server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devtools.ses_server import SesServer
from devtools.smtp_sink import SmtpSink
from email_providers.base import Attachment, OutgoingEmail
from tests.email.tls import TlsFiles, make_tls_files

SENDER = "Ticket office <tickets@ticketops.local>"


def make_email(number: int = 1, to: list[str] | None = None, **changes: object) -> OutgoingEmail:
    """A ticket email with a small PDF attachment; `changes` override any field."""
    fields: dict[str, object] = {
        "message_id": f"tickets/A1B2C3/{number}@ticketops.local",
        "sender": SENDER,
        "to": ["Ada Lovelace <ada@example.com>"] if to is None else to,
        "subject": f"Your tickets for Spring Gala #{number}",
        "text": "Your tickets are attached.",
        "html": "<p>Your tickets are attached.</p>",
        "attachments": [
            Attachment(filename="ticket-T1.pdf", content_type="application/pdf",
                       data=b"%PDF-1.4\n" + bytes(range(256)) * 4)
        ],
        "headers": {"X-Ticketops-Order": "A1B2C3"},
    }  # fmt: skip
    fields.update(changes)
    return OutgoingEmail.model_validate(fields)


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[SmtpSink]:
    smtp_sink = SmtpSink(tmp_path / "mail", fail_recipients={"nobody@example.com"})
    await smtp_sink.start()
    yield smtp_sink
    await smtp_sink.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def ses_server() -> Iterator[SesServer]:
    server = SesServer(region="eu-west-1")
    server.start()
    server.verify_sender("tickets@ticketops.local")
    yield server
    server.stop()
