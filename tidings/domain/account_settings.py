"""What the Account API reads and changes on an account: balance, default callbacks, API secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

# Vonage's rules for a new API secret (shared/specs/account.yml, createSecretRequest), checked
# with ASCII classes as the SDK checks them before sending.
SECRET_MIN_LENGTH = 8
SECRET_MAX_LENGTH = 25
_LOWER = re.compile(r"[a-z]")
_UPPER = re.compile(r"[A-Z]")
_DIGIT = re.compile(r"[0-9]")

# "Each Vonage API account can have up to two API secrets at any time": enough to rotate.
MAX_SECRETS_PER_ACCOUNT = 2


@dataclass(frozen=True)
class Balance:
    value: Decimal  # may be negative down to minus the credit limit
    auto_reload: bool
    currency: str


@dataclass(frozen=True)
class CallbackSettings:
    """The account-level SMS callbacks: inbound messages (MO) and delivery receipts (DR)."""

    mo_callback_url: str | None
    dr_callback_url: str | None


@dataclass(frozen=True)
class ApiSecret:
    """A secret as shown to its owner: never its value, which is kept only as a hash."""

    id: str
    account_id: str
    created_at: datetime


def secret_meets_rules(secret: str) -> bool:
    return (
        SECRET_MIN_LENGTH <= len(secret) <= SECRET_MAX_LENGTH
        and _LOWER.search(secret) is not None
        and _UPPER.search(secret) is not None
        and _DIGIT.search(secret) is not None
        # A control character could never be sent back in a Basic header.
        and secret.isprintable()
    )
