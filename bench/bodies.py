"""The request bodies the accept benchmark sends: one SMS, or a mix of every channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SMS: dict[str, Any] = {
    "channel": "sms",
    "message_type": "text",
    "to": "447700900000",
    "from": "Acme",
    "text": "Hello from the benchmark",
    "client_ref": "bench",
}

# One request of each channel, with the options and nested objects that make its validation work.
MIXED: list[dict[str, Any]] = [
    SMS,
    {
        "channel": "mms",
        "message_type": "image",
        "to": "14155550100",
        "from": "14155550101",
        "image": {"url": "https://example.com/cat.jpg", "caption": "A cat"},
    },
    {
        "channel": "whatsapp",
        "message_type": "template",
        "to": "447700900000",
        "from": "447700900001",
        "template": {"name": "verify:code", "parameters": ["1234"]},
        "whatsapp": {"locale": "en_GB", "policy": "deterministic"},
    },
    {
        "channel": "messenger",
        "message_type": "text",
        "to": "1234567890123",
        "from": "9876543210",
        "text": "Hi",
        "messenger": {"category": "message_tag", "tag": "ACCOUNT_UPDATE"},
    },
    {
        "channel": "viber_service",
        "message_type": "image",
        "to": "447700900000",
        "from": "16273",
        "image": {"url": "https://example.com/cat.jpg"},
        "viber_service": {"category": "transaction", "ttl": 600},
    },
    {
        "channel": "rcs",
        "message_type": "text",
        "to": "447700900000",
        "from": "AcmeAgent",
        "text": "Pick one",
        "suggestions": [
            {"type": "reply", "text": "Yes", "postback_data": "yes"},
            {
                "type": "open_url",
                "text": "Site",
                "postback_data": "site",
                "url": "https://example.com",
                "description": "Our site",
            },
        ],
    },
]
PAYLOADS: dict[str, list[dict[str, Any]]] = {"sms": [SMS], "mixed": MIXED}


def bodies_file(payload: str, directory: Path) -> Path | None:
    """A file of one JSON body per line for wrk to rotate through; None for the single SMS body,
    which wrk sends as a static request."""
    if payload == "sms":
        return None
    path = directory / f"bodies-{payload}.jsonl"
    path.write_text("".join(json.dumps(body, separators=(",", ":")) + "\n" for body in PAYLOADS[payload]))
    return path
