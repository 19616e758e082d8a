"""Everything a running Tidings process holds, put together from the settings in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Protocol

from tidings.auth.basic import BasicAuthenticator
from tidings.auth.failure_throttle import FailureThrottle
from tidings.auth.jwt_auth import JwtAuthenticator
from tidings.auth.replay import RedisReplayCache, ReplayCache
from tidings.auth.replay_fallback import FallbackReplayCache
from tidings.auth.secret_box import SecretBox
from tidings.channels.connectors import Connectors
from tidings.channels.routing import Router
from tidings.config import Settings
from tidings.limits.gcra import Rate
from tidings.limits.limiter import RateLimiter
from tidings.queue.jobs import RetryPolicy
from tidings.queue.worker import Worker
from tidings.services.account_directory import AccountDirectory
from tidings.services.connector_throughput import ConnectorThroughput, connector_rate
from tidings.services.delivery import DeliverMessages
from tidings.services.inbound import InboundReceiver
from tidings.services.ingress import MessageIngress
from tidings.services.maintenance import Maintenance, every
from tidings.services.message_updates import MessageUpdates
from tidings.services.pricing import Pricing, default_price
from tidings.services.queue_metrics import QueueGauges
from tidings.services.receipts import ApplyReceipt, ReceiptApplier
from tidings.services.send_limits import SendLimits
from tidings.services.statuses import StatusRecorder
from tidings.services.submission import MessageSubmitter
from tidings.services.webhook_dispatch import SendWebhook, SignatureSecrets
from tidings.store import queue_vacuum, schema
from tidings.store.accounts import AccountCredentialStore
from tidings.store.applications import ApplicationKeyStore
from tidings.store.database import Database
from tidings.store.group_commit import POSTGRES_COMMITS_IN_FLIGHT, GroupCommitWriter
from tidings.store.job_signals import JobListener
from tidings.store.jwt_replays import DatabaseReplayCache
from tidings.store.lookups import Lookups
from tidings.store.writes import Writes
from tidings.webhooks.delivery import WebhookSender
from tidings.webhooks.endpoint_slots import EndpointSlots
from tidings.webhooks.ssrf import parse_networks

log = logging.getLogger("tidings")
API_CONNECTIONS = 8  # database connections the API side of a process may hold at once
# The worker's reads are coalesced (store/lookups.py): a few connections serve any concurrency.
WORKER_CONNECTIONS = 8
MAINTENANCE_EVERY = timedelta(minutes=5)
# A readiness probe must answer even when the database hangs rather than refuses (a network
# partition): a check that takes longer than this counts as failed.
READY_CHECK_SECONDS = 2.0


async def _within(seconds: float, check: Awaitable[bool]) -> bool:
    try:
        return await asyncio.wait_for(check, seconds)
    except TimeoutError:
        return False


class Closeable(Protocol):
    async def close(self) -> None: ...


class Role(StrEnum):
    ALL = "all"
    API = "api"
    WORKER = "worker"


def secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key:
        return SecretBox.from_setting(settings.secret_key)
    return SecretBox.from_key_file(settings.home / "secret.key")


@dataclass
class Runtime:
    settings: Settings
    role: Role = Role.ALL
    database: Database = field(init=False)
    box: SecretBox = field(init=False)
    writer: GroupCommitWriter = field(init=False)
    authenticator: BasicAuthenticator = field(init=False)
    jwt_authenticator: JwtAuthenticator = field(init=False)
    accounts: AccountDirectory = field(init=False)
    replays: ReplayCache = field(init=False)
    limiter: RateLimiter = field(init=False)
    pricing: Pricing = field(init=False)
    submitter: MessageSubmitter = field(init=False)
    send_limits: SendLimits = field(init=False)
    connectors: Connectors = field(init=False)
    router: Router = field(init=False)
    ingress: MessageIngress = field(init=False)
    updates: MessageUpdates = field(init=False)
    worker: Worker | None = field(init=False, default=None)
    _writes: Writes = field(init=False)
    _lookups: Lookups = field(init=False)
    _recorder: StatusRecorder = field(init=False)
    _receipts: ReceiptApplier = field(init=False)
    _closers: list[Closeable] = field(init=False, default_factory=list)
    _housekeeping: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _redis_replays: RedisReplayCache | None = field(init=False, default=None)
    queue_gauges: QueueGauges = field(init=False)
    _listener: JobListener | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        settings = self.settings
        # The connections this process's side(s) use at once, plus the group commit's own (one a
        # lane): a pool smaller than that opens and closes an overflow connection for nearly
        # every transaction under load, and one larger takes a share of the server's
        # max_connections (100 by default) that other processes may need.
        pool = POSTGRES_COMMITS_IN_FLIGHT
        pool += API_CONNECTIONS if self.role in (Role.ALL, Role.API) else 0
        pool += WORKER_CONNECTIONS if self.role in (Role.ALL, Role.WORKER) else 0
        self.database = Database(settings.resolved_database_url, pool_size=pool)
        self.box = secret_box(settings)
        # One limiter for every limit of the process: failed logins, sends, connector throughput.
        self.limiter = RateLimiter.from_url(settings.redis_url)
        self.writer = GroupCommitWriter(
            self.database,
            max_batch=settings.group_commit_max_batch,
            window_seconds=settings.group_commit_window_ms / 1000,
            background_window_seconds=settings.group_commit_background_window_ms / 1000,
        )
        throttle = FailureThrottle(
            self.limiter,
            per_key=Rate.per_minute(settings.auth_failures_per_key),
            per_address=Rate.per_minute(settings.auth_failures_per_address),
        )
        self.authenticator = BasicAuthenticator(
            AccountCredentialStore(self.database),
            cache_seconds=settings.auth_cache_seconds,
            throttle=throttle,
        )
        self.accounts = AccountDirectory(self.database, cache_seconds=settings.auth_cache_seconds)
        database_replays = DatabaseReplayCache(self.writer)
        if settings.redis_url:
            self._redis_replays = RedisReplayCache(settings.redis_url)
            self.replays = FallbackReplayCache(
                self._redis_replays, database_replays, leeway_seconds=settings.jwt_leeway_seconds
            )
        else:
            self.replays = database_replays
        self.jwt_authenticator = JwtAuthenticator(
            ApplicationKeyStore(self.database),
            self.accounts,
            self.replays,
            max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
            leeway_seconds=settings.jwt_leeway_seconds,
            cache_seconds=settings.auth_cache_seconds,
            throttle=throttle,
        )
        self.pricing = Pricing(
            self.database,
            default=default_price(settings.default_currency, settings.default_price),
            refresh_seconds=settings.price_refresh_seconds,
        )
        self.submitter = MessageSubmitter(
            self.writer, self.pricing, self.database, wake_worker=self._wake_worker
        )
        self.send_limits = SendLimits(
            self.limiter,
            account_default=settings.messages_per_second,
            application_default=settings.application_messages_per_second,
        )
        self.connectors = Connectors(settings.connector_settings)
        self.router = Router(settings.route_rules, self.connectors.by_name)
        self._writes = Writes(self.database.engine.dialect)
        self._lookups = Lookups(self.database)
        self._recorder = StatusRecorder(self._writes)
        self._receipts = ReceiptApplier(self._lookups, self._recorder, self._writes)
        self.ingress = MessageIngress(
            self._lookups,
            self.writer,
            self._writes,
            self._receipts,
            InboundReceiver(),
            wake_worker_at=self._wake_worker_at,
        )
        self.queue_gauges = QueueGauges(self.database)
        self.maintenance = Maintenance(self.database, message_retention=settings.message_retention)
        self.updates = MessageUpdates(
            self.database, self._lookups, self.connectors, self._recorder, self.writer, self._writes
        )

    async def readiness(self) -> dict[str, bool]:
        """What this process needs to do its work, each checked: the database; Redis, where
        configured; the connectors, in a process that delivers."""
        checks = {"database": await _within(READY_CHECK_SECONDS, self.database.ping())}
        if self._redis_replays is not None:
            checks["redis"] = await _within(READY_CHECK_SECONDS, self._redis_replays.ping())
        if self.role in (Role.ALL, Role.WORKER):
            checks["connectors"] = self.connectors.all_started
        return checks

    def _wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def _wake_worker_at(self, due: datetime) -> None:
        if self.worker is not None:
            self.worker.wake_at(due)

    def _build_worker(self) -> Worker:
        settings = self.settings
        sender = WebhookSender(
            timeout_seconds=settings.webhook_timeout_seconds,
            allowed_networks=parse_networks(settings.webhook_allowed_networks),
            idle_per_endpoint=settings.webhook_max_in_flight_per_endpoint,
        )
        self._closers.append(sender)
        delivery = DeliverMessages(
            self._lookups,
            self.router,
            self._recorder,
            self._writes,
            retry=self._retry_policy(settings.job_max_attempts),
            throughput=ConnectorThroughput(
                self.limiter,
                {
                    name: connector_rate(entry.messages_per_second)
                    for name, entry in settings.connector_settings.items()
                    if entry.messages_per_second
                },
            ),
        )
        webhooks = SendWebhook(
            sender,
            SignatureSecrets(self._lookups.sealed_signature_secrets.load, self.box),
            self._writes,
            retry=self._retry_policy(settings.webhook_max_attempts),
            # One endpoint's webhooks, in flight and waiting, leave at least as many of the worker's
            # slots as one endpoint may have in flight to everything else.
            slots=EndpointSlots(
                settings.webhook_max_in_flight_per_endpoint,
                max_waiting=settings.worker_concurrency - 2 * settings.webhook_max_in_flight_per_endpoint,
            ),
        )
        return Worker(
            self.database,
            [delivery, ApplyReceipt(self._receipts), webhooks],
            self.writer,
            self._writes,
            concurrency=settings.worker_concurrency,
            poll_seconds=settings.worker_poll_seconds,
            lease=timedelta(seconds=settings.job_lease_seconds),
            role=self.role.value,
        )

    def _retry_policy(self, max_attempts: int) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=max_attempts,
            base_seconds=self.settings.job_backoff_base_seconds,
            max_seconds=self.settings.job_backoff_max_seconds,
        )

    async def start(self) -> None:
        if self.settings.should_auto_migrate:
            await schema.upgrade(self.database)
        elif not await schema.is_current(self.database):
            raise RuntimeError("the database schema is not current: run `tidings db upgrade` first")
        self.writer.start()
        if self.role in (Role.ALL, Role.API):
            await self.pricing.start()
        if self.role in (Role.ALL, Role.WORKER):
            await self.connectors.start(self.ingress)
            self.worker = self._build_worker()
            self.worker.start()
            if not self.database.is_sqlite:
                self._listener = JobListener(self.database.url, self.worker.wake)
                self._listener.start()
            self._housekeeping.append(
                asyncio.create_task(
                    every(MAINTENANCE_EVERY, self.maintenance.purge_and_log, "periodic clean-up"),
                    name="tidings-maintenance",
                )
            )
            vacuum_every = self.settings.queue_vacuum_seconds
            if (
                not self.database.is_sqlite
                and vacuum_every
                and await queue_vacuum.may_vacuum_jobs(self.database)
            ):
                vacuum = partial(queue_vacuum.vacuum_jobs, self.database)
                self._housekeeping.append(
                    asyncio.create_task(
                        every(timedelta(seconds=vacuum_every), vacuum, "vacuuming the job queue"),
                        name="tidings-queue-vacuum",
                    )
                )

    async def stop(self) -> None:
        """Called after the HTTP servers drained: let running jobs finish, then flush every write
        handed over (the accepted messages, the finished jobs') before the writer stops."""
        for task in self._housekeeping:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            await self._listener.stop()
        if self.worker is not None:
            await self.worker.stop()
        await self.connectors.stop()
        await self._lookups.close()
        await self.writer.stop()
        await self.pricing.stop()
        for closer in self._closers:
            await closer.close()
        await self.replays.close()
        await self.limiter.close()
        await self.database.dispose()
