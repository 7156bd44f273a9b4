"""Temporal's remote codec endpoint, so staff read personal data in the Web UI and nobody else does.

The Web UI posts `{"payloads": [...]}` (protobuf JSON: base64 metadata values
and data) to `/codec/decode` from the browser, so these two routes answer CORS
for the UI's origins only. A caller without a support role gets 401/403 and
the UI keeps showing ciphertext. In production the UI passes the signed-in
user's OIDC access token (checked against the JWKS); under `ticketops dev` the
UI on loopback is trusted without one (`codec.trust_local_ui`, see auth.py).
The CLI sends `{}` when a command has no payloads: that is an empty list.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel, Field, field_validator
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from backoffice.api.auth import SUPPORT
from backoffice.api.deps import AppState, state
from backoffice.api.problems import ProblemError
from runtime.codec import CodecError, EncryptionCodec

PREFIX = "/codec"

router = APIRouter(prefix=PREFIX, tags=["codec"], dependencies=[Depends(SUPPORT)])


class EncodedPayload(BaseModel):
    """A payload in protobuf JSON form: bytes as standard base64."""

    metadata: dict[str, str] = Field(default_factory=dict, description="Metadata values, base64.")
    data: str = Field(default="", description="The payload's bytes, base64.")

    @field_validator("data")
    @classmethod
    def _data_is_base64(cls, value: str) -> str:
        if value:
            binascii.a2b_base64(value, strict_mode=True)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_is_base64(cls, value: dict[str, str]) -> dict[str, str]:
        for item in value.values():
            if item:
                binascii.a2b_base64(item, strict_mode=True)
        return value

    def payload(self) -> Payload:
        return Payload(
            metadata={k: base64.b64decode(v) for k, v in self.metadata.items()}, data=base64.b64decode(self.data)
        )

    @classmethod
    def of(cls, payload: Payload) -> EncodedPayload:
        return cls(
            metadata={k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            data=base64.b64encode(payload.data).decode(),
        )


class PayloadsBody(BaseModel):
    payloads: list[EncodedPayload] = Field(default_factory=list, max_length=1000)

    model_config = {
        "json_schema_extra": {
            "examples": [{"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJhIjoxfQ=="}]}]
        }
    }


# The Web UI (2.5x) adds `?preserveStorageRefs=true` to its codec calls: it concerns codecs that move
# large payloads to external storage, which ours does not, so it is accepted and changes nothing.
PreserveStorageRefs = Annotated[
    bool, Query(alias="preserveStorageRefs", description="Sent by the Web UI; no effect here.")
]


def _codec(st: AppState) -> EncryptionCodec:
    return EncryptionCodec.from_settings(st.settings.codec)


@router.post("/decode", response_model=PayloadsBody)
async def decode(
    body: PayloadsBody, st: Annotated[AppState, Depends(state)], _refs: PreserveStorageRefs = False
) -> PayloadsBody:
    """Decrypt payloads for the Web UI; plaintext payloads come back as they are."""
    try:
        decoded = await _codec(st).decode([p.payload() for p in body.payloads])
    except CodecError as err:
        raise ProblemError(422, "payload-undecodable", str(err)) from err
    return PayloadsBody(payloads=[EncodedPayload.of(p) for p in decoded])


@router.post("/encode", response_model=PayloadsBody)
async def encode(
    body: PayloadsBody, st: Annotated[AppState, Depends(state)], _refs: PreserveStorageRefs = False
) -> PayloadsBody:
    """Encrypt payloads the Web UI sends (signal or start input typed by a user) with the active key."""
    encoded = await _codec(st).encode([p.payload() for p in body.payloads])
    return PayloadsBody(payloads=[EncodedPayload.of(p) for p in encoded])


class CodecCors:
    """CORS on the codec routes only, for the origins configured when the request comes in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._by_origins: dict[tuple[str, ...], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        origins = tuple(scope["app"].state.ticketops.settings.codec.cors_origins)
        cors = self._by_origins.get(origins)
        if cors is None:
            cors = self._by_origins[origins] = CORSMiddleware(
                self.app,
                allow_origins=origins,
                allow_methods=["POST"],
                allow_headers=["Authorization", "Content-Type", "X-Namespace", "X-API-Key", "Caller-Type"],
                allow_credentials=True,
                max_age=600,
            )
        await cors(scope, receive, send)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_middleware(CodecCors)
