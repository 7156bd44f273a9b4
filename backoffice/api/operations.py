"""Operation status: one workflow per backoffice action, read back by its id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from backoffice.api.deps import AppState, state
from backoffice.operations import OperationView

router = APIRouter(tags=["operations"])


@router.get("/operations/{operation_id:path}", response_model=OperationView)
async def get_operation(operation_id: str, st: Annotated[AppState, Depends(state)]) -> OperationView:
    return await st.operations.view(operation_id)
