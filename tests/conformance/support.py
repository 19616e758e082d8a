"""What the conformance tests share: credentials, messages to update, the SDK's message models."""

from __future__ import annotations

import base64
import importlib
import inspect
import pkgutil
from typing import Any

import httpx
import vonage_messages.models as sdk
from pydantic import BaseModel

from tidings.domain.message import Channel
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.services.external_accounts import ExternalAccounts


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def received(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, inbound: dict[str, Any]
) -> str:
    """An inbound message to the account (through POST /sim/inbound), its `to` linked to the account
    as an external account of the channel first; its uuid."""
    external = ExternalAccounts(runtime.database)
    if not any(link.external_id == inbound["to"] for link in await external.list(account.api_key)):
        await external.link(account.api_key, Channel(inbound["channel"]), inbound["to"])
    response = await client.post("/sim/inbound", json=inbound, headers=basic(account))
    assert response.status_code == 202, response.text
    return str(response.json()["message_uuid"])


def sdk_model_classes() -> set[type[BaseModel]]:
    """Every pydantic model defined in vonage_messages.models and its modules."""
    modules = [sdk] + [
        importlib.import_module(f"{sdk.__name__}.{info.name}") for info in pkgutil.iter_modules(sdk.__path__)
    ]
    return {
        cls
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseModel) and cls.__module__.startswith(sdk.__name__)
    }


def message_classes() -> list[type[BaseModel]]:
    """The models a send is built from: BaseMessage's subclasses that fix a channel and a type."""
    return sorted(
        (
            cls
            for cls in sdk_model_classes()
            if issubclass(cls, sdk.BaseMessage)
            and "channel" in cls.model_fields
            and "message_type" in cls.model_fields
            and not cls.model_fields["message_type"].is_required()
        ),
        key=lambda cls: cls.__name__,
    )
