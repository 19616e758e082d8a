"""Every Prometheus metric Tidings exports, declared in one place.

Each process counts what it does itself and serves its own numbers at /metrics; there is no
sharing between processes (scrape each one). Labels are closed sets (channels, outcomes, job
kinds, connector names from the settings): nothing here ever carries an account, an address or a
message, so a metric cannot leak a tenant's data and the series count stays bounded.

Code on hot paths takes a labelled child once (`ACCEPTED[channel]`, a dict built at import) rather
than calling `.labels()` per event, which costs a lock and a dictionary lookup every time.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from tidings.domain.message import Channel

ACCEPTS = Counter(
    "tidings_accepts_total",
    "Sends (POST /v1/messages) by channel and outcome: accepted, replayed (idempotency key), "
    "or the reason it was refused.",
    ["channel", "outcome"],
)
# The children the send path touches on success, made once.
ACCEPTED = {channel.value: ACCEPTS.labels(channel.value, "accepted") for channel in Channel}
REPLAYED = {channel.value: ACCEPTS.labels(channel.value, "replayed") for channel in Channel}

QUEUE_JOBS = Gauge(
    "tidings_queue_jobs",
    "Jobs waiting (pending, due or scheduled) or running (leased), by kind; read at scrape time.",
    ["kind", "state"],
)
QUEUE_OLDEST_DUE_SECONDS = Gauge(
    "tidings_queue_oldest_due_seconds",
    "How long the oldest due, unclaimed job of a kind has waited past its run time; read at scrape time.",
    ["kind"],
)

WEBHOOK_DELIVERIES = Counter(
    "tidings_webhook_deliveries_total",
    "Webhook attempts by outcome: delivered (2xx), http_error (another status), network_error "
    "(no answer), forbidden (the SSRF guard refused the destination).",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "tidings_webhook_latency_seconds",
    "Time from sending a webhook to its receiver's answer (or the failure).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

CONNECTOR_SUBMITS = Counter(
    "tidings_connector_submits_total",
    "Messages handed to a connector, by connector and outcome: submitted, refused (the provider "
    "said no), unavailable (to be retried).",
    ["connector", "outcome"],
)
CONNECTOR_RECEIPTS = Counter(
    "tidings_connector_receipts_total",
    "Receipts (delivered, read, failed …) reported by connectors, by connector and status.",
    ["connector", "status"],
)

GROUP_COMMIT_BATCH = Histogram(
    "tidings_group_commit_batch_writes",
    "Writes (accepts and worker statements) committed together in one group-commit transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
GROUP_COMMIT_SECONDS = Histogram(
    "tidings_group_commit_seconds",
    "Time one group-commit transaction took, from its first statement to its commit.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

AUTH_FAILURES = Counter(
    "tidings_auth_failures_total",
    "Requests refused with 401, by the scheme they presented (basic, bearer, params, none).",
    ["scheme"],
)

THROTTLED = Counter(
    "tidings_throttled_total",
    "Requests answered 429, by the limit that refused them.",
    ["reason"],
)

JOBS_DEAD = Counter(
    "tidings_jobs_dead_total",
    "Jobs that gave up (attempts exhausted or a permanent failure), by kind.",
    ["kind"],
)
