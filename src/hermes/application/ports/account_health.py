"""When each connected account is checked next, shared by every instance."""

from __future__ import annotations

from typing import Protocol

from hermes.domain.account_health import AccountRef


class HealthSchedule(Protocol):
    """Accounts by the time (epoch seconds) their next check is due."""

    async def add(self, account: AccountRef, at: float) -> bool:
        """Schedule an account not scheduled yet (an existing time is kept); whether it was added."""
        ...

    async def set(self, account: AccountRef, at: float) -> None:
        """Schedule an account at `at`, whatever its time was."""
        ...

    async def remove(self, account: AccountRef) -> None: ...

    async def claim(self, now: float, limit: int, lease: float) -> list[AccountRef]:
        """Up to `limit` accounts due at `now`, moved to `now + lease` in the same step.

        An instance that claimed an account checks it, then `set`s its next time; one
        that dies meanwhile leaves it to be claimed again when the lease ends. No two
        instances claim an account for the same turn.
        """
        ...

    async def size(self) -> int: ...
