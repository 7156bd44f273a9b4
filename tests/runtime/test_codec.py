"""The payload codec: what reaches the Temporal server is ciphertext, keys rotate, tampering is caught."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import BaseModel, SecretStr
from temporalio.api.common.v1 import Payload

from runtime.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, data_converter
from runtime.settings import CodecSettings


class Contact(BaseModel):
    name: str
    email: str


ADA = Contact(name="Ada Lovelace", email="ada@example.com")


def _settings(active: str, *key_ids: str, keys: dict[str, SecretStr] | None = None) -> CodecSettings:
    keys = keys or {k: SecretStr(base64.b64encode(os.urandom(32)).decode()) for k in key_ids}
    return CodecSettings(keys=keys, active_key_id=active)


async def test_round_trip_through_the_data_converter() -> None:
    converter = data_converter(_settings("k1", "k1"))
    [payload] = await converter.encode([ADA])
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID] == b"k1"
    assert b"ada@example.com" not in payload.SerializeToString()
    assert b"Lovelace" not in payload.SerializeToString()
    assert await converter.decode([payload], [Contact]) == [ADA]


async def test_the_same_value_encrypts_differently_each_time() -> None:
    codec = EncryptionCodec.from_settings(_settings("k1", "k1"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    first, second = await codec.encode([plain, plain])
    assert first.data != second.data
    assert await codec.decode([first, second]) == [plain, plain]


async def test_rotation_old_keys_still_decrypt() -> None:
    old = _settings("2025", "2025")
    rotated = _settings("2026", keys={**old.keys, "2026": SecretStr(base64.b64encode(os.urandom(32)).decode())})
    [written_before] = await data_converter(old).encode([ADA])
    [written_after] = await data_converter(rotated).encode([ADA])
    assert written_after.metadata[KEY_ID] == b"2026"
    assert await data_converter(rotated).decode([written_before, written_after], [Contact, Contact]) == [ADA, ADA]
    retired = _settings("2026", keys={"2026": rotated.keys["2026"]})
    with pytest.raises(CodecError, match="unknown key '2025'"):
        await EncryptionCodec.from_settings(retired).decode([written_before])


async def test_tampered_ciphertext_is_refused() -> None:
    codec = EncryptionCodec.from_settings(_settings("k1", "k1", "k2"))
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'{"amount": 100}')])
    flipped = bytearray(sealed.data)
    flipped[-5] ^= 0x01
    with pytest.raises(CodecError, match="tampered"):
        await codec.decode([Payload(metadata=dict(sealed.metadata), data=bytes(flipped))])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k2"}, data=sealed.data)
    with pytest.raises(CodecError):
        await codec.decode([relabelled])


async def test_unencrypted_payloads_pass_through_for_old_histories() -> None:
    codec = EncryptionCodec.from_settings(_settings("k1", "k1"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    assert await codec.decode([plain]) == [plain]


def test_misconfiguration_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="active key"):
        EncryptionCodec.from_settings(_settings("missing", "k1"))
    with pytest.raises(ValueError, match="bytes"):
        EncryptionCodec({"short": b"0123456789"}, "short")
