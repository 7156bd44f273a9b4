"""Operation status: one workflow per backoffice action, read back by its id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from backoffice.api.auth import SUPPORT
from backoffice.api.deps import AppState, state
from backoffice.api.waiting import wait_seconds
from backoffice.operations import OperationView

router = APIRouter(tags=["operations"])


@router.get("/operations/{operation_id:path}", response_model=OperationView, dependencies=[Depends(SUPPORT)])
async def get_operation(
    operation_id: str,
    st: Annotated[AppState, Depends(state)],
    wait: Annotated[float | None, Depends(wait_seconds)] = None,
) -> OperationView:
    """The operation's state; with `?wait=5s`, its outcome if it ends within that time."""
    view = await st.operations.view(operation_id)
    if wait and view.status == "running" and await st.operations.wait_closed(operation_id, wait):
        view = await st.operations.view(operation_id)
    return view
