"""An account's address on an app platform: a WhatsApp business number, a Messenger page, a Viber
service, an RCS agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tidings.domain.message import Channel


@dataclass(frozen=True)
class ExternalAccount:
    channel: Channel
    external_id: str
    account_id: str
    application_id: str | None  # the application its inbound messages go to
    name: str | None
    created_at: datetime
