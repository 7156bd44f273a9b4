"""The SMTP wire bytes of an `OutgoingEmail`, written directly.

`email.message.EmailMessage` parses and re-folds every header through the header
registry and walks the tree again to flatten it: 3 to 7 ms per ticket email, more than
the SMTP exchange that sends it. Our messages have one fixed shape (text and HTML
alternatives, optional attachments), so they are written here in one pass: headers
folded and RFC 2047-encoded by `email.header`, addresses by `email.utils`, bodies in
7-bit when they allow it and quoted-printable otherwise, attachments in base64. The
tests parse the result with the standard library and compare it with what
`EmailMessage` makes of the same email.
"""

from __future__ import annotations

import base64
import quopri
import re
import secrets
from collections.abc import Sequence
from email.header import Header
from email.utils import encode_rfc2231, formataddr, formatdate, getaddresses
from functools import lru_cache

from email_providers.base import Attachment, OutgoingEmail

_CRLF = "\r\n"
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable ASCII except colon
_MAX_LINE = 998  # RFC 5322: a line may not exceed 998 octets before its CRLF


def _no_line_breaks(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} must not contain line breaks")
    return value


def _unstructured(name: str, value: str) -> str:
    """A folded header line; non-ASCII text (or a word too long to fold) as UTF-8 encoded-words."""
    if not _HEADER_NAME.match(name):
        raise ValueError(f"not a header name: {name!r}")
    value = _no_line_breaks(name, value)
    encoded = Header(value, "us-ascii" if value.isascii() else "utf-8", header_name=name).encode(linesep=_CRLF)
    if any(len(line) > _MAX_LINE - len(name) - 2 for line in encoded.split(_CRLF)):
        encoded = Header(value, "utf-8", header_name=name).encode(linesep=_CRLF)
    return f"{name}: {encoded}"


# A bare address needs no parsing: most recipients, and the sender when configured bare.
_PLAIN_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$")


@lru_cache(maxsize=4096)
def _mailbox(name: str, value: str) -> tuple[str, str]:
    """(header form, bare address) of one mailbox; cached, because the sender is the same on every email."""
    _no_line_breaks(name, value)
    if _PLAIN_ADDRESS.match(value):
        return value, value
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise ValueError(f"header {name} holds no valid address: {value!r}")
    if not pairs[0][1].isascii():
        raise ValueError(f"header {name}: an address outside ASCII needs SMTPUTF8, which we do not use")
    return formataddr(pairs[0], charset="utf-8"), pairs[0][1]


def envelope_address(value: str) -> str:
    """The bare address of a mailbox (`Box Office <tickets@example.com>` -> `tickets@example.com`)."""
    return _mailbox("address", value)[1]


def _addresses(name: str, values: Sequence[str]) -> str:
    return f"{name}: " + ", ".join(_mailbox(name, value)[0] for value in values)


def _text_part(text: str, subtype: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    if lines.isascii() and all(len(line) <= _MAX_LINE for line in lines.split("\n")):
        encoding, body = "7bit", lines
    else:
        encoding = "quoted-printable"
        body = quopri.encodestring(lines.encode("utf-8")).decode("ascii")
    if not body.endswith("\n"):
        body += "\n"
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{_CRLF}'
        f"Content-Transfer-Encoding: {encoding}{_CRLF}{_CRLF}" + body.replace("\n", _CRLF)
    )


def _filename_param(filename: str) -> str:
    _no_line_breaks("filename", filename)
    if filename.isascii() and '"' not in filename and "\\" not in filename:
        return f'filename="{filename}"'
    return f"filename*={encode_rfc2231(filename, 'utf-8')}"


def _attachment_part(attachment: Attachment) -> str:
    data = base64.encodebytes(attachment.data).decode("ascii")
    return (
        f"Content-Type: {attachment.content_type}{_CRLF}"
        f"Content-Transfer-Encoding: base64{_CRLF}"
        f"Content-Disposition: attachment; {_filename_param(attachment.filename)}{_CRLF}{_CRLF}"
        + data.replace("\n", _CRLF)
    )


def _multipart(subtype: str, parts: list[str]) -> str:
    boundary = "=_" + secrets.token_hex(16)
    while any(boundary in part for part in parts):  # pragma: no cover - 128 random bits
        boundary = "=_" + secrets.token_hex(16)
    body = "".join(f"--{boundary}{_CRLF}{part}{_CRLF}" for part in parts)  # the CRLF before "--" is the delimiter's
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"{_CRLF}{_CRLF}{body}--{boundary}--{_CRLF}'


def build_mime(email: OutgoingEmail) -> bytes:
    """The message as SMTP wire bytes (CRLF, 7-bit, lines within 998 octets).

    Providers send these bytes as they are. A header value with a line break, or an
    address that is not one, raises ValueError: the message cannot be sent as asked.
    """
    headers = [
        f"Message-ID: <{email.message_id}>",
        f"Date: {formatdate(localtime=False, usegmt=True)}",
        _addresses("From", [email.sender]),
        _addresses("To", email.to),
        _unstructured("Subject", email.subject),
    ]
    headers += [_unstructured(name, value) for name, value in email.headers.items()]
    headers.append("MIME-Version: 1.0")
    alternative = _multipart("alternative", [_text_part(email.text, "plain"), _text_part(email.html, "html")])
    if email.attachments:
        body = _multipart("mixed", [alternative, *(_attachment_part(a) for a in email.attachments)])
    else:
        body = alternative
    return (_CRLF.join(headers) + _CRLF + body).encode("ascii")
