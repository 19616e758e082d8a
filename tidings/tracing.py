"""Optional OpenTelemetry traces, from a request through the jobs it causes to its webhooks.

Off by default, and then nothing of OpenTelemetry is imported: the packages are an optional
extra (`pip install 'tidings[otel]'`) and every function here costs one test of a global when
tracing is off. Switched on (TIDINGS_OTEL_ENABLED), each HTTP request is a server span (its
`traceparent` header continued when a client sends one) and each job performed is a span whose
parent is the span that was current when the job was queued: a job carries that context in its
payload (`TRACE_KEY`), so a send, its delivery, the receipts the connector reports while
submitting it and the webhooks they cause form one trace, across processes. Spans go out over
OTLP/HTTP, configured by OpenTelemetry's own OTEL_EXPORTER_OTLP_* variables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

# The key under which a queued job's payload carries the W3C trace context it was queued in.
TRACE_KEY = "_trace"

_provider: TracerProvider | None = None


class TracingUnavailable(RuntimeError):
    """Tracing was switched on, but the optional packages it needs are not installed."""


def enable(service_name: str, exporter: SpanExporter | None = None) -> None:
    """Starts exporting spans (to `exporter`, else over OTLP/HTTP). The provider is this
    module's own rather than OpenTelemetry's global one, so that it can be replaced (tests) and
    never collides with another library's."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
            processor: Any = BatchSpanProcessor(exporter)
        else:
            processor = SimpleSpanProcessor(exporter)
    except ImportError as error:
        raise TracingUnavailable(
            f"TIDINGS_OTEL_ENABLED needs the OpenTelemetry packages: pip install 'tidings[otel]' ({error})"
        ) from None

    global _provider
    disable()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(processor)
    _provider = provider


def disable() -> None:
    """Flushes and stops the exporter, if tracing was on."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def enabled() -> bool:
    return _provider is not None


def current_context() -> dict[str, str] | None:
    """The current span's context as W3C headers, to store with a job; None when not tracing."""
    if _provider is None:
        return None
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier or None


@contextmanager
def span(
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    server: bool = False,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[Span | None]:
    """A span around the block, the current one while it runs, child of `parent` (W3C headers,
    from a request or a job) or else of the current span. Yields None when tracing is off."""
    if _provider is None:
        yield None
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    context: Any = extract(dict(parent)) if parent else None
    tracer = _provider.get_tracer("tidings")
    kind = SpanKind.SERVER if server else SpanKind.INTERNAL
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes) as current:
        yield current
