"""The one harness every connector's cases run through.

A connector's folder under tests/channels/ holds data only:

- `outgoing.json`: a domain message in; the provider's answers to the HTTP requests it makes; the
  exact requests out (method, URL, headers, JSON body); and what `submit` gives back (its number
  of parts) or raises (a `permanent` refusal with its Vonage error code, or `retryable`), with the
  exact receipts it reports or schedules through the ingress.
- `callbacks.json`: a provider's HTTP callback in; the exact response; the exact receipts and
  inbound messages it turns into.

Both files start with the connector's configuration, which names the secrets in it: none of them
may appear in anything the connector logs while the cases run. test_cases.py runs every folder's
files; adding a connector adds a folder, not test code.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tidings.channels.base import CallbackRequest, Connector, ProviderUnavailable, SubmitRejected
from tidings.channels.connectors import build_connector
from tidings.config import ConnectorSettings
from tidings.domain.events import Receipt
from tidings.domain.inbound import InboundArrival, InboundRoute, InboundShape, Received
from tidings.domain.message import Channel, Message, MessageType
from tidings.store.content_codec import decode_content, decode_options, encode

HERE = Path(__file__).parent
NOW = datetime(2025, 2, 3, 12, 0, tzinfo=UTC)


def connector_folders() -> list[Path]:
    return sorted(path for path in HERE.iterdir() if path.is_dir() and (path / "outgoing.json").exists())


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def cases(kind: str) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """(test id, case file, case) for every case of every connector's `kind`.json."""
    for folder in connector_folders():
        path = folder / f"{kind}.json"
        if path.exists():
            for case in load(path)["cases"]:
                yield f"{folder.name}: {case['label']}", path, case


# --- what the connector is given, recorded ---------------------------------------------------


