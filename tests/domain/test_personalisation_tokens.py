"""Personalisation link tokens: genuine, tampered, foreign, expired and superseded."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from ticketing.errors import DomainError
from ticketing.personalisation_tokens import (
    ExpiredLink,
    InvalidLink,
    LinkClaims,
    SupersededLink,
    check_current,
    make_token,
    verify_token,
)

SECRET = "s3cret"
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
CLAIMS = LinkClaims(order_code="ABCD2345", round=2, expires_at=NOW + timedelta(days=14))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip() -> None:
    token = make_token(SECRET, CLAIMS)
    assert verify_token(SECRET, token, now=NOW) == CLAIMS
    assert make_token(SECRET, CLAIMS) == token  # deterministic: every email retry signs the same link


def _refused(token: str, secret: str = SECRET) -> DomainError:
    with pytest.raises(InvalidLink) as info:
        verify_token(secret, token, now=NOW)
    assert info.value.type == "personalisation-link-invalid" and info.value.status == 403
    return info.value


def test_tampered_signature_payload_and_foreign_secret_are_invalid() -> None:
    token = make_token(SECRET, CLAIMS)
    payload, signature = token.split(".")
    _refused(f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}")
    forged = _b64(f"v1:ABCD2345:3:{int(CLAIMS.expires_at.timestamp())}".encode())
    _refused(f"{forged}.{signature}")  # a later round, with the old signature
    _refused(token, secret="another-secret")


def test_a_plain_hmac_under_the_same_secret_is_not_accepted() -> None:
    """The key is derived for this purpose, so an HMAC made elsewhere with the secret fails."""
    payload = f"v1:ABCD2345:2:{int(CLAIMS.expires_at.timestamp())}".encode()
    naive = hmac.new(SECRET.encode(), payload, hashlib.sha256).digest()
    _refused(f"{_b64(payload)}.{_b64(naive)}")


@pytest.mark.parametrize("token", ["", "nodot", "a.b.c", "!!!.???", "x" * 400, ".", "YQ.YQ"])
def test_malformed_tokens_are_invalid(token: str) -> None:
    _refused(token)


def test_expiry_is_exclusive() -> None:
    token = make_token(SECRET, CLAIMS)
    assert verify_token(SECRET, token, now=CLAIMS.expires_at - timedelta(seconds=1)) == CLAIMS
    with pytest.raises(ExpiredLink) as info:
        verify_token(SECRET, token, now=CLAIMS.expires_at)
    assert info.value.type == "personalisation-link-expired" and info.value.status == 410


def test_an_older_round_is_superseded() -> None:
    check_current(CLAIMS, 2)
    with pytest.raises(SupersededLink) as info:
        check_current(CLAIMS, 3)
    assert info.value.type == "personalisation-link-superseded" and info.value.status == 410


def test_codes_with_the_separator_cannot_be_signed() -> None:
    with pytest.raises(ValueError):
        make_token(SECRET, CLAIMS.model_copy(update={"order_code": "A:B"}))
    with pytest.raises(ValueError):
        make_token(SECRET, CLAIMS.model_copy(update={"round": 0}))
