"""SesProvider against moto's SES in server mode."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from devtools.ses_server import FAKE_KEY_ID, FAKE_SECRET, SesServer
from email_providers.base import PermanentEmailError, TransientEmailError
from email_providers.ses import SesProvider, SesSettings, classify
from tests.email.conftest import make_email


def _provider(endpoint_url: str, **changes: object) -> SesProvider:
    fields: dict[str, object] = {
        "region": "eu-west-1",
        "endpoint_url": endpoint_url,
        "access_key_id": FAKE_KEY_ID,
        "secret_access_key": FAKE_SECRET,
    }
    fields.update(changes)
    return SesProvider(SesSettings.model_validate(fields))


async def test_raw_message_with_attachment_is_sent(ses_server: SesServer) -> None:
    provider = _provider(ses_server.endpoint_url)
    outgoing = make_email(101)
    result = await provider.send(outgoing)
    await provider.close()

    [sent] = [m for m in ses_server.sent_messages() if m.message_id == result.provider_message_id]
    assert sent.source == "tickets@ticketops.local"
    assert "ada@example.com" in sent.destinations
    msg = sent.message
    assert msg["Message-ID"] == "<tickets/A1B2C3/101@ticketops.local>"
    assert msg["Subject"] == "Your tickets for Spring Gala #101"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "ticket-T1.pdf"
    assert attachment.get_content() == outgoing.attachments[0].data


async def test_unverified_sender_is_permanent(ses_server: SesServer) -> None:
    provider = _provider(ses_server.endpoint_url)
    before = len(ses_server.sent_messages())
    with pytest.raises(PermanentEmailError, match="MessageRejected"):
        await provider.send(make_email(102, sender="someone@unverified.example"))
    await provider.close()
    assert len(ses_server.sent_messages()) == before


async def test_unreachable_endpoint_is_transient() -> None:
    provider = _provider("http://127.0.0.1:9", max_attempts=1, timeout=2)
    with pytest.raises(TransientEmailError, match="unreachable"):
        await provider.send(make_email(103))
    await provider.close()


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("TooManyRequestsException", 429, TransientEmailError),
        ("LimitExceededException", 400, TransientEmailError),
        ("InternalFailure", 500, TransientEmailError),
        ("MessageRejected", 400, PermanentEmailError),
        ("MailFromDomainNotVerifiedException", 400, PermanentEmailError),
        ("AccountSuspendedException", 400, PermanentEmailError),
    ],
)
def test_classify(code: str, status: int, expected: type[Exception]) -> None:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    error = ClientError(response, "SendEmail")
    assert type(classify(error)) is expected
