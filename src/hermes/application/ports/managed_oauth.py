"""Ports of managed OAuth: the platforms' token endpoints, pending links, account health, refresh locks."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from hermes.application.ports.account_health import AccountSchedule
from hermes.domain.credentials import Credentials
from hermes.domain.managed_oauth import AccountStatus, ConnectRequest
from hermes.domain.platform import Platform


class PlatformAuthorization(Protocol):
    """The platforms whose consent page Hermes can send an owner to (their client id and secret are set).

    Failures are `PlatformRejected`; a refused grant (`invalid_grant`, a revoked or
    expired refresh token) has `reconnect=True`.
    """

    def platforms(self) -> Sequence[Platform]: ...

    def uses_pkce(self, platform: Platform) -> bool: ...

    def renewable(self, platform: Platform, credentials: Credentials) -> bool:
        """Whether these credentials carry what a renewal needs (a refresh token, where the platform uses one)."""
        ...

    def refresh_ahead(self, platform: Platform) -> float:
        """Renew a token when less than this many seconds of it are left."""
        ...

    def authorize_url(self, platform: Platform, state: str, code_challenge: str | None, redirect_uri: str) -> str: ...

    async def exchange(
        self, platform: Platform, code: str, code_verifier: str | None, redirect_uri: str
    ) -> Credentials:
        """The account's credentials for `code`, `expiresAt` (epoch seconds) and `refreshToken` when given."""
        ...

    async def refresh(self, platform: Platform, credentials: Credentials) -> Credentials:
        """New credentials from the stored ones; a rotated refresh token is in the result."""
        ...


class ConnectRequests(Protocol):
    """Pending connect links, keyed by the digest of their `state`."""

    async def put(self, digest: str, request: ConnectRequest) -> None: ...

    async def take(self, digest: str) -> ConnectRequest | None:
        """The request, removed in the same step (a `state` works once); None when unknown or expired."""
        ...


class AccountStatuses(Protocol):
    """One small status record per customer, platform and account."""

    async def put(self, customer_id: str, status: AccountStatus) -> None: ...

    async def get(self, customer_id: str, platform: Platform, account: str) -> AccountStatus | None: ...

    async def all(self, customer_id: str) -> list[AccountStatus]: ...

    async def remove(self, customer_id: str, platform: Platform, account: str) -> None: ...


class AccountOverview(Protocol):
    """A customer's stored accounts and the health records kept for them, read together.

    Listing accounts is among the most frequent reads: where the store allows it, both come
    back in one round trip.
    """

    async def read(self, customer_id: str) -> tuple[list[tuple[Platform, str]], list[AccountStatus]]:
        """Every (platform, account) holding credentials, and every status record; both sorted."""
        ...


class RefreshLocks(Protocol):
    """One holder at a time per key, across every instance sharing the store."""

    def hold(self, key: str, ttl: float, wait: float) -> AbstractAsyncContextManager[None]:
        """Held for at most `ttl` seconds; `Unavailable` when not obtained within `wait` seconds."""
        ...


class RenewalSchedule(AccountSchedule, Protocol):
    """Accounts holding a renewable managed-OAuth token, by the time it must be renewed."""
