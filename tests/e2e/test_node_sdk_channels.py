"""Every message class of the official Node SDK (@vonage/messages, pinned in
tests/e2e/node/package.json), sent through one real `tidings serve --tls` as users send them: with
Basic credentials, and with an application's JWT (RCS); each answered 202 with a uuid, its status
webhooks signed and on their way to `delivered`, and to `read` on the channels with read receipts.
Then `updateMessage`: inbound WhatsApp messages marked read (with and without the typing
indicator) and an undelivered RCS message revoked.

The classes are found by looking at what the package exports (every class extending
AbstractMessage), in tests/e2e/node/channels.mjs, so a class a new SDK adds fails here until the
script has an example of it, rather than going untested."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.channel_matrix import (
    DELIVERED_NEVER_READ,
    MESSENGER_PAGE,
    MESSENGER_USER,
    MMS_PHONE,
    MMS_SENDER,
    NEVER_ANSWERS,
    PHONE,
    RCS_AGENT,
    SMS_SENDER,
    VIBER_SERVICE,
    WHATSAPP_BUSINESS,
    WHATSAPP_USER,
    Sent,
    accepted_result,
    create_application,
    inbound_whatsapp,
    link_whatsapp,
    message_view,
    outcomes,
    render,
    wait_for_statuses,
)
from tests.e2e.conftest import SharedServer
from tests.e2e.server import Credentials, TidingsServer
from tests.receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

JWT_CHANNELS = ["rcs"]
PARTIES = {
    "sms": {"to": PHONE, "from": SMS_SENDER},
    "mms": {"to": MMS_PHONE, "from": MMS_SENDER},
    "whatsapp": {"to": WHATSAPP_USER, "from": WHATSAPP_BUSINESS},
    "messenger": {"to": MESSENGER_USER, "from": MESSENGER_PAGE},
    "viber_service": {"to": PHONE, "from": VIBER_SERVICE},
    "rcs": {"to": PHONE, "from": RCS_AGENT},
}


@dataclass(frozen=True)
class Setup:
    server: TidingsServer
    credentials: Credentials
    application_id: str
    private_key_path: Path
    receiver: WebhookReceiver
    script: Path

    def run(self, action: str, **config: Any) -> dict[str, Any]:
        """Runs channels.mjs once; returns its output ({"sdk": versions, "results": [...]})."""
        payload = {
            "host": self.server.tls_url,
            "basic": {"apiKey": self.credentials.api_key, "apiSecret": self.credentials.api_secret},
            "jwt": {"applicationId": self.application_id, "privateKey": str(self.private_key_path)},
            "action": action,
            **config,
        }
        done = subprocess.run(
            ["node", str(self.script), json.dumps(payload)],
            cwd=self.script.parent,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": str(self.server.ca_path)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"channels.mjs exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        output: dict[str, Any] = json.loads(done.stdout)
        return output


@pytest.fixture(scope="module")
def setup(
    node_dir: Path, module_server: SharedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """The module's account, an application whose status URL is the receiver's /app-status, and
    the account's WhatsApp business number linked to that application."""
    server, credentials = module_server.server, module_server.credentials
    with WebhookReceiver() as receiver:
        application = create_application(server, credentials, receiver)
        key_path = tmp_path_factory.mktemp("keys") / "private.key"
        key_path.write_text(application["keys"]["private_key"])
        link_whatsapp(server, credentials, application["id"])
        yield Setup(server, credentials, application["id"], key_path, receiver, node_dir / "channels.mjs")


def as_sent(result: dict[str, Any], setup: Setup) -> Sent:
    name = result["class"]
    channel = result.get("channel") or "?"
    jwt = result.get("auth") == "jwt"
    parties = PARTIES.get(channel, {"to": "?", "from": "?"})
    sent = Sent(
        sdk_class=name,
        channel=channel,
        message_type=result.get("messageType") or "?",
        to=parties["to"],
        sender=parties["from"],
        client_ref=f"node-{name}",
        webhook_path="/app-status" if jwt else f"/status/{name}",
        application_id=setup.application_id if jwt else None,
    )
    if result.get("status") == 202 and isinstance(result.get("messageUUID"), str):
        sent.uuid = result["messageUUID"]
    else:
        sent.refused = f"{result.get('status')} {result.get('error')} {result.get('body')}"
    return sent


