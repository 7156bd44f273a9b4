"""Authentication and roles as FastAPI dependencies.

Every route declares the least role it needs with `require(Role.X)`, or is
listed in `PUBLIC_ROUTES` (authenticated some other way, or harmless). The
app also runs `authenticated_unless_public` on every route, so a route whose
author forgot `require` still refuses anonymous callers; a test fails for it.
Credentials: `Authorization: Bearer tk_...` or `X-API-Key: tk_...` (API keys),
or `Authorization: Bearer <JWT>` from the configured identity provider.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit

import structlog
from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from backoffice.api.problems import ProblemError
from backoffice.api.rate_limit import RateLimiter, retry_after_header
from backoffice.principals import Principal, principal_for_key
from backoffice.tokens import TokenRejected, principal_for_token
from ticketing.roles import Role
from ticketing.store.api_keys import looks_like_api_key

log = structlog.get_logger(__name__)

# (method, path) of the routes anyone may call. The Stripe webhook is authenticated by its signature.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metrics"),  # scraped by Prometheus; only counts and ages, no personal data
        ("POST", "/webhooks/stripe"),
        # The buyer's personalisation link: the signed token in the path is the credential.
        ("GET", "/personalisation/{token}"),
        ("POST", "/personalisation/{token}"),
        # The transfer recipient's link, likewise.
        ("GET", "/transfers/{token}"),
        ("POST", "/transfers/{token}/accept"),
        # The holder's "manage your ticket" link, which starts a transfer of that one ticket.
        ("POST", "/transfers/start/{token}"),
        # The buyer's return link.
        ("POST", "/returns/{token}"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
    }
)

_bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="An API key (`tk_...`) or an OIDC JWT.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey", description="An API key.")
_CHALLENGE = 'Bearer realm="ticketops"'


def _unauthorized(detail: str, *, invalid: bool) -> ProblemError:
    challenge = _CHALLENGE + (', error="invalid_token"' if invalid else "")
    return ProblemError(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def _credential(request: Request) -> str | None:
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _missing_credential_detail(request: Request) -> str:
    """Say what is wrong with what was sent, and how to send it right."""
    how = "send `Authorization: Bearer <API key or token>` or `X-API-Key: <API key>`"
    sent = request.headers.get("Authorization", "").strip()
    if not sent:
        return f"credentials are required: {how}"
    scheme, _, value = sent.partition(" ")
    if looks_like_api_key(sent) or not value:
        return f"the Authorization header holds a credential without its scheme: {how}"
    return f"the Authorization scheme {scheme!r} is not supported: {how}"


async def principal_of(request: Request) -> Principal:
    """The caller, authenticated once per request and rate-limited per credential."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    app_state = request.app.state.ticketops
    credential = _credential(request)
    if credential is None and _trusted_local_ui(request):
        request.state.principal = LOCAL_UI
        return LOCAL_UI
    if credential is None:
        raise _unauthorized(_missing_credential_detail(request), invalid=False)
    if looks_like_api_key(credential):
        principal = await principal_for_key(app_state.store, credential)
        if principal is None:
            log.info("auth.rejected", method="api-key")
            raise _unauthorized("the API key is unknown or revoked", invalid=True)
    else:
        try:
            principal = principal_for_token(credential, app_state.settings.auth)
        except TokenRejected as err:
            log.info("auth.rejected", method="jwt", why=str(err))
            raise _unauthorized(str(err), invalid=True) from err
    _rate_limit(request, principal)
    request.state.principal = principal
    return principal


# Who the development Web UI decodes as when `codec.trust_local_ui` is on.
LOCAL_UI = Principal(name="local-web-ui", role=Role.SUPPORT, credential_id="local-web-ui")


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _trusted_local_ui(request: Request) -> bool:
    """Development only (production settings refuse it): the Web UI on this machine reads the codec.

    All of: the setting is on, the route is the codec's, the connection comes from
    loopback, and the browser says the page is a configured UI origin on loopback.
    """
    codec = request.app.state.ticketops.settings.codec
    if not codec.trust_local_ui or not request.url.path.startswith("/codec/"):
        return False
    origin = request.headers.get("Origin")
    client = request.client.host if request.client else None
    return (
        origin is not None
        and origin in codec.cors_origins
        and _loopback(urlsplit(origin).hostname)
        and _loopback(client)
    )


def _rate_limit(request: Request, principal: Principal) -> None:
    per_minute = request.app.state.ticketops.settings.auth.rate_limit_per_minute
    if per_minute is None:
        return
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None or limiter.capacity != per_minute:
        limiter = request.app.state.rate_limiter = RateLimiter(per_minute)
    wait = limiter.take(principal.credential_id)
    if wait > 0:
        raise ProblemError(
            429,
            "rate-limited",
            f"more than {per_minute} requests a minute with this credential; slow down",
            headers={"Retry-After": retry_after_header(wait)},
        )


def require(role: Role | str) -> Callable[..., Awaitable[Principal]]:
    """Route dependency: the caller must hold `role` or a higher one."""
    needed = Role(role)

    async def dependency(
        request: Request,
        _bearer_credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
        _api_key_value: Annotated[str | None, Security(_api_key)] = None,
    ) -> Principal:
        principal = await principal_of(request)
        if not principal.role.includes(needed):
            raise ProblemError(403, "forbidden", f"this needs the {needed.value} role; you have {principal.role.value}")
        return principal

    dependency.required_role = needed  # type: ignore[attr-defined]
    dependency.__name__ = f"require_{needed.value}"
    return dependency


def route_key(request: Request) -> tuple[str, str] | None:
    route: Any = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return (request.method, path) if path else None


async def authenticated_unless_public(request: Request) -> None:
    """App-wide safety net: a route without `require` still needs some authenticated caller."""
    key = route_key(request)
    if key is None or key in PUBLIC_ROUTES or (key[0] == "HEAD" and ("GET", key[1]) in PUBLIC_ROUTES):
        return
    await principal_of(request)


def iter_routes(routes: Any) -> Iterator[Any]:
    """Every route with its effective path and dependencies (FastAPI includes routers lazily)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            yield from contexts()
        else:
            yield route


def declared_role(route: Any) -> Role | None:
    """The least role a route declares through `require`, found anywhere in its dependency tree."""
    stack = [getattr(route, "dependant", None)]
    roles: list[Role] = []
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        role = getattr(dependant.call, "required_role", None)
        if role is not None:
            roles.append(role)
        stack.extend(dependant.dependencies)
    return max(roles, key=lambda r: r.rank, default=None)


SUPPORT = require(Role.SUPPORT)
FINANCE = require(Role.FINANCE)
ADMIN = require(Role.ADMIN)
