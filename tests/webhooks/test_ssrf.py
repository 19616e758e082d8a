"""The SSRF guard: which addresses may be called, where a URL points, which addresses of a name
may be connected to, and that the sender connects only to checked addresses: a sender with no
allowed private networks never reaches a local receiver, however its address is spelled.

No test here sends traffic anywhere but 127.0.0.1 (or ::1); host names are resolved by a stand-in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from tests.receiver import WebhookReceiver
from tests.webhooks.support import attempts_for, submit, text_message, until
from tidings.auth.webhook_signing import WebhookSigner
from tidings.config import Settings
from tidings.runtime import Runtime
from tidings.services.accounts import create_account
from tidings.webhooks import ssrf
from tidings.webhooks.delivery import AttemptResult, WebhookSender
from tidings.webhooks.ssrf import (
    Destination,
    ForbiddenDestination,
    checked_addresses,
    destination,
    is_public,
    parse_networks,
    resolve,
    verdict,
)

LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])
NOTHING: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

# address, public?, allowed with the loopback allow-list
ADDRESSES = [
    ("127.0.0.1", False, True),
    ("127.5.6.7", False, True),
    ("::1", False, True),
    ("::ffff:127.0.0.1", False, True),  # IPv4-mapped loopback is loopback
    ("10.0.0.1", False, False),
    ("172.16.0.1", False, False),
    ("172.31.255.254", False, False),
    ("192.168.1.1", False, False),
    ("169.254.169.254", False, False),  # cloud metadata
    ("100.64.0.1", False, False),  # carrier-grade NAT
    ("0.0.0.0", False, False),
    ("::", False, False),
    ("255.255.255.255", False, False),
    ("224.0.0.1", False, False),  # multicast
    ("::ffff:10.0.0.1", False, False),  # IPv4-mapped private
    ("::ffff:169.254.169.254", False, False),
    # IPv6 forms that lead to an IPv4 address: judged by the address they embed.
    ("::10.0.0.1", False, False),  # deprecated IPv4-compatible
    ("::127.0.0.1", False, True),
    ("64:ff9b::10.0.0.1", False, False),  # NAT64
    ("64:ff9b::169.254.169.254", False, False),
    ("64:ff9b::93.184.216.34", True, True),
    ("2002:a00:1::", False, False),  # 6to4 of 10.0.0.1
    ("2002:7f00:1::1", False, True),  # 6to4 of 127.0.0.1
    ("2002:5db8:d822::1", True, True),  # 6to4 of 93.184.216.34
    ("fc00::1", False, False),
    ("fd12:3456::1", False, False),
    ("fe80::1", False, False),
    ("93.184.216.34", True, True),
    ("::ffff:93.184.216.34", True, True),
    ("2606:2800:220:1:248:1893:25c8:1946", True, True),
]


@pytest.mark.parametrize(("address", "public", "with_loopback"), ADDRESSES, ids=[a[0] for a in ADDRESSES])
def test_verdict(address: str, public: bool, with_loopback: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert is_public(ip) is public
    assert verdict(ip, NOTHING) is public
    assert verdict(ip, LOOPBACK) is with_loopback


def test_an_allow_list_lets_a_private_network_through_and_nothing_else() -> None:
    office = parse_networks(["10.1.0.0/16"])
    assert verdict(ipaddress.ip_address("10.1.2.3"), office)
    assert verdict(ipaddress.ip_address("::ffff:10.1.2.3"), office)
    assert not verdict(ipaddress.ip_address("10.2.0.1"), office)
    assert not verdict(ipaddress.ip_address("127.0.0.1"), office)


@pytest.fixture
def resolves_to(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[tuple[str, int]]]:
    """Makes every host name resolve to the given addresses; records the look-ups."""
    lookups: list[tuple[str, int]] = []

    def install(*addresses: str) -> list[tuple[str, int]]:
        async def fake(host: str, port: int) -> list[Any]:
            lookups.append((host, port))
            return [ipaddress.ip_address(a) for a in addresses]

        monkeypatch.setattr(ssrf, "resolve", fake)
        return lookups

    return install


async def send(url: str, allowed: Sequence[ssrf.IPNetwork], body: bytes = b"{}") -> AttemptResult:
    """One attempt by a sender of its own, closed afterwards."""
    sender = WebhookSender(timeout_seconds=2, allowed_networks=allowed)
    try:
        return await sender.send(url, body, token="t")
    finally:
        await sender.close()


def port_of(receiver: WebhookReceiver) -> str:
    return receiver.url.rsplit(":", 1)[1]


# --- where a URL points ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/status?x=1&y=two#frag", Destination("hooks.example.com", 443)),
        ("http://hooks.example.com/status", Destination("hooks.example.com", 80)),
        # An explicit port is kept; credentials are no part of the host; names are compared lowercase.
        ("http://user:pw@Hooks.Example.com:8080/in", Destination("hooks.example.com", 8080)),
        (
            "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/x",
            Destination("2606:2800:220:1:248:1893:25c8:1946", 8443),
        ),
    ],
)
def test_destination_is_the_host_and_port_a_url_points_to(url: str, expected: Destination) -> None:
    assert destination(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://93.184.216.34/",
        "file:///etc/passwd",
        "//93.184.216.34/x",
        "http:///nohost",
        "gopher://127.0.0.1/",
    ],
)
def test_destination_refuses_what_is_not_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ForbiddenDestination, match="only absolute http and https URLs"):
        destination(url)


# --- the addresses of a name -------------------------------------------------------------------


async def test_checked_addresses_are_every_address_of_a_public_name(
    resolves_to: Callable[..., list[tuple[str, int]]],
) -> None:
    lookups = resolves_to("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert await checked_addresses("hooks.example.com", 443, NOTHING) == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"),
    ]
    assert lookups == [("hooks.example.com", 443)]


async def test_a_name_with_any_private_address_is_refused(
    resolves_to: Callable[..., list[tuple[str, int]]],
) -> None:
    # A name that answers with a public and a private address is refused as a whole: the
    # connection could otherwise land on either.
    resolves_to("93.184.216.34", "10.0.0.7")
    with pytest.raises(ForbiddenDestination, match=r"10\.0\.0\.7"):
        await checked_addresses("mixed.example.com", 443, NOTHING)
    # Allowing one private network does not let another through.
    with pytest.raises(ForbiddenDestination, match=r"10\.0\.0\.7"):
        await checked_addresses("mixed.example.com", 443, LOOPBACK)
    assert await checked_addresses("mixed.example.com", 443, parse_networks(["10.0.0.0/8"])) == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("10.0.0.7"),
    ]


async def test_a_name_with_no_address_is_refused(resolves_to: Callable[..., list[tuple[str, int]]]) -> None:
    resolves_to()
    with pytest.raises(ForbiddenDestination, match="has no address"):
        await checked_addresses("empty.example.com", 443, NOTHING)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "2130706433",  # 127.0.0.1 as one decimal number
        "0177.0.0.1",  # octal first byte
        "0x7f.0.0.1",  # hex first byte
        "0x7f000001",
        "127.1",  # short form
        "10.0.0.1",
        "0x0a.0.0.1",  # 10.0.0.1
        "169.254.169.254",
        "2852039166",  # 169.254.169.254
        "0.0.0.0",
        "::",
        "::ffff:a00:1",  # IPv4-mapped 10.0.0.1, in hex
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    ],
)
async def test_local_addresses_in_any_spelling_are_refused_without_an_allow_list(host: str) -> None:
    with pytest.raises(ForbiddenDestination, match="not a public address"):
        await checked_addresses(host, 80, NOTHING)


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "127.0.0.1"])
async def test_numeric_spellings_resolve_to_the_address_they_mean(host: str) -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    assert await resolve(host, 80) == [loopback]
    assert await checked_addresses(host, 80, LOOPBACK) == [loopback]


async def test_resolve_returns_every_address_of_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(host: str, port: int, **_kw: Any) -> list[Any]:
        assert (host, port) == ("multi.example.com", 443)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800:220:1::1", port, 0, 0)),
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await resolve("multi.example.com", 443) == [
        ipaddress.ip_address("93.184.216.34"),
        ipaddress.ip_address("2606:2800:220:1::1"),
    ]


async def test_a_name_that_does_not_resolve_is_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(*_args: Any, **_kw: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    with pytest.raises(ForbiddenDestination, match="cannot resolve"):
        await resolve("nowhere.example.com", 443)


# --- end to end: a real sender against the real local receiver --------------------------------


async def test_a_sender_with_an_empty_allow_list_never_reaches_a_local_receiver(
    receiver: WebhookReceiver,
) -> None:
    body = b'{"status":"submitted"}'
    token = WebhookSigner("s" * 32).sign(body, api_key="acct0001")
    guarded = WebhookSender(timeout_seconds=2, allowed_networks=())
    try:
        result = await guarded.send(f"{receiver.url}/status", body, token=token)
    finally:
        await guarded.close()
    assert result.status_code is None and not result.delivered
    assert result.error is not None and result.error.startswith("forbidden destination")
    assert receiver.received == []

    # The same call with loopback allowed does arrive, so the refusal above was the guard's doing.
    allowed = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    try:
        result = await allowed.send(f"{receiver.url}/status", body, token=token)
    finally:
        await allowed.close()
    assert result.delivered and result.status_code == 200
    assert [(r.path, r.body) for r in receiver.received] == [("/status", body)]


# Every one of these is the local receiver's address (or the IPv6 loopback) to the HTTP client.
LOCAL_SPELLINGS = [
    "127.0.0.1",
    "127.0.0.1.",
    "2130706433",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "0x7f000001",
    "127.1",
    "127.0.0.01",
    "localhost",
    "LOCALHOST",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[::127.0.0.1]",
    # Read through IDNA by the client, these are 127.0.0.1 itself: fullwidth digits, ideographic
    # full stops, circled digits.
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",
    "127\u30020\u30020\u30021",
    "\u2460\u2461\u2466.0.0.1",
]


@pytest.mark.parametrize("host", LOCAL_SPELLINGS)
async def test_the_sender_refuses_the_local_receiver_however_it_is_spelled(
    receiver: WebhookReceiver, host: str
) -> None:
    result = await send(f"http://{host}:{port_of(receiver)}/status", NOTHING)
    assert result.status_code is None and not result.delivered
    assert result.error is not None and result.error.startswith("forbidden destination"), result.error
    assert receiver.attempts == []


@pytest.mark.parametrize(
    ("host", "host_header"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("localhost", "localhost"),
        ("0x7f.0.0.1", "0x7f.0.0.1"),  # the name as written, the connection to what it resolves to
        ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", "127.0.0.1"),
    ],
)
async def test_with_loopback_allowed_the_same_spellings_arrive(
    receiver: WebhookReceiver, host: str, host_header: str
) -> None:
    port = port_of(receiver)
    result = await send(f"http://{host}:{port}/status", LOOPBACK)
    assert (result.status_code, result.error) == (200, None)
    (received,) = receiver.received
    assert received.headers["host"] == f"{host_header}:{port}"


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0177.0.0.1", "127.0.0.1."])
async def test_an_address_not_in_canonical_form_is_refused_even_when_allowed(
    receiver: WebhookReceiver, host: str
) -> None:
    # The client would connect to it without asking the resolver, so only a check of the literal
    # stands between it and the network: it is refused rather than read in some other way.
    result = await send(f"http://{host}:{port_of(receiver)}/status", LOOPBACK)
    assert result.error == f"forbidden destination: {host} is not an address in canonical form"
    assert receiver.attempts == []


async def test_a_name_with_a_private_address_among_others_is_refused_by_the_sender(
    receiver: WebhookReceiver, resolves_to: Callable[..., list[tuple[str, int]]]
) -> None:
    resolves_to("127.0.0.1", "10.0.0.7")
    result = await send(f"http://mixed.example.test:{port_of(receiver)}/in", LOOPBACK)
    assert result.status_code is None
    assert result.error is not None and result.error.startswith("forbidden destination")
    assert "10.0.0.7" in result.error
    assert receiver.attempts == []


async def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(
    receiver: WebhookReceiver,
    resolves_to: Callable[..., list[tuple[str, int]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = port_of(receiver)
    lookups = resolves_to("127.0.0.1")
    # A look-up of its own (where a rebinding DNS server could answer something else) would fail.
    system_lookups: list[Any] = []

    async def getaddrinfo(*args: Any, **kwargs: Any) -> list[Any]:
        system_lookups.append(args)
        raise socket.gaierror(socket.EAI_NONAME, "the client must not look names up itself")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    result = await send(f"http://hooks.example.test:{port}/in", LOOPBACK)
    assert (result.status_code, result.error) == (200, None)
    (received,) = receiver.received
    assert received.headers["host"] == f"hooks.example.test:{port}"
    assert received.path == "/in"
    assert lookups == [("hooks.example.test", int(port))]
    assert system_lookups == []


async def test_a_name_that_rebinds_after_its_check_is_not_followed(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first answer is checked and connected to; a later, different answer (a private address)
    # is refused at its own look-up and never connected to.
    port = port_of(receiver)
    answers = iter([["127.0.0.1"], ["10.0.0.7"]])
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[Any]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    monkeypatch.setattr(ssrf, "resolve", rebinding)
    sender = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    try:
        first = await sender.send(f"http://rebinding.example.test:{port}/one", b"{}", token="t")
        second = await sender.send(f"http://again.rebinding.example.test:{port}/two", b"{}", token="t")
    finally:
        await sender.close()
    assert (first.status_code, first.error) == (200, None)
    assert second.status_code is None and second.error is not None and "10.0.0.7" in second.error
    assert lookups == ["rebinding.example.test", "again.rebinding.example.test"]
    assert [h.path for h in receiver.attempts] == ["/one"]


@pytest.fixture
async def guarded_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings.model_copy(update={"webhook_allowed_networks": []}))
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_a_runtime_with_an_empty_allow_list_records_the_refusal_and_sends_nothing(
    guarded_runtime: Runtime, receiver: WebhookReceiver
) -> None:
    account = await create_account(guarded_runtime.database, guarded_runtime.box, name="guarded")
    sent = text_message(account.api_key, webhook_url=f"{receiver.url}/status")
    await submit(guarded_runtime, sent)

    async def refused_twice() -> bool:
        return len(await attempts_for(guarded_runtime, sent.uuid)) >= 2

    await until(refused_twice, what="two refused attempts")
    for attempt in await attempts_for(guarded_runtime, sent.uuid):
        assert attempt["status_code"] is None
        assert attempt["error"].startswith("forbidden destination")
        assert attempt["url"] == f"{receiver.url}/status"
    assert receiver.attempts == []


# --- a URL that cannot be parsed is a refused attempt, not an exception -----------------------

MALFORMED = ["http://127.0.0.1:99999/status", "http://127.0.0.1:port/status", "http://[::1/status"]


@pytest.mark.parametrize("url", MALFORMED)
def test_destination_refuses_a_url_it_cannot_parse(url: str) -> None:
    with pytest.raises(ForbiddenDestination, match="not a valid URL"):
        destination(url)


@pytest.mark.parametrize("url", MALFORMED)
async def test_the_sender_reports_a_url_it_cannot_parse(url: str) -> None:
    result = await send(url, LOOPBACK)
    assert result.status_code is None and not result.delivered
    assert result.error is not None and result.error.startswith("forbidden destination: not a valid URL")


async def test_a_runtime_records_every_attempt_at_a_url_it_cannot_parse(
    runtime: Runtime, receiver: WebhookReceiver
) -> None:
    # The API takes any http(s) URL as a message's webhook_url; one with a port out of range
    # must still give recorded (failed) attempts, like any other unreachable receiver.
    account = await create_account(runtime.database, runtime.box, name="malformed")
    url = "http://127.0.0.1:99999/status"
    sent = text_message(account.api_key, webhook_url=url)
    await submit(runtime, sent)

    async def failed_twice() -> bool:
        return len(await attempts_for(runtime, sent.uuid)) >= 2

    await until(failed_twice, what="two recorded attempts")
    for attempt in await attempts_for(runtime, sent.uuid):
        assert (attempt["url"], attempt["status_code"]) == (url, None)
        assert attempt["error"].startswith("forbidden destination: not a valid URL")
