"""Webhook slots per receiving server: counted by scheme, host and port, whatever the path."""

from __future__ import annotations

import asyncio

import pytest

from tidings.webhooks.endpoint_slots import EndpointBusy, EndpointSlots, endpoint_of


def test_one_server_is_one_endpoint_whatever_the_path() -> None:
    assert endpoint_of("https://Hooks.Example.com/a?x=1") == endpoint_of("https://hooks.example.com:443/b")
    assert endpoint_of("http://hooks.example.com/a") != endpoint_of("https://hooks.example.com/a")
    assert endpoint_of("http://127.0.0.1:8001/") != endpoint_of("http://127.0.0.1:8002/")
    # Unreadable (port out of range): still an endpoint, so the sender can refuse it and say why.
    assert endpoint_of("http://127.0.0.1:99999/status") == "http://127.0.0.1:99999"


async def test_in_flight_then_waiting_then_busy_and_every_slot_given_back() -> None:
    slots = EndpointSlots(per_endpoint=2)
    release = asyncio.Event()
    entered: list[str] = []

    async def post(name: str, url: str = "https://a.example/") -> str:
        try:
            async with slots.slot(url):
                entered.append(name)
                await release.wait()
            return "sent"
        except EndpointBusy:
            return "busy"

    tasks = [asyncio.create_task(post(f"w{i}")) for i in range(5)]
    other = asyncio.create_task(post("other", "https://b.example/"))
    while len(entered) < 3:  # two of a.example's in flight, b.example's own
        await asyncio.sleep(0)
    assert sorted(entered) == ["other", "w0", "w1"]
    release.set()
    results = await asyncio.gather(*tasks, other)
    # Two in flight, two waiting (they went once the first answered), the fifth turned away.
    assert results == ["sent", "sent", "sent", "sent", "busy", "sent"]
    assert sorted(entered) == ["other", "w0", "w1", "w2", "w3"]
    assert not slots._endpoints  # nothing left behind


async def test_a_waiter_that_is_cancelled_gives_its_place_back() -> None:
    slots = EndpointSlots(per_endpoint=1)
    async with slots.slot("https://a.example/"):
        waiter = asyncio.create_task(slots.slot("https://a.example/").__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert not slots._endpoints


async def _answer_once(slots: EndpointSlots, url: str, hold: float = 0.0) -> None:
    """One webhook that went out and was answered (after `hold` seconds): the endpoint's answer time."""
    async with slots.slot(url):
        if hold:
            await asyncio.sleep(hold)


async def _answer_once_holding(slots: EndpointSlots, url: str, until: asyncio.Event) -> None:
    async with slots.slot(url):
        await until.wait()


async def _attempt(slots: EndpointSlots, url: str) -> asyncio.Task[None]:
    """A webhook for `url`, run one step of the loop: up to its first wait, or to its end."""
    attempt = asyncio.create_task(_answer_once(slots, url))
    await asyncio.sleep(0)
    return attempt


def _turned_away(attempt: asyncio.Task[None]) -> bool:
    return attempt.done() and isinstance(attempt.exception(), EndpointBusy)


async def test_a_quick_endpoint_lets_more_wait_up_to_max_waiting() -> None:
    slots = EndpointSlots(per_endpoint=2, max_waiting=6, quick_wait=30.0)
    url = "https://a.example/"
    await _answer_once(slots, url)
    release = asyncio.Event()
    entered = 0

    async def post() -> str:
        nonlocal entered
        try:
            async with slots.slot(url):
                entered += 1
                await release.wait()
            return "sent"
        except EndpointBusy:
            return "busy"

    tasks = [asyncio.create_task(post()) for _ in range(9)]
    while entered < 2 or slots._endpoints[endpoint_of(url)].waiting < 6:
        await asyncio.sleep(0)
    release.set()
    # Two in flight, six waiting (two by the count, four because it answers quickly), one too many.
    assert await asyncio.gather(*tasks) == ["sent"] * 8 + ["busy"]
    assert not slots._endpoints


async def test_a_slow_endpoint_turns_away_past_its_waiters_at_once() -> None:
    slots = EndpointSlots(per_endpoint=1, max_waiting=10, quick_wait=0.09)
    url = "https://a.example/"
    # Answers in 0.05 s or more: the one waiting and one more would wait 0.1 s, past a quick wait.
    await _answer_once(slots, url, hold=0.05)
    async with slots.slot(url):
        waiter = asyncio.create_task(_answer_once(slots, url))
        while not slots._endpoints[endpoint_of(url)].waiting:
            await asyncio.sleep(0)
        assert _turned_away(await _attempt(slots, url))
    await waiter


async def test_a_quick_endpoint_that_stops_answering_holds_no_extra_waiter_for_long() -> None:
    quick_wait = 1.0
    slots = EndpointSlots(per_endpoint=1, max_waiting=10, quick_wait=quick_wait)
    url = "https://a.example/"
    await _answer_once(slots, url)
    hang = asyncio.Event()
    in_flight = asyncio.create_task(_answer_once_holding(slots, url, hang))
    waiter = asyncio.create_task(_answer_once(slots, url))  # the one waiter by the count
    while not slots._endpoints or slots._endpoints[endpoint_of(url)].waiting < 1:
        await asyncio.sleep(0)
    # Past the count, while its last answer is recent: it waits, then gives up after quick_wait.
    extra = await _attempt(slots, url)
    assert not extra.done()
    with pytest.raises(EndpointBusy):
        await extra
    # That took quick_wait, with nothing come back meanwhile: now turned away at once.
    assert _turned_away(await _attempt(slots, url))
    hang.set()
    await asyncio.gather(in_flight, waiter)
    assert not slots._endpoints
