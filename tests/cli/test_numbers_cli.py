"""`tidings numbers add|list` and `tidings sim inbound` against the test database, checked through
the API the accounts see."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from tests.receiver import WebhookReceiver
from tidings.cli.main import app
from tidings.domain.application import Application
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.applications import insert_application
from tidings.store.tables import unroutable_inbound

Invoke = Callable[..., Awaitable[Result]]


@pytest.fixture
def run_cli(database_url: str, tmp_path: Path) -> Invoke:
    runner = CliRunner()
    env = {
        "TIDINGS_DATABASE_URL": database_url,
        "TIDINGS_HOME": str(tmp_path / "cli-home"),
        "TIDINGS_AUTO_MIGRATE": "false",
    }

    async def invoke(*args: str) -> Result:
        # The command runs its own event loop, so it runs beside the test's, in a thread.
        return await asyncio.to_thread(lambda: runner.invoke(app, list(args), env=env))

    return invoke


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def make_application(runtime: Runtime, account_id: str, inbound_url: str = "") -> Application:
    now = datetime.now(UTC)
    webhooks = {"inbound_url": {"address": inbound_url, "http_method": "POST"}} if inbound_url else {}
    application = Application(
        id=str(uuid.uuid4()),
        account_id=account_id,
        name="cli test",
        public_key="-----BEGIN PUBLIC KEY-----\nnot used here\n-----END PUBLIC KEY-----",
        capabilities={"messages": {"webhooks": webhooks, "version": "v1"}},
        created_at=now,
        updated_at=now,
    )
    async with runtime.database.begin() as conn:
        await insert_application(conn, application)
    return application


async def test_add_and_list(
    run_cli: Invoke, client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    invoke = run_cli
    application = await make_application(runtime, account.api_key)

    added = await invoke(
        "numbers", "add", "--account", account.api_key, "--country", "GB", "--msisdn", "447700900001"
    )
    assert added.exit_code == 0, added.output
    assert added.output.strip() == f"added 447700900001 (GB, mobile-lvn) to account {account.api_key}"

    linked = await invoke(
        "numbers", "add", "--account", account.api_key, "--country", "US", "--msisdn", "+12015550100",
        "--app-id", application.id, "--features", "SMS,MMS", "--json",
    )  # fmt: skip
    assert linked.exit_code == 0, linked.output
    assert json.loads(linked.output) == {
        "account": account.api_key,
        "country": "US",
        "msisdn": "12015550100",
        "type": "mobile-lvn",
        "features": ["SMS", "MMS"],
        "messagesCallbackType": "app",
        "messagesCallbackValue": application.id,
        "app_id": application.id,
    }

    seen = await client.get("/account/numbers", headers=basic(account))
    assert seen.json()["count"] == 2
    assert [n["msisdn"] for n in seen.json()["numbers"]] == ["12015550100", "447700900001"]

    listed = await invoke("numbers", "list", "--account", account.api_key, "--json")
    assert listed.exit_code == 0, listed.output
    assert [(n["msisdn"], n["account"]) for n in json.loads(listed.output)] == [
        ("12015550100", account.api_key),
        ("447700900001", account.api_key),
    ]
    other = await create_account(runtime.database, runtime.box, name="other")
    assert json.loads((await invoke("numbers", "list", "--account", other.api_key, "--json")).output) == []
    table = await invoke("numbers", "list")
    assert table.exit_code == 0
    lines = table.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].split()[:4] == ["447700900001", "GB", "mobile-lvn", "VOICE,SMS"]


async def test_add_refuses(run_cli: Invoke, runtime: Runtime, account: NewAccountCredentials) -> None:
    invoke = run_cli
    foreign = await make_application(
        runtime, (await create_account(runtime.database, runtime.box, name="b")).api_key
    )
    base = ["numbers", "add", "--account", account.api_key, "--country", "GB"]
    assert (await invoke(*base, "--msisdn", "447700900001")).exit_code == 0
    cases = {
        "taken": ([*base, "--msisdn", "447700900001"], "method failed"),
        "unknown account": (
            ["numbers", "add", "--account", "nobody", "--country", "GB", "--msisdn", "447700900002"],
            "no account nobody",
        ),
        "wrong country": ([*base, "--msisdn", "12015550100"], "not a number of GB"),
        "foreign app": ([*base, "--msisdn", "447700900003", "--app-id", foreign.id], "app_id"),
    }
    for label, (args, message) in cases.items():
        result = await invoke(*args)
        assert result.exit_code == 1, label
        assert message in result.output, (label, result.output)
    bad_features = await invoke(*base, "--msisdn", "447700900004", "--features", "FAX")
    assert bad_features.exit_code == 2


async def test_sim_inbound(
    run_cli: Invoke, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    invoke = run_cli
    application = await make_application(runtime, account.api_key, f"{receiver.url}/inbound")
    added = await invoke(
        "numbers", "add", "--account", account.api_key, "--country", "GB", "--msisdn", "447700900001",
        "--app-id", application.id,
    )  # fmt: skip
    assert added.exit_code == 0, added.output

    sent = await invoke("sim", "inbound", "--from", "447700900123", "--to", "447700900001", "--text", "hi")
    assert sent.exit_code == 0, sent.output
    message_uuid, target = sent.output.split()
    assert target == "(v1)"
    (webhook,) = await asyncio.to_thread(receiver.wait_for, 1)  # the runtime's worker sends it
    assert webhook.json()["message_uuid"] == message_uuid
    assert webhook.json()["text"] == "hi"

    lost = await invoke("sim", "inbound", "--from", "447700900123", "--to", "447700900999", "--text", "hi")
    assert lost.exit_code == 1
    assert "unroutable" in lost.output
    async with runtime.database.engine.connect() as conn:
        kept = (await conn.execute(select(func.count()).select_from(unroutable_inbound))).scalar_one()
    assert kept == 1
