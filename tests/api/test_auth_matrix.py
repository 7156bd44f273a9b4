"""Every route against every kind of caller: only the authentication outcome is asserted.

Routes are enumerated from the app, so a route added tomorrow is in the matrix
without anyone editing this file; one that declares no role fails at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backoffice.api.auth import PUBLIC_ROUTES, declared_role, iter_routes
from tests.api.identity import IdentityProvider
from tests.harness import Harness
from ticketing.roles import Role
from ticketing.store.api_keys import create_api_key, revoke_api_key

UNAUTHORIZED = "https://ticketops.dev/problems/unauthorized"
FORBIDDEN = "https://ticketops.dev/problems/forbidden"
_DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    role: Role | None  # None: public

    def url(self) -> str:
        return re.sub(r"\{[^}]+\}", "X1", self.path)

    def request_kwargs(self) -> dict[str, Any]:
        return {"json": {}} if self.method in ("POST", "PUT", "PATCH") else {}


def endpoints(app: Any) -> list[Endpoint]:
    found = []
    for route in iter_routes(app.routes):
        path = getattr(route, "path_format", None) or route.path
        for method in sorted(getattr(route, "methods", None) or ()):
            if method == "HEAD":
                continue
            public = (method, path) in PUBLIC_ROUTES
            found.append(Endpoint(method, path, None if public else declared_role(route)))
    return found


def test_every_route_declares_a_role_or_is_listed_public(api: Harness) -> None:
    app = api.extra["app"]
    undeclared = [
        f"{e.method} {e.path}" for e in endpoints(app) if e.role is None and (e.method, e.path) not in PUBLIC_ROUTES
    ]
    assert undeclared == [], "declare `require(Role.X)` on these routes or list them in PUBLIC_ROUTES"
    listed = {(e.method, e.path) for e in endpoints(app)}
    assert listed >= PUBLIC_ROUTES, f"stale public entries: {PUBLIC_ROUTES - listed}"
    public_with_role = [
        f"{m} {p}"
        for r in iter_routes(app.routes)
        for m in getattr(r, "methods", None) or ()
        if (m, p := getattr(r, "path_format", "")) in PUBLIC_ROUTES and declared_role(r) is not None
    ]
    assert public_with_role == []


async def _call(http: httpx.AsyncClient, endpoint: Endpoint, headers: dict[str, str]) -> httpx.Response:
    return await http.request(endpoint.method, endpoint.url(), headers=headers, **endpoint.request_kwargs())


def _denied(resp: httpx.Response) -> str | None:
    """'unauthorized', 'forbidden' or None (the request got past authentication)."""
    if resp.status_code == 401:
        assert resp.json()["type"] == UNAUTHORIZED, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        return "unauthorized"
    if resp.status_code == 403 and resp.json().get("type") == FORBIDDEN:
        return "forbidden"
    return None


async def test_matrix(api: Harness, idp: IdentityProvider) -> None:
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.extra["app"]), base_url="http://api")
    revoked_key, revoked_row = await create_api_key(api.store, "gone", Role.ADMIN)
    assert await revoke_api_key(api.store, revoked_row.id)
    admin_key = await api.key_for("backoffice", Role.ADMIN)
    bad_callers = {
        "wrong key": {"X-API-Key": admin_key[:-4] + "AAAA"},
        "unknown key id": {"Authorization": "Bearer tk_ffffffffffff_" + "A" * 43},
        "revoked key": {"X-API-Key": revoked_key},
        "expired JWT": idp.bearer(idp.token("ana", "admin", expires_in=-3600)),
        "JWT with a bad signature": idp.bearer(idp.token("ana", "admin", signing_key=IdentityProvider(
            api.settings.auth.jwks_file.with_name("other.json")).rsa_key)),  # type: ignore[union-attr]
        "JWT from the wrong issuer": idp.bearer(idp.token("ana", "admin", iss="https://evil.test")),
        "JWT for another audience": idp.bearer(idp.token("ana", "admin", aud="someone-else")),
        "JWT without a role": idp.bearer(idp.token("ana", None)),
        "not a credential": {"Authorization": "Bearer hello"},
    }
    good_callers: dict[str, tuple[Role, dict[str, str]]] = {
        role.value: (role, await api.headers_for(f"matrix-{role.value}", role)) for role in Role
    }
    good_callers["finance JWT (ES256)"] = (Role.FINANCE, idp.bearer(idp.token("fin-jwt", "finance", alg="ES256")))
    good_callers["support JWT (RS256, role list)"] = (
        Role.SUPPORT, idp.bearer(idp.token("sup-jwt", ["viewer", "support"]))
    )

    found = endpoints(api.extra["app"])
    assert any(e.path == "/orders/{code}/refunds" for e in found)  # the enumeration sees included routers
    wrong: list[str] = []
    for endpoint in found:
        if endpoint.path in _DOCS:
            continue
        label = f"{endpoint.method} {endpoint.path}"
        outcome = _denied(await _call(anonymous, endpoint, {}))
        if outcome != (None if endpoint.role is None else "unauthorized"):
            wrong.append(f"{label} without credentials: {outcome}")
        if endpoint.role is None:
            continue
        for name, headers in bad_callers.items():
            if (outcome := _denied(await _call(anonymous, endpoint, headers))) != "unauthorized":
                wrong.append(f"{label} with {name}: {outcome}")
        for name, (role, headers) in good_callers.items():
            expected = None if role.includes(endpoint.role) else "forbidden"
            if (outcome := _denied(await _call(anonymous, endpoint, headers))) != expected:
                wrong.append(f"{label} as {name}: {outcome}, expected {expected}")
    await anonymous.aclose()
    assert wrong == []


@pytest.mark.parametrize(
    ("route", "allowed"),
    [
        (("GET", "/orders"), {Role.SUPPORT, Role.FINANCE, Role.ADMIN}),
        (("POST", "/orders/{code}/resend"), {Role.SUPPORT, Role.FINANCE, Role.ADMIN}),
        (("POST", "/orders/{code}/refunds"), {Role.FINANCE, Role.ADMIN}),
        (("POST", "/refunds/{refund_id}/approve"), {Role.FINANCE, Role.ADMIN}),
        (("POST", "/codec/decode"), {Role.SUPPORT, Role.FINANCE, Role.ADMIN}),
    ],
)
def test_roles_of_known_routes(api: Harness, route: tuple[str, str], allowed: set[Role]) -> None:
    """The matrix derives expectations from the routes; this pins the policy itself for a few."""
    endpoint = next(e for e in endpoints(api.extra["app"]) if (e.method, e.path) == route)
    assert endpoint.role is not None
    assert {r for r in Role if r.includes(endpoint.role)} == allowed