@dataclass
class RecordingIngress:
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def report(self, receipt: Receipt) -> None:
        self.calls.append({"report": receipt})

    async def schedule(self, receipt: Receipt, *, at: datetime) -> None:
        self.calls.append({"schedule": receipt, "at": at})

    async def inbound(self, arrival: InboundArrival) -> Received:
        self.calls.append({"inbound": arrival})
        return Received(message_uuid=str(uuid.uuid4()), route=InboundRoute(None, InboundShape.V1))


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers the connector's HTTP requests with the case's responses, in order, and keeps the
    requests, so that they can be compared with the exact ones the case expects."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self._responses = list(responses)
        self.requests: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode() if request.content else ""
        self.requests.append(
            {
                "method": request.method,
                "url": str(request.url),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": json.loads(body) if body.startswith(("{", "[")) else body,
            }
        )
        if not self._responses:
            raise AssertionError(f"the connector made a request the case did not expect: {request.url}")
        answer = self._responses.pop(0)
        if answer.get("error") == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(answer.get("status", 200), json=answer.get("json"), request=request)


def connector_of(
    path: Path, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[Connector, list[str]]:
    """The connector a case file configures, and the secrets its configuration names."""
    config = load(path)["connector"]
    settings = ConnectorSettings(type=config["type"], **config.get("options", {}))
    secrets = [str(config["options"][name]) for name in config.get("secrets", [])]
    return build_connector(config.get("name", config["type"]), settings, transport), secrets


def message_of(spec: dict[str, Any]) -> Message:
    channel = Channel(spec["channel"])
    message_type = MessageType(spec["message_type"])
    return Message(
        uuid=spec.get("uuid", "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"),
        account_id="acct0001",
        channel=channel,
        message_type=message_type,
        to=spec["to"],
        sender=spec["from"],
        content=decode_content(message_type, spec["content"]),  # type: ignore[arg-type]
        options=decode_options(channel, spec.get("options")),
        context_message_uuid=spec.get("context_message_uuid"),
        created_at=NOW,
    )


# --- comparing what happened with what the case says -----------------------------------------


def receipt_seen(receipt: Receipt, refs: tuple[str, ...], now: datetime) -> dict[str, Any]:
    """A receipt in the cases' terms: its part by index where the submit named it, times as
    seconds from the submit."""
    seen: dict[str, Any] = {
        "part": refs.index(receipt.provider_ref) if receipt.provider_ref in refs else receipt.provider_ref,
        "status": receipt.status.value,
    }
    if receipt.error is not None:
        seen["error"] = int(receipt.error.code)
    if receipt.network_code is not None:
        seen["network_code"] = receipt.network_code
    if receipt.usage is not None:
        seen["price"] = f"{receipt.usage.price} {receipt.usage.currency}"
    if receipt.account_id is not None:
        seen["account_id"] = receipt.account_id
    seen["after"] = round((receipt.occurred_at - now).total_seconds(), 3)
    return seen


def ingress_seen(calls: list[dict[str, Any]], refs: tuple[str, ...], now: datetime) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for call in calls:
        if "schedule" in call:
            entry = {"schedule": receipt_seen(call["schedule"], refs, now)}
            entry["schedule"]["at"] = round((call["at"] - now).total_seconds(), 3)
        elif "report" in call:
            entry = {"report": receipt_seen(call["report"], refs, now)}
            entry["report"].pop("after")
        else:
            arrival: InboundArrival = call["inbound"]
            entry = {
                "inbound": {
                    "channel": arrival.channel.value,
                    "from": arrival.sender,
                    "to": arrival.to,
                    "message_type": arrival.message_type.value,
                    "content": encode(arrival.content),
                    "provider_ref": arrival.provider_ref,
                }
                | ({"profile_name": arrival.profile_name} if arrival.profile_name else {})
                | ({"network_code": arrival.network_code} if arrival.network_code else {})
            }
        seen.append(entry)
    return seen


async def run_outgoing(path: Path, case: dict[str, Any], caplog: Any) -> None:
    transport = RecordingTransport(case.get("responses", []))
    connector, secrets = connector_of(path, transport)
    ingress = RecordingIngress()
    await connector.start(ingress)
    before = datetime.now(UTC)
    refs: tuple[str, ...] = ()
    try:
        with caplog.at_level(logging.DEBUG):
            try:
                submission = await connector.submit(message_of(case["message"]))
            except SubmitRejected as rejected:
                outcome: dict[str, Any] = {"class": "permanent", "code": int(rejected.error.code)}
            except ProviderUnavailable:
                outcome = {"class": "retryable"}
            else:
                refs = submission.parts
                outcome = {"parts": len(refs)}
    finally:
        await connector.stop()
    expected = {"class": case["error"]["class"], "code": case["error"]["code"]} if "error" in case else None
    if expected and expected["class"] == "retryable":
        expected.pop("code")
    assert outcome == (expected or {"parts": case["parts"]})
    assert transport.requests == case.get("requests", [])
    # Times: the connector stamps its receipts from its own clock, read during submit.
    seen = ingress_seen(ingress.calls, refs, before)
    for entry, wanted in zip(seen, case.get("ingress", []), strict=False):
        for body, want in zip(entry.values(), wanted.values(), strict=True):
            for key in ("after", "at"):
                if key in body and key in want:
                    assert abs(body[key] - want[key]) < 0.5, (body, want)
                    body[key] = want[key]
    assert seen == case.get("ingress", [])
    assert_no_secret_logged(caplog, secrets)


async def run_callback(path: Path, case: dict[str, Any], caplog: Any) -> None:
    connector, secrets = connector_of(path)
    ingress = RecordingIngress()
    request = case["request"]
    body = json.dumps(request["json"]).encode() if "json" in request else request.get("body", "").encode()
    with caplog.at_level(logging.DEBUG):
        answer = await connector.handle_callback(
            CallbackRequest(
                method=request.get("method", "POST"),
                path=request.get("path", ""),
                query=request.get("query", {}),
                headers={k.lower(): v for k, v in request.get("headers", {}).items()},
                body=body,
            ),
            ingress,
        )
    assert answer.status == case["response"]["status"]
    if "body" in case["response"]:
        assert answer.body.decode() == case["response"]["body"]
    assert ingress_seen(ingress.calls, (), NOW) == case.get("ingress", [])
    assert_no_secret_logged(caplog, secrets)


def assert_no_secret_logged(caplog: Any, secrets: list[str]) -> None:
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    for secret in secrets:
        assert secret not in logged, "a configured secret appeared in the logs"
