"""build_mime and OutgoingEmail: the bytes every provider sends."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from pydantic import ValidationError

from email_providers.base import build_mime
from tests.email.conftest import make_email


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_message_has_alternative_bodies_attachment_and_message_id() -> None:
    outgoing = make_email(7, subject="Tickets for Zoë\u2019s gala")
    msg = _parse(build_mime(outgoing))

    assert msg["Message-ID"] == "<tickets/A1B2C3/7@ticketops.local>"
    assert msg["Subject"] == "Tickets for Zoë\u2019s gala"
    assert msg["To"] == "Ada Lovelace <ada@example.com>"
    assert msg["X-Ticketops-Order"] == "A1B2C3"
    assert msg.get_content_type() == "multipart/mixed"
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and plain.get_content().strip() == "Your tickets are attached."
    assert html is not None and "<p>Your tickets are attached.</p>" in html.get_content()
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "ticket-T1.pdf"
    assert attachment.get_content() == outgoing.attachments[0].data


def test_bytes_are_seven_bit_crlf_lines_within_smtp_limits() -> None:
    raw = build_mime(make_email(text="é" * 2000))
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@pytest.mark.parametrize("message_id", ["<a@b>", "a@b", " a@b "])
def test_message_id_is_stored_bare(message_id: str) -> None:
    assert make_email(message_id=message_id).message_id == "a@b"


@pytest.mark.parametrize("message_id", ["no-at-sign", "a b@c", "a@b@c", ""])
def test_malformed_message_id_is_refused(message_id: str) -> None:
    with pytest.raises(ValidationError):
        make_email(message_id=message_id)


def test_headers_cannot_override_the_fields() -> None:
    with pytest.raises(ValidationError, match="Message-ID"):
        make_email(headers={"Message-ID": "<x@y>"})


def test_an_email_needs_a_recipient() -> None:
    with pytest.raises(ValidationError):
        make_email(to=[])
