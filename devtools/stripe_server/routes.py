"""The API surface: which method and path runs which operation.

Handlers are plain synchronous functions over the state (SQLite calls are
quick); the pipeline in `app.py` does auth, limits, faults and idempotency
around them, so they only express Stripe's behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import balance, expand, payments, refunds
from .errors import invalid_param, no_such
from .events import with_delivery
from .listing import list_object
from .state import RequestContext, ServerState

Handler = Callable[[ServerState, RequestContext, dict[str, Any], tuple[str, ...]], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


def _retrieve_intent(
    state: ServerState, _ctx: RequestContext, _params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    return payments.get_payment_intent(state, ids[0])


def _list_intents(
    state: ServerState, _ctx: RequestContext, params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    return list_object(state, "payment_intent", "/v1/payment_intents", params)


def _create_intent(
    state: ServerState, ctx: RequestContext, params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    return payments.create_payment_intent(state, params, ctx)


def _confirm_intent(
    state: ServerState, ctx: RequestContext, params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    return payments.confirm_payment_intent(state, ids[0], params, ctx)


def _cancel_intent(
    state: ServerState, ctx: RequestContext, params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    return payments.cancel_payment_intent(state, ids[0], params, ctx)


def _retrieve_charge(
    state: ServerState, _ctx: RequestContext, _params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    refunds.settle_due(state)
    return payments.get_charge(state, ids[0])


def _list_charges(
    state: ServerState, _ctx: RequestContext, params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    refunds.settle_due(state)
    equals = {"payment_intent": params["payment_intent"]} if params.get("payment_intent") else None
    return list_object(state, "charge", "/v1/charges", params, equals=equals)


def _create_refund(
    state: ServerState, ctx: RequestContext, params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    return refunds.create_refund(state, params, ctx)


def _retrieve_refund(
    state: ServerState, _ctx: RequestContext, params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    fields = expand.requested(params, "refund", listing=False)
    return expand.expand(state, "refund", [refunds.get_refund(state, ids[0])], fields)[0]


def _update_refund(
    state: ServerState, ctx: RequestContext, params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    return refunds.update_refund(state, ids[0], params, ctx)


def _cancel_refund(
    state: ServerState, ctx: RequestContext, _params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    return refunds.cancel_refund(state, ids[0], ctx)


def _list_refunds(
    state: ServerState, _ctx: RequestContext, params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    fields = expand.requested(params, "refund", listing=True)
    refunds.settle_due(state)
    equals = {k: str(params[k]) for k in ("payment_intent", "charge") if params.get(k)}
    page = list_object(state, "refund", "/v1/refunds", params, equals=equals or None)
    expand.expand(state, "refund", page["data"], fields)
    return page


def _retrieve_event(
    state: ServerState, _ctx: RequestContext, _params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    event = state.store.get("event", ids[0])
    if event is None:
        raise no_such("event", ids[0])
    return with_delivery(state, [event])[0]


def _list_events(
    state: ServerState, _ctx: RequestContext, params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    refunds.settle_due(state)
    types: list[str] = []
    if params.get("type"):
        types.append(str(params["type"]))
    if isinstance(params.get("types"), list):
        types.extend(str(t) for t in params["types"])
    if len(types) > 20:
        raise invalid_param("types", "You may specify at most 20 event types.")
    delivered = params.get("delivery_success")
    if delivered not in (None, "true", "false"):
        raise invalid_param("delivery_success", f"Invalid boolean: {delivered}")
    listed = list_object(
        state,
        "event",
        "/v1/events",
        params,
        types=types or None,
        delivered=None if delivered is None else delivered == "true",
    )
    listed["data"] = with_delivery(state, listed["data"])
    return listed


def _list_balance_transactions(
    state: ServerState, _ctx: RequestContext, params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    refunds.settle_due(state)
    return balance.list_transactions(state, params)


def _retrieve_balance_transaction(
    state: ServerState, _ctx: RequestContext, _params: dict[str, Any], ids: tuple[str, ...]
) -> dict[str, Any]:
    refunds.settle_due(state)
    return balance.get(state, ids[0])


def _balance(
    state: ServerState, _ctx: RequestContext, _params: dict[str, Any], _ids: tuple[str, ...]
) -> dict[str, Any]:
    """Charges captured minus refunds not failed, per currency; all of it `available`."""
    refunds.settle_due(state)
    totals: dict[str, int] = {}
    for charge in state.store.query("charge"):
        if charge["status"] == "succeeded":
            cur = charge["currency"]
            totals[cur] = totals.get(cur, 0) + charge["amount"] - charge["amount_refunded"]
    return {
        "object": "balance",
        "livemode": False,
        "available": [{"amount": v, "currency": k, "source_types": {"card": v}} for k, v in sorted(totals.items())],
        "pending": [{"amount": 0, "currency": k, "source_types": {"card": 0}} for k in sorted(totals)],
    }


_ID = r"([A-Za-z0-9_]+)"
ROUTES: list[Route] = [
    Route(m, re.compile(f"^{path}$"), h)
    for m, path, h in (
        ("POST", "/v1/payment_intents", _create_intent),
        ("GET", "/v1/payment_intents", _list_intents),
        ("GET", f"/v1/payment_intents/{_ID}", _retrieve_intent),
        ("POST", f"/v1/payment_intents/{_ID}/confirm", _confirm_intent),
        ("POST", f"/v1/payment_intents/{_ID}/cancel", _cancel_intent),
        ("GET", "/v1/charges", _list_charges),
        ("GET", f"/v1/charges/{_ID}", _retrieve_charge),
        ("POST", "/v1/refunds", _create_refund),
        ("GET", "/v1/refunds", _list_refunds),
        ("GET", f"/v1/refunds/{_ID}", _retrieve_refund),
        ("POST", f"/v1/refunds/{_ID}", _update_refund),
        ("POST", f"/v1/refunds/{_ID}/cancel", _cancel_refund),
        ("GET", "/v1/events", _list_events),
        ("GET", f"/v1/events/{_ID}", _retrieve_event),
        ("GET", "/v1/balance", _balance),
        ("GET", "/v1/balance_transactions", _list_balance_transactions),
        ("GET", f"/v1/balance_transactions/{_ID}", _retrieve_balance_transaction),
    )
]


def resolve(method: str, path: str) -> tuple[Handler, tuple[str, ...]] | None:
    for route in ROUTES:
        if route.method == method:
            match = route.pattern.match(path)
            if match:
                return route.handler, match.groups()
    return None
