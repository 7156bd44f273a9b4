"""Turning domain refusals into Temporal errors with the same stable `type`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio.exceptions import ApplicationError

from ticketing.errors import ConcurrentModification, DomainError

P = ParamSpec("P")
R = TypeVar("R")


def as_application_error(err: DomainError) -> ApplicationError:
    """Business refusals are final; a lost race is retried against fresh state."""
    return ApplicationError(
        err.detail,
        {"type": err.type, "status": err.status, **err.extra},
        type=err.type,
        non_retryable=not isinstance(err, ConcurrentModification),
    )


def domain_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except DomainError as err:
            raise as_application_error(err) from err

    return wrapper
