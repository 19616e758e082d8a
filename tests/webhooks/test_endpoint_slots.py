"""Webhook slots per receiving server: counted by scheme, host and port, whatever the path."""

from __future__ import annotations

import pytest

from tidings.webhooks.endpoint_slots import EndpointBusy, EndpointSlots, endpoint_of


def test_one_server_is_one_endpoint_whatever_the_path() -> None:
    assert endpoint_of("https://Hooks.Example.com/a?x=1") == endpoint_of("https://hooks.example.com:443/b")
    assert endpoint_of("http://hooks.example.com/a") != endpoint_of("https://hooks.example.com/a")
    assert endpoint_of("http://127.0.0.1:8001/") != endpoint_of("http://127.0.0.1:8002/")
    # Unreadable (port out of range): still an endpoint, so the sender can refuse it and say why.
    assert endpoint_of("http://127.0.0.1:99999/status") == "http://127.0.0.1:99999"


def test_slots_are_bounded_per_endpoint_and_given_back() -> None:
    slots = EndpointSlots(per_endpoint=2)
    with slots.slot("https://a.example/1"), slots.slot("https://a.example/2"):
        with pytest.raises(EndpointBusy), slots.slot("https://a.example/3"):
            pass
        with slots.slot("https://b.example/1"):  # another server's slots are its own
            pass
    with slots.slot("https://a.example/1"), slots.slot("https://a.example/2"):
        pass  # both given back
