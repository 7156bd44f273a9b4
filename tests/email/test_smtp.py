"""SmtpProvider against the SMTP sink: delivery, pooling, TLS and AUTH, failures."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtplib import SMTPResponseException, SMTPServerDisconnected
from pydantic import SecretStr

from devtools.smtp_sink import SmtpSink, arrived_at
from email_providers.base import PermanentEmailError, TransientEmailError
from email_providers.smtp import SmtpProvider, SmtpSettings, classify
from tests.email.conftest import make_email
from tests.email.tls import TlsFiles


def _provider(sink: SmtpSink, **changes: object) -> SmtpProvider:
    fields: dict[str, object] = {"host": "127.0.0.1", "port": sink.port, "timeout": 5.0}
    fields.update(changes)
    return SmtpProvider(SmtpSettings.model_validate(fields))


def _read_eml(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_message_arrives_as_eml_with_recipient_subject_attachment_and_id(
    sink: SmtpSink,
) -> None:
    provider = _provider(sink)
    outgoing = make_email(1)
    called = time.time()
    result = await provider.send(outgoing)
    answered = time.time()
    await provider.close()

    [delivery] = sink.deliveries
    assert called <= arrived_at(delivery.path) <= answered  # its arrival, read from its name (benchmarks)
    assert delivery.mail_from == "tickets@ticketops.local"
    assert delivery.rcpt_tos == ("ada@example.com",)
    assert result.provider_message_id == delivery.path.stem
    assert result.rejected_recipients == {}
    assert list(sink.directory.iterdir()) == [delivery.path]  # no temp file left behind
    msg = _read_eml(delivery.path)
    assert msg["Message-ID"] == "<tickets/A1B2C3/1@ticketops.local>"
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["Subject"] == "Your tickets for Spring Gala #1"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "ticket-T1.pdf"
    assert attachment.get_content() == outgoing.attachments[0].data
    assert sink.messages[0]["Message-ID"] == msg["Message-ID"]


async def test_many_sends_reuse_at_most_pool_size_connections(sink: SmtpSink) -> None:
    provider = _provider(sink, pool_size=3)
    results = await asyncio.gather(*(provider.send(make_email(n)) for n in range(40)))
    await provider.send(make_email(41))
    await provider.close()

    assert len(results) == 40
    assert len(sink.messages) == 41
    assert {m["Message-ID"] for m in sink.messages} == {
        f"<tickets/A1B2C3/{n}@ticketops.local>" for n in [*range(40), 41]
    }
    assert 1 <= sink.connections <= 3
    assert provider.connections_opened == sink.connections


async def test_starttls_with_auth(tmp_path: Path, tls_files: TlsFiles) -> None:
    sink = SmtpSink(
        tmp_path / "mail",
        require_auth=("mailer", "s3cret"),
        tls_context=tls_files.server_context(),
    )
    await sink.start()
    try:
        provider = _provider(
            sink,
            security="starttls",
            ca_file=str(tls_files.ca_file),
            username="mailer",
            password=SecretStr("s3cret"),
        )
        await provider.send(make_email(1))
        await provider.send(make_email(2))
        await provider.close()
        assert [m["Message-ID"] for m in await sink.wait_for_messages(2)] == [
            "<tickets/A1B2C3/1@ticketops.local>",
            "<tickets/A1B2C3/2@ticketops.local>",
        ]
        assert sink.connections == 1

        wrong_password = _provider(
            sink,
            security="starttls",
            ca_file=str(tls_files.ca_file),
            username="mailer",
            password=SecretStr("wrong"),
        )
        with pytest.raises(TransientEmailError) as refused:
            await wrong_password.send(make_email(3))
        assert refused.value.code == 535

        untrusted = _provider(sink, security="starttls", username="mailer",
                              password=SecretStr("s3cret"))  # fmt: skip
        with pytest.raises(TransientEmailError, match=r"(?i)certificate"):
            await untrusted.send(make_email(4))

        plaintext = _provider(sink, security="none")
        with pytest.raises(TransientEmailError) as no_tls:  # a setup error, not the message's
            await plaintext.send(make_email(5))
        assert no_tls.value.code == 530
        assert len(sink.messages) == 2
    finally:
        await sink.stop()


async def test_sink_down_is_transient_and_pool_recovers_after_restart(sink: SmtpSink) -> None:
    provider = _provider(sink, pool_size=2)
    await provider.send(make_email(1))  # leaves an open connection in the pool
    await sink.stop()

    with pytest.raises(TransientEmailError):
        await provider.send(make_email(2))

    await sink.start()  # same port
    await provider.send(make_email(3))
    await provider.close()
    assert [m["Message-ID"] for m in sink.messages] == [
        "<tickets/A1B2C3/1@ticketops.local>",
        "<tickets/A1B2C3/3@ticketops.local>",
    ]


async def test_connection_closed_while_idle_is_replaced_without_an_error(
    sink: SmtpSink,
) -> None:
    provider = _provider(sink, pool_size=1)
    await provider.send(make_email(1))
    await sink.stop()
    await sink.start()  # the pooled connection is now dead, the server is up again

    await provider.send(make_email(2))
    await provider.close()
    assert len(sink.messages) == 2
    assert provider.connections_opened == 2


async def test_refused_recipient_is_permanent_with_550(sink: SmtpSink) -> None:
    provider = _provider(sink)
    with pytest.raises(PermanentEmailError) as refused:
        await provider.send(make_email(1, to=["nobody@example.com"]))
    assert refused.value.code == 550

    # the connection was reset and still carries the next message
    await provider.send(make_email(2))
    await provider.close()
    assert [m["Message-ID"] for m in sink.messages] == ["<tickets/A1B2C3/2@ticketops.local>"]
    assert provider.connections_opened == 1


async def test_greylisted_recipient_is_transient_with_451_and_a_plain_cause(sink: SmtpSink) -> None:
    sink.defer_recipients = {"ada@example.com"}
    provider = _provider(sink)
    with pytest.raises(TransientEmailError) as deferred:
        await provider.send(make_email(1))
    # its own cause would be a cycle: Temporal's failure converter recursed on it until RecursionError
    assert deferred.value.code == 451 and deferred.value.__cause__ is not deferred.value
    sink.defer_recipients = set()
    await provider.send(make_email(1))
    await provider.close()
    assert len(sink.messages) == 1


async def test_partly_refused_recipients_are_reported(sink: SmtpSink) -> None:
    provider = _provider(sink)
    result = await provider.send(make_email(1, to=["nobody@example.com", "ada@example.com"]))
    await provider.close()
    assert result.rejected_recipients.keys() == {"nobody@example.com"}
    assert result.rejected_recipients["nobody@example.com"].startswith("550 ")
    assert sink.deliveries[0].rcpt_tos == ("ada@example.com",)


async def test_closed_provider_refuses_to_send(sink: SmtpSink) -> None:
    provider = _provider(sink)
    await provider.close()
    with pytest.raises(RuntimeError):
        await provider.send(make_email(1))


@pytest.mark.parametrize(
    ("error", "expected", "code"),
    [
        (SMTPResponseException(550, "no such user"), PermanentEmailError, 550),
        (SMTPResponseException(552, "too big"), PermanentEmailError, 552),
        (SMTPResponseException(451, "try later"), TransientEmailError, 451),
        (SMTPResponseException(421, "closing"), TransientEmailError, 421),
        (SMTPResponseException(530, "must issue STARTTLS first"), TransientEmailError, 530),
        (SMTPServerDisconnected("gone"), TransientEmailError, None),
        (ConnectionRefusedError(111, "refused"), TransientEmailError, None),
        (TimeoutError(), TransientEmailError, None),
    ],
)
def test_classify(error: Exception, expected: type[Exception], code: int | None) -> None:
    classified = classify(error)
    assert type(classified) is expected
    assert classified.code == code
