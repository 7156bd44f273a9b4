"""Stripe's list object and cursor pagination.

Lists are newest first. `starting_after=X` gives the page of older objects
after X; `ending_before=X` the page of newer objects just before X (still
newest first), which is how the SDK's `auto_paging_iter` walks both ways.
Order follows creation sequence, not `created` seconds, so ties are stable.
"""

from __future__ import annotations

from typing import Any

from . import params as p
from .errors import StripeError, invalid_param, no_such
from .state import ServerState, public

_CREATED_OPS = ("gt", "gte", "lt", "lte")


def created_filter(params: dict[str, Any]) -> dict[str, int] | None:
    value = params.get("created")
    if value is None:
        return None
    if isinstance(value, dict):
        unknown = set(value) - set(_CREATED_OPS)
        if unknown:
            raise invalid_param(f"created[{sorted(unknown)[0]}]", "Invalid created filter")
        return {op: _int(f"created[{op}]", v) for op, v in value.items()}
    return {"eq": _int("created", value)}


def list_object(
    state: ServerState,
    kind: str,
    url: str,
    params: dict[str, Any],
    *,
    equals: dict[str, str] | None = None,
    types: list[str] | None = None,
    delivered: bool | None = None,
) -> dict[str, Any]:
    limit = p.get_int(params, "limit")
    limit = 10 if limit is None else limit
    if not 1 <= limit <= 100:
        raise invalid_param("limit", f"This value must be between 1 and 100 (it currently is {limit}).")
    after = p.get_str(params, "starting_after")
    before = p.get_str(params, "ending_before")
    if after and before:
        raise StripeError(
            400, "You may only specify one of these parameters: starting_after, ending_before.", stored=False
        )
    query: dict[str, Any] = {
        "equals": equals,
        "created": created_filter(params),
        "types": types,
        "delivered": delivered,
        "limit": limit + 1,
    }
    if after:
        rows = state.store.query(kind, before_seq=_seq(state, kind, after, "starting_after"), **query)
    elif before:
        rows = state.store.query(
            kind, after_seq=_seq(state, kind, before, "ending_before"), newest_first=False, **query
        )
    else:
        rows = state.store.query(kind, **query)
    has_more = len(rows) > limit
    rows = rows[:limit]
    if before:
        rows.reverse()
    return {"object": "list", "data": [public(r) for r in rows], "has_more": has_more, "url": url}


def _seq(state: ServerState, kind: str, object_id: str, param: str) -> int:
    seq = state.store.seq_of(kind, object_id)
    if seq is None:
        raise no_such(kind, object_id, param=param, status=400)
    return seq


def _int(param: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param, stored=False
        ) from None
