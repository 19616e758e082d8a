"""Who is making a request: an account, and the application when it authenticated with a JWT."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.domain.account import Account
from tidings.domain.application import Application


@dataclass(frozen=True)
class Principal:
    account: Account
    application: Application | None = None

    @property
    def application_id(self) -> str | None:
        return self.application.id if self.application else None
