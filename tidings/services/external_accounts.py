"""External accounts: an account's addresses on the app platforms (a WhatsApp business number, a
Messenger page, a Viber service, an RCS agent), and the application their inbound messages go to."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from tidings.domain.channel_registry import InboundAddress, channel_spec
from tidings.domain.errors import InvalidParameter, InvalidParams, NotFound
from tidings.domain.external_account import ExternalAccount
from tidings.domain.message import Channel
from tidings.store import accounts as account_store
from tidings.store import applications as application_store
from tidings.store import external_accounts as store
from tidings.store.database import Database


class ExternalAccounts:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def link(
        self,
        account_id: str,
        channel: Channel,
        external_id: str,
        *,
        application_id: str | None = None,
        name: str | None = None,
    ) -> ExternalAccount:
        spec = channel_spec(channel)
        if spec is None or spec.inbound_address is not InboundAddress.EXTERNAL_ACCOUNT:
            reason = "takes its inbound messages at rented numbers, not external accounts."
            raise InvalidParams([InvalidParameter("channel", f"{channel.value} {reason}")])
        if not 1 <= len(external_id) <= 100 or not external_id.isprintable() or " " in external_id:
            raise InvalidParams([InvalidParameter("external_id", "must be 1 to 100 printable characters.")])
        linked = ExternalAccount(channel, external_id, account_id, application_id, name, datetime.now(UTC))
        async with self._database.begin() as conn:
            if await account_store.get_account(conn, account_id) is None:
                raise NotFound(f"No account {account_id}.")
            if (
                application_id
                and await application_store.get_application(conn, application_id, account_id=account_id)
                is None
            ):
                raise NotFound(f"No application {application_id} in account {account_id}.")
            try:
                await store.insert_external_account(conn, linked)
            except IntegrityError:
                raise InvalidParams(
                    [InvalidParameter("external_id", f"{external_id} is already linked on {channel.value}.")]
                ) from None
        return linked

    async def unlink(self, channel: Channel, external_id: str) -> bool:
        async with self._database.begin() as conn:
            return await store.delete_external_account(conn, channel, external_id)

    async def list(self, account_id: str | None = None) -> list[ExternalAccount]:
        async with self._database.read() as conn:
            return await store.list_external_accounts(conn, account_id)
