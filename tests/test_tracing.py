"""OpenTelemetry traces: off by default (nothing of it imported), and when on, one trace from the
client's request through delivery and receipt to each webhook."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.api.live import serving
from tests.api.support import basic, until
from tests.receiver import WebhookReceiver
from tidings import tracing
from tidings.api.app import create_app
from tidings.config import Settings
from tidings.runtime import Runtime
from tidings.services.accounts import create_account

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def test_tracing_is_off_by_default_and_needs_no_sdk() -> None:
    """Without the SDK (the `otel` extra not installed) Tidings imports and runs untraced."""
    probe = (
        "import sys; sys.modules['opentelemetry.sdk'] = None\n"  # any import of it now fails
        "import tidings.api.app, tidings.cli.main\n"
        "from tidings import tracing\n"
        "with tracing.span('x') as span: assert span is None\n"
        "assert tracing.current_context() is None\n"
        "try: tracing.enable('tidings')\n"
        "except tracing.TracingUnavailable as error: print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'tidings[otel]'" in done.stdout
    assert not tracing.enabled()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable("tidings-test", exporter)
    yield exporter
    tracing.disable()


@pytest.fixture
async def traced(settings: Settings, spans: InMemorySpanExporter) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings.model_copy(update={"otel_enabled": True}))
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_one_trace_from_the_request_to_each_webhook(
    traced: Runtime, spans: InMemorySpanExporter, receiver: WebhookReceiver
) -> None:
    account = await create_account(traced.database, traced.box, name="traced")
    body = {
        "channel": "sms",
        "message_type": "text",
        "to": "447700900000",
        "from": "Acme",
        "text": "hi",
        "webhook_url": f"{receiver.url}/status",
    }
    headers = {**basic(account), "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    async with serving(create_app(traced)) as url, httpx.AsyncClient(base_url=url) as http:
        sent = await http.post("/v1/messages", json=body, headers=headers)
        assert sent.status_code == 202, sent.text
        await asyncio.to_thread(receiver.wait_for, 2)

        async def webhooks_traced() -> bool:
            return len([s for s in spans.get_finished_spans() if s.name == "job send_webhook"]) == 2

        await until(webhooks_traced, what="both webhook jobs' spans")

    finished = spans.get_finished_spans()
    by_name = {span.name: span for span in finished}
    request = by_name["POST /v1/messages"]
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 202
    assert request.parent is not None and format(request.parent.span_id, "016x") == CLIENT_SPAN
    deliver = by_name["job deliver_message"]
    assert deliver.parent is not None and deliver.parent.span_id == request.context.span_id
    assert deliver.attributes is not None
    assert deliver.attributes["tidings.message_uuid"] == sent.json()["message_uuid"]
    receipt = by_name["job apply_receipt"]
    assert receipt.parent is not None and receipt.parent.span_id == deliver.context.span_id
    webhooks = [span for span in finished if span.name == "job send_webhook"]
    assert {span.parent.span_id for span in webhooks if span.parent} == {
        deliver.context.span_id,  # submitted
        receipt.context.span_id,  # delivered
    }
    for span in (request, deliver, receipt, *webhooks):
        assert format(span.context.trace_id, "032x") == CLIENT_TRACE
