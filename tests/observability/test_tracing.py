"""One trace from the API request through the workflow to its activities, and its id in the JSON logs."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from runtime.logging import add_trace_ids
from runtime.settings import TracingSettings
from runtime.telemetry import configure_tracing, tracing_interceptors
from runtime.temporal import connect
from tests.builders import make_event, make_order
from tests.harness import running, seed
from ticketing.store.engine import Store


class Recorder(InMemorySpanExporter):
    """Keeps spans only while this module runs: the provider stays installed for the whole session."""

    recording = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return super().export(spans) if self.recording else SpanExportResult.SUCCESS


EXPORTER = Recorder()


@pytest.fixture(scope="module")
def exporter() -> Iterator[Recorder]:
    """The process-wide tracer provider, installed once (OpenTelemetry refuses to replace it)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = configure_tracing(TracingSettings(enabled=True))
        assert provider is not None
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))  # synchronous: no flush to wait for
    EXPORTER.recording = True
    yield EXPORTER
    EXPORTER.recording = False
    EXPORTER.clear()


async def test_one_trace_from_api_request_to_workflow_to_activity(
    exporter: Recorder, temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    exporter.clear()
    settings = TracingSettings(enabled=True)
    async with running(temporal_client, store, tmp_path, queue_prefix, with_workers=False) as plain:
        codec, temporal = plain.settings.codec, plain.settings.temporal  # as the harness connects
    client = await connect(temporal, codec=codec, interceptors=tracing_interceptors(settings))
    async with running(client, store, tmp_path / "traced", queue_prefix) as app:
        event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
        order = make_order(event, types)
        await seed(store, event, types, slots, [order])
        caller_trace = uuid.uuid4().hex
        resp = await app.http.post(
            f"/orders/{order.code}/resend", headers={"traceparent": f"00-{caller_trace}-{'1' * 16}-01"}
        )
        assert resp.status_code == 202, resp.text
        assert (await app.wait_operation(resp.json()["operation_id"]))["status"] == "completed"

    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == int(caller_trace, 16)]
    names = {s.name for s in spans}
    assert "POST /orders/{code}/resend" in names  # the API's span, named by route template
    assert "StartWorkflow:ResendOrder" in names
    assert "RunWorkflow:ResendOrder" in names
    assert {"RunActivity:plan_resend", "RunActivity:deliver_tickets"} <= names
    api_span = next(s for s in spans if s.name == "POST /orders/{code}/resend")
    start = next(s for s in spans if s.name == "StartWorkflow:ResendOrder")
    assert start.parent is not None and start.parent.span_id == api_span.context.span_id
    assert [s.name for s in spans].count("POST /orders/{code}/resend") == 1  # FastAPI's own spans are off
    # The API span records the route template, not the path or query (search terms can be emails).
    assert order.code not in json.dumps(dict(api_span.attributes or {}))
    assert api_span.attributes and api_span.attributes["http.route"] == "/orders/{code}/resend"


def test_log_lines_carry_the_current_trace_id(exporter: Recorder) -> None:
    out = io.StringIO()
    before = structlog.get_config()
    structlog.configure(
        processors=[add_trace_ids, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    try:
        with trace.get_tracer("test").start_as_current_span("work") as span:
            structlog.get_logger().info("inside")
        structlog.get_logger().info("outside")
    finally:
        structlog.configure(**before)
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in outside
