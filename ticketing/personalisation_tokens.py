"""Signed, expiring personalisation links: plain functions over a secret, no I/O.

A token is `<payload>.<signature>`, both base64url without padding. The payload is
`v1:{order_code}:{round}:{expires_unix}`; the signature is HMAC-SHA256 of the payload under a
key derived from the signing secret for this one purpose, so a signature made for anything
else with the same secret never verifies here.

The round is the order's personalisation round: every reset raises it, so a link from an
earlier round is refused as superseded. Only the store knows the current round, so that
last check (`check_current`) takes it as an argument.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from ticketing.errors import DomainError

LINK_LIFETIME = timedelta(days=14)
_VERSION = "v1"
_PURPOSE = b"ticketops/personalisation-link/v1"
_MAX_TOKEN = 300


class InvalidLink(DomainError):
    """Malformed, tampered with, or signed with another secret."""

    type = "personalisation-link-invalid"
    status = 403


class ExpiredLink(DomainError):
    type = "personalisation-link-expired"
    status = 410


class SupersededLink(DomainError):
    """A later reset sent the buyer a newer link."""

    type = "personalisation-link-superseded"
    status = 410


class LinkClaims(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_code: str
    round: int
    expires_at: datetime


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, claims: LinkClaims) -> str:
    if ":" in claims.order_code or claims.round < 1:
        raise ValueError("order codes carry no ':' and rounds start at 1")
    expires = int(claims.expires_at.timestamp())
    payload = f"{_VERSION}:{claims.order_code}:{claims.round}:{expires}".encode()
    signature = hmac.new(_key(secret), payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify_token(secret: str, token: str, *, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired token; refuses anything else with a stable type."""
    invalid = InvalidLink("this personalisation link is not valid")
    if len(token) > _MAX_TOKEN or token.count(".") != 1:
        raise invalid
    payload_b64, signature_b64 = token.split(".")
    try:
        payload, signature = _unb64(payload_b64), _unb64(signature_b64)
    except (binascii.Error, ValueError):
        raise invalid from None
    expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise invalid
    try:
        version, code, round_text, expires_text = payload.decode().split(":")
        claims = LinkClaims(
            order_code=code,
            round=int(round_text),
            expires_at=datetime.fromtimestamp(int(expires_text), UTC),
        )
    except (ValueError, OverflowError, OSError):  # signed by us: only a format change lands here
        raise invalid from None
    if version != _VERSION:
        raise invalid
    if now >= claims.expires_at:
        raise ExpiredLink("this personalisation link has expired; ask for a new one")
    return claims


def check_current(claims: LinkClaims, current_round: int) -> None:
    """Refuse a link of an earlier round: the buyer was sent a newer one."""
    if claims.round != current_round:
        raise SupersededLink("a newer personalisation link was sent for this order")
