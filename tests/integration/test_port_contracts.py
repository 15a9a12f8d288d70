"""The port contracts against the real adapters: Redis, MariaDB and SQLite (embedded mode)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.account_health import RedisAccountSchedule, RedisBackfillProgress
from hermes.adapters.redis.account_routes import RedisAccountRoutes
from hermes.adapters.redis.audit_log import RedisAuditLog
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.credential_store import RedisCredentialStore
from hermes.adapters.redis.customer_cache import LayeredCustomerCache, RedisCustomerCache
from hermes.adapters.redis.managed_oauth import (
    RedisAccountOverview,
    RedisAccountStatuses,
    RedisConnectRequests,
    RedisRefreshLocks,
)
from hermes.adapters.redis.metering import RedisRateLimiter, RedisUsageMeter
from hermes.adapters.sql.account_statuses import SqlAccountStatuses
from hermes.adapters.sql.customer_directory import SqlCustomerDirectory
from hermes.adapters.sql.stores import SqlAccountRoutes, SqlAuditLog, SqlCredentialStore, SqlUsageMeter
from hermes.domain.platform import Platform
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
    uid,
)
from tests.integration.redis_cluster import RedisClusterProcess, cluster_available


class TestRedisCredentialStore(CredentialStoreContract):
    @pytest.fixture
    def credential_store(self, redis: Any) -> RedisCredentialStore:
        return RedisCredentialStore(redis)


class TestSqlCredentialStore(CredentialStoreContract):
    @pytest.fixture
    def credential_store(self, engine: AsyncEngine) -> SqlCredentialStore:
        return SqlCredentialStore(engine)


class TestSqlCustomerDirectory(CustomerDirectoryContract):
    @pytest.fixture
    def directory(self, engine: AsyncEngine) -> SqlCustomerDirectory:
        return SqlCustomerDirectory(engine)


class TestRedisCustomerCache(CustomerCacheContract):
    @pytest.fixture
    def customer_cache(self, redis: Any) -> RedisCustomerCache:
        return RedisCustomerCache(redis)

    async def test_entries_expire_after_60_seconds(self, redis: Any) -> None:
        from hermes.adapters.redis.customer_cache import cache_key
        from tests.contracts.ports import a_customer

        customer, key = a_customer()
        await RedisCustomerCache(redis).put(key.digest, customer, "")
        ttl = await redis.ttl(cache_key(key.digest))
        assert 55 <= ttl <= 60


class TestRedisAccountRoutes(AccountRoutesContract):
    @pytest.fixture
    def phone_routes(self, redis: Any) -> RedisAccountRoutes:
        return RedisAccountRoutes(redis)


class TestSqlAccountRoutes(AccountRoutesContract):
    @pytest.fixture
    def phone_routes(self, engine: AsyncEngine) -> SqlAccountRoutes:
        return SqlAccountRoutes(engine)


class TestRedisUsageMeter(UsageMeterContract):
    @pytest.fixture
    def usage_meter(self, redis: Any) -> RedisUsageMeter:
        return RedisUsageMeter(redis)


class TestSqlUsageMeter(UsageMeterContract):
    @pytest.fixture
    def usage_meter(self, engine: AsyncEngine) -> SqlUsageMeter:
        return SqlUsageMeter(engine)


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    def rate_limiter(self, redis: Any) -> RedisRateLimiter:
        return RedisRateLimiter(redis)


class TestRedisAuditLog(AuditLogContract):
    @pytest.fixture
    def audit_log(self, redis: Any) -> RedisAuditLog:
        return RedisAuditLog(redis)

    async def test_entries_live_90_days_under_the_seed_key_names(self, redis: Any) -> None:
        from datetime import UTC, datetime

        from hermes.domain.audit import AuditEntry
        from tests.contracts.ports import uid

        cust = uid()
        await RedisAuditLog(redis).append(
            AuditEntry(cust, datetime(2026, 5, 8, tzinfo=UTC), "t", None, None, "success", None, 1.0)
        )
        key = f"logs:{{{cust}}}:2026-05-08:00000001"
        assert 7775990 <= await redis.ttl(key) <= 7776000
        # Nothing but entries under `logs:{cust}:`: the day's counter lives under another prefix.
        assert [k async for k in redis.scan_iter(match=f"logs:{{{cust}}}:*")] == [key.encode()]
        assert 7775990 <= await redis.ttl(f"logseq:{{{cust}}}:2026-05-08") <= 7776000

    async def test_a_counter_under_the_old_name_is_carried_over(self, redis: Any) -> None:
        from datetime import UTC, date, datetime

        from hermes.domain.audit import AuditEntry
        from tests.contracts.ports import uid

        cust = uid()
        log = RedisAuditLog(redis)
        first = AuditEntry(cust, datetime(2026, 5, 8, tzinfo=UTC), "first", None, None, "success", None, 1.0)
        key = await log.append(first)
        # As an older version left the day: its counter inside the entries' prefix.
        await redis.rename(f"logseq:{{{cust}}}:2026-05-08", f"logs:{{{cust}}}:2026-05-08:seq")
        assert (await log.list(cust, date(2026, 5, 8)))[0] == [first]
        assert [k async for k in redis.scan_iter(match=f"logs:{{{cust}}}:*")] == [key.encode()]  # moved on read
        await redis.rename(f"logseq:{{{cust}}}:2026-05-08", f"logs:{{{cust}}}:2026-05-08:seq")

        second = AuditEntry(cust, datetime(2026, 5, 8, tzinfo=UTC), "second", None, None, "success", None, 1.0)
        assert await log.append(second) == key.replace("00000001", "00000002")
        assert (await log.list(cust, date(2026, 5, 8)))[0] == [first, second]
        assert not await redis.exists(f"logs:{{{cust}}}:2026-05-08:seq")


class TestSqlAuditLog(AuditLogContract):
    @pytest.fixture
    def audit_log(self, engine: AsyncEngine) -> SqlAuditLog:
        return SqlAuditLog(engine)


class TestLayeredCustomerCache(CustomerCacheContract):
    @pytest.fixture
    async def customer_cache(self, redis: Any) -> AsyncIterator[LayeredCustomerCache]:
        cache = LayeredCustomerCache(redis)
        listener = asyncio.create_task(cache.listen())
        await _until(lambda: cache._listening)
        yield cache
        listener.cancel()

    async def test_an_eviction_on_one_instance_reaches_every_other_instance(self, redis: Any) -> None:
        from tests.contracts.ports import a_customer

        one, two = LayeredCustomerCache(redis), LayeredCustomerCache(redis)
        listeners = [asyncio.create_task(c.listen()) for c in (one, two)]
        await _until(lambda: one._listening and two._listening)
        customer, key = a_customer()
        await one.put(key.digest, customer, await one.generation(key.digest))
        assert await two.get(key.digest) == customer  # now held locally by both

        await one.evict(key.digest)

        await _until(lambda: key.digest not in two._local)
        assert await two.get(key.digest) is None
        for task in listeners:
            task.cancel()

    async def test_without_the_eviction_feed_nothing_is_kept_locally(self, redis: Any) -> None:
        from tests.contracts.ports import a_customer

        cache = LayeredCustomerCache(redis)  # not listening
        customer, key = a_customer()
        await cache.put(key.digest, customer, await cache.generation(key.digest))
        assert cache._local == {}
        assert await cache.get(key.digest) == customer  # still served, from Redis


async def test_a_resolve_racing_a_deactivation_on_another_instance_leaves_nothing_cached(redis: Any) -> None:
    """The race, step by step: instance one resolves the key and has read
    the directory (customer active) when instance two deactivates it and evicts the key; instance
    one then finishes. The key must be refused from the next request on, not for 60 s more."""
    from hermes.adapters.memory.customers import InMemoryCustomerDirectory
    from hermes.adapters.memory.stores import InMemoryRateLimiter
    from hermes.application.use_cases.deactivate_customer import DeactivateCustomer
    from hermes.application.use_cases.resolve_customer import ResolveCustomer
    from hermes.domain.errors import Unauthorized
    from tests.contracts.ports import a_customer
    from tests.unit.conftest import RecordingSessions

    customer, key = a_customer()
    directory = InMemoryCustomerDirectory()
    await directory.add(customer, key.digest)
    one, two = LayeredCustomerCache(redis), LayeredCustomerCache(redis)
    listeners = [asyncio.create_task(c.listen()) for c in (one, two)]
    await _until(lambda: one._listening and two._listening)
    directory_read = asyncio.Event()
    deactivated = asyncio.Event()

    class PausingDirectory(InMemoryCustomerDirectory):
        async def find_by_key_digest(self, api_key_digest: str) -> Any:
            found = await directory.find_by_key_digest(api_key_digest)
            directory_read.set()
            await deactivated.wait()  # the deactivation lands after the read, before the write-back
            return found

    resolving = asyncio.create_task(ResolveCustomer(PausingDirectory(), one, InMemoryRateLimiter())(key.secret))
    await directory_read.wait()
    await DeactivateCustomer(directory, two, RecordingSessions())(customer.id)
    deactivated.set()
    assert (await resolving).id == customer.id  # the request in flight was checked before the deactivation

    for cache in (one, two):
        with pytest.raises(Unauthorized):
            await ResolveCustomer(directory, cache, InMemoryRateLimiter())(key.secret)
    assert await RedisCustomerCache(redis).get(key.digest) is None
    for task in listeners:
        task.cancel()


async def _until(condition: Any, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_leased_rate_limits_never_admit_more_than_the_limit_across_instances(redis: Any) -> None:
    from tests.contracts.ports import uid

    instances = [RedisRateLimiter(redis) for _ in range(3)]
    cust = uid()
    # 600 a minute: each instance leases 12 at a time; 900 requests spread over three instances.
    outcomes = await asyncio.gather(*(instances[n % 3].hit(cust, 600) for n in range(900)))
    admitted = sum(1 for o in outcomes if o is None)
    assert 600 - 3 * 12 <= admitted <= 600
    assert all(o is None or 0 < o <= 60 for o in outcomes)


class TestRedisConnectRequests(ConnectRequestsContract):
    @pytest.fixture
    def connect_requests(self, redis: Any) -> RedisConnectRequests:
        return RedisConnectRequests(redis)


class TestRedisAccountStatuses(AccountStatusesContract):
    @pytest.fixture
    def account_statuses(self, redis: Any) -> RedisAccountStatuses:
        return RedisAccountStatuses(redis)


class TestRedisAccountOverview(AccountOverviewContract):
    @pytest.fixture
    def account_overview(self, redis: Any) -> OverviewStores:
        return RedisCredentialStore(redis), RedisAccountStatuses(redis), RedisAccountOverview(redis)

    async def test_reads_what_was_stored_before_the_overview(self, redis: Any) -> None:
        """Keys written directly in the layout the stores have always used (an unknown platform is skipped)."""
        cust = uid()
        await redis.set(f"creds:{{{cust}}}:telegram", b"envelope")
        await redis.sadd(f"credaccounts:{{{cust}}}", "twitter:work", "myspace:old")
        await redis.hset(f"account:status:{{{cust}}}", "twitter:work", b"not a record of this version")
        assert await RedisAccountOverview(redis).read(cust) == (
            [(Platform.TELEGRAM, "default"), (Platform.TWITTER, "work")],
            [],
        )

    async def test_a_server_that_lost_the_script_is_sent_it_again(self, redis: Any) -> None:
        store, overview = RedisCredentialStore(redis), RedisAccountOverview(redis)
        cust = uid()
        await store.put(cust, Platform.TELEGRAM, b"envelope")
        overview._store._accounts.sha = "0" * 40  # what a restarted server answers: NOSCRIPT
        assert await overview.read(cust) == ([(Platform.TELEGRAM, "default")], [])


class TestRedisRefreshLocks(RefreshLocksContract):
    @pytest.fixture
    def refresh_locks(self, redis: Any) -> RedisRefreshLocks:
        return RedisRefreshLocks(redis)


class TestSqlAccountStatuses(AccountStatusesContract):
    @pytest.fixture
    def account_statuses(self, engine: AsyncEngine) -> SqlAccountStatuses:
        return SqlAccountStatuses(engine)


class TestRedisHealthSchedule(HealthScheduleContract):
    @pytest.fixture
    async def health_schedule(self, redis: Any) -> AsyncIterator[RedisAccountSchedule]:
        key = f"test:{uid()}:due"  # the deployment's own schedule stays out of it
        yield RedisAccountSchedule(redis, key=key)
        await redis.delete(key)


class TestRedisBackfillProgress(BackfillProgressContract):
    @pytest.fixture
    async def backfill_progress(self, redis: Any) -> AsyncIterator[RedisBackfillProgress]:
        key = f"{{test:{uid()}:backfill}}"
        yield RedisBackfillProgress(redis, key=key)
        await redis.delete(f"{key}:done", f"{key}:lease", f"{key}:position")


ON_A_CLUSTER = [
    pytest.mark.cluster,
    pytest.mark.skipif(not cluster_available(), reason="redis-server/redis-cli not installed"),
]


@pytest.fixture
async def cluster_redis(cluster: RedisClusterProcess) -> AsyncIterator[Any]:
    client = connect(cluster.url, cluster=True)
    yield client
    await client.aclose()


class TestClusterCredentialStore(CredentialStoreContract):
    """The walk goes through every primary: accounts of many customers sit in different slots."""

    pytestmark = ON_A_CLUSTER

    @pytest.fixture
    def credential_store(self, cluster_redis: Any) -> RedisCredentialStore:
        return RedisCredentialStore(cluster_redis)


class TestClusterBackfillProgress(BackfillProgressContract):
    pytestmark = ON_A_CLUSTER

    @pytest.fixture
    def backfill_progress(self, cluster_redis: Any) -> RedisBackfillProgress:
        return RedisBackfillProgress(cluster_redis, key=f"{{test:{uid()}:backfill}}")
