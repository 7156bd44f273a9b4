"""Domain errors with stable types.

The `type` is the contract: the API turns it into a problem-details `type`
and the workflows into an ApplicationError `type`, so clients match on it.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business refusal: retrying will not help."""

    type: str = "domain-error"
    status: int = 422

    def __init__(self, detail: str, *, type: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if type is not None:
            self.type = type
        self.extra = extra


class NotFound(DomainError):
    type = "not-found"
    status = 404


class InvalidTransition(DomainError):
    type = "invalid-transition"
    status = 409


class ActionNotAllowed(DomainError):
    """A policy refused the action; `type` names the rule."""

    status = 409


class ConcurrentModification(DomainError):
    """Someone else changed the aggregate between our read and our write."""

    type = "concurrent-modification"
    status = 409
