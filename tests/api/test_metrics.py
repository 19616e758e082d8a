"""/metrics over real HTTP: what a send, a refusal and a delivery do to the counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.live import serving
from tests.api.support import basic, until
from tests.receiver import WebhookReceiver
from tidings.api.app import create_app
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.services.queue_metrics import QueueGauges

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SMS = {"channel": "sms", "message_type": "text", "to": "447700900000", "from": "Acme", "text": "hi"}


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def api_only(settings: Settings) -> AsyncIterator[Runtime]:
    """No worker: the delivery job stays queued, so the queue's gauges have something to show."""
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_a_send_and_its_refusals_are_counted_once_each(api_only: Runtime) -> None:
    account = await create_account(api_only.database, api_only.box, name="metrics")
    # Read at every scrape here (by default a reading serves five seconds of scrapes).
    api_only.queue_gauges = QueueGauges(api_only.database, max_age_seconds=0)
    async with serving(create_app(api_only)) as url, httpx.AsyncClient(base_url=url) as http:
        before = await scrape(http)
        sent = await http.post("/v1/messages", json=SMS, headers=basic(account))
        assert sent.status_code == 202, sent.text
        wrong = NewAccountCredentials(account.api_key, "not-the-secret", account.signature_secret)
        refused = await http.post("/v1/messages", json=SMS, headers=basic(wrong))
        assert refused.status_code == 401
        invalid = await http.post("/v1/messages", json={**SMS, "to": ""}, headers=basic(account))
        assert invalid.status_code == 422
        after = await scrape(http)
        text = (await http.get("/metrics")).text

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tidings_accepts_total", channel="sms", outcome="accepted") == 1
    assert delta("tidings_accepts_total", channel="unknown", outcome="unauthorized") == 1
    assert delta("tidings_accepts_total", channel="sms", outcome="invalid") == 1
    assert delta("tidings_auth_failures_total", scheme="basic") == 1
    # The accepted message and its delivery job went out in a group commit of their own.
    assert delta("tidings_group_commit_batch_writes_count") >= 1
    # Nothing delivers in this process: the one delivery job waits.
    assert value(after, "tidings_queue_jobs", kind="deliver_message", state="pending") == 1
    assert value(after, "tidings_queue_jobs", kind="deliver_message", state="leased") == 0
    assert 0 < value(after, "tidings_queue_oldest_due_seconds", kind="deliver_message") < 60
    # The rate limiter's counter is declared for it to use, even before any 429.
    assert "# TYPE tidings_throttled_total counter" in text


async def test_a_delivery_counts_the_submit_the_receipt_and_each_webhook(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    async with serving(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as http:
        before = await scrape(http)
        body = {**SMS, "webhook_url": f"{receiver.url}/status"}
        sent = await http.post("/v1/messages", json=body, headers=basic(account))
        assert sent.status_code == 202, sent.text
        await asyncio.to_thread(receiver.wait_for, 2)  # submitted, delivered
        after: Samples = {}

        async def both_webhooks_counted() -> bool:
            nonlocal after
            after = await scrape(http)
            delivered = value(after, "tidings_webhook_deliveries_total", outcome="delivered")
            return delivered - value(before, "tidings_webhook_deliveries_total", outcome="delivered") >= 2

        await until(both_webhooks_counted, what="two delivered webhooks counted")

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("tidings_webhook_deliveries_total", outcome="delivered") == 2
    assert delta("tidings_webhook_latency_seconds_count") == 2
    assert delta("tidings_connector_submits_total", connector="simulator", outcome="submitted") == 1
    assert delta("tidings_connector_receipts_total", connector="simulator", status="delivered") == 1


async def test_metrics_can_be_switched_off(settings: Settings) -> None:
    runtime = Runtime(settings.model_copy(update={"metrics_enabled": False}), role=Role.API)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://tidings.test"
    ) as http:
        assert (await http.get("/metrics")).status_code == 404
    await runtime.database.dispose()
