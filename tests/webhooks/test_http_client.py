"""The webhook client against real servers on 127.0.0.1 that answer with exactly the bytes a test
scripts: kept-alive connections and when they are not reused, answers of every framing, a stale
connection, bounds on what is read, timeouts, TLS, and the request as it goes on the wire.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tidings.tls import ensure_local_tls
from tidings.webhooks.delivery import USER_AGENT, WebhookSender
from tidings.webhooks.http_client import MAX_ANSWER_BYTES, MAX_HEAD_BYTES, WebhookClient, parse_target
from tidings.webhooks.ssrf import ForbiddenDestination, parse_networks

LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
HEADERS = b"Content-Type: application/json\r\n"

# How a scripted server answers the n-th request of a connection (n from 0): bytes to write, and
# whether to close the connection after them. None: close without answering.
Script = Callable[[int], tuple[bytes, bool] | None]


@dataclass
class ScriptedServer:
    script: Script
    port: int = 0
    requests: list[bytes] = field(default_factory=list)  # each request's head and body, as received
    connections: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # set each time a connection ends
    closed_count: int = 0


class _Answering(asyncio.Protocol):
    def __init__(self, server: ScriptedServer) -> None:
        self._server = server
        self._buffer = b""
        self._served = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._server.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.closed_count += 1
        self._server.closed.set()

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = self._buffer[:end].decode("latin-1")
            length = int(
                next(line for line in head.split("\r\n") if line.lower().startswith("content-length:"))[15:]
            )
            whole = end + 4 + length
            if len(self._buffer) < whole:
                return
            self._server.requests.append(self._buffer[:whole])
            self._buffer = self._buffer[whole:]
            answer = self._server.script(self._served)
            self._served += 1
            if answer is None:
                self._transport.close()
                return
            data_out, close = answer
            self._transport.write(data_out)
            if close:
                self._transport.close()
                return


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[ScriptedServer]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        scripted = ScriptedServer(script)
        server = await asyncio.get_running_loop().create_server(
            lambda: _Answering(scripted), "127.0.0.1", 0, ssl=tls
        )
        servers.append(server)
        scripted.port = server.sockets[0].getsockname()[1]
        return scripted

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., WebhookClient]]:
    """Makes clients allowed to reach the loopback, and closes them after the test."""
    made: list[WebhookClient] = []

    def make(**options: Any) -> WebhookClient:
        made.append(WebhookClient(LOOPBACK, **options))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
async def senders() -> AsyncIterator[Callable[..., WebhookSender]]:
    made: list[WebhookSender] = []

    def make(**options: Any) -> WebhookSender:
        made.append(WebhookSender(allowed_networks=LOOPBACK, **options))
        return made[-1]

    yield make
    for sender in made:
        await sender.close()


def always(answer: bytes, close: bool = False) -> Script:
    return lambda _n: (answer, close)


async def closes(server: ScriptedServer, count: int) -> None:
    """Waits until the server has seen `count` connections end."""
    async with asyncio.timeout(5):
        while server.closed_count < count:
            server.closed.clear()
            await server.closed.wait()


async def test_posts_to_one_receiver_share_a_kept_alive_connection(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    server = await serve(always(OK))
    client = clients()
    statuses = [await client.post(f"http://127.0.0.1:{server.port}/hook", HEADERS, b"{}") for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert server.connections == 1
    await client.close()
    await closes(server, 1)  # close() ends it


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", id="connection-close"
        ),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", id="http-1.0"),
    ],
)
async def test_an_answer_that_ends_the_connection_is_not_reused(
    serve: Callable[..., ...], answer: bytes, clients: Callable[..., WebhookClient]
) -> None:
    server = await serve(always(answer))
    client = clients()
    for _ in range(2):
        assert await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}") == 200
    assert server.connections == 2


async def test_an_answer_whose_body_runs_to_the_end_of_the_connection(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    server = await serve(always(b"HTTP/1.1 503 Busy\r\n\r\nthe body ends with the connection", close=True))
    client = clients()
    assert await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}") == 503


async def test_chunked_and_interim_answers_are_read_and_the_connection_kept(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    chunked = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    server = await serve(lambda n: (chunked if n == 0 else interim, False))
    client = clients()
    first = await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}")
    second = await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}")
    assert (first, second) == (202, 200)
    assert server.connections == 1


async def test_a_connection_that_answered_twice_to_one_request_is_not_reused(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    # The extra answer would otherwise be taken for the next request's.
    # Each connection's first request is answered 201, then 200 again at once.
    server = await serve(
        lambda n: (OK.replace(b"200 OK", b"201 Created") + OK, False) if n == 0 else (OK, False)
    )
    client = clients()
    first = await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}")
    second = await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}")
    assert (first, second) == (201, 201)  # the second on a connection of its own, not the stray 200
    assert server.connections == 2


async def test_a_kept_connection_the_receiver_closed_is_retried_once_on_a_new_one(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    # The second request on the first connection finds it closed by the server, unanswered.
    server = await serve(lambda n: (OK, False) if n == 0 else None)
    client = clients()
    first = await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}")
    second = await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}")
    assert (first, second) == (200, 200)
    assert server.connections == 2
    assert len(server.requests) == 3  # the unanswered one went out again, once


async def test_a_connection_lost_mid_answer_is_a_failure_and_not_retried(
    serve: Callable[..., ...], senders: Callable[..., WebhookSender]
) -> None:
    server = await serve(always(b"HTTP/1.1 200 OK\r\nContent-Le", close=True))
    sender = senders(timeout_seconds=5)
    result = await sender.send(f"http://127.0.0.1:{server.port}/", b"{}", token="t")
    assert result.status_code is None
    assert result.error is not None and result.error.startswith(
        "ConnectionLost: the connection closed before an answer"
    )
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(b"SMTP ready\r\n\r\n", "ProtocolError: not an HTTP answer", id="not-http"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (2 * MAX_HEAD_BYTES) + b"\r\nContent-Length: 0\r\n\r\n",
            f"ProtocolError: the answer's head is larger than {MAX_HEAD_BYTES} bytes",
            id="huge-head",
        ),
    ],
)
async def test_an_answer_that_is_not_http_or_too_large_is_a_failure(
    serve: Callable[..., ...], answer: bytes, error: str, senders: Callable[..., WebhookSender]
) -> None:
    server = await serve(always(answer))
    sender = senders(timeout_seconds=5)
    result = await sender.send(f"http://127.0.0.1:{server.port}/", b"{}", token="t")
    assert result.status_code is None
    assert result.error is not None and result.error.startswith(error), result.error
    await closes(server, 1)  # the client closed it


async def test_a_large_body_is_read_only_so_far_and_its_connection_closed(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    big = b"x" * (4 * MAX_ANSWER_BYTES)
    server = await serve(always(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)))
    client = clients()
    assert await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}") == 200
    await closes(server, 1)  # closed without reading the rest, though the client is still open


async def test_a_receiver_that_never_answers_times_out_and_its_connection_is_closed(
    serve: Callable[..., ...], senders: Callable[..., WebhookSender]
) -> None:
    server = await serve(always(b""))  # reads the request, says nothing
    sender = senders(timeout_seconds=0.2)
    result = await sender.send(f"http://127.0.0.1:{server.port}/", b"{}", token="t")
    assert (result.status_code, result.error) == (None, "TimeoutError: no answer within 0.2 s")
    await closes(server, 1)


async def test_idle_connections_past_the_cap_are_closed(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    server = await serve(always(OK))
    client = clients(idle_per_origin=1)
    url = f"http://127.0.0.1:{server.port}/"
    # Two at once need two connections; only one is kept afterwards, and used again.
    assert await asyncio.gather(client.post(url, HEADERS, b"{}"), client.post(url, HEADERS, b"{}")) == [
        200,
        200,
    ]
    await closes(server, 1)
    assert await client.post(url, HEADERS, b"{}") == 200
    assert (server.connections, server.closed_count) == (2, 1)


async def test_an_idle_connection_is_closed_when_its_keep_alive_runs_out(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    server = await serve(always(OK))
    client = clients(keep_alive_seconds=0.05)
    url = f"http://127.0.0.1:{server.port}/"
    assert await client.post(url, HEADERS, b"{}") == 200
    await closes(server, 1)
    assert await client.post(url, HEADERS, b"{}") == 200
    assert server.connections == 2


async def test_a_kept_connection_the_receiver_closed_is_let_go_when_its_keep_alive_runs_out(
    serve: Callable[..., ...], clients: Callable[..., WebhookClient]
) -> None:
    # The answer does not say it closes, so the connection is kept; the receiver then closes it.
    server = await serve(always(OK, close=True))
    client = clients(keep_alive_seconds=0.05)
    assert await client.post(f"http://127.0.0.1:{server.port}/", HEADERS, b"{}") == 200
    await closes(server, 1)
    async with asyncio.timeout(5):
        while client._idle or client._open:  # nothing of it stays, for a receiver never called again
            await asyncio.sleep(0.01)


async def test_the_request_on_the_wire(
    serve: Callable[..., ...], senders: Callable[..., WebhookSender]
) -> None:
    server = await serve(always(OK))
    sender = senders(timeout_seconds=5)
    result = await sender.send(
        f"http://127.0.0.1:{server.port}/in/caf\u00e9 x?a=1&b=%2F", b'{"k":"v"}', token="a.b.c"
    )
    assert result.status_code == 200
    (request,) = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /in/caf%C3%A9%20x?a=1&b=%2F HTTP/1.1"
    assert sorted(lines[1:]) == sorted(
        [
            b"Host: 127.0.0.1:%d" % server.port,
            b"User-Agent: " + USER_AGENT.encode(),
            b"Content-Type: application/json",
            b"Authorization: Bearer a.b.c",
            b"Content-Length: 9",
        ]
    )
    assert body == b'{"k":"v"}'


@pytest.mark.parametrize(
    ("url", "head"),
    [
        ("https://hooks.example.com/x", b"POST /x HTTP/1.1\r\nHost: hooks.example.com\r\n"),
        ("http://hooks.example.com:80", b"POST / HTTP/1.1\r\nHost: hooks.example.com\r\n"),
        ("https://[2001:db8::1]:8443/x#frag", b"POST /x HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n"),
        ("https://b\u00fccher.example/x", b"POST /x HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n"),
        # Line breaks cannot reach the head: encoded in the path, dropped from the host by the parser.
        (
            "http://hooks.example.com/a\r\nX-Injected: 1",
            b"POST /aX-Injected:%201 HTTP/1.1\r\nHost: hooks.example.com\r\n",
        ),
    ],
)
def test_a_target_s_request_line_and_host(url: str, head: bytes) -> None:
    assert parse_target(url).head == head


def test_a_target_is_refused_like_the_guard_refuses_it() -> None:
    with pytest.raises(ForbiddenDestination, match="only absolute http and https URLs"):
        parse_target("ftp://hooks.example.com/")
    with pytest.raises(ForbiddenDestination, match="not an address in canonical form"):
        parse_target("http://127.1/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://exa mple.com/", "is not a host name"),
        ("http://a\x00b.example/", "is not a host name"),
        ("http://exa%0d%0ample.com/", "is not a host name"),
        ("http://[fe80::1%25eth0]/", "names a network interface"),
    ],
)
def test_a_host_that_could_not_go_into_a_host_header_is_refused(url: str, why: str) -> None:
    with pytest.raises(ForbiddenDestination, match=why):
        parse_target(url)


@pytest.fixture(scope="module")
def local_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    files = ensure_local_tls(tmp_path_factory.mktemp("tls"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.cert, files.key)
    return server, files.ca_cert


async def test_https_is_verified_against_the_trusted_authorities(
    serve: Callable[..., ...], local_tls: tuple[ssl.SSLContext, Path], senders: Callable[..., WebhookSender]
) -> None:
    server_context, ca = local_tls
    server = await serve(always(OK), tls=server_context)
    trusting = senders(timeout_seconds=5, tls=ssl.create_default_context(cafile=str(ca)))
    default = senders(timeout_seconds=5)
    # The certificate names localhost and 127.0.0.1: both verify.
    for host in ("localhost", "127.0.0.1"):
        result = await trusting.send(f"https://{host}:{server.port}/", b"{}", token="t")
        assert (result.status_code, result.error) == (200, None)
    refused = await default.send(f"https://localhost:{server.port}/", b"{}", token="t")
    assert refused.status_code is None
    assert refused.error is not None and "certificate not trusted" in refused.error, refused.error
    assert len(server.requests) == 2


async def test_ssl_cert_file_names_the_authorities_a_default_sender_trusts(
    serve: Callable[..., ...],
    local_tls: tuple[ssl.SSLContext, Path],
    monkeypatch: pytest.MonkeyPatch,
    senders: Callable[..., WebhookSender],
) -> None:
    server_context, ca = local_tls
    server = await serve(always(OK), tls=server_context)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # as the README tells operators with a private CA
    sender = senders(timeout_seconds=5)
    result = await sender.send(f"https://localhost:{server.port}/", b"{}", token="t")
    assert (result.status_code, result.error) == (200, None)


def test_the_client_runs_on_uvloop() -> None:
    # The worker runs on uvloop, whose transports behave as asyncio's but are not its classes.
    async def exchange() -> list[int]:
        scripted = ScriptedServer(always(OK))
        server = await asyncio.get_running_loop().create_server(lambda: _Answering(scripted), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = WebhookClient(LOOPBACK)
        try:
            return [await client.post(f"http://127.0.0.1:{port}/", HEADERS, b"{}") for _ in range(2)]
        finally:
            await client.close()
            server.close()

    assert uvloop.run(exchange()) == [200, 200]
