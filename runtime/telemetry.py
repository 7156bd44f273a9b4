"""Process telemetry: the Temporal runtime's Prometheus exporter and OpenTelemetry tracing.

Each process builds these once at start-up, before it connects to Temporal: a Temporal
`Runtime` can only be given to a client when the client is created.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from runtime.settings import TracingSettings


def temporal_runtime(metrics_port: int | None, *, host: str = "0.0.0.0") -> Runtime | None:
    """A runtime whose SDK metrics (`temporal_*`, durations in ms) are served on `host:metrics_port`/metrics.

    None without a port: the SDK's default runtime, no exporter.
    """
    if metrics_port is None:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{metrics_port}")))


def configure_tracing(settings: TracingSettings, *, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install the process's tracer provider; spans go over OTLP/HTTP to `otlp_endpoint` (or to `exporter`).

    Off unless enabled: a span per request and per workflow task is not free.
    """
    if not settings.enabled:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    if exporter is None and settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracing_interceptors(settings: TracingSettings) -> list[TracingInterceptor]:
    """For the client: Temporal carries the span context in headers, client -> workflow -> activity.

    `always_create_workflow_spans`: workflows started by a Schedule (no caller span) are traced too.
    """
    if not settings.enabled:
        return []
    return [TracingInterceptor(always_create_workflow_spans=True)]

