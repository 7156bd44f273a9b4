"""Payload encryption: personal data in workflow histories is AES-GCM ciphertext on the Temporal server.

Each payload is serialised whole (metadata and data) and sealed with the active
key; the key id travels in the payload's metadata, so a rotated-out key still
decrypts old histories as long as it stays configured. The key id is also the
associated data, so a payload cannot be relabelled to another key. Payloads
that are not ours (written before encryption was turned on) pass through.

Public payloads stay plaintext so every Web UI user reads them: a workflow's
summary and its current details (the `__temporal_workflow_metadata` answer).
Only our payload converter marks a payload public, and only for a `PublicText`
or a `WorkflowMetadata` value: a plain `str` is sealed like everything else, so
a caller has to say, at the line that writes the summary, that it is public.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from runtime.settings import CodecSettings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_NONCE = 12
# Metadata our converter sets on payloads that carry no personal data by construction.
PUBLIC = "ticketops-public"


class PublicText(str):
    """Text that holds no personal data (ids, amounts, statuses): stored and shown unencrypted.

    Pass it as a workflow's `static_summary`; the SDK hands the same object to the
    payload converter, which marks its payload public.
    """

    __slots__ = ()


def is_public(payload: Payload) -> bool:
    return payload.metadata.get(PUBLIC) == b"1"


class MarkingPayloadConverter(PydanticPayloadConverter):
    """The pydantic converter, marking the payloads of public values for the codec to leave alone."""

    def to_payloads(self, values: Sequence[object]) -> list[Payload]:
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            if isinstance(value, PublicText | WorkflowMetadata):
                payload.metadata[PUBLIC] = b"1"
        return payloads


class CodecError(Exception):
    """A payload that cannot be decrypted: unknown key, or tampered with."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise ValueError(f"the active key {active_key_id!r} is not among the configured keys")
        for key_id, key in keys.items():
            if len(key) not in (16, 24, 32):
                raise ValueError(f"key {key_id!r} must be 16, 24 or 32 bytes, not {len(key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id

    @classmethod
    def from_settings(cls, settings: CodecSettings) -> EncryptionCodec:
        keys = {key_id: base64.b64decode(secret.get_secret_value()) for key_id, secret in settings.keys.items()}
        return cls(keys, settings.active_key_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [p if is_public(p) else self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.active_key_id
        nonce = os.urandom(_NONCE)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(f"payload encrypted with unknown key {key_id!r}")
        try:
            plain = cipher.decrypt(payload.data[:_NONCE], payload.data[_NONCE:], key_id.encode())
        except InvalidTag as err:
            raise CodecError("payload failed authentication: tampered with or wrong key") from err
        return Payload.FromString(plain)


def data_converter(settings: CodecSettings) -> DataConverter:
    """The pydantic data converter with our encryption codec: use it for every client and worker."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=MarkingPayloadConverter,
        payload_codec=EncryptionCodec.from_settings(settings),
    )
