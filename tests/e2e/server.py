"""A real `tidings serve` process for end-to-end tests, and the checks the tests share."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import select

from tests.conftest import run_async
from tests.receiver import Received, WebhookReceiver
from tidings.store.database import Database
from tidings.store.tables import jobs, messages

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str
    signature_secret: str

    @property
    def basic(self) -> tuple[str, str]:
        return (self.api_key, self.api_secret)


def free_port() -> int:
    """A port nobody listens on right now (the kernel picks it; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TidingsServer:
    """One `python -m tidings serve` at a time on its own home and database; restartable.

    Each start picks fresh ports; stdout and stderr of every run (and of the CLI commands run
    through `cli`) are appended to one log file, shown when a test fails.
    """

    def __init__(
        self,
        home: Path,
        database_url: str,
        log_path: Path,
        settings: Mapping[str, str],
        *,
        role: str = "all",
    ) -> None:
        """`role` api or worker starts that role alone, without HTTPS; a worker's `url` is its
        operations listener (TIDINGS_OPS_PORT), the only thing it serves."""
        self.home = home
        self.role = role
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "TIDINGS_HOME": str(home),
                "TIDINGS_DATABASE_URL": database_url,
                "TIDINGS_AUTO_MIGRATE": "false",  # the database_url fixture migrated it
                "TIDINGS_LOG_FORMAT": "text",
                "TIDINGS_WORKER_POLL_SECONDS": "0.05",
                "TIDINGS_JOB_BACKOFF_BASE_SECONDS": "0.05",
                "TIDINGS_JOB_BACKOFF_MAX_SECONDS": "0.5",
                "TIDINGS_WEBHOOK_TIMEOUT_SECONDS": "2",
                **settings,
            }
        )
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        # Where the process's stderr (its log) goes when a test reads it apart from stdout.
        self.stderr_path: Path | None = None
        self.port = 0
        self.tls_port = 0
        self._runs = 0

    # --- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def ca_path(self) -> Path:
        return self.home / "tls" / "ca.pem"

    # --- the CLI -------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 30.0) -> str:
        """Runs `python -m tidings <args>` with this server's settings; returns its stdout."""
        self._log(f"$ tidings {' '.join(args)}")
        done = subprocess.run(
            [sys.executable, "-m", "tidings", *args],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        self._log(done.stderr.decode(errors="replace"))
        if done.returncode != 0:
            raise AssertionError(
                f"tidings {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout.decode(errors='replace')}\n{done.stderr.decode(errors='replace')}"
            )
        return done.stdout.decode()

    def create_account(self, status_url: str | None = None) -> Credentials:
        args = ["accounts", "create", "--json", "--name", "e2e"]
        if status_url:
            args += ["--status-url", status_url]
        created = json.loads(self.cli(*args))
        return Credentials(created["api_key"], created["api_secret"], created["signature_secret"])

    # --- the process ----------------------------------------------------------------------

    def start(self) -> TidingsServer:
        """Starts on fresh ports, again if another process took one of them in the meantime."""
        for _attempt in range(3):
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._spawn()
                self._wait_healthy()
                return self
            except AssertionError:
                tail = self.log()[log_offset:].lower()
                if self.running or "address already in use" not in tail:
                    raise
        raise AssertionError(f"no free ports for tidings serve after 3 attempts:\n{self.log()}")

    def _spawn(self) -> None:
        assert not self.running, "already running"
        self._runs += 1
        self.port, self.tls_port = free_port(), free_port()
        self._log(f"=== start #{self._runs} ({self.role}): http {self.port}, https {self.tls_port} ===")
        command = [sys.executable, "-m", "tidings", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        env = self.env
        if self.role == "all":
            command += ["--tls", "--tls-port", str(self.tls_port)]
        else:
            command += ["--role", self.role]
        if self.role == "worker":
            env = {**env, "TIDINGS_OPS_PORT": str(self.port)}
        with self.log_path.open("ab") as log, self._stderr() as stderr:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=stderr if stderr is not None else subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def _stderr(self) -> contextlib.AbstractContextManager[IO[bytes] | None]:
        return self.stderr_path.open("ab") if self.stderr_path else contextlib.nullcontext()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"tidings serve exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    if self.role == "all":
                        # HTTPS starts in the same gather(); it is up within a moment, check anyway.
                        verify = ssl.create_default_context(cafile=str(self.ca_path))
                        httpx.get(f"{self.tls_url}/health", verify=verify, timeout=2.0)
                    if self.process.poll() is None:  # not some other process on a reused port
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"tidings serve was not healthy within {START_TIMEOUT}s:\n{self.log()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def terminate(self) -> None:
        """Sends SIGTERM and returns at once (see `wait`)."""
        assert self.process is not None
        self._log("=== SIGTERM ===")
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, SIGKILL if it overstays; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._log(f"=== did not stop within {timeout}s: SIGKILL ===")
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """kill -9: no chance to flush, drain or release anything."""
        if self.process is not None and self.process.poll() is None:
            self._log("=== SIGKILL ===")
            self.process.kill()
            self.process.wait()

    # --- the log --------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        with self.log_path.open("a") as log:
            log.write(line if line.endswith("\n") else line + "\n")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# --- waiting for webhooks -----------------------------------------------------------------


def statuses_by_message(received: Iterable[Received]) -> dict[str, list[str]]:
    """message_uuid -> its statuses in arrival order."""
    found: dict[str, list[str]] = {}
    for webhook in received:
        body = webhook.json()
        found.setdefault(body["message_uuid"], []).append(body["status"])
    return found


def wait_until(
    receiver: WebhookReceiver,
    done: Callable[[list[Received]], bool],
    *,
    timeout: float,
    what: str,
) -> list[Received]:
    deadline = time.monotonic() + timeout
    while True:
        received = list(receiver.received)
        if done(received):
            return received
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {len(received)}")
        time.sleep(0.05)


def wait_for_statuses(
    receiver: WebhookReceiver, uuids: Iterable[str], statuses: Iterable[str], *, timeout: float
) -> list[Received]:
    """Until every message in `uuids` had a webhook of every status in `statuses`."""
    wanted = set(uuids)
    needed = set(statuses)

    def done(received: list[Received]) -> bool:
        seen = statuses_by_message(received)
        return all(needed <= set(seen.get(uuid, [])) for uuid in wanted)

    def missing() -> str:
        seen = statuses_by_message(receiver.received)
        gaps = {u: sorted(needed - set(seen.get(u, []))) for u in wanted if needed - set(seen.get(u, []))}
        return f"{statuses} for {len(wanted)} messages (missing: {dict(list(gaps.items())[:5])} …)"

    try:
        return wait_until(receiver, done, timeout=timeout, what="webhooks")
    except AssertionError:
        raise AssertionError(f"timed out after {timeout}s waiting for {missing()}") from None


# --- looking into the database ------------------------------------------------------------


def stored_messages(database_url: str) -> dict[str, dict[str, Any]]:
    """uuid -> {status, client_ref} for every message row."""

    async def work() -> dict[str, dict[str, Any]]:
        database = Database(database_url)
        try:
            async with database.engine.connect() as conn:
                rows = await conn.execute(select(messages.c.uuid, messages.c.status, messages.c.client_ref))
                return {r.uuid: {"status": r.status, "client_ref": r.client_ref} for r in rows}
        finally:
            await database.dispose()

    return run_async(work)


def delivery_jobs(database_url: str) -> dict[str, str]:
    """message_uuid -> state of its deliver_message job, for those not done (a done job is deleted)."""

    async def work() -> dict[str, str]:
        database = Database(database_url)
        try:
            async with database.engine.connect() as conn:
                rows = await conn.execute(
                    select(jobs.c.payload, jobs.c.state).where(jobs.c.kind == "deliver_message")
                )
                return {r.payload["message_uuid"]: r.state for r in rows}
        finally:
            await database.dispose()

    return run_async(work)


def leased_jobs(database_url: str) -> set[int]:
    """The ids of the jobs leased right now."""

    async def work() -> set[int]:
        database = Database(database_url)
        try:
            async with database.engine.connect() as conn:
                return set((await conn.execute(select(jobs.c.id).where(jobs.c.state == "leased"))).scalars())
        finally:
            await database.dispose()

    return run_async(work)
