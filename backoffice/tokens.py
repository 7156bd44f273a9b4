"""OIDC bearer tokens, checked offline against a JWKS file: no call to the identity provider per request.

The file is re-read when it changes, so rotating the provider's keys needs no
restart. Only asymmetric algorithms are accepted (RS256, ES256): a token
signed with HS256 and the public key as secret is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKSet

from backoffice.principals import Principal
from runtime.settings import AuthSettings
from ticketing.roles import Role

ALGORITHMS = ["RS256", "ES256"]


class TokenRejected(Exception):
    """The token is not one we accept; the message is safe to show the caller."""


@dataclass
class _Cached:
    mtime: float
    keys: PyJWKSet


_cache: dict[Path, _Cached] = {}


def _jwks(path: Path) -> PyJWKSet:
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is None or cached.mtime != mtime:
        cached = _Cached(mtime, PyJWKSet.from_dict(json.loads(path.read_text())))
        _cache[path] = cached
    return cached.keys


def principal_for_token(token: str, settings: AuthSettings) -> Principal:
    if settings.jwks_file is None:
        raise TokenRejected("bearer tokens are not accepted here; use an API key")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as err:
        raise TokenRejected("the bearer token is malformed") from err
    if header.get("alg") not in ALGORITHMS:
        raise TokenRejected("the token's algorithm is not accepted")
    keys = _jwks(settings.jwks_file)
    key = next((k for k in keys.keys if k.key_id == header.get("kid")), None)
    if key is None:
        raise TokenRejected("the token was signed by an unknown key")
    required = ["exp", "iat", settings.name_claim] + (["iss"] if settings.issuer else []) + (
        ["aud"] if settings.audience else []
    )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_seconds,
            options={"require": required, "verify_aud": settings.audience is not None},
        )
    except jwt.ExpiredSignatureError as err:
        raise TokenRejected("the token has expired") from err
    except jwt.PyJWTError as err:
        raise TokenRejected(f"the token is not valid: {type(err).__name__}") from err
    role = _role(claims.get(settings.role_claim))
    if role is None:
        raise TokenRejected(f"the token carries no known role in `{settings.role_claim}`")
    name = str(claims[settings.name_claim])[:200]
    return Principal(name=name, role=role, credential_id=f"jwt:{claims.get('iss', '')}:{name}")


def _role(claim: object) -> Role | None:
    """A single role, or the highest known one of a list (providers often send `roles: [...]`)."""
    values = claim if isinstance(claim, list) else [claim]
    known = [Role(v) for v in values if isinstance(v, str) and v in Role.__members__.values()]
    return max(known, key=lambda r: r.rank, default=None)
