"""The one place Tidings reads its configuration from: environment variables prefixed TIDINGS_."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConnectorSettings(BaseModel):
    """One configured connector: its type (simulator, smpp, …) and that type's own options,
    which the connector type validates when it is built."""

    model_config = ConfigDict(extra="allow")

    type: str
    # Kept by Tidings, not the connector: how many messages a second the provider account (the
    # carrier bind, the platform's sender) takes, across every worker process. None: no limit.
    messages_per_second: float | None = Field(default=None, gt=0)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RouteRule(BaseModel):
    """Which connector carries a message. Rules are tried in order; the first whose every given
    condition matches wins. A rule without `channels` matches every channel."""

    model_config = ConfigDict(extra="forbid")

    connector: str
    channels: list[str] | None = None
    to_prefix: str | None = None  # the recipient starts with this (e.g. a country code)
    from_prefix: str | None = None  # the sender starts with this


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDINGS_", extra="ignore")

    home: Path = Field(
        default=Path("./tidings-data"), description="Where the embedded database, keys and TLS files live."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; a SQLite file under home when unset."
    )
    redis_url: str | None = Field(
        default=None, description="Shared state across processes (replay caches, rate limits)."
    )
    secret_key: str | None = Field(
        default=None,
        description="Key that encrypts secrets at rest; a key file under home is created when unset.",
    )
    auto_migrate: bool | None = Field(
        default=None, description="Migrate on start; defaults to true on SQLite only."
    )

    # HTTP surface
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # The front door (tidings/api/front_door.py): what a client may take of one process.
    http_head_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A request's line and headers must arrive within this."
    )
    http_body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A request's body must arrive within this of its headers."
    )
    http_tls_handshake_timeout_seconds: float = Field(
        default=10.0, gt=0, description="An HTTPS connection's TLS handshake must end within this."
    )
    http_keep_alive_seconds: int = Field(
        default=5, ge=1, description="An idle keep-alive connection is closed after this."
    )
    http_max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Request line and headers together; larger gets 431."
    )
    http_max_headers: int = Field(default=100, ge=10, description="Header lines; more gets 431.")
    http_max_connections: int = Field(
        default=1000, ge=1, description="Connections open at once per process; more are refused (503)."
    )
    log_format: str = Field(
        default="auto",
        pattern="^(auto|json|text)$",
        description="json: one object a line; text: readable lines; auto: text on a terminal, else json.",
    )
    log_level: str = Field(default="INFO", pattern="(?i)^(debug|info|warning|error|critical)$")
    log_access: bool = Field(default=True, description="One line per HTTP request (tidings.access).")

    # Operations: /health, /ready, /metrics, traces
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    ops_host: str = Field(default="127.0.0.1", description="Address of the operations listener.")
    ops_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="A listener of its own for /health, /ready and /metrics; /metrics then leaves the "
        "public listener. A worker process serves HTTP only here.",
    )
    otel_enabled: bool = Field(
        default=False, description="Trace requests through to their webhooks with OpenTelemetry."
    )
    otel_service_name: str = Field(default="tidings", min_length=1)

    # Hot path
    group_commit_max_batch: int = Field(default=256, ge=1)
    group_commit_window_ms: float = Field(default=1.0, ge=0)
    # 10 rather than 3: at 300 deliveries/s, about a sixth less CPU in both the worker and
    # PostgreSQL (fewer, larger batches; each batch costs a dozen exchanges whatever its size),
    # for about 10 ms more per commit a message's trip goes through (bench/README.md).
    group_commit_background_window_ms: float = Field(
        default=10.0, ge=0, description="How long the worker's writes wait for more to share a commit."
    )
    queue_vacuum_seconds: float = Field(
        default=5.0,
        ge=0,
        description=(
            "PostgreSQL: how often each worker process vacuums the job queue table, whose dead"
            " entries slow every claim until removed; 0 leaves it to autovacuum alone."
        ),
    )
    auth_cache_seconds: float = Field(default=10.0, ge=0)
    auth_failures_per_key: int = Field(
        default=10,
        ge=1,
        description=(
            "Failed authentications one API key (Basic) or application (JWT) may have in a burst,"
            " refilled over a minute."
        ),
    )
    auth_failures_per_address: int = Field(
        default=30,
        ge=1,
        description="Failed authentications one client address may have in a burst, refilled over a minute.",
    )
    messages_per_second: float | None = Field(
        default=None,
        ge=0,
        description="Sends per second an account may make unless it has its own limit; unset or 0: no limit.",
    )
    application_messages_per_second: float | None = Field(
        default=None,
        ge=0,
        description="Sends per second an application may make unless it has its own limit; unset or 0: no limit.",
    )
    jwt_max_lifetime_seconds: int = Field(default=86400, ge=60, description="Longest a JWT may live.")
    jwt_leeway_seconds: int = Field(default=30, ge=0, description="Clock skew allowed on iat/nbf/exp.")

    # Queue
    worker_concurrency: int = Field(default=256, ge=1)
    worker_poll_seconds: float = Field(default=0.2, gt=0)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_max_attempts: int = Field(default=12, ge=1)
    job_backoff_base_seconds: float = Field(default=1.0, gt=0)
    job_backoff_max_seconds: float = Field(default=600.0, gt=0)
    message_retention_days: int = Field(
        default=90,
        ge=0,
        description="Messages, their events and webhook attempts older than this are deleted; 0 keeps them.",
    )

    # Webhooks
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=25, ge=1)
    webhook_max_in_flight_per_endpoint: int = Field(
        default=32, ge=1, description="Webhooks one process posts to one receiving server at once."
    )
    webhook_allowed_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Private networks webhooks may reach; everything public is always allowed.",
    )

    # Connectors and routing: JSON, e.g. TIDINGS_CONNECTORS='{"sim": {"type": "simulator"}}' and
    # TIDINGS_ROUTES='[{"connector": "sim"}]'. Unset: the built-in simulator carries everything.
    connectors: dict[str, ConnectorSettings] | None = None
    routes: list[RouteRule] | None = None

    # Simulator (the default connector's settings)
    simulator_delivery_delay_seconds: float = Field(default=1.0, ge=0)
    simulator_read_delay_seconds: float | None = Field(
        default=None,
        ge=0,
        description="From delivered to read, where a channel reports reads; default: as delivery.",
    )

    # Pricing: the operator's price list lives in the database; this prices what it does not cover.
    default_currency: str = Field(default="EUR", min_length=3, max_length=3)
    default_price: str = Field(default="0.0070", description="Per SMS segment / per message elsewhere.")
    price_refresh_seconds: float = Field(default=30.0, gt=0)

    @property
    def message_retention(self) -> timedelta | None:
        return timedelta(days=self.message_retention_days) if self.message_retention_days else None

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.home / 'tidings.db').resolve()}"

    @property
    def connector_settings(self) -> dict[str, ConnectorSettings]:
        if self.connectors is not None:
            return self.connectors
        simulator = {"delivery_delay_seconds": self.simulator_delivery_delay_seconds}
        if self.simulator_read_delay_seconds is not None:
            simulator["read_delay_seconds"] = self.simulator_read_delay_seconds
        return {"simulator": ConnectorSettings(type="simulator", **simulator)}

    @property
    def route_rules(self) -> list[RouteRule]:
        if self.routes is not None:
            return self.routes
        return [RouteRule(connector=name) for name in self.connector_settings]

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate
