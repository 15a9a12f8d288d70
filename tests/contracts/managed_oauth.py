"""Contracts of the managed OAuth ports: pending links, account health records, refresh locks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hermes.application.ports.credentials import CredentialStore
from hermes.application.ports.managed_oauth import AccountOverview, AccountStatuses, ConnectRequests, RefreshLocks
from hermes.domain.errors import Unavailable
from hermes.domain.managed_oauth import AccountHealth, AccountStatus, ConnectRequest, state_digest
from hermes.domain.platform import Platform
from tests.contracts.ports import uid


def a_request(customer_id: str) -> ConnectRequest:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15)
    return ConnectRequest(customer_id, Platform.TWITTER, "work", "v" * 64, "https://h.example/cb/twitter", expires)


class ConnectRequestsContract:
    async def test_a_request_is_taken_once(self, connect_requests: ConnectRequests) -> None:
        digest = state_digest(uid())
        request = a_request(uid())
        await connect_requests.put(digest, request)
        assert await connect_requests.take(digest) == request
        assert await connect_requests.take(digest) is None

    async def test_an_unknown_state_finds_nothing(self, connect_requests: ConnectRequests) -> None:
        assert await connect_requests.take(state_digest(uid())) is None


class AccountStatusesContract:
    async def test_records_per_customer_platform_and_account(self, account_statuses: AccountStatuses) -> None:
        a, b = uid(), uid()
        now = datetime.now(UTC).replace(microsecond=0)
        ok = AccountStatus(Platform.TWITTER, "default", AccountHealth.CONNECTED, now, expires_at=now)
        dead = AccountStatus(Platform.TWITTER, "work", AccountHealth.NEEDS_REAUTH, now, last_error="refused")
        await account_statuses.put(a, ok)
        await account_statuses.put(a, dead)
        await account_statuses.put(b, AccountStatus(Platform.LINKEDIN, "default", AccountHealth.CONNECTED, now))
        assert await account_statuses.get(a, Platform.TWITTER, "work") == dead
        assert await account_statuses.all(a) == [ok, dead]
        replaced = AccountStatus(Platform.TWITTER, "work", AccountHealth.CONNECTED, now + timedelta(seconds=1))
        await account_statuses.put(a, replaced)
        assert await account_statuses.get(a, Platform.TWITTER, "work") == replaced
        await account_statuses.remove(a, Platform.TWITTER, "default")
        assert await account_statuses.all(a) == [replaced]
        assert await account_statuses.get(b, Platform.TWITTER, "work") is None


# What an overview reads from: the credential store and the status records of the same backend.
OverviewStores = tuple[CredentialStore, AccountStatuses, AccountOverview]


class AccountOverviewContract:
    async def test_accounts_and_their_records_of_one_customer(self, account_overview: OverviewStores) -> None:
        store, statuses, overview = account_overview
        a, b = uid(), uid()
        now = datetime.now(UTC).replace(microsecond=0)
        work = AccountStatus(Platform.TWITTER, "work", AccountHealth.NEEDS_REAUTH, now, last_error="refused")
        await store.put(a, Platform.TWITTER, b"envelope", "work")
        await store.put(a, Platform.TELEGRAM, b"envelope")
        await store.put(a, Platform.LINKEDIN, b"envelope")
        await statuses.put(a, work)
        await store.put(b, Platform.WHATSAPP, b"envelope")
        await statuses.put(b, AccountStatus(Platform.WHATSAPP, "default", AccountHealth.CONNECTED, now))
        held, recorded = await overview.read(a)
        assert held == [(Platform.LINKEDIN, "default"), (Platform.TELEGRAM, "default"), (Platform.TWITTER, "work")]
        assert recorded == [work]
        assert held == await store.accounts(a)
        assert recorded == await statuses.all(a)

    async def test_a_removed_account_and_an_unknown_customer(self, account_overview: OverviewStores) -> None:
        store, _, overview = account_overview
        cust = uid()
        await store.put(cust, Platform.TWITTER, b"envelope", "work")
        await store.delete(cust, Platform.TWITTER, "work")
        assert await overview.read(cust) == ([], [])
        assert await overview.read(uid()) == ([], [])


class RefreshLocksContract:
    async def test_one_holder_at_a_time(self, refresh_locks: RefreshLocks) -> None:
        key = uid()
        inside: list[int] = []
        overlaps: list[int] = []

        async def hold(n: int) -> None:
            async with refresh_locks.hold(key, ttl=5, wait=5):
                if inside:
                    overlaps.append(n)
                inside.append(n)
                await asyncio.sleep(0.05)
                inside.remove(n)

        await asyncio.gather(*(hold(n) for n in range(4)))
        assert overlaps == []

    async def test_a_waiter_gives_up_after_its_wait(self, refresh_locks: RefreshLocks) -> None:
        key = uid()
        async with refresh_locks.hold(key, ttl=5, wait=1):
            with pytest.raises(Unavailable):
                async with refresh_locks.hold(key, ttl=5, wait=0.2):
                    pass
        async with refresh_locks.hold(key, ttl=5, wait=0.2):
            pass  # released on exit
