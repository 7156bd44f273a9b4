"""pdf (issue 4): ticket PDF rendering rate, and rendering's share of a 10-ticket resend.

1. rate: `render_ticket_pdf` on distinct tickets, one after another in this process,
   before the stack starts (nothing else runs in the process): tickets/s and ms/ticket.
2. share: R resends of a 10-ticket order, one at a time, each from `POST
   /orders/{code}/resend` to the workflow's close. During them the product's
   `render_ticket_pdf` (as `activities.ticket_pdfs` calls it on a cache miss) is wrapped by a timer, so the
   rendering inside the workflow is measured where it happens (in the activity's
   thread, while the worker runs). Right after each resend the same 10 tickets are
   rendered again in this process, idle. Both are divided by the end-to-end time.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import activities.ticket_pdfs as ticket_pdfs_module
from bench.report import Result
from bench.stack import Cpu, make_orders, product, seed, temporal_server
from documents.from_orders import ticket_document
from documents.models import TicketDocument
from documents.ticket_pdf import render_ticket_pdf

NAME = "pdf"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pdf")
    group.add_argument("--pdf-tickets", type=int, default=100, help="tickets rendered for the rate (default 100)")
    group.add_argument("--pdf-resends", type=int, default=7, help="10-ticket resends for the share (default 7)")
    group.add_argument("--pdf-order-tickets", type=int, default=10, help="tickets in the resent order (default 10)")


def _documents(count: int) -> list[TicketDocument]:
    event, ticket_type, orders = make_orders(1, count)
    order = orders[0]
    return [ticket_document(order, event, t, {ticket_type.id: ticket_type}, {}) for t in order.tickets]


def _render_all(docs: Sequence[TicketDocument]) -> float:
    started = time.perf_counter()
    for doc in docs:
        render_ticket_pdf(doc)
    return time.perf_counter() - started


class _RenderTimer:
    """Wraps the renderer that the delivery activity calls; sums wall and CPU seconds spent in it."""

    def __init__(self, inner: Callable[[TicketDocument], bytes]) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.cpu = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, doc: TicketDocument) -> bytes:
        started, cpu = time.perf_counter(), time.thread_time()  # the activity renders in a thread of its own
        try:
            return self.inner(doc)
        finally:
            with self._lock:
                self.seconds += time.perf_counter() - started
                self.cpu += time.thread_time() - cpu
                self.calls += 1

    def take(self) -> tuple[float, float, int]:
        with self._lock:
            taken = (self.seconds, self.cpu, self.calls)
            self.seconds, self.cpu, self.calls = 0.0, 0.0, 0
        return taken


@contextmanager
def _timed_renderer() -> Iterator[_RenderTimer | None]:
    original = getattr(ticket_pdfs_module, "render_ticket_pdfs", None)
    if original is None:  # the activity no longer renders through this name: measure outside only
        yield None
        return
    timer = _RenderTimer(original)
    setattr(ticket_pdfs_module, "render_ticket_pdfs", timer)  # noqa: B010 - patching a module global on purpose
    try:
        yield timer
    finally:
        setattr(ticket_pdfs_module, "render_ticket_pdfs", original)  # noqa: B010


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    count = max(1, args.pdf_tickets)
    resends = max(1, args.pdf_resends)
    per_order = max(1, args.pdf_order_tickets)
    result = Result(
        NAME, {"tickets": count, "resends": resends, "tickets_per_order": per_order, "temporal_db": args.temporal_db}
    )

    _render_all(_documents(2))  # fonts and first-use costs
    docs = _documents(count)
    cpu_started = time.process_time()  # nothing else runs in the process yet
    render_s = _render_all(docs)
    render_cpu = time.process_time() - cpu_started
    sizes = [len(render_ticket_pdf(d)) for d in docs[:5]]

    e2e: list[float] = []
    e2e_cpu: list[float] = []
    inside: list[float] = []
    inside_cpu: list[float] = []
    outside: list[float] = []
    inside_calls = 0
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as client, product(
        client, workdir / "stack"
    ) as stack:
        event, ticket_type, orders = make_orders(resends + 1, per_order)
        await seed(stack.store, event, ticket_type, orders)
        with _timed_renderer() as timer:
            for i, order in enumerate(orders):
                cpu = Cpu.now()
                started = time.perf_counter()
                body = await stack.post(f"/orders/{order.code}/resend", key=f"bench-pdf-{i}")
                await stack.wait_workflows([body["operation_id"]], timeout=60)
                elapsed = time.perf_counter() - started
                used = Cpu.now().since(cpu)
                view = await stack.get(f"/operations/{body['operation_id']}")
                if view["status"] != "completed":
                    raise RuntimeError(f"resend of {order.code} ended {view['status']}: {view.get('error')}")
                seconds, seconds_cpu, calls = timer.take() if timer else (0.0, 0.0, 0)
                docs_here = [ticket_document(order, event, t, {ticket_type.id: ticket_type}, {}) for t in order.tickets]
                alone = _render_all(docs_here)
                if i == 0:
                    continue  # warm-up
                e2e.append(elapsed)
                e2e_cpu.append(used.total)
                inside.append(seconds)
                inside_cpu.append(seconds_cpu)
                inside_calls += calls
                outside.append(alone)

    e2e_med = statistics.median(e2e)
    result.add("render rate, one thread", count / render_s, "tickets/s", note=f"{count} tickets in {render_s:.2f}s")
    result.add("render time per ticket", 1000 * render_s / count, "ms", note=f"CPU {1000 * render_cpu / count:.1f} ms")
    result.add("ticket PDF size (mean)", sum(sizes) / len(sizes) / 1024, "KiB")
    result.add(f"resend of {per_order} tickets, API -> closed (median)", 1000 * e2e_med, "ms")
    resend_cpu = 1000 * statistics.median(e2e_cpu)
    result.add("CPU of that resend (median)", resend_cpu, "ms", note="python + temporal server")
    result.add(f"rendering {per_order} tickets, standalone (median)", 1000 * statistics.median(outside), "ms")
    result.ratio("share: standalone rendering / resend", statistics.median(outside) / e2e_med)
    if timer is not None and inside_calls:
        inside_ms = 1000 * statistics.median(inside)
        result.add(f"rendering {per_order} tickets inside the activity (median)", inside_ms, "ms")
        shares = [a / b for a, b in zip(inside, e2e, strict=True)]
        result.ratio("share: rendering inside / resend", statistics.median(shares))
        cpu_shares = [a / b for a, b in zip(inside_cpu, e2e_cpu, strict=True)]
        result.ratio("share of CPU: rendering inside / resend", statistics.median(cpu_shares))
    else:
        result.notes.append("the delivery activity no longer calls activities.ticket_pdfs.render_ticket_pdfs: "
                            "rendering inside the workflow was not measured")
    result.details = {
        "render_seconds": render_s,
        "render_cpu_seconds": render_cpu,
        "resend_seconds": e2e,
        "resend_cpu_seconds": e2e_cpu,
        "inside_render_seconds": inside,
        "inside_render_cpu_seconds": inside_cpu,
        "inside_render_calls": inside_calls,
        "standalone_render_seconds": outside,
    }
    return result
