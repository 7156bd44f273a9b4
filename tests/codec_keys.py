"""Payload keys for tests: fresh per run, except when recording the replay corpus.

`REPLAY_CODEC` is the fixed key of the recorded histories (`tests/replay/histories`,
`tests/e2e/histories`): a test key, committed on purpose, never used outside tests. A run with
`TICKETOPS_RECORD_HISTORIES` set (`python -m tests.replay.record`) encrypts with it, so the
histories it writes can be replayed by every later run.
"""

from __future__ import annotations

import base64
import os

from pydantic import SecretStr

from runtime.settings import CodecSettings

RECORD_ENV = "TICKETOPS_RECORD_HISTORIES"
REPLAY_KEY = SecretStr(base64.b64encode(b"replay-fixture-key-not-a-secret!").decode())
REPLAY_CODEC = CodecSettings(keys={"replay-fixture": REPLAY_KEY}, active_key_id="replay-fixture")


def _key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


# The session's payload keys: one retired key (still decrypts) and the active one.
TEST_CODEC = (
    REPLAY_CODEC
    if os.environ.get(RECORD_ENV)
    else CodecSettings(keys={"test-retired": _key(), "test-active": _key()}, active_key_id="test-active")
)
