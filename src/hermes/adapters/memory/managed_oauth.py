"""Managed OAuth in one process: embedded mode (one server) and unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from hermes.application.ports.managed_oauth import AccountStatuses, ConnectRequests, RefreshLocks
from hermes.domain.errors import Unavailable
from hermes.domain.managed_oauth import AccountStatus, ConnectRequest
from hermes.domain.platform import Platform


class InMemoryConnectRequests(ConnectRequests):
    def __init__(self) -> None:
        self.requests: dict[str, ConnectRequest] = {}

    async def put(self, digest: str, request: ConnectRequest) -> None:
        now = datetime.now(UTC)
        self.requests = {k: v for k, v in self.requests.items() if v.expires_at > now}  # no unbounded growth
        self.requests[digest] = request

    async def take(self, digest: str) -> ConnectRequest | None:
        return self.requests.pop(digest, None)


class InMemoryAccountStatuses(AccountStatuses):
    def __init__(self) -> None:
        self.records: dict[tuple[str, Platform, str], AccountStatus] = {}

    async def put(self, customer_id: str, status: AccountStatus) -> None:
        self.records[(customer_id, status.platform, status.account)] = status

    async def get(self, customer_id: str, platform: Platform, account: str) -> AccountStatus | None:
        return self.records.get((customer_id, platform, account))

    async def all(self, customer_id: str) -> list[AccountStatus]:
        found = [s for (c, _, _), s in self.records.items() if c == customer_id]
        return sorted(found, key=lambda s: (s.platform.value, s.account))

    async def remove(self, customer_id: str, platform: Platform, account: str) -> None:
        self.records.pop((customer_id, platform, account), None)


class InMemoryRefreshLocks(RefreshLocks):
    """An asyncio lock per key; one process holds every caller."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def hold(self, key: str, ttl: float, wait: float) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with asyncio.timeout(wait):
                await lock.acquire()
        except TimeoutError:
            raise Unavailable("another renewal of this account's access is still running; try again shortly") from None
        try:
            yield
        finally:
            lock.release()
