"""The servers under test, each started fresh in its own process and stopped at the end.

- bare: bench/bare_app.py (FastAPI + the same validation, nothing else);
- tidings on SQLite: `tidings serve` with a fresh TIDINGS_HOME in a temporary directory;
- tidings on PostgreSQL: a fresh database created for the run (`tidings db upgrade` first),
  dropped at the end.

Each Tidings target is one (backend, role) pair with its own fresh data. With `redis_url`, it
runs with TIDINGS_REDIS_URL (the JWT replay cache in Redis, as in production), and
`create_application` makes the application whose key signs the benchmark's JWTs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
TIDINGS = [sys.executable, "-m", "tidings"]  # the same code as the `tidings` script of this venv
SMOKE_BODY = (
    b'{"channel":"sms","message_type":"text","to":"447700900000","from":"Acme",'
    b'"text":"Hello from the benchmark","client_ref":"bench"}'
)
_PENDING_DELIVERIES = (
    "SELECT count(*) FROM jobs WHERE kind = 'deliver_message' AND state IN ('pending', 'leased')"
)


@dataclass
class Server:
    target: str
    backend: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    authorization: str = ""
    count_messages: Callable[[], int] | None = None
    count_pending_deliveries: Callable[[], int] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/messages"

    @property
    def applications_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/applications"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def memory(self) -> Memory:
        """Resident memory of the server and the processes it started (SQLite's writer)."""
        return process_memory(self.process.pid)

    def stop(self) -> int | None:
        """SIGTERM, as an operator would stop it: connections drain, the writer flushes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass(frozen=True)
class Memory:
    rss_mb: float  # now
    peak_mb: float  # the most each process has held since it started, summed


def process_memory(pid: int) -> Memory:
    """From /proc (Linux): VmRSS and VmHWM of `pid` and all its descendants."""
    rss = peak = 0.0
    for each in _with_descendants(pid):
        try:
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{each}/status").read_text().splitlines()
            )
        except (OSError, ValueError):
            continue  # it has just exited
        rss += int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        peak += int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
    return Memory(rss, peak)


def _with_descendants(pid: int) -> list[int]:
    found = [pid]
    for each in found:
        for task in Path(f"/proc/{each}/task").glob("*/children"):
            try:
                found.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(command: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def _wait_ready(server: Server, timeout_s: float = 60.0) -> None:
    """Until the port answers and one real send is accepted (which also checks the credentials)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.target} ({server.backend}) exited at start:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.target} did not start listening:\n{server.log_tail()}") from None
            time.sleep(0.1)
    headers = {"Content-Type": "application/json"}
    if server.authorization:
        headers["Authorization"] = server.authorization
    request = urllib.request.Request(server.url, data=SMOKE_BODY, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
            answer = response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    if status != 202:
        raise RuntimeError(f"{server.target} answered the first send with {status}: {answer!r}")


@contextlib.contextmanager
def bare(workdir: Path) -> Iterator[Server]:
    port = free_port()
    log_path = workdir / "bare.log"
    process = _start(
        [sys.executable, "-m", "bench.bare_app", "--port", str(port)], dict(os.environ), log_path, REPO
    )
    server = Server("bare", "-", port, process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


def _tidings_env(
    home: Path, database_url: str | None, delivery_delay_s: float, redis_url: str | None
) -> dict[str, str]:
    # TIDINGS_* settings in the caller's environment (e.g. group-commit knobs) still apply;
    # where the data lives is always ours.
    env = {k: v for k, v in os.environ.items() if k not in ("TIDINGS_HOME", "TIDINGS_DATABASE_URL")}
    env["TIDINGS_HOME"] = str(home)
    env["TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS"] = str(delivery_delay_s)
    if database_url:
        env["TIDINGS_DATABASE_URL"] = database_url
    if redis_url:
        env["TIDINGS_REDIS_URL"] = redis_url
    return env


def _tidings_cli(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([*TIDINGS, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`tidings {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _create_account(env: dict[str, str], cwd: Path) -> str:
    output = _tidings_cli(["accounts", "create", "--name", "bench", "--json"], env, cwd)
    line = [line for line in output.splitlines() if line.startswith("{")][-1]
    credentials = json.loads(line)
    token = base64.b64encode(f"{credentials['api_key']}:{credentials['api_secret']}".encode()).decode()
    return f"Basic {token}"


def check_redis(url: str) -> None:
    """Raises with a hint when Redis does not answer at `url` (the JWT rows need it)."""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except RedisError as error:
        raise RuntimeError(
            f"Redis at {url} does not answer ({error}); the JWT rows need it (--redis-url)"
        ) from None
    finally:
        client.close()


def create_application(server: Server) -> tuple[str, str]:
    """POST /v2/applications with the account's Basic credentials and no public key: Tidings
    generates the key pair and returns the private half once. Returns (id, private key PEM)."""
    body = json.dumps({"name": "bench", "capabilities": {"messages": {}}}).encode()
    request = urllib.request.Request(
        server.applications_url,
        data=body,
        headers={"Content-Type": "application/json", "Authorization": server.authorization},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    if status != 201:
        raise RuntimeError(f"creating the benchmark application answered {status}: {answer!r}")
    created = json.loads(answer)
    return str(created["id"]), str(created["keys"]["private_key"])


@contextlib.contextmanager
def _tidings(
    workdir: Path, backend: str, env: dict[str, str], role: str
) -> Iterator[tuple[Server, dict[str, str]]]:
    authorization = _create_account(env, workdir)
    port = free_port()
    log_path = workdir / f"tidings-{backend}-{role}.log"
    process = _start(
        [*TIDINGS, "serve", "--host", "127.0.0.1", "--port", str(port), "--role", role],
        env,
        log_path,
        workdir,
    )
    server = Server("tidings", backend, port, process, log_path, authorization)
    try:
        _wait_ready(server)
        yield server, env
    finally:
        server.stop()


@contextlib.contextmanager
def tidings_sqlite(
    workdir: Path, *, role: str, delivery_delay_s: float, redis_url: str | None = None
) -> Iterator[Server]:
    home = workdir / "sqlite-home"
    env = _tidings_env(home, None, delivery_delay_s, redis_url)
    database = home / "tidings.db"

    def query(sql: str) -> int:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
            return int(conn.execute(sql).fetchone()[0])

    with _tidings(workdir, "sqlite", env, role) as (server, _):
        server.count_messages = lambda: query("SELECT count(*) FROM messages")
        server.count_pending_deliveries = lambda: query(_PENDING_DELIVERIES)
        yield server


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _pg_query(url: str, sql: str) -> int:
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def tidings_postgresql(
    workdir: Path, *, admin_url: str, role: str, delivery_delay_s: float, redis_url: str | None = None
) -> Iterator[Server]:
    name = f"tidings_bench_{uuid.uuid4().hex[:10]}"
    _pg_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        plain_url = _with_database(admin_url, name)
        sqlalchemy_url = "postgresql+asyncpg://" + plain_url.split("://", 1)[1]
        env = _tidings_env(workdir / "postgresql-home", sqlalchemy_url, delivery_delay_s, redis_url)
        _tidings_cli(["db", "upgrade"], env, workdir)
        with _tidings(workdir, "postgresql", env, role) as (server, _):
            server.count_messages = lambda: _pg_query(plain_url, "SELECT count(*) FROM messages")
            server.count_pending_deliveries = lambda: _pg_query(plain_url, _PENDING_DELIVERIES)
            yield server
    finally:
        _pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
