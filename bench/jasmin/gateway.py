"""Jasmin under test: its daemons started from a configuration written for the run, set up through jCli.

Jasmin 0.11 is three daemons here, as its packaging runs them (one systemd unit each):
`jasmind.py` (HTTP API, router, SMPP client manager, jCli), `dlrlookupd.py` (matches each
deliver_sm receipt to the message it is about) and `dlrd.py` (posts each receipt to the message's
`dlr-url`). They talk through RabbitMQ and keep receipt mappings in Redis. Every run gets:

- a RabbitMQ vhost of its own (made with `rabbitmqctl`, deleted afterwards), so no queue of
  another run or program is touched;
- a Redis server of its own (`redis-server` on a free port, nothing saved): Jasmin 0.11 selects
  the configured database only when a Redis password is set, so on a shared server it would
  always write its receipt mappings into database 0, and a later run's SMSC message ids would
  find an earlier run's mappings;
- free TCP ports for every listener, and a temporary ROOT_PATH for configuration, logs and the
  router's store.

The connector, user, group and route are then added through jCli, Jasmin's operator console
(telnet on the jCli port), as its installation guide does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import targets
from bench.jasmin import jcli

JASMIN_VENV = Path(os.environ.get("JASMIN_VENV", "/opt/jasmin-venv"))
SMSC_MODULES = Path(os.environ.get("JASMIN_SMSC_DIR", "/opt/jasmin-smsc")) / "node_modules"
SMSC_SCRIPT = Path(__file__).resolve().parent / "smsc.js"
USERNAME, PASSWORD = "bench", "benchpwd"  # the Jasmin HTTP API user (passwords are at most 8 chars)


@dataclass(frozen=True)
class Tuning:
    """What distinguishes 'jasmin default' from 'jasmin tuned': all of it is configuration."""

    name: str
    submit_throughput: int = 1  # the connector's default: 1 submit_sm per second
    connectors: int = 1  # binds to the SMSC; more than one are used through a round-robin route
    log_level: str = "INFO"  # every daemon's log level (INFO logs a line or more per message)
    # When a receipt arrives before its submit_sm_resp's mapping is stored, the lookup is tried
    # again this many seconds later, up to this many times (jasmin.cfg [dlr]); past them the
    # receipt is dropped.
    dlr_lookup_retry_delay: int = 10
    dlr_lookup_max_retries: int = 2
    billing: bool = True  # the HTTP API's billing feature (jasmin.cfg [http-api] billing_feature)


DEFAULT = Tuning("jasmin default")
TUNED = Tuning(
    "jasmin tuned",
    submit_throughput=0,
    connectors=32,
    log_level="WARNING",
    dlr_lookup_retry_delay=1,
    dlr_lookup_max_retries=20,
    billing=False,
)


def missing() -> str | None:
    """Why Jasmin cannot be run here, or None when everything the benchmark needs is installed."""
    needed = {
        JASMIN_VENV / "bin" / "jasmind.py": "Jasmin's virtualenv",
        JASMIN_VENV / "share" / "jasmin" / "resource" / "amqp0-9-1.xml": "Jasmin's AMQP spec file",
        SMSC_MODULES / "smpp": "the npm `smpp` package for the local SMSC",
    }
    for path, what in needed.items():
        if not path.exists():
            return f"{what} is not installed ({path} is missing)"
    for command in ("node", "rabbitmqctl", "redis-server"):
        if shutil.which(command) is None:
            return f"`{command}` is not on PATH"
    return None


@dataclass
class Jasmin:
    http_port: int
    jcli_port: int
    workdir: Path

    def send_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/send"

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.workdir / "log" / name
        with contextlib.suppress(OSError):
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _config(ports: dict[str, int], vhost: str, root: Path, tuning: Tuning) -> str:
    level = tuning.log_level
    sections: dict[str, dict[str, object]] = {
        "smpp-server": {"bind": "127.0.0.1", "port": ports["smpp_server"], "log_level": level},
        "smpp-server-pb": {"bind": "127.0.0.1", "port": ports["smpp_server_pb"], "log_level": level},
        "smpp-server-pb-client": {"host": "127.0.0.1", "port": ports["smpp_server_pb"]},
        "client-management": {
            "bind": "127.0.0.1",
            "port": ports["client_management"],
            "store_path": root / "store",
            "log_level": level,
        },
        "service-smppclient": {"log_level": level},
        "sm-listener": {"log_level": level},
        "dlr": {
            "log_level": level,
            "dlr_lookup_retry_delay": tuning.dlr_lookup_retry_delay,
            "dlr_lookup_max_retries": tuning.dlr_lookup_max_retries,
        },
        "amqp-broker": {
            "host": "127.0.0.1",
            "port": 5672,
            "vhost": vhost,
            "spec": JASMIN_VENV / "share" / "jasmin" / "resource" / "amqp0-9-1.xml",
            "log_level": level,
        },
        "http-api": {
            "bind": "127.0.0.1",
            "port": ports["http"],
            "billing_feature": tuning.billing,
            "log_level": level,
        },
        "router": {
            "bind": "127.0.0.1",
            "port": ports["router"],
            "store_path": root / "store",
            "log_level": level,
        },
        "deliversm-thrower": {"log_level": level},
        "dlr-thrower": {"log_level": level},
        "redis-client": {"host": "127.0.0.1", "port": ports["redis"], "log_level": level},
        "jcli": {"bind": "127.0.0.1", "port": ports["jcli"], "log_level": level},
    }
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`rabbitmqctl {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _wait_consumed(vhost: str, queues: tuple[str, ...], processes: list[subprocess.Popen[bytes]]) -> None:
    """Until each queue has a consumer. A receipt published before dlrlookupd or dlrd consumes its
    queue is dropped by RabbitMQ (nothing is bound yet), so the load must wait for both."""
    deadline = time.monotonic() + 120
    while True:
        listing = _rabbitmqctl("list_queues", "-q", "-p", vhost, "name", "consumers")
        consumers = dict(line.split("\t")[:2] for line in listing.splitlines() if line.count("\t") >= 1)
        if all(consumers.get(name, "0") != "0" for name in queues):
            return
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a Jasmin daemon exited at start (code {process.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Jasmin's queues {queues} got no consumer within 120 s:\n{listing}")
        time.sleep(0.5)


# Each Jasmin daemon holds a lock file in /tmp while it runs (lockfile's link locks: the lock and a
# hard link to it named after the host and process) and exits at once if it cannot take it.
_LOCKS = {
    "jasmind.py": "jasmind.lock",
    "dlrlookupd.py": "dlrlookupd-master.lock",
    "dlrd.py": "dlrd-master.lock",
}


def _running(script: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if script.encode() in cmdline.read_bytes():
                return True
    return False


def _clear_stale_locks() -> None:
    """A daemon that was killed (SIGKILL) leaves its lock behind, and the next one would exit.
    Locks of daemons that are not running are removed; a running Jasmin is an error."""
    for script, name in _LOCKS.items():
        lock = Path("/tmp") / name
        if not lock.exists():
            continue
        if _running(script):
            raise RuntimeError(f"another {script} is running (it holds {lock}); stop it first")
        for other in Path("/tmp").iterdir():
            with contextlib.suppress(OSError):
                if other != lock and other.is_file() and other.samefile(lock):
                    other.unlink()
        lock.unlink(missing_ok=True)


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start (code {process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s:.0f} s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def smsc(workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The local SMSC (bench/jasmin/smsc.js on Node): yields its SMPP port."""
    port = targets.free_port()
    env = dict(os.environ, NODE_PATH=str(SMSC_MODULES))
    log = (workdir / "smsc.log").open("ab")
    process = subprocess.Popen(
        ["node", str(SMSC_SCRIPT), "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_port(port, process, "the Node SMSC", timeout_s=30)
        yield port, process
    finally:
        _stop(process)
        log.close()


@contextlib.contextmanager
def jasmin(workdir: Path, smsc_port: int, tuning: Tuning) -> Iterator[Jasmin]:
    """Jasmin's three daemons on fresh configuration, with a user, connector(s) and route added."""
    root = workdir / "jasmin-root"
    for folder in ("etc", "store", "log"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = ("http", "jcli", "router", "client_management", "smpp_server", "smpp_server_pb", "redis")
    ports = {name: targets.free_port() for name in names}
    vhost = f"jasmin-bench-{uuid.uuid4().hex[:8]}"
    config = root / "etc" / "jasmin.cfg"
    config.write_text(_config(ports, vhost, root, tuning))
    env = dict(os.environ, ROOT_PATH=str(root), CONFIG_PATH=str(root / "etc"), LOG_PATH=str(root / "log"))
    env["PATH"] = f"{JASMIN_VENV / 'bin'}:{env.get('PATH', '')}"
    _clear_stale_locks()
    _rabbitmqctl("add_vhost", vhost)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(ports["redis"]),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(redis)
        _wait_port(ports["redis"], redis, "redis-server", timeout_s=30)

        def start(script: str) -> subprocess.Popen[bytes]:
            with (root / "log" / f"{script}.out").open("ab") as out:
                command = [
                    str(JASMIN_VENV / "bin" / "python"),
                    str(JASMIN_VENV / "bin" / script),
                    "-c",
                    str(config),
                ]
                process = subprocess.Popen(command, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT)
            processes.append(process)
            return process

        jasmind = start("jasmind.py")
        _wait_port(ports["jcli"], jasmind, "jasmind.py")
        _wait_port(ports["http"], jasmind, "jasmind.py")
        start("dlrlookupd.py")
        start("dlrd.py")
        _wait_consumed(vhost, ("DLRLookup-main", "dlr_thrower"), processes)
        gateway = Jasmin(ports["http"], ports["jcli"], root)
        with jcli.session(ports["jcli"]) as console:
            jcli.provision(console, smsc_port, tuning, USERNAME, PASSWORD)
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"a Jasmin daemon exited (code {process.returncode}); logs in {root / 'log'}"
                )
        yield gateway
    finally:
        for process in reversed(processes):
            _stop(process)
        with contextlib.suppress(RuntimeError):
            _rabbitmqctl("delete_vhost", vhost)
