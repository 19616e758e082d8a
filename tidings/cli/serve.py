"""`tidings serve`: the API and the worker, over plain HTTP and optionally HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from tidings import tracing
from tidings.allocator import return_large_blocks_when_freed
from tidings.api.app import create_app, create_ops_app
from tidings.api.front_door import FrontDoorLimits, GuardedHttpProtocol, guarded_protocol
from tidings.cli.credentials import print_credentials
from tidings.config import Settings
from tidings.logs import configure_logging
from tidings.runtime import Role, Runtime
from tidings.services.accounts import create_account, has_accounts
from tidings.tls import ensure_local_tls, load_tls_pair

log = logging.getLogger("tidings.serve")
# How long a closed TLS connection may wait for the client's close_notify before it is dropped.
TLS_CLOSE_GRACE_SECONDS = 1.0


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to us: several listeners share one runtime and stop
    together, and that bounds an HTTPS connection's TLS handshake."""

    def __init__(self, config: uvicorn.Config, tls_handshake_timeout: float) -> None:
        super().__init__(config)
        self.tls_handshake_timeout = tls_handshake_timeout

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's, for the one case serve has (a host and a port), with the handshake timeout
        passed on: uvicorn passes none, so asyncio's 60 s would apply, and the front door's
        protocol sees a connection only once its handshake is done, too late for its deadlines."""
        config = self.config
        if sockets is not None or config.uds is not None or config.fd is not None:
            await super().startup(sockets)
            return
        await self.lifespan.startup()  # lifespan is off: the runtime is started by serve

        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )
            return protocol

        try:
            server = await asyncio.get_running_loop().create_server(
                create_protocol,
                host=config.host,
                port=config.port,
                ssl=config.ssl,
                backlog=config.backlog,
                ssl_handshake_timeout=self.tls_handshake_timeout if config.ssl else None,
            )
        except OSError as error:  # as uvicorn answers a port in use: logged, and its exit status
            logging.getLogger("uvicorn.error").error(error)
            sys.exit(STARTUP_FAILURE)
        assert server.sockets is not None
        self.servers = [server]
        self._log_started_message(list(server.sockets))
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        reaper = asyncio.create_task(self._drop_idle_tls_connections()) if self.config.is_ssl else None
        try:
            await super().shutdown(sockets)
        finally:
            if reaper is not None:
                reaper.cancel()

    async def _drop_idle_tls_connections(self) -> None:
        """Closing a TLS connection waits for the client's close_notify, and an idle keep-alive client
        (the Vonage SDK keeps a pool) sends none until it next uses the connection, so shutdown
        would sit out uvicorn's 30 s graceful timeout. A closing connection with no request in
        progress and nothing left to write is aborted after a short grace: it had nothing more to say."""
        loop = asyncio.get_running_loop()
        closing_since: dict[int, float] = {}
        while True:
            await asyncio.sleep(0.1)
            now = loop.time()
            for connection in list(self.server_state.connections):
                transport: Any = getattr(connection, "transport", None)
                cycle: Any = getattr(connection, "cycle", None)
                idle = cycle is None or cycle.response_complete
                if transport is None or not idle or not transport.is_closing():
                    continue
                if transport.get_write_buffer_size():
                    continue
                if now - closing_since.setdefault(id(connection), now) >= TLS_CLOSE_GRACE_SECONDS:
                    transport.abort()


app = typer.Typer()


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Plain HTTP port."),
    role: Role = typer.Option(Role.ALL, help="api, worker, or all (both in this process)."),
    tls_cert: Path | None = typer.Option(None, help="Operator's certificate chain (PEM) for HTTPS."),
    tls_key: Path | None = typer.Option(None, help="Operator's private key (PEM) for HTTPS."),
    tls: bool = typer.Option(
        False, "--tls", help="Serve HTTPS with a local CA created under TIDINGS_HOME/tls."
    ),
    tls_port: int = typer.Option(8443, help="HTTPS port, with --tls or --tls-cert/--tls-key."),
) -> None:
    """Run Tidings: the API, the worker, or both."""
    return_large_blocks_when_freed()
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.otel_enabled:
        try:
            tracing.enable(settings.otel_service_name)
        except tracing.TracingUnavailable as error:
            raise typer.BadParameter(str(error)) from None
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    if tls_cert and tls_key:
        load_tls_pair(tls_cert, tls_key)
        certificate: tuple[Path, Path] | None = (tls_cert, tls_key)
    elif tls:
        files = ensure_local_tls(settings.home / "tls")
        certificate = (files.cert, files.key)
        log.info(
            "HTTPS certificate authority: %s (point clients at it, e.g. REQUESTS_CA_BUNDLE=%s)",
            files.ca_cert.resolve(),
            files.ca_cert.resolve(),
            extra={"ca": str(files.ca_cert.resolve())},
        )
    else:
        certificate = None
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        pass
    try:
        asyncio.run(_serve(settings, role, host, port, certificate, tls_port))
    finally:
        tracing.disable()  # sends the spans still waiting in the exporter's batch


async def _serve(
    settings: Settings, role: Role, host: str, port: int, certificate: tuple[Path, Path] | None, tls_port: int
) -> None:
    runtime = Runtime(settings, role)
    await runtime.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if role in (Role.ALL, Role.API) and not await has_accounts(runtime.database):
            credentials = await create_account(runtime.database, runtime.box, name="demo")
            log.info("Created the demo account; its credentials are printed once, on stdout")
            print_credentials(credentials, as_json=False)
        _tune_garbage_collector()
        listeners = []
        if role is not Role.WORKER:
            app = create_app(runtime)
            # HTTP and HTTPS share one connection budget.
            protocol = guarded_protocol(FrontDoorLimits.from_settings(settings))
            listeners.append(listener(app, settings, protocol, host, port, None))
            if certificate:
                listeners.append(listener(app, settings, protocol, host, tls_port, certificate))
        if settings.ops_port is not None:
            # A budget of its own: a flood of API clients must not lock out the probes.
            ops = create_ops_app(runtime)
            listeners.append(
                listener(
                    ops,
                    settings,
                    guarded_protocol(FrontDoorLimits.from_settings(settings)),
                    settings.ops_host,
                    settings.ops_port,
                    None,
                )
            )
        if not listeners:
            log.info("Tidings worker running", extra={"role": role.value})
            await stop.wait()
            return
        for each in listeners:
            scheme = "https" if each.config.ssl_certfile else "http"
            address = f"{scheme}://{each.config.host}:{each.config.port}"
            log.info("Tidings listening on %s", address, extra={"role": role.value, "address": address})

        async def stop_listeners() -> None:
            await stop.wait()
            for each in listeners:
                each.should_exit = True

        stopper = asyncio.create_task(stop_listeners())
        await asyncio.gather(*(each.serve() for each in listeners))
        stopper.cancel()
    finally:
        # Only now, with every connection drained, do the writer and the worker stop.
        await runtime.stop()


def _tune_garbage_collector() -> None:
    """Everything alive after start-up (frameworks, models, compiled queries) lives as long as the
    process: freezing it keeps the collector from scanning it again and again, and collecting
    less often stops full collections from pausing the event loop under load. This took the
    send path's p99 latency from ~120 ms to ~30 ms at 32 connections."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def listener(
    app: object,
    settings: Settings,
    protocol: type[GuardedHttpProtocol],
    host: str,
    port: int,
    certificate: tuple[Path, Path] | None,
) -> _Listener:
    """One uvicorn server behind the front door. Listeners given the same `protocol` class share
    its connection budget: every listener of a process gets the same one."""
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        http=protocol,
        # No WebSocket routes, and an upgrade would hand the connection to a protocol outside the
        # front door's limits: an upgrade request is answered as plain HTTP.
        ws="none",
        timeout_keep_alive=settings.http_keep_alive_seconds,
        timeout_graceful_shutdown=30,
        ssl_certfile=str(certificate[0]) if certificate else None,
        ssl_keyfile=str(certificate[1]) if certificate else None,
    )
    return _Listener(config, protocol.limits.tls_handshake_timeout)
