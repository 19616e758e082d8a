"""A PostgreSQL cluster and a Redis server of a test's own, to stop, kill and restart at will.

The shared PostgreSQL (5432) and Redis (6379) serve every other test running at the same time, so
fault tests never touch them: they start these on free ports, in a temporary directory, and
throw them away afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from tests.conftest import run_async
from tests.e2e.server import free_port
from tidings.store import migrate

START_TIMEOUT = 20.0


def _postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them off PATH), or PATH's."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if versions:
        return Path(versions[-1])
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL's initdb and pg_ctl are needed for the fault tests")
    return Path(initdb).parent


class PrivatePostgres:
    """initdb into a temporary directory (PostgreSQL refuses to run as root: as `postgres` then),
    listening on 127.0.0.1 at a free port and on a Unix socket in that directory."""

    def __init__(self) -> None:
        self._bin = _postgres_bin()
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # Not under pytest's tmp_path: that is private to root, and the server runs as postgres.
        self.directory = Path(tempfile.mkdtemp(prefix="tidings-pg-"))
        if self._as_owner:
            shutil.chown(self.directory, "postgres")
        self.port = free_port()
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_owner, str(self._bin / program), *args], capture_output=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{program} exited {done.returncode}:\n{done.stdout!r}\n{done.stderr!r}")

    def start(self) -> None:
        # fsync off spares the disk and survives a crash of PostgreSQL (not of the machine);
        # synchronous_commit stays on: an acknowledged commit must survive `stop immediate`.
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        log = str(self.directory / "postgres.log")
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            log,
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session and shuts down cleanly; `immediate` is a crash (recovery at the next start)."""
        self._pg("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    def new_database(self) -> str:
        """A new, migrated database on this cluster; its URL."""
        name = f"tidings_{uuid.uuid4().hex[:10]}"

        async def create() -> None:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        run_async(create)
        url = self.url(name)
        run_async(lambda: migrate.upgrade(url))
        return url

    def log(self) -> str:
        try:
            return (self.directory / "postgres.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except AssertionError:
            pass  # not running
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    """redis-server on a free port, nothing persisted; `kill` is kill -9, `start` again reuses the port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer on port {self.port} within {START_TIMEOUT}s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
