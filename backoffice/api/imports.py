"""`POST /imports`: orders from a CSV or JSON file, checked whole before anything starts.

The file is parsed and checked against the store in the request (`ticketing/importing.py`,
the same rules as `ticketops orders import` has always applied): with any problem the answer
is a 422 `import-invalid` problem listing every error by row and field, and nothing is
staged. A clean file is staged (its orders, codes fixed, as the items of a bulk operation)
and `ImportOrders` writes them in batches and, with `deliver=true`, emails their tickets;
`GET /bulk/{id}` shows the progress, `POST /bulk/{id}/pause|resume|cancel` control it and
`GET /bulk/{id}/report.csv` lists each order's outcome.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.common import SearchAttributePair

from backoffice.api.auth import ADMIN
from backoffice.api.bulk import bulk_id_for
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.problems import ProblemError
from ticketing.bulk import BulkKind
from ticketing.importing import ImportFailed, parse_text
from ticketing.store.importing import stage_import
from workflows.contracts import BulkInput, ImportParams
from workflows.importing import ImportOrdersWorkflow
from workflows.search_attributes import BULK_STATUS, EVENT_ID

router = APIRouter(tags=["imports"])
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]
MAX_BYTES = 64 * 1024 * 1024
_JSON_EXAMPLE = {
    "order_code": "SPRING-1", "event_id": "evt_concert", "ticket_type_id": "evt_concert_ga",
    "time_slot_id": "evt_concert_eve", "quantity": 2, "contact_name": "Ada Lovelace",
    "contact_email": "ada@example.com", "contact_mobile": "+31 6 1234 5678", "payment_method": "invoice",
    "status": "reserved",
}
_CSV_EXAMPLE = ",".join(_JSON_EXAMPLE) + "\n" + ",".join(str(v) for v in _JSON_EXAMPLE.values()) + "\n"
_SUFFIX = {"text/csv": ".csv", "application/csv": ".csv", "application/json": ".json"}


class ImportAccepted(BaseModel):
    operation_id: str
    bulk_id: str
    status_url: str
    orders: int
    tickets: int


def _suffix(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _SUFFIX:
        raise ProblemError(415, "unsupported-media-type", "send the file as text/csv or application/json")
    return _SUFFIX[kind]


@router.post(
    "/imports",
    status_code=202,
    response_model=ImportAccepted,
    dependencies=[Depends(ADMIN), Depends(check_idempotency_key)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "examples": [_CSV_EXAMPLE]}},
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}, "examples": [[_JSON_EXAMPLE]]}
                },
            },
        }
    },
)
async def import_orders(
    request: Request,
    st: StateDep,
    who: ActorDep,
    deliver: Annotated[bool, Query(description="Email each imported order's tickets to its contact.")] = False,
    filename: Annotated[str, Query(min_length=1, max_length=200, description="Recorded in each order's history.")]
    = "upload",
) -> JSONResponse:
    """Import orders; a file with any error imports nothing and the answer lists every error.

    The 422 answer's `issues` name the row, the field and the problem of each.
    """
    suffix = _suffix(request)
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise ProblemError(413, "file-too-large", f"the file is over {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ProblemError(422, "import-invalid", "the file is not UTF-8 text",
                           issues=[{"row": None, "field": None, "message": str(err)}]) from err
    parsed = parse_text(text, suffix)
    bulk = st.settings.bulk

    async def act(key: str) -> dict[str, Any]:
        operation_id = f"import/{key}"
        bulk_id = bulk_id_for(operation_id)
        try:
            staged = await stage_import(
                st.store, parsed, bulk_id=bulk_id, workflow_id=operation_id, source=filename, actor=who,
                deliver=deliver,
            )
        except ImportFailed as failed:
            raise ProblemError(
                422, "import-invalid", failed.detail,
                issues=[{"row": i.row, "field": i.field, "message": i.message} for i in failed.issues],
            ) from failed
        await st.operations.start(
            ImportOrdersWorkflow.run,
            BulkInput(
                bulk_id=bulk_id, kind=BulkKind.IMPORT, event_id=staged.event_id, actor=who,
                selection={"event_id": staged.event_id},  # what the engine's prepare step reads; unused
                params=ImportParams(deliver=deliver), batch_size=bulk.batch_size, window=bulk.window,
                rate_per_second=bulk.emails_per_second, continue_after_batches=bulk.continue_after_batches,
                heartbeat_seconds=bulk.heartbeat_seconds, deferred_retries=0,
            ),
            operation_id=operation_id,
            search_attributes=[
                SearchAttributePair(EVENT_ID, staged.event_id), SearchAttributePair(BULK_STATUS, "running")
            ],
            summary=f"Import {staged.orders} order(s), {staged.tickets} ticket(s)",
            memo={"actor": who, "bulk_id": bulk_id},
        )
        return {"operation_id": operation_id, "bulk_id": bulk_id, "status_url": f"/bulk/{bulk_id}",
                "orders": staged.orders, "tickets": staged.tickets}

    return await idempotent(st.store, request, who, {"file": text, "deliver": deliver, "filename": filename}, act)
