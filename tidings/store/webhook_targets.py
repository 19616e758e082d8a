"""Where an account's or application's webhooks go (read by lookups.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WebhookSettings:
    account_status_url: str | None
    application_capabilities: dict[str, Any] | None  # None: no application, or not this account's
