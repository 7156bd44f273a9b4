"""build_mime and OutgoingEmail: the bytes every provider sends."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from pydantic import ValidationError

from email_providers.base import Attachment, OutgoingEmail
from email_providers.mime import build_mime
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


def _reference(outgoing: OutgoingEmail) -> EmailMessage:
    """What the standard library's EmailMessage makes of the same email: the oracle."""
    msg = EmailMessage()
    msg["Message-ID"] = f"<{outgoing.message_id}>"
    msg["From"] = outgoing.sender
    msg["To"] = ", ".join(outgoing.to)
    msg["Subject"] = outgoing.subject
    for name, value in outgoing.headers.items():
        msg[name] = value
    msg.set_content(outgoing.text)
    msg.add_alternative(outgoing.html, subtype="html")
    for attachment in outgoing.attachments:
        maintype, subtype = attachment.content_type.split("/")
        msg.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return _parse(msg.as_bytes(policy=email.policy.SMTP))


def _changed(changes: dict[str, object]) -> OutgoingEmail:
    return OutgoingEmail.model_validate({**make_email(3).model_dump(), **changes})


_PDF = Attachment(filename="ticket-T1.pdf", content_type="application/pdf", data=bytes(range(256)) * 40)
_CASES = {
    "ascii": {},
    "unicode subject and names": {
        "subject": "Tickets für Zoë\u2019s Gala — 東京",
        "sender": "Zoë\u2019s Box Office <tickets@example.com>",
        "to": ["Łukasz Żółw <lukasz@example.com>", "ada@example.com"],
    },
    "long subject without spaces": {"subject": "x" * 1500},
    "long subject with spaces": {"subject": " ".join(["word"] * 300)},
    "non-ascii and long body lines": {"text": "é" * 2000 + "\n\nline two\r\nline three", "html": "<p>" + "ü" * 3000},
    "trailing spaces and dots": {"text": "a line with trailing space \n.\n..\nend", "html": "<p>x</p>"},
    "no attachments": {"attachments": []},
    "three attachments": {
        "attachments": [
            _PDF,
            _PDF.model_copy(update={"filename": "ticket-T2.pdf", "data": b""}),
            Attachment(filename="Billett Ærø.pdf", content_type="application/pdf", data=b"%PDF-1.4 x"),
        ]
    },
    "custom headers": {"headers": {"X-Ticketops-Order": "A1B2C3", "X-Note": "Grüße aus Köln"}},
}


@pytest.mark.parametrize("changes", list(_CASES.values()), ids=list(_CASES))
def test_reads_back_as_the_standard_library_builds_it(changes: dict[str, object]) -> None:
    outgoing = _changed(changes)
    raw = build_mime(outgoing)
    ours, theirs = _parse(raw), _reference(outgoing)

    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    for header in ("Message-ID", "From", "To", "Subject", *outgoing.headers):
        assert str(ours[header]) == str(theirs[header]), header
    assert ours["MIME-Version"] == "1.0" and ours["Date"] is not None
    assert ours.get_content_type() == theirs.get_content_type()
    for kind in ("plain", "html"):
        mine, ref = ours.get_body(preferencelist=(kind,)), theirs.get_body(preferencelist=(kind,))
        assert mine is not None and ref is not None
        assert mine.get_content().replace("\r\n", "\n") == ref.get_content().replace("\r\n", "\n")
    got = [(a.get_filename(), a.get_content_type(), a.get_content()) for a in ours.iter_attachments()]
    want = [(a.filename, a.content_type, a.data) for a in outgoing.attachments]
    assert got == want


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"subject": "Hi\r\nBcc: victim@example.com"}, "line breaks"),
        ({"headers": {"X-Note": "a\nb"}}, "line breaks"),
        ({"headers": {"Bad Name": "x"}}, "not a header name"),
        ({"to": ["not-an-address"]}, "no valid address"),
        ({"to": ["zoë@exämple.com"]}, "SMTPUTF8"),
        ({"sender": "Box Office <tickets@example.com>\nBcc: x@y.z"}, "line breaks"),
    ],
)
def test_refuses_what_would_make_a_different_message(changes: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        build_mime(_changed(changes))
