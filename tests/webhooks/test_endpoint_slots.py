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
