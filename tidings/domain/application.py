"""Applications (Application API v2): a key pair and the webhooks Tidings calls for its messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tidings.domain.message import WebhookVersion


@dataclass(frozen=True)
class WebhookEndpoint:
    address: str
    http_method: str = "POST"


@dataclass(frozen=True)
class MessagesCapability:
    inbound_url: WebhookEndpoint | None
    status_url: WebhookEndpoint | None
    version: WebhookVersion
    authenticate_inbound_media: bool = False


def _endpoint(value: Any) -> WebhookEndpoint | None:
    if not isinstance(value, dict) or not value.get("address"):
        return None
    return WebhookEndpoint(address=str(value["address"]), http_method=str(value.get("http_method") or "POST"))


@dataclass(frozen=True)
class Application:
    id: str
    account_id: str
    name: str
    public_key: str
    capabilities: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    privacy: dict[str, Any] | None = None
    messages_per_second: float | None = None  # send limit; None: the operator's default, 0: none

    @property
    def messages(self) -> MessagesCapability | None:
        """The messages capability as Tidings acts on it; None when the application has none."""
        return messages_capability(self.capabilities)


def messages_capability(capabilities: dict[str, Any]) -> MessagesCapability | None:
    raw = capabilities.get("messages")
    if not isinstance(raw, dict):
        return None
    webhooks = raw.get("webhooks")
    if not isinstance(webhooks, dict):
        webhooks = {}
    version = raw.get("version")
    return MessagesCapability(
        inbound_url=_endpoint(webhooks.get("inbound_url")),
        status_url=_endpoint(webhooks.get("status_url")),
        version=WebhookVersion(version) if version in ("v1", "v0.1") else WebhookVersion.V1,
        authenticate_inbound_media=bool(raw.get("authenticate_inbound_media", False)),
    )
