"""When something is due for each connected account (its next health check, its token's renewal), shared by
every instance; and the progress of jobs that run once per deployment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from hermes.domain.account_health import AccountRef


class AccountSchedule(Protocol):
    """Accounts by the time (epoch seconds) something is due for each."""

    async def add(self, due: Mapping[AccountRef, float]) -> int:
        """Schedule the accounts not scheduled yet, in one step (existing times are kept); how many were added."""
        ...

    async def set(self, account: AccountRef, at: float) -> None:
        """Schedule an account at `at`, whatever its time was."""
        ...

    async def remove(self, account: AccountRef) -> None: ...

    async def claim(self, now: float, limit: int, lease: float) -> list[AccountRef]:
        """Up to `limit` accounts due at `now`, moved to `now + lease` in the same step.

        An instance that claimed an account does what is due, then `set`s its next time;
        one that dies meanwhile leaves it to be claimed again when the lease ends. No two
        instances claim an account for the same turn.
        """
        ...

    async def size(self) -> int: ...


class HealthSchedule(AccountSchedule, Protocol):
    """Accounts by the time their next health check is due."""


class BackfillProgress(Protocol):
    """A job that runs once per deployment (such as giving every stored account a turn in a schedule),
    shared by every instance: finished or not, who runs it now (a lease that lapses when its holder dies)
    and where it stopped."""

    async def done(self) -> bool: ...

    async def take(self, holder: str, lease: float) -> str | None:
        """Hold the backfill for `lease` seconds: the position it stopped at ("" at the start), or None
        when it is done or another holder has it."""
        ...

    async def advance(self, holder: str, position: str, lease: float) -> bool:
        """Record the position and hold on for `lease` seconds more, in one step; False when the hold
        was lost (another instance may have taken over: stop)."""
        ...

    async def finish(self, holder: str) -> None:
        """Mark the backfill done for good and let go of it."""
        ...
