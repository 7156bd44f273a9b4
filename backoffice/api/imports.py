"""`POST /imports`: orders from a CSV or JSON file, checked whole before anything starts.

The file is checked against the store as it arrives, row by row into a staging table
(`ticketing/store/importing.py`, the same rules as `ticketops orders import --direct`), so the
request holds neither the file nor its rows: its memory stays flat whatever the file's size.
With any problem the answer is a 422 `import-invalid` problem listing the errors by row and
field (the first 1000, with `issues_total`), and nothing is imported: the staged rows are
dropped. A clean file's rows become the orders (codes fixed) and items of a bulk operation,
and `ImportOrders` writes them in batches and, with `deliver=true`, emails their tickets;
`GET /bulk/{id}` shows the progress, `POST /bulk/{id}/pause|resume|cancel` control it and
`GET /bulk/{id}/report.csv` lists each order's outcome.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.common import SearchAttributePair

from backoffice.api.auth import ADMIN
from backoffice.api.bulk import bulk_id_for
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import (
    check_idempotency_key,
    fingerprint,
    remember,
    replay,
    request_key,
    stored_request,
)
from backoffice.api.problems import ProblemError
from ticketing.bulk import BulkKind
from ticketing.importing import ImportFailed
from ticketing.store.importing import check_upload, stage_import
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


class _Upload:
    """The request's body as it arrives: refused past MAX_BYTES, and digested for the idempotency check."""

    def __init__(self, request: Request) -> None:
        self._chunks = request.stream()
        self._digest = hashlib.sha256()
        self.size = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            self.size += len(chunk)
            if self.size > MAX_BYTES:
                raise _too_large()
            self._digest.update(chunk)
            yield chunk

    def fingerprint(self, request: Request, **params: Any) -> str:
        """The request's fingerprint, the file by its digest: known once the body has been read."""
        return fingerprint(request, {"file_sha256": self._digest.hexdigest(), **params})


def _too_large() -> ProblemError:
    return ProblemError(413, "file-too-large", f"the file is over {MAX_BYTES // (1024 * 1024)} MiB")


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
    """Import orders; a file with any error imports nothing and the answer lists the errors.

    The 422 answer's `issues` name the row, the field and the problem of each, the first 1000
    in row order; `issues_total` counts them all.
    """
    suffix = _suffix(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise _too_large()
    key, given = request_key(request)
    upload = _Upload(request)
    prior = await stored_request(st.store, who, key) if given else None
    if prior is not None:
        async for _ in upload:
            pass  # only its digest: is this the same request?
        return replay(prior, upload.fingerprint(request, deliver=deliver, filename=filename))
    operation_id = f"import/{key}"
    bulk_id = bulk_id_for(operation_id)
    try:
        checked = await check_upload(st.store, upload, suffix, staging_id=uuid.uuid4().hex)
        staged = await stage_import(
            st.store, checked, bulk_id=bulk_id, workflow_id=operation_id, source=filename, actor=who, deliver=deliver
        )
    except ImportFailed as failed:
        raise ProblemError(
            422, "import-invalid", failed.detail, issues_total=failed.total,
            issues=[{"row": i.row, "field": i.field, "message": i.message} for i in failed.issues],
        ) from failed
    bulk = st.settings.bulk
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
    response = {"operation_id": operation_id, "bulk_id": bulk_id, "status_url": f"/bulk/{bulk_id}",
                "orders": staged.orders, "tickets": staged.tickets}
    if not given:
        return JSONResponse(response, status_code=202)
    return await remember(st.store, who, key, upload.fingerprint(request, deliver=deliver, filename=filename),
                          response)
