"""The conformance table (examples.json) through the ASGI app, on SQLite and PostgreSQL.

Each example in the table is a request from the project's reference material (the v1 draft spec,
the field reference, the Vonage pages), copied with where it came from and the answer Tidings owes
it; its variants break it one way each (a member removed, a wrong type, a length out of range).
One test per example sends the example and each of its variants to one fresh database, and checks
the status, the problem's type and invalid parameter names, and what was stored: the accepted
message as sent, nothing at all for a refused one.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conformance.support import basic, message_classes, received
from tidings.domain.channel_registry import CHANNELS
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.store.tables import jobs, messages

TABLE = Path(__file__).with_name("examples.json")
ERRORS = "https://developer.vonage.com/api-errors"
INSTANCE = re.compile(r"^[0-9a-f]{32}$")


TABLE_DOCUMENT: dict[str, Any] = json.loads(TABLE.read_text(encoding="utf-8"))
EXAMPLES: list[dict[str, Any]] = TABLE_DOCUMENT["examples"]


# --- the table's own notation ---------------------------------------------------------------------


def materialise(value: Any) -> Any:
    """{"$repeat": [text, n]} and {"$concat": [parts…]} stand for long strings in the table."""
    if isinstance(value, dict):
        if set(value) == {"$repeat"}:
            text, times = value["$repeat"]
            return str(text) * int(times)
        if set(value) == {"$concat"}:
            return "".join(materialise(part) for part in value["$concat"])
        return {key: materialise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [materialise(item) for item in value]
    return value


def _walk(body: Any, path: str) -> tuple[Any, str | int]:
    """The container that holds the dotted path's last step, and that step."""
    steps: list[str | int] = [int(step) if step.isdecimal() else step for step in path.split(".")]
    container = body
    for step in steps[:-1]:
        container = container[step]
    return container, steps[-1]


def variant_body(base: Any, variant: dict[str, Any]) -> Any:
    body = copy.deepcopy(base)
    for path in variant.get("remove", []):
        container, last = _walk(body, path)
        del container[last]
    for path, value in variant.get("set", {}).items():
        container, last = _walk(body, path)
        container[last] = materialise(value)
    return body


def requests_of(example: dict[str, Any]) -> list[tuple[str, dict[str, Any], Any]]:
    """(case id, expected answer, body) for the example and each of its variants."""
    base = materialise(example.get("body"))
    cases = [(example["id"], example["expect"], base)]
    for variant in example.get("variants", []):
        cases.append((f"{example['id']}/{variant['id']}", variant["expect"], variant_body(base, variant)))
    return cases


# --- the table is well formed ---------------------------------------------------------------------


def test_the_table_is_well_formed() -> None:
    ids = [case_id for example in EXAMPLES for case_id, _, _ in requests_of(example)]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for example in EXAMPLES:
        source = example["source"]
        assert source["file"] in TABLE_DOCUMENT["sources"] and source["where"], example["id"]
        assert ("body" in example) != ("raw" in example), example["id"]
        assert example.get("method", "POST") in ("POST", "PATCH"), example["id"]
        assert (example.get("method") == "PATCH") == ("given" in example), example["id"]
        for case_id, expect, _ in requests_of(example):
            assert expect["status"] in (200, 202, 415, 422), case_id
            if expect["status"] == 422:
                assert expect["type"].startswith("/messages#1"), case_id
            if expect.get("type") == "/messages#1150":
                assert expect["invalid_parameters"], case_id
        assert "gap" not in example or not example.get("variants"), "a gap is marked on a lone example"
    # Every source the table claims to cover is represented.
    files = {example["source"]["file"] for example in EXAMPLES}
    assert {"specs/messages.yml", "specs/messages-v1.md", "docs/004_cbac2e9735bada79.txt"} <= files
    assert {"docs/001_0718ff4496c973a3.txt", "docs/003_a53effe0fbfb6ac3.txt"} <= files


def test_every_channel_and_every_type_the_sdk_sends_has_an_accepted_example() -> None:
    accepted = {
        (body.get("channel"), body.get("message_type"))
        for example in EXAMPLES
        if example.get("method", "POST") == "POST"
        for _, expect, body in requests_of(example)
        if expect["status"] == 202 and isinstance(body, dict) and "gap" not in example
    }
    # Every channel Tidings speaks (the registry), each with every type an SDK model sends on it.
    assert {channel for channel, _ in accepted} == {channel.value for channel in CHANNELS}
    expected = {
        (cls.model_fields["channel"].default.value, cls.model_fields["message_type"].default.value)
        for cls in message_classes()
    }
    assert expected <= accepted, sorted(expected - accepted)


# --- through the app -----------------------------------------------------------------------------


async def stored_counts(runtime: Runtime) -> tuple[int, int]:
    async with runtime.database.engine.connect() as conn:
        message_count = (await conn.execute(select(func.count()).select_from(messages))).scalar_one()
        job_count = (await conn.execute(select(func.count()).select_from(jobs))).scalar_one()
    return int(message_count), int(job_count)


