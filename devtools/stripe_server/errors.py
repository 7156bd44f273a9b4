"""Stripe's error object, and the errors this server answers with.

The stripe SDK picks its exception class from the HTTP status and `type`
(400/404 -> InvalidRequestError or IdempotencyError, 401 -> AuthenticationError,
429 -> RateLimitError, 5xx -> APIError), so both must match Stripe's.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

DOC_BASE = "https://stripe.com/docs/error-codes/"
_ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}
_SYMBOLS = {"eur": "€", "usd": "$", "gbp": "£", "jpy": "¥"}


class StripeError(Exception):
    """An API error, rendered as `{"error": {...}}` with its HTTP status.

    `stored` says whether an idempotent request that ends in this error keeps
    it: Stripe saves a result only once the endpoint began executing, not for
    parameter validation failures.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        stored: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.stored = stored
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOC_BASE + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def format_money(amount: int, currency: str) -> str:
    """Render minor units the way Stripe's messages do, e.g. `€12.50`."""
    cur = currency.lower()
    major = str(amount) if cur in _ZERO_DECIMAL else f"{amount / 100:.2f}"
    symbol = _SYMBOLS.get(cur)
    return f"{symbol}{major}" if symbol else f"{major} {cur.upper()}"


def missing_param(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param, stored=False)


def invalid_integer(param: str, value: object) -> StripeError:
    return StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param, stored=False)


def invalid_param(param: str, message: str) -> StripeError:
    return StripeError(400, message, param=param, stored=False)


def unknown_param(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param, stored=False)


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    return StripeError(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )


def missing_api_key() -> StripeError:
    return StripeError(
        401,
        "You did not provide an API key. You need to provide your API key "
        "in the Authorization header, using Bearer auth (e.g. 'Authorization: "
        "Bearer YOUR_SECRET_KEY').",
    )


def invalid_api_key(key: str) -> StripeError:
    hint = f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"
    return StripeError(401, f"Invalid API Key provided: {hint}")


def rate_limited() -> StripeError:
    return StripeError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        headers={"Retry-After": "1"},
    )


def api_error() -> StripeError:
    return StripeError(
        500, "An unknown error occurred", type="api_error", stored=False, headers={"Stripe-Should-Retry": "true"}
    )


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used with the same "
        "parameters they were first used with. Try using a key other than "
        f"'{key}' if you meant to execute a different request.",
        type="idempotency_error",
        stored=False,
    )


def idempotency_endpoint_mismatch(key: str, first: str, now: str) -> StripeError:
    return StripeError(
        400,
        "Keys for idempotent requests can only be used for the same "
        f"endpoint they were first used for ('{first}' vs '{now}'). Try using "
        f"a key other than '{key}' if you meant to execute a different request.",
        type="idempotency_error",
        stored=False,
    )


def idempotency_in_use(key: str) -> StripeError:
    return StripeError(
        409,
        "There is currently another in-progress request using this "
        "Idempotent Key (that probably means you submitted twice, and the other "
        f"request is still going through): {key}. Please try again later.",
        code="idempotency_key_in_use",
        stored=False,
        headers={"Stripe-Should-Retry": "true"},
    )
