"""Managing an account's applications (Application API v2): create, read, list, replace, delete.

Every lookup is scoped to the calling account, so another account's application is simply not
found (404), never forbidden: its existence is not revealed.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tidings.auth.application_keys import generate_key_pair, public_key_problem
from tidings.domain.application import Application
from tidings.domain.errors import InvalidApplicationPayload, InvalidParameter, NotFound
from tidings.domain.ids import new_uuid
from tidings.store import applications as application_store
from tidings.store.database import Database


@dataclass(frozen=True)
class ApplicationDraft:
    """What a create or update body asks for, already validated field by field."""

    name: str
    public_key: str | None
    capabilities: dict[str, Any]
    privacy: dict[str, Any] | None


@dataclass(frozen=True)
class CreatedApplication:
    application: Application
    private_key: str | None  # set only when Tidings generated the pair; never stored


@dataclass(frozen=True)
class ApplicationPage:
    applications: list[Application]
    page: int
    page_size: int
    total_items: int

    @property
    def total_pages(self) -> int:
        # An empty account still has one (empty) page, so `page == total_pages` ends a client's loop.
        return max(1, math.ceil(self.total_items / self.page_size))


class KeyCache(Protocol):
    """The JWT check's per-process cache of parsed public keys."""

    def forget(self, application_id: str) -> None: ...


# Ids are UUIDs; anything else cannot exist, and must not reach the database (NUL, length).
_APPLICATION_ID = re.compile(r"[0-9A-Za-z-]{1,36}")


def _not_found(application_id: str) -> NotFound:
    shown = application_id if _APPLICATION_ID.fullmatch(application_id) else "(invalid)"
    return NotFound(f"ID '{shown}' does not exist, or you do not have access")


def _require_plausible_id(application_id: str) -> None:
    if not _APPLICATION_ID.fullmatch(application_id):
        raise _not_found(application_id)


def _checked_public_key(pem: str) -> str:
    problem = public_key_problem(pem)
    if problem is not None:
        raise InvalidApplicationPayload([InvalidParameter("keys.public_key", problem)])
    return pem


async def create_application(
    database: Database, account_id: str, draft: ApplicationDraft
) -> CreatedApplication:
    private_key: str | None = None
    if draft.public_key is None:
        pair = await asyncio.to_thread(generate_key_pair)
        public_key, private_key = pair.public_pem, pair.private_pem
    else:
        public_key = _checked_public_key(draft.public_key)
    now = datetime.now(UTC)
    application = Application(
        id=new_uuid(),
        account_id=account_id,
        name=draft.name,
        public_key=public_key,
        capabilities=draft.capabilities,
        privacy=draft.privacy,
        created_at=now,
        updated_at=now,
    )
    async with database.begin() as conn:
        await application_store.insert_application(conn, application)
    return CreatedApplication(application=application, private_key=private_key)


async def get_application(database: Database, account_id: str, application_id: str) -> Application:
    _require_plausible_id(application_id)
    async with database.read() as conn:
        application = await application_store.get_application(conn, application_id, account_id=account_id)
    if application is None:
        raise _not_found(application_id)
    return application


async def list_applications(
    database: Database, account_id: str, *, page: int, page_size: int
) -> ApplicationPage:
    async with database.read() as conn:
        found, total = await application_store.list_applications(
            conn, account_id, offset=(page - 1) * page_size, limit=page_size
        )
    return ApplicationPage(applications=found, page=page, page_size=page_size, total_items=total)


async def update_application(
    database: Database, keys: KeyCache, account_id: str, application_id: str, draft: ApplicationDraft
) -> Application:
    """PUT replaces name, capabilities and privacy; the public key only when one is given (an
    application cannot be left without one, and no new pair is generated on update)."""
    _require_plausible_id(application_id)
    values: dict[str, Any] = {
        "name": draft.name,
        "capabilities": draft.capabilities,
        "privacy": draft.privacy,
    }
    if draft.public_key is not None:
        values["public_key"] = _checked_public_key(draft.public_key)
    async with database.begin() as conn:
        updated = await application_store.update_application(
            conn, application_id, account_id, values, datetime.now(UTC)
        )
        application = (
            await application_store.get_application(conn, application_id, account_id=account_id)
            if updated
            else None
        )
    if application is None:
        raise _not_found(application_id)
    keys.forget(application_id)  # after the commit, so no request re-caches the old key from it
    return application


async def delete_application(
    database: Database, keys: KeyCache, account_id: str, application_id: str
) -> None:
    _require_plausible_id(application_id)
    async with database.begin() as conn:
        deleted = await application_store.delete_application(conn, application_id, account_id)
    if not deleted:
        raise _not_found(application_id)
    keys.forget(application_id)
