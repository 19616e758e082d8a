"""An account's API secrets: listed, created and revoked by the account itself.

Secrets are stored only as argon2 hashes. Every change runs `invalidate(api_key)` once committed,
so this process stops accepting a revoked secret at once; other processes drop their cached
verifications within `auth_cache_seconds`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from tidings.auth.secret_hashing import hash_secret
from tidings.domain.account_settings import MAX_SECRETS_PER_ACCOUNT, ApiSecret, secret_meets_rules
from tidings.domain.errors import (
    LastSecretDeletion,
    SecretIdNotFound,
    SecretValidationFailed,
)
from tidings.domain.ids import new_uuid
from tidings.store import account_settings as store
from tidings.store.database import Database

Invalidate = Callable[[str], None]

# The spec's reason for a secret that breaks the rules (its x-errors list the rules themselves).
COMPLEXITY_REASON = "Does not meet complexity requirements"


def _is_secret_id(value: str) -> bool:
    """Ids are UUIDs; anything else is no id of ours and never reaches the database."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


async def list_secrets(database: Database, api_key: str) -> list[ApiSecret]:
    async with database.engine.connect() as conn:
        return await store.list_secrets(conn, api_key)


async def get_secret(database: Database, api_key: str, secret_id: str) -> ApiSecret:
    found = None
    if _is_secret_id(secret_id):
        async with database.engine.connect() as conn:
            found = await store.get_secret(conn, api_key, secret_id.lower())
    if found is None:
        raise SecretIdNotFound(secret_id[:100])
    return found


async def create_secret(database: Database, api_key: str, secret: str, invalidate: Invalidate) -> ApiSecret:
    if not secret_meets_rules(secret):
        raise SecretValidationFailed(COMPLEXITY_REASON)
    secret_hash = await asyncio.to_thread(hash_secret, secret)
    async with database.begin() as conn:
        await store.lock_account(conn, api_key)
        if await store.count_secrets(conn, api_key) >= MAX_SECRETS_PER_ACCOUNT:
            raise SecretValidationFailed(
                f"An account can have at most {MAX_SECRETS_PER_ACCOUNT} secrets; revoke one first",
                detail=f"The account already has {MAX_SECRETS_PER_ACCOUNT} secrets, the most allowed",
            )
        created = await store.insert_secret(
            conn,
            secret_id=new_uuid(),
            api_key=api_key,
            secret_hash=secret_hash,
            now=datetime.now(UTC),
        )
    invalidate(api_key)
    return created


async def revoke_secret(database: Database, api_key: str, secret_id: str, invalidate: Invalidate) -> None:
    """Refused for the account's last secret; the lock keeps two concurrent revocations of its
    last two secrets from both succeeding."""
    if not _is_secret_id(secret_id):
        raise SecretIdNotFound(secret_id[:100])
    async with database.begin() as conn:
        await store.lock_account(conn, api_key)
        if await store.get_secret(conn, api_key, secret_id.lower()) is None:
            raise SecretIdNotFound(secret_id[:100])
        if await store.count_secrets(conn, api_key) <= 1:
            raise LastSecretDeletion()
        await store.delete_secret(conn, api_key, secret_id.lower())
    invalidate(api_key)
