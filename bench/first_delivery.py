"""The tickets of a bulk delivery's "first delivery after an import" case: issued by `POST /imports`
(the product's path: staged, written in batches, their PDFs rendered on the `render` queue), and
how long each of the import's phases took, read from its workflow history."""

from __future__ import annotations

import csv
import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client

from bench.stack import Stack, bench_event
from ticketing.importing import COLUMNS
from ticketing.store.orders import insert_event

PHASES = {"import_batch": "import", "prerender_ticket_pdfs": "render"}


@dataclass(frozen=True)
class Imported:
    event_id: str
    orders: int
    request_seconds: float  # POST /imports: the file checked and staged
    workflow_seconds: float  # from the request's answer to the workflow's close
    phases: dict[str, tuple[float, int]]  # "import" / "render" -> (seconds from first scheduled to last done, batches)
    rendered: int  # PDFs the render cache was given during the import


def _csv(event_id: str, type_id: str, count: int, tag: str) -> bytes:
    """Paid one-ticket orders, each with its own buyer (one recipient each in a bulk delivery)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(
        {"event_id": event_id, "ticket_type_id": type_id, "quantity": "1", "contact_name": f"Buyer {i}",
         "contact_email": f"buyer{i}.{tag}@example.com", "contact_mobile": "+31 6 1234 5678",
         "payment_method": "invoice", "status": "paid"}
        for i in range(count)
    )  # fmt: skip
    return buffer.getvalue().encode()


async def phase_spans(client: Client, workflow_id: str) -> dict[str, tuple[float, int]]:
    """For each phase activity, over every run: first scheduled to last completed (s), and how many completed."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    done: dict[str, int] = {}
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        scheduled: dict[int, str] = {}
        for event in history.events:
            at = event.event_time.ToDatetime().timestamp()
            if event.HasField("activity_task_scheduled_event_attributes"):
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                if name in PHASES:
                    scheduled[event.event_id] = name
                    first[name] = min(first.get(name, at), at)
            elif event.HasField("activity_task_completed_event_attributes"):
                name = scheduled.get(event.activity_task_completed_event_attributes.scheduled_event_id, "")
                if name:
                    last[name] = max(last.get(name, at), at)
                    done[name] = done.get(name, 0) + 1
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return {PHASES[n]: (last.get(n, first[n]) - first[n], done.get(n, 0)) for n in first}


async def import_event(stack: Stack, count: int, timeout: float) -> Imported:
    """A new event whose `count` orders come in through `POST /imports`; returns once the import closed."""
    tag = uuid.uuid4().hex[:8]
    event, ga = bench_event(f"evt_bench_imported_{tag}", quota=10_000_000)
    async with stack.store.transaction() as conn:
        await insert_event(conn, event, [ga], [])
    body = _csv(event.id, ga.id, count, tag)
    rendered = stack.deps.ticket_pdfs().rendered
    begun = time.perf_counter()
    resp = await stack.http.post(
        "/imports", content=body, headers={"Content-Type": "text/csv", "Idempotency-Key": f"bench-import-{tag}"}
    )
    if resp.status_code != 202:
        raise RuntimeError(f"POST /imports answered {resp.status_code}: {resp.text[:500]}")
    accepted: dict[str, Any] = resp.json()
    answered = time.perf_counter()
    closed = await stack.wait_workflows([accepted["operation_id"]], timeout)
    state = await stack.get(f"/bulk/{accepted['bulk_id']}")
    if state["status"] != "completed" or state["counts"] != {"imported": count}:
        raise RuntimeError(f"the import ended {state['status']} with {state['counts']}")
    return Imported(
        event_id=event.id,
        orders=count,
        request_seconds=answered - begun,
        workflow_seconds=closed[accepted["operation_id"]] - answered,
        phases=await phase_spans(stack.client, accepted["operation_id"]),
        rendered=stack.deps.ticket_pdfs().rendered - rendered,
    )
