"""Surfacing an activity's business refusal as the workflow's own failure, type intact."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from temporalio.exceptions import ActivityError, ApplicationError

T = TypeVar("T")


async def refusals_surface(call: Awaitable[T]) -> T:
    """Await `call`; a non-retryable ApplicationError inside becomes the workflow's failure."""
    try:
        return await call
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            raise ApplicationError(
                cause.message, *cause.details, type=cause.type, non_retryable=True
            ) from err
        raise
