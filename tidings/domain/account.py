"""A tenant of Tidings: one Vonage-style account with its API key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class AccountStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


@dataclass(frozen=True)
class Account:
    api_key: str
    name: str
    status: AccountStatus
    created_at: datetime
    status_url: str | None = None
    currency: str = "EUR"
    credit_limit: Decimal | None = None  # None: no limit; else the balance may fall to minus this
    messages_per_second: float | None = None  # send limit; None: the operator's default, 0: none

    @property
    def is_active(self) -> bool:
        return self.status is AccountStatus.ACTIVE


@dataclass(frozen=True)
class AccountCredentials:
    """What checking a Basic-auth request needs: the account and its stored secret hashes."""

    account: Account
    secret_hashes: tuple[str, ...]
