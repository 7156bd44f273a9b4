"""A stand-in identity provider: RS256 and ES256 signing keys, their JWKS file, and tokens."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from runtime.settings import AuthSettings

ISSUER = "https://id.ticketops.test"
AUDIENCE = "ticketops-api"


@dataclass
class IdentityProvider:
    jwks_file: Path
    rsa_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    ec_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        rsa_jwk = json.loads(RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk = json.loads(ECAlgorithm.to_jwk(self.ec_key.public_key()))
        keys = [rsa_jwk | {"kid": "rsa-1", "alg": "RS256", "use": "sig"}, ec_jwk | {"kid": "ec-1", "alg": "ES256"}]
        self.jwks_file.write_text(json.dumps({"keys": keys}))

    def settings(self, **changes: Any) -> AuthSettings:
        return AuthSettings(jwks_file=self.jwks_file, issuer=ISSUER, audience=AUDIENCE, **changes)

    def token(
        self,
        subject: str,
        role: str | list[str] | None,
        *,
        alg: str = "RS256",
        expires_in: float = 300,
        signing_key: Any = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + expires_in}
        if role is not None:
            body["ticketops_role"] = role
        body.update(claims)
        key = signing_key or (self.rsa_key if alg == "RS256" else self.ec_key)
        kid = "rsa-1" if alg == "RS256" else "ec-1"
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}
