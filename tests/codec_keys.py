"""The session's payload keys: one retired key (still decrypts) and the active one, fresh per run."""

from __future__ import annotations

import base64
import os

from pydantic import SecretStr

from runtime.settings import CodecSettings


def _key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


TEST_CODEC = CodecSettings(keys={"test-retired": _key(), "test-active": _key()}, active_key_id="test-active")