async def stored_message(runtime: Runtime, message_uuid: str) -> dict[str, Any]:
    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(select(messages).where(messages.c.uuid == message_uuid))).mappings().one()
    return dict(row)


async def given_message(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, given: dict[str, Any]
) -> str:
    """The message a PATCH example updates: one this account sent, or one it received."""
    if "inbound" in given:
        return await received(client, runtime, account, given["inbound"])
    response = await client.post("/v1/messages", json=given["send"], headers=basic(account))
    assert response.status_code == 202, response.text
    return str(response.json()["message_uuid"])


def problems_with(response: httpx.Response, expect: dict[str, Any]) -> list[str]:
    """How the answer differs from the expected one (empty when it matches)."""
    if response.status_code != expect["status"]:
        return [f"status {response.status_code}, expected {expect['status']}: {response.text[:600]}"]
    if expect["status"] in (200, 202):
        return []
    found: list[str] = []
    if not response.headers["content-type"].startswith("application/problem+json"):
        found.append(f"content-type {response.headers['content-type']}")
    problem = response.json()
    if problem.get("type") != ERRORS + expect["type"]:
        found.append(f"type {problem.get('type')}, expected {ERRORS + expect['type']}")
    if not (isinstance(problem.get("title"), str) and problem["title"]):
        found.append("no title")
    if not INSTANCE.match(str(problem.get("instance"))):
        found.append(f"instance {problem.get('instance')!r}")
    if "invalid_parameters" in expect:
        params = problem.get("invalid_parameters") or []
        names = sorted(param["name"] for param in params)
        if names != sorted(expect["invalid_parameters"]):
            found.append(f"invalid_parameters {params}, expected names {expect['invalid_parameters']}")
        reasons = {param["name"]: param["reason"] for param in params}
        for name, reason in expect.get("reasons", {}).items():
            if reasons.get(name) != reason:
                found.append(f"reason for {name}: {reasons.get(name)!r}, expected {reason!r}")
        if not all(isinstance(param.get("reason"), str) and param["reason"] for param in params):
            found.append(f"a parameter without a reason: {params}")
    elif "invalid_parameters" in problem:
        found.append(f"unexpected invalid_parameters {problem['invalid_parameters']}")
    return found


async def check_send(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    example: dict[str, Any],
    expect: dict[str, Any],
    body: Any,
) -> list[str]:
    before = await stored_counts(runtime)
    if "raw" in example:
        raw = example["raw"]
        headers = {**basic(account), "Content-Type": raw["content_type"]}
        response = await client.post("/v1/messages", content=raw["content"].encode(), headers=headers)
    else:
        response = await client.post("/v1/messages", json=body, headers=basic(account))
    found = problems_with(response, expect)
    if found or expect["status"] != 202:
        after = await stored_counts(runtime)
        if not found and after != before:
            found.append(f"refused, yet stored (messages, jobs) {before} → {after}")
        return found
    message_uuid = response.json()["message_uuid"]
    if str(uuid.UUID(message_uuid)) != message_uuid:
        found.append(f"message_uuid {message_uuid!r} is not a canonical uuid")
    if await stored_counts(runtime) != (before[0] + 1, before[1] + 1):
        found.append("accepted, but not stored as one message with one delivery job")
    row = await stored_message(runtime, message_uuid)
    sent = {
        "account_id": account.api_key,
        "direction": "outbound",
        "status": "accepted",
        "channel": body["channel"],
        "message_type": body["message_type"],
        "to_address": body["to"],
        "from_address": body["from"],
        **expect.get("stored", {}),
    }
    found += [
        f"stored {name} {row[name]!r}, expected {value!r}"
        for name, value in sent.items()
        if row[name] != value
    ]
    return found


async def check_update(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    example: dict[str, Any],
    expect: dict[str, Any],
    body: Any,
) -> list[str]:
    message_uuid = await given_message(client, runtime, account, example["given"])
    before = (await stored_message(runtime, message_uuid))["status"]
    response = await client.patch(f"/v1/messages/{message_uuid}", json=body, headers=basic(account))
    found = problems_with(response, expect)
    after = (await stored_message(runtime, message_uuid))["status"]
    if not found and expect["status"] == 200 and after != body["status"]:
        found.append(f"answered 200, but the message is {after}, not {body['status']}")
    if not found and expect["status"] != 200 and after != before:
        found.append(f"refused, yet the message went from {before} to {after}")
    return found


def _param(example: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(reason=example["gap"], strict=True)] if "gap" in example else []
    return pytest.param(example, id=example["id"], marks=marks)


@pytest.mark.parametrize("example", [_param(example) for example in EXAMPLES])
async def test_example_and_its_variants(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, example: dict[str, Any]
) -> None:
    check = check_update if example.get("method") == "PATCH" else check_send
    failures: list[str] = []
    for case_id, expect, body in requests_of(example):
        failures += [
            f"{case_id}: {problem}"
            for problem in await check(client, runtime, account, example, expect, body)
        ]
    assert not failures, "\n".join(failures)
