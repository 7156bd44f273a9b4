"""The codec endpoint the Web UI calls from the browser: staff only, CORS for the UI's origin only."""

from __future__ import annotations

import base64
import json

import httpx

from runtime.codec import ENCODING
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
