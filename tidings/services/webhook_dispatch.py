"""Delivering queued webhooks: sign each attempt, send it, record how it went."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel

from tidings.auth.secret_box import SecretBox
from tidings.auth.webhook_signing import WebhookSigner
from tidings.logs import log_line
from tidings.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LATENCY
from tidings.queue.jobs import NewJob, RetryPolicy
from tidings.queue.kinds import Done, Job, JobKind, PermanentFailure, Plan, Postponed, Retry
from tidings.store.writes import Writes
from tidings.webhooks.delivery import FORBIDDEN, AttemptResult, WebhookSender
from tidings.webhooks.endpoint_slots import EndpointBusy, EndpointSlots

log = logging.getLogger("tidings.webhooks")
# A webhook whose endpoint is at its bound comes back about this much later (endpoint_slots.py).
BUSY_RETRY_SECONDS = 1.0


class WebhookPayload(BaseModel):
    """A webhook as queued: the exact body bytes go with it, so every attempt sends (and signs)
    the same payload, and sending reads nothing back from the messages."""

    event_id: str
    account_id: str
    application_id: str | None
    message_uuid: str
    url: str
    body: str


def webhook_job(
    *, event_id: str, account_id: str, application_id: str | None, message_uuid: str, url: str, body: bytes
) -> NewJob:
    """A webhook as a durable job, to be written in the same transaction as its event."""
    payload = WebhookPayload(
        event_id=event_id,
        account_id=account_id,
        application_id=application_id,
        message_uuid=message_uuid,
        url=url,
        body=body.decode(),
    )
    return SendWebhook.new(payload)


class SignatureSecrets:
    """Signers of the accounts' signature secrets, kept a short while in memory so that each
    webhook does not cost a database read, a decryption and a check of the key. The read is a
    coalesced lookup (store/lookups.py): a claim's hundreds of webhooks, starting together with
    nothing cached (a worker's first claim, or the first after the entry expired), make one
    query between them rather than one each."""

    def __init__(
        self,
        load_sealed: Callable[[str], Awaitable[str | None]],
        box: SecretBox,
        *,
        ttl_seconds: float = 30.0,
    ) -> None:
        self._load_sealed = load_sealed
        self._box = box
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, WebhookSigner]] = {}

    async def signer(self, api_key: str) -> WebhookSigner | None:
        signer = self._cached(api_key)
        if signer is not None:
            return signer
        sealed = await self._load_sealed(api_key)
        if sealed is None:
            return None
        # Those who waited on the same lookup find the first one's signer: one decryption.
        signer = self._cached(api_key)
        if signer is None:
            signer = WebhookSigner(self._box.open(sealed))
            self._cache[api_key] = (time.monotonic() + self._ttl, signer)
        return signer

    def _cached(self, api_key: str) -> WebhookSigner | None:
        cached = self._cache.get(api_key)
        return cached[1] if cached and cached[0] > time.monotonic() else None


class SendWebhook(JobKind[WebhookPayload, AttemptResult]):
    """One message's webhooks share an ordering key: they go out one at a time, in the order of
    its events, and a failing one holds back only the ones after it."""

    name = "send_webhook"
    payload_type = WebhookPayload

    def __init__(
        self,
        sender: WebhookSender,
        secrets: SignatureSecrets,
        writes: Writes,
        *,
        retry: RetryPolicy,
        slots: EndpointSlots,
    ) -> None:
        self._sender = sender
        self._slots = slots
        self._secrets = secrets
        self._writes = writes
        self.retry = retry

    @classmethod
    def ordering_key(cls, payload: WebhookPayload) -> str:
        return f"webhook:{payload.message_uuid}"

    async def perform(self, job: Job[WebhookPayload]) -> AttemptResult:
        payload = job.payload
        signer = await self._secrets.signer(payload.account_id)
        if signer is None:
            raise PermanentFailure("the account no longer exists")
        body = payload.body.encode()
        try:
            async with self._slots.slot(payload.url):
                # Signed once it has a slot: a postponed webhook costs no signature.
                token = signer.sign(body, api_key=payload.account_id, application_id=payload.application_id)
                return await self._sender.send(payload.url, body, token=token)
        except EndpointBusy:
            # Spread over a second or so, so that the postponed do not all come back at once.
            delay = timedelta(seconds=BUSY_RETRY_SECONDS * (0.5 + random.random()))  # noqa: S311
            raise Postponed("the endpoint has as many webhooks in flight as it may take", delay) from None

    async def plan(self, job: Job[WebhookPayload], result: AttemptResult) -> Plan:
        payload = job.payload
        attempt = self._writes.webhook_attempt(
            {
                "job_id": job.id,
                "event_id": payload.event_id,
                "account_id": payload.account_id,
                "message_uuid": payload.message_uuid,
                "url": payload.url,
                "attempted_at": datetime.now(UTC),
                "status_code": result.status_code,
                "latency_ms": result.latency_ms,
                "error": result.error,
            }
        )
        outcome = _outcome(result)
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        WEBHOOK_LATENCY.observe(result.latency_ms / 1000)
        fields = {
            "message_uuid": payload.message_uuid,
            "event_id": payload.event_id,
            # The host only: a receiver's path or query string may carry its own token.
            "host": _host(payload.url),
            "status": result.status_code,
            "attempt": job.attempts,
            "latency_ms": result.latency_ms,
            "error": _error_kind(result.error),
        }
        log_line(log, logging.INFO, f"webhook {outcome}", fields)
        if result.delivered:
            return Plan(Done(), [attempt])
        return Plan(Retry(result.error or "not delivered"), [attempt])


def _outcome(result: AttemptResult) -> str:
    if result.delivered:
        return "delivered"
    if result.status_code is not None:
        return "http_error"
    if result.error and result.error.startswith(FORBIDDEN):
        return "forbidden"
    return "network_error"


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _error_kind(error: str | None) -> str | None:
    """The error's kind without its detail (a client error's text can quote the whole URL)."""
    return error.split(":", 1)[0] if error else None
