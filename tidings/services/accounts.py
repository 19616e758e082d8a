"""Creating accounts and their credentials."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from tidings.auth.secret_box import SecretBox
from tidings.auth.secret_hashing import hash_secret
from tidings.domain.account import Account
from tidings.store import accounts as account_store
from tidings.store.database import Database

_SECRET_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class NewAccountCredentials:
    """Shown once, at creation; only the API secret's hash and the sealed signature secret are kept."""

    api_key: str
    api_secret: str
    signature_secret: str


def generate_api_secret(length: int = 16) -> str:
    """A random secret meeting Vonage's strength rules: lower and upper case letters and a digit."""
    while True:
        candidate = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
        ):
            return candidate


def generate_signature_secret() -> str:
    return secrets.token_urlsafe(48)


async def create_account(
    database: Database, box: SecretBox, *, name: str, status_url: str | None = None
) -> NewAccountCredentials:
    api_secret = generate_api_secret()
    signature_secret = generate_signature_secret()
    secret_hash = hash_secret(api_secret)
    sealed = box.seal(signature_secret)
    for _ in range(10):
        api_key = secrets.token_hex(4)
        try:
            async with database.begin() as conn:
                await account_store.insert_account(
                    conn,
                    api_key=api_key,
                    name=name,
                    secret_hash=secret_hash,
                    signature_secret_enc=sealed,
                    now=datetime.now(UTC),
                    status_url=status_url,
                )
        except IntegrityError:
            continue  # an API key already taken; draw another
        return NewAccountCredentials(
            api_key=api_key, api_secret=api_secret, signature_secret=signature_secret
        )
    raise RuntimeError("could not draw a free API key")


async def has_accounts(database: Database) -> bool:
    async with database.read() as conn:
        return await account_store.any_account(conn)


async def list_accounts(database: Database) -> list[Account]:
    """Every account, as the operator lists them (the secrets are not part of an Account)."""
    async with database.read() as conn:
        return await account_store.list_accounts(conn)