def test_every_sendable_class_is_accepted_and_its_statuses_arrive_signed(setup: Setup) -> None:
    inbound = inbound_whatsapp(setup.server, setup.credentials, "Where is my parcel?")

    output = setup.run(
        "send-every-class",
        jwtChannels=JWT_CHANNELS,
        webhookBase=f"{setup.receiver.url}/status",
        parties=PARTIES,
        inboundUuid=inbound,
    )

    results = output["results"]
    sent = [as_sent(result, setup) for result in results]
    cells = outcomes(sent, setup.receiver, setup.credentials)
    versions = ", ".join(f"{name} {version}" for name, version in output["sdk"].items())
    print("\n" + render(f"Node SDK ({versions}): channel, type → result", sent, cells))

    assert cells == {s.sdk_class: accepted_result(s.channel) for s in sent}
    classes = {s.sdk_class for s in sent}
    assert len(classes) == len(sent) >= 30, sorted(classes)  # the discovery works (1.24.0 has 31)
    assert {"WhatsAppReaction", "RCSCustom", "MMSContent"} <= classes
    assert {s.channel for s in sent} == set(PARTIES)
    assert len({(s.channel, s.message_type) for s in sent}) == len(sent)  # one class per kind
    # What the SDK put on the wire for the classes the Python SDK lacks.
    bodies = {r["class"]: json.loads(r["sent"]) for r in results}
    assert bodies["WhatsAppReaction"]["reaction"] == {"action": "react", "emoji": "👍"}
    assert bodies["WhatsAppReaction"]["context"] == {"message_uuid": inbound}
    assert bodies["RCSText"]["suggestions"][1]["phone_number"] == "447700900555"
    for s in sent:
        assert s.uuid is not None
        view = message_view(setup.server, setup.credentials, s.uuid)
        assert (view["channel"], view["message_type"]) == (s.channel, s.message_type)


def test_update_message_marks_inbound_whatsapp_read_and_revokes_undelivered_rcs(setup: Setup) -> None:
    plain = inbound_whatsapp(setup.server, setup.credentials, "Hello?")
    typing = inbound_whatsapp(setup.server, setup.credentials, "Anyone there?")
    sends = setup.run(
        "send",
        messages=[
            {
                "class": "RCSText",
                "auth": "jwt",
                "params": {
                    "to": to,
                    "from": RCS_AGENT,
                    "text": "Offer ends soon",
                    "webhookUrl": f"{setup.receiver.url}/r",
                },
            }
            for to in (NEVER_ANSWERS, DELIVERED_NEVER_READ)
        ],
    )["results"]
    assert [r["status"] for r in sends] == [202, 202], sends
    pending, delivered = (r["messageUUID"] for r in sends)
    wait_for_statuses(setup.receiver, {pending: ["submitted"], delivered: ["delivered"]}, timeout=15)
    before = {
        uuid: message_view(setup.server, setup.credentials, uuid)["status"]
        for uuid in (plain, typing, pending, delivered)
    }
    assert before[pending] == "submitted" and before[delivered] == "delivered"
    assert before[plain] != "read" and before[typing] != "read"

    updates = setup.run(
        "update",
        updates=[
            {"uuid": plain, "status": "read"},
            {"uuid": typing, "status": "read", "typingIndicator": "text"},
            {"uuid": pending, "status": "revoked", "auth": "jwt"},
            {"uuid": delivered, "status": "revoked", "auth": "jwt"},
        ],
    )["results"]

    answers = {u["uuid"]: u for u in updates}
    for uuid in (plain, typing, pending):
        assert (answers[uuid].get("ok"), answers[uuid].get("status")) == (True, 200), answers[uuid]
    assert json.loads(answers[plain]["sent"]) == {"status": "read"}
    assert json.loads(answers[typing]["sent"]) == {
        "status": "read",
        "replying_indicator": {"show": True, "type": "text"},
    }
    # A delivered message can no longer be taken back.
    assert answers[delivered].get("status") == 422, answers[delivered]
    after = {uuid: message_view(setup.server, setup.credentials, uuid)["status"] for uuid in answers}
    assert after == {plain: "read", typing: "read", pending: "revoked", delivered: "delivered"}


def test_what_the_sdk_allows_but_the_messages_api_refuses_is_refused(setup: Setup) -> None:
    """Two things @vonage/messages 1.24.0 lets a user send that the Messages API does not take:

    - RCSCategory.ACKNOLEDGEMENT is "acknoledgement". The category is `acknowledgement`, as
      Vonage's Python SDK spells it (RcsCategory.ACKNOWLEDGEMENT) and Google's RBM traffic types
      do; no RCS platform knows the SDK's spelling.
    - WhatsAppReaction's `context` is optional in the SDK's types, but a reaction is to a message:
      Vonage's send-reaction guide requires the reacted-to message's `message_uuid`, and WhatsApp's
      Cloud API a `message_id`.

    Tidings refuses both with 422 naming the parameter, rather than accept what Vonage would not."""
    output = setup.run(
        "send",
        messages=[
            {
                "class": "RCSText",
                "params": {
                    "to": PHONE,
                    "from": RCS_AGENT,
                    "text": "We got your opt-out",
                    "rcs": {"category": "acknoledgement"},
                    "webhookUrl": f"{setup.receiver.url}/refused",
                },
            },
            {
                "class": "WhatsAppReaction",
                "params": {
                    "to": WHATSAPP_USER,
                    "from": WHATSAPP_BUSINESS,
                    "reaction": {"action": "react", "emoji": "👍"},
                    "webhookUrl": f"{setup.receiver.url}/refused",
                },
            },
        ],
    )
    assert output["enums"]["RCSCategory"]["ACKNOLEDGEMENT"] == "acknoledgement"
    category, reaction = output["results"]
    assert json.loads(category["sent"])["rcs"] == {"category": "acknoledgement"}
    assert "context" not in json.loads(reaction["sent"])
    for result, parameter in ((category, "rcs.category"), (reaction, "context")):
        assert result["status"] == 422, result
        problem = json.loads(result["body"])
        assert [p["name"] for p in problem["invalid_parameters"]] == [parameter], problem
