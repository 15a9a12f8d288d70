"""The port contracts, run against the in-memory adapters."""

from __future__ import annotations

import pytest

from hermes.adapters.memory.account_health import InMemoryAccountSchedule, InMemoryBackfillProgress
from hermes.adapters.memory.customers import InMemoryCustomerCache, InMemoryCustomerDirectory
from hermes.adapters.memory.managed_oauth import InMemoryAccountStatuses, InMemoryConnectRequests, InMemoryRefreshLocks
from hermes.adapters.memory.stores import (
    InMemoryAccountRoutes,
    InMemoryAuditLog,
    InMemoryCredentialStore,
    InMemoryRateLimiter,
    InMemoryUsageMeter,
)
from hermes.application.account_overview import SeparateAccountOverview
from tests.contracts.account_health import BackfillProgressContract, HealthScheduleContract
from tests.contracts.managed_oauth import (
    AccountOverviewContract,
    AccountStatusesContract,
    ConnectRequestsContract,
    OverviewStores,
    RefreshLocksContract,
)
from tests.contracts.ports import (
    AccountRoutesContract,
    AuditLogContract,
    CredentialStoreContract,
    CustomerCacheContract,
    CustomerDirectoryContract,
    RateLimiterContract,
    UsageMeterContract,
)


class TestInMemoryCredentialStore(CredentialStoreContract):
    @pytest.fixture
    def credential_store(self) -> InMemoryCredentialStore:
        return InMemoryCredentialStore()


class TestInMemoryCustomerDirectory(CustomerDirectoryContract):
    @pytest.fixture
    def directory(self) -> InMemoryCustomerDirectory:
        return InMemoryCustomerDirectory()


class TestInMemoryCustomerCache(CustomerCacheContract):
    @pytest.fixture
    def customer_cache(self) -> InMemoryCustomerCache:
        return InMemoryCustomerCache()


class TestInMemoryAccountRoutes(AccountRoutesContract):
    @pytest.fixture
    def phone_routes(self) -> InMemoryAccountRoutes:
        return InMemoryAccountRoutes()


class TestInMemoryUsageMeter(UsageMeterContract):
    @pytest.fixture
    def usage_meter(self) -> InMemoryUsageMeter:
        return InMemoryUsageMeter()


class TestInMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def rate_limiter(self) -> InMemoryRateLimiter:
        return InMemoryRateLimiter()


class TestInMemoryAuditLog(AuditLogContract):
    @pytest.fixture
    def audit_log(self) -> InMemoryAuditLog:
        return InMemoryAuditLog()


class TestInMemoryConnectRequests(ConnectRequestsContract):
    @pytest.fixture
    def connect_requests(self) -> InMemoryConnectRequests:
        return InMemoryConnectRequests()


class TestInMemoryAccountStatuses(AccountStatusesContract):
    @pytest.fixture
    def account_statuses(self) -> InMemoryAccountStatuses:
        return InMemoryAccountStatuses()


class TestSeparateAccountOverview(AccountOverviewContract):
    @pytest.fixture
    def account_overview(self) -> OverviewStores:
        store, statuses = InMemoryCredentialStore(), InMemoryAccountStatuses()
        return store, statuses, SeparateAccountOverview(store, statuses)


class TestInMemoryRefreshLocks(RefreshLocksContract):
    @pytest.fixture
    def refresh_locks(self) -> InMemoryRefreshLocks:
        return InMemoryRefreshLocks()


class TestInMemoryHealthSchedule(HealthScheduleContract):
    @pytest.fixture
    def health_schedule(self) -> InMemoryAccountSchedule:
        return InMemoryAccountSchedule()


class TestInMemoryBackfillProgress(BackfillProgressContract):
    @pytest.fixture
    def backfill_progress(self) -> InMemoryBackfillProgress:
        return InMemoryBackfillProgress()
