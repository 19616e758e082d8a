"""/health (liveness) and /ready (readiness) over real HTTP, with parts of the process missing."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.live import free_port, serving
from tidings.api.app import create_app, create_ops_app
from tidings.config import Settings
from tidings.runtime import Role, Runtime

REDIS_URL = "redis://127.0.0.1:6379/0"


async def probe(runtime: Runtime) -> tuple[httpx.Response, httpx.Response]:
    async with serving(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as http:
        return await http.get("/health"), await http.get("/ready")


async def test_a_running_process_is_live_and_ready(runtime: Runtime) -> None:
    health, ready = await probe(runtime)
    assert (health.status_code, health.json()) == (200, {"status": "ok", "role": "all"})
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "role": "all",
        "checks": {"database": "ok", "connectors": "ok"},
    }


async def test_a_database_outage_is_unready_but_still_live(tmp_path: Path) -> None:
    """Liveness never asks the database: an orchestrator must not restart every process because
    the database is down."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing",
        auto_migrate=False,
    )
    runtime = Runtime(settings, role=Role.API)  # not started: start() would refuse this database
    try:
        health, ready = await probe(runtime)
    finally:
        await runtime.database.dispose()
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "role": "api", "checks": {"database": "failed"}}


async def test_connectors_not_started_make_a_worker_unready(settings: Settings) -> None:
    runtime = Runtime(settings, role=Role.WORKER)  # built, not started: no connector runs
    try:
        _, ready = await probe(runtime)
    finally:
        await runtime.database.dispose()
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "connectors": "failed"}


async def test_redis_is_checked_where_it_is_configured(settings: Settings) -> None:
    for redis_url, expected in ((REDIS_URL, "ok"), (f"redis://127.0.0.1:{free_port()}/0", "failed")):
        runtime = Runtime(settings.model_copy(update={"redis_url": redis_url}), role=Role.API)
        await runtime.start()
        try:
            _, ready = await probe(runtime)
        finally:
            await runtime.stop()
        assert ready.json()["checks"] == {"database": "ok", "redis": expected}, redis_url
        assert ready.status_code == (200 if expected == "ok" else 503)


async def test_a_worker_answers_probes_and_metrics_on_the_operations_listener(settings: Settings) -> None:
    runtime = Runtime(settings, role=Role.WORKER)
    await runtime.start()
    try:
        async with serving(create_ops_app(runtime)) as url, httpx.AsyncClient(base_url=url) as http:
            ready = await http.get("/ready")
            metrics = await http.get("/metrics")
            send = await http.post("/v1/messages", json={})
    finally:
        await runtime.stop()
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "role": "worker",
        "checks": {"database": "ok", "connectors": "ok"},
    }
    assert metrics.status_code == 200 and "tidings_queue_jobs" in metrics.text
    assert send.status_code == 404  # nothing but operations there
