"""Jasmin's jCli console over a plain socket: log in, type commands, read up to the next prompt.

jCli is a telnet service; it offers telnet options first, which a client may leave unanswered, so
a socket that strips them is enough. The default console credentials (jcliadmin / jclipwd) are
those of a fresh installation.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.jasmin.gateway import Tuning

_PROMPTS = (b"jcli : ", b"> ", b"Password: ", b"Username: ")
_TELNET_COMMAND = re.compile(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]", re.DOTALL)


class Console:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read_prompt(self, timeout_s: float = 30) -> str:
        data = b""
        deadline = time.monotonic() + timeout_s
        while not data.endswith(_PROMPTS):
            if time.monotonic() > deadline:
                raise RuntimeError(f"jCli did not prompt within {timeout_s:.0f} s; it said: {data!r}")
            self._sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = self._sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"jCli closed the session; it said: {data!r}")
            data = _TELNET_COMMAND.sub(b"", data + chunk)
        return data.decode("utf-8", "replace").replace("\r", "")

    def type(self, line: str) -> str:
        self._sock.sendall(line.encode() + b"\r\n")
        return self.read_prompt()

    def add(self, command: str, settings: list[tuple[str, str]]) -> None:
        """One interactive `-a` session: each key and value, then `ok`; fails unless jCli saved it."""
        self.type(command)
        for key, value in settings:
            self.type(f"{key} {value}")
        answer = self.type("ok")
        if "Successfully" not in answer:
            self.type("ko")
            raise RuntimeError(f"jCli refused `{command}` {settings}: {answer.strip()}")


@contextlib.contextmanager
def session(port: int, username: str = "jcliadmin", password: str = "jclipwd") -> Iterator[Console]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        console = Console(sock)
        sock.settimeout(10)
        banner = b""
        while b"Authentication required" not in banner:
            banner += sock.recv(4096)
        sock.sendall(username.encode() + b"\r\n")
        console.read_prompt()  # Password:
        sock.sendall(password.encode() + b"\r\n")
        answer = console.read_prompt()
        if "Welcome" not in answer:
            raise RuntimeError(f"jCli login failed: {answer.strip()}")
        yield console
        with contextlib.suppress(OSError):
            sock.sendall(b"quit\r\n")


def provision(console: Console, smsc_port: int, tuning: Tuning, username: str, password: str) -> None:
    """A group, an HTTP API user, the SMPP connector(s) to the local SMSC, and an MT route to them."""
    console.add("group -a", [("gid", "bench")])
    console.add(
        "user -a", [("username", username), ("password", password), ("gid", "bench"), ("uid", "bench")]
    )
    connectors = [f"smsc{index}" for index in range(1, tuning.connectors + 1)]
    level = {"DEBUG": "10", "INFO": "20", "WARNING": "30", "ERROR": "40"}[tuning.log_level]
    for cid in connectors:
        settings = [("cid", cid), ("host", "127.0.0.1"), ("port", str(smsc_port))]
        settings += [("username", "bench"), ("password", "bench")]
        if tuning.submit_throughput != 1:
            settings.append(("submit_throughput", str(tuning.submit_throughput)))
        if tuning.log_level != "INFO":
            settings.append(("loglevel", level))
        console.add("smppccm -a", settings)
        answer = console.type(f"smppccm -1 {cid}")
        if "Successfully" not in answer:
            raise RuntimeError(f"jCli could not start connector {cid}: {answer.strip()}")
    console.add(
        "mtrouter -a", [("type", "defaultroute"), ("connector", f"smppc({connectors[0]})"), ("rate", "0.00")]
    )
    if len(connectors) > 1:
        console.add("filter -a", [("type", "transparentfilter"), ("fid", "everything")])
        console.add(
            "mtrouter -a",
            [
                ("type", "randomroundrobinmtroute"),
                ("order", "10"),
                ("connectors", ";".join(f"smppc({cid})" for cid in connectors)),
                ("filters", "everything"),
                ("rate", "0.00"),
            ],
        )
    wait_bound(console, connectors)


def wait_bound(console: Console, connectors: list[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        listing = console.type("smppccm --list")
        bound = {line.split()[0].lstrip("#") for line in listing.splitlines() if "BOUND_TRX" in line}
        if all(cid in bound for cid in connectors):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Jasmin's connectors did not bind to the SMSC within {timeout_s:.0f} s:\n{listing}"
            )
        time.sleep(0.5)
