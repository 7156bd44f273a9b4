"""The documented production configuration of the Web UI codec (deploy/temporal-ui) is one that works."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from runtime.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "temporal-ui"


def _env(name: str) -> dict[str, str]:
    lines = (DEPLOY / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def test_the_ui_signs_in_and_passes_the_access_token_to_our_codec() -> None:
    ui = _env("ui.env.example")
    assert ui["TEMPORAL_AUTH_ENABLED"] == "true" and ui["TEMPORAL_AUTH_TYPE"] == "oidc"
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
    assert ui["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")


def test_the_api_example_loads_as_production_and_refuses_the_dev_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _env("api.env.example")
    for key, value in api.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.environment == "production" and settings.auth.audience == "ticketops-api"
    assert settings.codec.cors_origins == ["https://temporal.example.com"]
    assert settings.codec.cors_origins[0].startswith("https://") and not settings.codec.trust_local_ui
    monkeypatch.setenv("TICKETOPS_CODEC__TRUST_LOCAL_UI", "true")
    with pytest.raises(ValidationError, match="trust_local_ui"):
        Settings()
