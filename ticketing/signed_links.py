"""Signed, expiring links for buyers and recipients: plain functions over a secret, no I/O.

A token is `<payload>.<signature>`, both base64url without padding. The payload is
`{purpose}|{subject}|{expires_unix}`; the signature is HMAC-SHA256 under a key derived
from the signing secret for that one purpose, so a transfer link never verifies as a
return link (or as a personalisation link, which keeps its own module and format).
The subject is an id (a transfer id, an order code): never personal data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime

from ticketing.errors import DomainError

_MAX_TOKEN = 400


class LinkInvalid(DomainError):
    """Malformed, tampered with, signed for another purpose or with another secret."""

    status = 403


class LinkExpired(DomainError):
    status = 410


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"ticketops/{purpose}/v1".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, subject: str, expires_at: datetime) -> str:
    if "|" in subject or "|" in purpose:
        raise ValueError("purposes and subjects carry no '|'")
    payload = f"{purpose}|{subject}|{int(expires_at.timestamp())}".encode()
    return f"{_b64(payload)}.{_b64(hmac.new(_key(secret, purpose), payload, hashlib.sha256).digest())}"


def verify(secret: str, purpose: str, token: str, *, now: datetime) -> tuple[str, datetime]:
    """(subject, expires_at) of a genuine, unexpired token for `purpose`; refuses anything else."""
    invalid = LinkInvalid("this link is not valid", type=f"{purpose}-link-invalid")
    if len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise invalid
    payload_b64, signature_b64 = token.split(".")
    try:
        payload, signature = _unb64(payload_b64), _unb64(signature_b64)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not hmac.compare_digest(signature, hmac.new(_key(secret, purpose), payload, hashlib.sha256).digest()):
        raise invalid
    try:
        got_purpose, subject, expires_text = payload.decode().split("|")
        expires_at = datetime.fromtimestamp(int(expires_text), UTC)
    except (ValueError, OverflowError, OSError):
        raise invalid from None
    if got_purpose != purpose:
        raise invalid
    if now >= expires_at:
        raise LinkExpired("this link has expired", type=f"{purpose}-link-expired")
    return subject, expires_at
