"""Stripe's bracketed form encoding (`metadata[k]=v`, `types[0]=card`), decoded.

The SDK sends POST bodies and GET queries this way; the idempotency layer
compares requests by their decoded, order-independent form.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid_integer, missing_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode(raw: str) -> dict[str, Any]:
    """Turn a query string into nested dicts/lists; `a[0]`/`a[]` become lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            root[key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            node = node.setdefault(part, {})
            if nxt == "":
                node.setdefault("", [])
        last = parts[-1]
        if last == "" and isinstance(node.get(""), list):
            node[""].append(value)
        else:
            node[last] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if set(node) == {""} and isinstance(node[""], list):
        return node[""]
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def canonical(raw: str) -> str:
    """A form body as a stable string: same parameters in any order compare equal."""
    return "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(raw, keep_blank_values=True)))


def get_int(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_integer(name, value) from None


def get_str(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise missing_param(name)
        return None
    return str(value)


def get_bool(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "")).lower() == "true"


def get_metadata(params: dict[str, Any]) -> dict[str, str] | None:
    """`metadata` as sent: None when absent, {} when sent empty (which clears it)."""
    if "metadata" not in params:
        return None
    value = params["metadata"]
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
