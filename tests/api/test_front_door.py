"""The front door (tidings/api/front_door.py) against a real listener on 127.0.0.1, over raw sockets.

Each test starts the listener `tidings serve` builds, with short limits, in a thread of its own,
in front of a small app that reads the whole body behind the real body-size guard. Deadlines are
checked by waiting for the server to act (answer, or close the socket) within a generous bound,
never by sleeping and then checking that nothing happened."""

from __future__ import annotations

import asyncio
import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.types import Receive, Scope, Send

from tidings.api.body_limit import BodySizeLimit
from tidings.api.front_door import FrontDoorLimits, guarded_protocol
from tidings.cli.serve import listener
from tidings.config import Settings
from tidings.tls import TlsFiles, ensure_local_tls

GENEROUS = 15.0  # an upper bound on any wait: a deadline missed by this much is a failure
HEAD_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
HANDSHAKE_TIMEOUT = 0.5
MAX_BODY = 4096


async def whole_body_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, as every Tidings route does, and says how long it was."""
    assert scope["type"] == "http"
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"received": size}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def running_listeners(tls: TlsFiles | None = None, **overrides: Any) -> Iterator[list[int]]:
    """Listeners built as `tidings serve` builds them, HTTP and (given `tls`) HTTPS on one shared
    protocol class, serving in a thread of their own; yields their ports."""
    values: dict[str, Any] = {
        "http_head_timeout_seconds": HEAD_TIMEOUT,
        "http_body_timeout_seconds": BODY_TIMEOUT,
        "http_keep_alive_seconds": 5,
        "http_max_header_bytes": 4096,
        "http_max_headers": 20,
        "http_max_connections": 50,
        "max_body_bytes": MAX_BODY,
        **overrides,
    }
    settings = Settings(**values)
    protocol = guarded_protocol(FrontDoorLimits.from_settings(settings))
    app = BodySizeLimit(whole_body_app, max_bytes=settings.max_body_bytes)
    servers = [listener(app, settings, protocol, "127.0.0.1", 0, None)]
    if tls is not None:
        servers.append(listener(app, settings, protocol, "127.0.0.1", 0, (tls.cert, tls.key)))

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    thread = threading.Thread(target=lambda: asyncio.run(serve_all()), daemon=True)
    thread.start()
    deadline = time.monotonic() + GENEROUS
    while not all(server.started for server in servers):
        assert thread.is_alive() and time.monotonic() < deadline, "the listeners did not start"
        time.sleep(0.01)
    try:
        yield [int(server.servers[0].sockets[0].getsockname()[1]) for server in servers]
    finally:
        for server in servers:
            server.should_exit = True
        thread.join(GENEROUS)


@contextmanager
def running(**overrides: Any) -> Iterator[int]:
    """One plain HTTP listener; yields its port."""
    with running_listeners(None, **overrides) as ports:
        yield ports[0]


Server = Callable[..., AbstractContextManager[int]]


@pytest.fixture
def serve() -> Server:
    return running


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=GENEROUS)
    return sock


def read_until_closed(sock: socket.socket, timeout: float = GENEROUS) -> bytes:
    """Everything the server sends until it closes the connection; fails if it never does."""
    sock.settimeout(timeout)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            raise AssertionError(f"the server kept the connection open for {timeout} s") from None
        if not chunk:
            return received
        received += chunk


def trickle_until_answered(sock: socket.socket, pieces: Iterator[bytes], interval: float = 0.05) -> bytes:
    """Sends a piece every `interval` until the server answers or closes; returns what it sent."""
    deadline = time.monotonic() + GENEROUS
    for piece in pieces:
        assert time.monotonic() < deadline, "the server kept reading a trickling client"
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            break
    return read_until_closed(sock)


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, leaving the connection as the server leaves it."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, "closed before an answer"
        received += chunk
    length = int(parse(received)[1]["content-length"])
    while len(received.partition(b"\r\n\r\n")[2]) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of an answer"
        received += chunk
    return received


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def assert_problem(raw: bytes, status: int) -> dict[str, Any]:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem: dict[str, Any] = json.loads(body)
    assert set(problem) == {"type", "title", "detail", "instance"}, problem
    assert problem["type"] == "about:blank" and problem["detail"]
    return problem


def forever(piece: bytes) -> Iterator[bytes]:
    while True:
        yield piece


def test_a_silent_connection_is_closed_after_the_head_deadline(serve: Server) -> None:
    with serve() as port, connect(port) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started >= HEAD_TIMEOUT * 0.9


def test_trickled_headers_get_408_and_a_close(serve: Server) -> None:
    with serve() as port, connect(port) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: tidings.test\r\n")
        problem = assert_problem(trickle_until_answered(sock, forever(b"X: y\r\n")), 408)
        assert "headers" in problem["detail"]


def test_a_trickled_body_gets_408_and_a_close(serve: Server) -> None:
    with serve() as port, connect(port) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: tidings.test\r\nContent-Length: 4000\r\n\r\n")
        problem = assert_problem(trickle_until_answered(sock, forever(b"a")), 408)
        assert "body" in problem["detail"]


def test_a_keep_alive_connection_left_idle_is_closed(serve: Server) -> None:
    with serve(http_keep_alive_seconds=1) as port, connect(port) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: tidings.test\r\n\r\n")
        status, headers, body = parse(read_until_closed(sock))
        assert (status, json.loads(body)) == (200, {"received": 0})
        assert headers.get("connection") != "close"  # kept alive, then closed for idling


def test_requests_within_the_limits_pass(serve: Server) -> None:
    with serve() as port:
        headers = {f"X-Header-{i}": "v" * 100 for i in range(10)}
        response = requests.post(
            f"http://127.0.0.1:{port}/x", data=b"a" * MAX_BODY, headers=headers, timeout=GENEROUS
        )
        assert (response.status_code, response.json()) == (200, {"received": MAX_BODY})


def test_too_many_header_lines_get_431(serve: Server) -> None:
    with serve() as port, connect(port) as sock:
        lines = b"".join(b"X-%d: y\r\n" % i for i in range(21))
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: tidings.test\r\n" + lines + b"\r\n")
        assert "header lines" in assert_problem(read_until_closed(sock), 431)["detail"]


def test_headers_over_the_size_limit_get_431(serve: Server) -> None:
    """A complete head one byte-run over the limit, arriving at once: refused when it ends."""
    with serve() as port, connect(port) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: tidings.test\r\nX: " + b"a" * 4096 + b"\r\n\r\n")
        assert_problem(read_until_closed(sock), 431)


def test_a_16_mb_header_is_refused_before_it_is_read(serve: Server) -> None:
    """The server stops reading long before 16 MB: the client either reads 431 or finds the
    connection closed under it; it never gets an answer from the app."""
    with serve() as port, connect(port) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: tidings.test\r\nX: ")
        sent = 0
        chunk = b"a" * 65536
        try:
            while sent < 16 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_until_closed(sock)
        assert sent < 16 * 1024 * 1024 or answer.startswith(b"HTTP/1.1 431"), answer[:100]
        if answer:
            assert_problem(answer, 431)


def test_connections_over_the_budget_are_refused_and_the_budget_comes_back(serve: Server) -> None:
    with serve(http_max_connections=3, http_head_timeout_seconds=GENEROUS * 2) as port:
        held = [connect(port) for _ in range(3)]
        try:
            with connect(port) as extra:
                assert "connections" in assert_problem(read_until_closed(extra), 503)["detail"]
            # The held ones still work: they are the budget, not over it.
            held[0].sendall(b"GET /x HTTP/1.1\r\nHost: tidings.test\r\nConnection: close\r\n\r\n")
            assert parse(read_until_closed(held[0]))[0] == 200
            # Once one has closed, a new connection is served again.
            deadline = time.monotonic() + GENEROUS
            while True:
                with connect(port) as again:
                    again.sendall(b"GET /x HTTP/1.1\r\nHost: tidings.test\r\nConnection: close\r\n\r\n")
                    if parse(read_until_closed(again))[0] == 200:
                        break
                assert time.monotonic() < deadline, "the closed connection never left the budget"
        finally:
            for sock in held:
                sock.close()


def test_http_and_https_listeners_share_one_connection_budget(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path / "tls")
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    with running_listeners(tls, http_max_connections=2, http_head_timeout_seconds=GENEROUS * 2) as ports:
        plain, secure = ports
        with connect(plain), context.wrap_socket(connect(secure), server_hostname="localhost") as held:
            with connect(plain) as extra:
                assert_problem(read_until_closed(extra), 503)
            held.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert parse(read_until_closed(held))[0] == 200


def client_hello() -> bytes:
    """The first flight of a real TLS client: its ClientHello, as it would go on the wire."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def test_tls_handshakes_that_never_end_are_cut_off_while_others_are_served(tmp_path: Path) -> None:
    """Silent, half a ClientHello, or one trickled a byte at a time: each is closed within the
    handshake deadline (well before asyncio's own 60 s), and a real client is served meanwhile."""
    tls = ensure_local_tls(tmp_path / "tls")
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    hello = client_hello()
    trickled = (hello[i : i + 1] for i in range(len(hello) - 1))
    overrides = {
        "http_tls_handshake_timeout_seconds": HANDSHAKE_TIMEOUT,
        "http_head_timeout_seconds": GENEROUS * 2,
    }
    with running_listeners(tls, **overrides) as (_, secure):
        started = time.monotonic()
        silent, half, trickling = connect(secure), connect(secure), connect(secure)
        try:
            half.sendall(hello[: len(hello) // 2])
            with context.wrap_socket(connect(secure), server_hostname="localhost") as client:
                client.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                assert parse(read_until_closed(client))[0] == 200
            assert trickle_until_answered(trickling, trickled) == b""
            assert read_until_closed(silent) == b"" and read_until_closed(half) == b""
            assert time.monotonic() - started >= HANDSHAKE_TIMEOUT * 0.9
        finally:
            for sock in (silent, half, trickling):
                sock.close()


def test_tls_handshakes_hold_places_in_the_budget_until_they_end(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path / "tls")
    overrides = {
        "http_max_connections": 2,
        "http_tls_handshake_timeout_seconds": 3.0,  # long enough to see them counted on a busy machine
        "http_head_timeout_seconds": GENEROUS * 2,
    }
    request = b"GET /x HTTP/1.1\r\nHost: tidings.test\r\nConnection: close\r\n\r\n"
    with running_listeners(tls, **overrides) as (plain, secure):
        handshaking = [connect(secure), connect(secure)]
        try:
            # The server accepts on each listener in its own time: ask until the two are counted.
            deadline = time.monotonic() + GENEROUS
            while True:
                with connect(plain) as extra:
                    extra.sendall(request)
                    if parse(read_until_closed(extra))[0] == 503:
                        break
                assert time.monotonic() < deadline, "handshaking connections were not counted"
            for sock in handshaking:
                assert read_until_closed(sock) == b""  # their deadline
            deadline = time.monotonic() + GENEROUS
            while True:
                with connect(plain) as again:
                    again.sendall(request)
                    if parse(read_until_closed(again))[0] == 200:
                        break
                assert time.monotonic() < deadline, "the handshakes never left the budget"
        finally:
            for sock in handshaking:
                sock.close()


def test_python_requests_reads_the_413_of_a_large_body(serve: Server) -> None:
    """`requests` writes its whole body before it reads anything: the server must take it in
    (and discard it) rather than reset the connection under the client's feet."""
    with serve(http_body_timeout_seconds=GENEROUS) as port:
        url = f"http://127.0.0.1:{port}/x"
        for body in (b"a" * (4 * 1024 * 1024), iter([b"a" * 65536] * 16)):  # declared, then chunked
            response = requests.post(url, data=body, timeout=GENEROUS)
            assert response.status_code == 413
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["title"] == "Payload too large"


def test_a_declared_length_is_all_the_body_the_app_reads(serve: Server) -> None:
    """The server reads as the body that many bytes and no more: what follows is the next
    request, answered on its own (no bytes smuggled from one request into another)."""
    with serve() as port, connect(port) as sock:
        sock.sendall(
            b"POST /x HTTP/1.1\r\nHost: tidings.test\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /x HTTP/1.1\r\nHost: tidings.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        answers = read_until_closed(sock)
        assert answers.count(b"HTTP/1.1 200 ") == 2, answers
        assert b'{"received": 5}HTTP/1.1 200 ' in answers and answers.endswith(b'{"received": 0}'), answers


def test_a_request_declaring_a_length_and_chunks_both_is_refused(serve: Server) -> None:
    """Two framings of one body: which one a proxy in front believes is anyone's guess (request
    smuggling), so the request is refused before it reaches the app."""
    with serve() as port, connect(port) as sock:
        chunk = b"a" * (MAX_BODY + 1)
        sock.sendall(
            b"POST /x HTTP/1.1\r\nHost: tidings.test\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
        )
        answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert b'"received"' not in answer


def test_a_body_still_trickling_after_its_413_is_cut_off(serve: Server) -> None:
    """The discarding after a 413 is bounded by the body deadline too."""
    with serve() as port, connect(port) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: tidings.test\r\nContent-Length: 100000\r\n\r\n")
        assert parse(read_response(sock))[0] == 413
        deadline = time.monotonic() + GENEROUS
        while True:
            assert time.monotonic() < deadline, "the server kept reading a body it had refused"
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                return
            if select.select([sock], [], [], 0.05)[0]:
                try:
                    assert sock.recv(1) == b""
                except ConnectionResetError:
                    pass
                return


NODE_CLIENT = """
const http = require('http');
const body = Buffer.alloc(4 * 1024 * 1024, 97);
const request = http.request(
  {host: '127.0.0.1', port: Number(process.argv[2]), path: '/x', method: 'POST',
   headers: {'Content-Type': 'application/json', 'Content-Length': body.length}},
  (response) => {
    let text = '';
    response.on('data', (chunk) => { text += chunk; });
    response.on('end', () => console.log(JSON.stringify(
      {status: response.statusCode, type: response.headers['content-type'], body: JSON.parse(text)})));
  });
request.on('error', (error) => { console.log(JSON.stringify({error: String(error)})); });
request.end(body);
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_node_reads_the_413_of_a_large_body(serve: Server, tmp_path: Path) -> None:
    script = tmp_path / "client.js"
    script.write_text(NODE_CLIENT)
    with serve(http_body_timeout_seconds=GENEROUS) as port:
        done = subprocess.run(
            ["node", str(script), str(port)], capture_output=True, text=True, timeout=GENEROUS, check=True
        )
    answer = json.loads(done.stdout)
    assert (answer.get("status"), answer.get("type")) == (413, "application/problem+json"), answer
    assert answer["body"]["title"] == "Payload too large"
