"""Refuse bad input before any route runs: unknown query parameters and text no field may hold.

A typo in a query parameter (`?stauts=paid`) used to be ignored silently and
answer the unfiltered list; now it is a 400 naming what the route accepts.
Text with NUL or other control characters, surrogates or unassigned code
points is refused everywhere (path, query and JSON body), because PostgreSQL
refuses NUL in text and such characters have no business in emails, PDFs or
CSV reports. Line breaks and tabs are allowed inside JSON bodies (comments,
reasons); fields that must be one line (names, emails) check that themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant

from backoffice.api.problems import ProblemError
from ticketing.personal_data import text_problem

# Bodies we must not touch or judge: the processor signs its webhook payloads byte for byte,
# and the codec carries Temporal payloads that are data, not text we store. An import's file is
# streamed, never held whole; its cells are checked for such text row by row (ticketing/importing.py).
_RAW_BODY_PREFIXES = ("/webhooks/", "/codec/", "/imports")


def _query_names(dependant: Dependant | None) -> set[str]:
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current is None:
            continue
        names.update(param.alias for param in current.query_params)
        stack.extend(current.dependencies)
    return names


def _strings(value: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield pointer or "/", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(str(key), f"{pointer}/{key}#key")
            yield from _strings(item, f"{pointer}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{pointer}/{index}")


async def guard_input(request: Request) -> None:
    """App-wide dependency; runs after routing, so it knows the route's declared parameters."""
    route: Any = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        allowed = _query_names(dependant)
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise ProblemError(
                400,
                "unknown-query-parameter",
                f"unknown query parameter(s): {', '.join(unknown)}; this route accepts: {accepted}",
                unknown=unknown,
            )
    for name, value in [*request.query_params.multi_items(), *request.path_params.items()]:
        if isinstance(value, str) and (problem := text_problem(value)):
            raise ProblemError(400, "invalid-text", f"parameter {name} {problem}", parameter=name)
    if request.url.path.startswith(_RAW_BODY_PREFIXES):
        return
    if "json" not in request.headers.get("content-type", ""):
        return
    raw = await request.body()
    if not raw:
        return
    try:
        body = json.loads(raw)
    except ValueError:
        return  # the route's own validation answers malformed JSON with its problem
    for pointer, text in _strings(body):
        if problem := text_problem(text, multiline=True):
            raise ProblemError(422, "invalid-text", f"the value at {pointer} {problem}", pointer=pointer)
