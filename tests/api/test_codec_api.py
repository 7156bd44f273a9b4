"""The codec endpoint the Web UI calls from the browser: staff only, CORS for the UI's origin only."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from pydantic import ValidationError

from runtime.codec import ENCODING, PUBLIC
from runtime.settings import CodecSettings, Settings
from tests.api.identity import IdentityProvider
from tests.harness import Harness

UI = "http://localhost:8233"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


PLAIN = {"metadata": {"encoding": _b64(b"json/plain")}, "data": _b64(json.dumps({"email": "ada@example.com"}).encode())}


async def test_encode_then_decode_as_staff(api: Harness) -> None:
    agent = await api.headers_for("agent-1", "support")
    encoded = await api.http.post("/codec/encode", json={"payloads": [PLAIN]}, headers=agent)
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    assert b"ada@example.com" not in base64.b64decode(sealed["data"])
    decoded = await api.http.post("/codec/decode", json={"payloads": [sealed]}, headers=agent)
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == {"payloads": [PLAIN]}


async def test_without_credentials_the_ui_keeps_ciphertext(api: Harness) -> None:
    sealed = (await api.http.post("/codec/encode", json={"payloads": [PLAIN]})).json()["payloads"]
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.extra["app"]), base_url="http://api")
    async with anonymous:
        resp = await anonymous.post("/codec/decode", json={"payloads": sealed}, headers={"Origin": UI})
        assert resp.status_code == 401
        assert resp.json()["type"].endswith("/unauthorized")
        assert resp.headers["access-control-allow-origin"] == UI  # so the UI can tell why
        assert "ada@example.com" not in resp.text
        wrong = await anonymous.post("/codec/decode", json={"payloads": sealed}, headers={"X-API-Key": "tk_0_x"})
        assert wrong.status_code == 401


async def test_tampered_payload_is_a_problem(api: Harness) -> None:
    [sealed] = (await api.http.post("/codec/encode", json={"payloads": [PLAIN]})).json()["payloads"]
    data = bytearray(base64.b64decode(sealed["data"]))
    data[-1] ^= 0xFF
    resp = await api.http.post("/codec/decode", json={"payloads": [{**sealed, "data": _b64(bytes(data))}]})
    assert resp.status_code == 422 and resp.json()["type"].endswith("/payload-undecodable")
    bad = await api.http.post("/codec/decode", json={"payloads": [{"metadata": {}, "data": "***"}]})
    assert bad.status_code == 422 and bad.json()["type"].endswith("/validation-error")


async def test_cors_preflight_allows_the_ui_origin_only(api: Harness) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    ok = await api.http.options("/codec/decode", headers={"Origin": UI, **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == UI
    assert ok.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in ok.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-namespace"} <= allowed
    evil = await api.http.options("/codec/decode", headers={"Origin": "https://evil.example", **preflight})
    assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
    elsewhere = await api.http.options("/orders", headers={"Origin": UI, **preflight})
    assert "access-control-allow-origin" not in elsewhere.headers  # CORS is for the codec only


async def test_an_empty_payload_list_is_what_the_cli_sends(api: Harness) -> None:
    for route in ("/codec/encode", "/codec/decode"):
        resp = await api.http.post(route, json={})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"payloads": []}


async def test_the_query_parameter_the_web_ui_sends_is_accepted(api: Harness) -> None:
    for route in ("/codec/encode", "/codec/decode"):
        resp = await api.http.post(f"{route}?preserveStorageRefs=true", json={"payloads": [PLAIN]})
        assert resp.status_code == 200, resp.text
    typo = await api.http.post("/codec/decode?preserveStorageRef=true", json={})
    assert typo.status_code == 400 and typo.json()["type"].endswith("/unknown-query-parameter")


async def test_public_payloads_pass_the_codec_untouched(api: Harness) -> None:
    summary = {
        "metadata": {"encoding": _b64(b"json/plain"), PUBLIC: _b64(b"1")},
        "data": _b64(b'"Refund EUR 118.00 on order 32ZXHWXD"'),
    }
    encoded = await api.http.post("/codec/encode", json={"payloads": [summary, PLAIN]})
    assert encoded.status_code == 200, encoded.text
    kept, sealed = encoded.json()["payloads"]
    assert kept == summary
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING


async def test_the_ui_passes_a_signed_access_token(api: Harness, idp: IdentityProvider) -> None:
    """Production: the UI signs users in with OIDC and forwards their access token to the codec."""
    [sealed] = (await api.http.post("/codec/encode", json={"payloads": [PLAIN]})).json()["payloads"]
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.extra["app"]), base_url="http://api")
    async with anonymous:
        for role in ("support", "finance", ["admin"]):
            staff = idp.bearer(idp.token("clara@backoffice.example", role))
            resp = await anonymous.post("/codec/decode", json={"payloads": [sealed]}, headers={"Origin": UI, **staff})
            assert resp.status_code == 200, resp.text
            assert resp.json() == {"payloads": [PLAIN]}
            assert resp.headers["access-control-allow-origin"] == UI
        for headers in (
            idp.bearer(idp.token("visitor@example.com", ["viewer"])),  # signed in, but no staff role
            idp.bearer(idp.token("visitor@example.com", None)),
            idp.bearer(idp.token("clara@backoffice.example", "support", expires_in=-120)),
        ):
            resp = await anonymous.post("/codec/decode", json={"payloads": [sealed]}, headers={"Origin": UI, **headers})
            assert resp.status_code == 401, resp.text
            assert "ada@example.com" not in resp.text


async def test_development_ui_on_loopback_decodes_without_a_token(api: Harness) -> None:
    [sealed] = (await api.http.post("/codec/encode", json={"payloads": [PLAIN]})).json()["payloads"]

    def client(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=api.extra["app"], client=(host, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://api")

    body = {"payloads": [sealed]}
    async with client("127.0.0.1") as local, client("10.1.2.3") as remote:
        assert (await local.post("/codec/decode", json=body, headers={"Origin": UI})).status_code == 401
        api.settings.codec.trust_local_ui = True
        try:
            ok = await local.post("/codec/decode", json=body, headers={"Origin": UI})
            assert ok.status_code == 200 and ok.json() == {"payloads": [PLAIN]}
            # Not the UI's origin, no origin, not from loopback, or not the codec: still refused.
            evil = {"Origin": "http://evil.example"}
            assert (await local.post("/codec/decode", json=body, headers=evil)).status_code == 401
            assert (await local.post("/codec/decode", json=body)).status_code == 401
            assert (await remote.post("/codec/decode", json=body, headers={"Origin": UI})).status_code == 401
            assert (await local.get("/refunds", headers={"Origin": UI})).status_code == 401
        finally:
            api.settings.codec.trust_local_ui = False


def test_production_settings_refuse_the_development_trust() -> None:
    assert Settings(codec=CodecSettings(trust_local_ui=True)).codec.trust_local_ui
    with pytest.raises(ValidationError, match="trust_local_ui"):
        Settings(environment="production", codec=CodecSettings(trust_local_ui=True))
    assert Settings(environment="production").environment == "production"
