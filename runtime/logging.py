"""structlog set-up: JSON in production, console in development, personal data redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

_PERSONAL_KEYS = {"email", "name", "mobile", "phone", "to", "recipient", "holder", "contact", "address"}
_SECRET_KEYS = {"password", "api_key", "secret", "token", "authorization"}
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_API_KEY_RE = re.compile(r"tk_[0-9a-f]+_[\w-]+")
_JWT_RE = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*")


def _sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_KEYS) or any(
        part == lowered or lowered.endswith("_" + part) for part in _PERSONAL_KEYS
    )


def _scrub(value: Any) -> Any:
    """Personal data and credentials inside free text and nested values."""
    if isinstance(value, str):
        value = _API_KEY_RE.sub("[api-key]", value)
        value = _JWT_RE.sub("[token]", value)
        return _EMAIL_RE.sub("[email]", value)
    if isinstance(value, dict):
        return {k: "[redacted]" if isinstance(k, str) and _sensitive(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_scrub(v) for v in value]
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop personal data and secrets from every log line, whatever the caller passed."""
    for key in list(event):
        event[key] = "[redacted]" if _sensitive(key) else _scrub(event[key])
    return event


def add_trace_ids(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current span's trace and span ids, so a log line leads to its trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def configure_logging(*, json: bool = False, level: str = "INFO") -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        structlog.processors.format_exc_info,  # before redact: exception messages carry data too
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
