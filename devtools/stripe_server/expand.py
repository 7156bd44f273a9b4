"""`expand[]`: an expandable id replaced by the object it names, as Stripe does.

Stripe expands on retrieve (`expand[]=balance_transaction`) and on lists with
the `data.` prefix (`expand[]=data.balance_transaction`), in the same request,
so a reconciler reads a page of refunds with their balance transactions in one
call instead of two. The stand-in expands what ticketops reads: a refund's
`balance_transaction` and `failure_balance_transaction`. Any other path is
refused with Stripe's own message, rather than answered with an id where
Stripe would give an object. A field that is null stays null.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid_param
from .state import ServerState, public

# object type -> its expandable fields -> the object type they name
EXPANDABLE: dict[str, dict[str, str]] = {
    "refund": {
        "balance_transaction": "balance_transaction",
        "failure_balance_transaction": "balance_transaction",
    },
}


def requested(params: dict[str, Any], kind: str, *, listing: bool) -> list[str]:
    """The fields of `kind` to expand; a list's paths start with `data.`. Unknown paths are a 400."""
    raw = params.get("expand")
    if raw is None or raw == "":
        return []
    paths = [str(v) for v in raw] if isinstance(raw, list) else [str(raw)]
    fields: list[str] = []
    for path in paths:
        field = path.removeprefix("data.") if listing else path
        if (listing and not path.startswith("data.")) or field not in EXPANDABLE.get(kind, {}):
            raise invalid_param("expand", f"This property cannot be expanded ({path}).")
        if field not in fields:
            fields.append(field)
    return fields


def expand(state: ServerState, kind: str, objects: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    """The objects with each field's id replaced by its object (one store read per field)."""
    for field in fields:
        target = EXPANDABLE[kind][field]
        ids = [obj[field] for obj in objects if isinstance(obj.get(field), str)]
        found = state.store.get_many(target, ids)
        for obj in objects:
            value = obj.get(field)
            if isinstance(value, str) and value in found:
                obj[field] = public(found[value])
    return objects
