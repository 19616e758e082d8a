"""The SSRF guard: which addresses may be called, how a URL is pinned to a checked address, and that
a sender with no allowed private networks never reaches a local receiver.

No test here sends traffic anywhere but 127.0.0.1; host names are resolved by a stand-in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.receiver import WebhookReceiver
from tests.webhooks.support import attempts_for, submit, text_message, until
from tidings.auth.webhook_signing import sign_webhook
from tidings.config import Settings
from tidings.runtime import Runtime
from tidings.services.accounts import create_account
from tidings.webhooks import ssrf
from tidings.webhooks.delivery import WebhookSender
from tidings.webhooks.ssrf import (
    ForbiddenDestination,
    PinnedTarget,
    is_public,
    parse_networks,
    pin,
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


async def test_pin_rewrites_the_url_to_the_checked_address_and_keeps_the_name(
    resolves_to: Callable[..., list[tuple[str, int]]],
) -> None:
    lookups = resolves_to("93.184.216.34")
    target = await pin("https://hooks.example.com/status?x=1&y=two#frag", NOTHING)
    assert target == PinnedTarget(
        url="https://93.184.216.34/status?x=1&y=two#frag",
        host_header="hooks.example.com",
        server_name="hooks.example.com",
    )
    assert lookups == [("hooks.example.com", 443)]


async def test_pin_keeps_an_explicit_port_and_drops_credentials_from_the_host(
    resolves_to: Callable[..., list[tuple[str, int]]],
) -> None:
    lookups = resolves_to("93.184.216.34")
    target = await pin("http://user:pw@Hooks.Example.com:8080/in", NOTHING)
    assert target.url == "http://93.184.216.34:8080/in"
    assert target.host_header == "Hooks.Example.com:8080"
    assert target.server_name == "hooks.example.com"
    assert lookups == [("hooks.example.com", 8080)]


async def test_pin_brackets_an_ipv6_address(resolves_to: Callable[..., list[tuple[str, int]]]) -> None:
    resolves_to("2606:2800:220:1:248:1893:25c8:1946")
    target = await pin("https://v6.example.com:8443/x", NOTHING)
    assert target.url == "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/x"
    assert target.host_header == "v6.example.com:8443"


async def test_pin_refuses_a_name_with_any_private_address(
    resolves_to: Callable[..., list[tuple[str, int]]],
) -> None:
    # A name that answers with a public and a private address is refused as a whole: the
    # connection could otherwise land on either.
    resolves_to("93.184.216.34", "10.0.0.7")
    with pytest.raises(ForbiddenDestination, match=r"10\.0\.0\.7"):
        await pin("https://mixed.example.com/", NOTHING)


async def test_pin_refuses_a_name_with_no_address(resolves_to: Callable[..., list[tuple[str, int]]]) -> None:
    resolves_to()
    with pytest.raises(ForbiddenDestination):
        await pin("https://empty.example.com/", NOTHING)


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
async def test_pin_refuses_what_is_not_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ForbiddenDestination):
        await pin(url, LOOPBACK)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0177.0.0.1/",  # octal first byte
        "http://0x7f.0.0.1/",  # hex first byte
        "http://0x7f000001/",
        "http://127.1/",  # short form
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://[::ffff:a00:1]/",  # IPv4-mapped 10.0.0.1, in hex
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
    ],
)
async def test_local_addresses_in_any_spelling_are_refused_without_an_allow_list(url: str) -> None:
    with pytest.raises(ForbiddenDestination):
        await pin(url, NOTHING)


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "127.0.0.1"])
async def test_numeric_spellings_resolve_to_the_address_they_mean(host: str) -> None:
    assert await resolve(host, 80) == [ipaddress.ip_address("127.0.0.1")]
    # With loopback allowed the request goes to the canonical address, never to the odd spelling.
    target = await pin(f"http://{host}:8080/x", LOOPBACK)
    assert target.url == "http://127.0.0.1:8080/x"
    assert target.host_header == f"{host}:8080"


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
    token = sign_webhook(body, signature_secret="s" * 32, api_key="acct0001")
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


async def test_a_pinned_request_carries_the_original_host_header(
    receiver: WebhookReceiver, resolves_to: Callable[..., list[tuple[str, int]]]
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    resolves_to("127.0.0.1")
    sender = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    try:
        result = await sender.send(f"http://hooks.example.test:{port}/in", b"{}", token="t")
    finally:
        await sender.close()
    assert result.delivered
    (received,) = receiver.received
    assert received.headers["host"] == f"hooks.example.test:{port}"
    assert received.path == "/in"


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
async def test_pin_refuses_a_url_it_cannot_parse(url: str) -> None:
    with pytest.raises(ForbiddenDestination, match="not a valid URL"):
        await pin(url, LOOPBACK)


@pytest.mark.parametrize("url", MALFORMED)
async def test_the_sender_reports_a_url_it_cannot_parse(url: str) -> None:
    sender = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    try:
        result = await sender.send(url, b"{}", token="t")
    finally:
        await sender.close()
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
