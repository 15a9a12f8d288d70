"""The composition root: the one place that wires adapters to ports.

Providers are grouped by concern. `make_container(settings, *overrides)` takes
extra providers last, so a test can replace any piece.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import NewType

import httpx
from dishka import AsyncContainer, Provider, Scope, alias, from_context, make_async_container, provide, provide_all
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.crypto.aes_gcm import AesGcmCipher, parse_keyring
from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.adapters.health import InfrastructureProbe
from hermes.adapters.memory.customers import InMemoryCustomerCache
from hermes.adapters.memory.stores import InMemoryRateLimiter, NoSessions
from hermes.adapters.platforms import build_plugins
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import make_client
from hermes.adapters.platforms.registry import Registry
from hermes.adapters.redis.audit_log import RedisAuditLog
from hermes.adapters.redis.client import RedisClient, connect
from hermes.adapters.redis.credential_store import RedisCredentialStore
from hermes.adapters.redis.customer_cache import LayeredCustomerCache
from hermes.adapters.redis.metering import RedisRateLimiter, RedisUsageMeter
from hermes.adapters.redis.phone_routes import RedisPhoneRoutes
from hermes.adapters.sql.customer_directory import SqlCustomerDirectory
from hermes.adapters.sql.engine import make_engine
from hermes.adapters.sql.stores import SqlAuditLog, SqlCredentialStore, SqlPhoneRoutes, SqlUsageMeter
from hermes.application.builtin_tools import ConnectionsStatusTool
from hermes.application.credential_vault import CredentialVault
from hermes.application.ports.audit import AuditLog
from hermes.application.ports.clock import Clock, SystemClock
from hermes.application.ports.credentials import Cipher, CredentialStore
from hermes.application.ports.customers import CustomerCache, CustomerDirectory
from hermes.application.ports.health import Infrastructure
from hermes.application.ports.metering import RateLimiter, UsageMeter
from hermes.application.ports.routing import PhoneRoutes
from hermes.application.ports.sessions import SessionRevoker
from hermes.application.ports.tools import CredentialVerifier, EnvCredentials, ToolCatalog
from hermes.application.use_cases.call_tool import CallTool
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.create_customer import CreateCustomer
from hermes.application.use_cases.deactivate_customer import DeactivateCustomer
from hermes.application.use_cases.disconnect_platform import DisconnectPlatform
from hermes.application.use_cases.get_connections import GetConnections
from hermes.application.use_cases.get_customer import GetCustomer, ListCustomers
from hermes.application.use_cases.get_usage import GetUsage
from hermes.application.use_cases.list_audit_log import ListAuditLog
from hermes.application.use_cases.list_tools import ListTools
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.application.use_cases.rotate_api_key import RotateApiKey
from hermes.application.use_cases.rotate_encryption_keys import RotateEncryptionKeys
from hermes.entrypoints.settings import DEFAULT_API_BASES, Settings

Environment = NewType("Environment", Mapping[str, str])


class Workers(list[tuple[str, Callable[[], Awaitable[None]]]]):
    """Background loops the app runs for its whole life (named, for the logs)."""


class CoreProvider(Provider):
    """Settings, clock, cipher, the SQL engine and the customer directory (every mode)."""

    scope = Scope.APP
    settings = from_context(Settings)
    environment = from_context(Environment)
    clock = provide(SystemClock, provides=Clock)

    @provide
    def cipher(self, settings: Settings) -> Cipher:
        return AesGcmCipher(parse_keyring(settings.encryption_keys))

    @provide
    async def engine(self, settings: Settings) -> AsyncIterator[AsyncEngine]:
        engine = make_engine(settings.database_url)
        yield engine
        await engine.dispose()

    directory = provide(SqlCustomerDirectory, provides=CustomerDirectory)
    vault = provide(CredentialVault)
    sessions = provide(NoSessions, provides=SessionRevoker)

    @provide
    def env_credentials(self, environment: Environment) -> EnvCredentials:
        return EnvironmentCredentials(environment)


class RedisStoresProvider(Provider):
    """Production: Redis holds the cache, credentials, routes, metering and the audit log."""

    scope = Scope.APP

    @provide
    async def redis(self, settings: Settings) -> AsyncIterator[RedisClient]:
        assert settings.redis_url
        client = connect(settings.redis_url, cluster=settings.redis_cluster)
        yield client
        await client.aclose()

    @provide
    def layered_cache(self, redis: RedisClient) -> LayeredCustomerCache:
        return LayeredCustomerCache(redis)

    cache = alias(source=LayeredCustomerCache, provides=CustomerCache)

    @provide
    def workers(self, cache: LayeredCustomerCache) -> Workers:
        return Workers([("customer-cache-evictions", cache.listen)])

    credentials = provide(RedisCredentialStore, provides=CredentialStore)
    routes = provide(RedisPhoneRoutes, provides=PhoneRoutes)
    limiter = provide(RedisRateLimiter, provides=RateLimiter)
    usage = provide(RedisUsageMeter, provides=UsageMeter)
    audit = provide(RedisAuditLog, provides=AuditLog)

    @provide
    def probe(self, engine: AsyncEngine, redis: RedisClient) -> Infrastructure:
        return InfrastructureProbe(engine, redis)


class EmbeddedStoresProvider(Provider):
    """Embedded (no Redis): every durable store lives in the SQL database; caches in process."""

    scope = Scope.APP

    @provide
    def cache(self) -> CustomerCache:
        return InMemoryCustomerCache()

    credentials = provide(SqlCredentialStore, provides=CredentialStore)
    routes = provide(SqlPhoneRoutes, provides=PhoneRoutes)
    limiter = provide(InMemoryRateLimiter, provides=RateLimiter)
    usage = provide(SqlUsageMeter, provides=UsageMeter)
    audit = provide(SqlAuditLog, provides=AuditLog)

    @provide
    def probe(self, engine: AsyncEngine) -> Infrastructure:
        return InfrastructureProbe(engine, None)

    @provide
    def workers(self) -> Workers:
        return Workers([])


class PlatformsProvider(Provider):
    """The platform plug-ins behind the tool catalogue and the credential verifier."""

    scope = Scope.APP

    @provide
    def platform_config(self, settings: Settings) -> PlatformConfig:
        return PlatformConfig(
            api_bases={p: settings.api_base(p) for p in DEFAULT_API_BASES},
            allow_private_networks=settings.allow_private_networks,
            linkedin_version=settings.linkedin_version,
            total_timeout=settings.platform_timeout,
        )

    @provide
    async def http(self, config: PlatformConfig) -> AsyncIterator[httpx.AsyncClient]:
        client = make_client(config)
        yield client
        await client.aclose()

    @provide
    def registry(
        self, http: httpx.AsyncClient, config: PlatformConfig, get_connections: GetConnections, env: EnvCredentials
    ) -> Registry:
        return Registry(
            plugins=build_plugins(http, config),
            builtin=[ConnectionsStatusTool(get_connections, env)],
        )

    @provide
    def catalog(self, registry: Registry) -> ToolCatalog:
        return registry

    @provide
    def verifier(self, registry: Registry) -> CredentialVerifier:
        return registry


class UseCasesProvider(Provider):
    scope = Scope.APP
    use_cases = provide_all(
        ResolveCustomer,
        CreateCustomer,
        DeactivateCustomer,
        RotateApiKey,
        GetCustomer,
        ListCustomers,
        ConnectPlatform,
        DisconnectPlatform,
        GetConnections,
        GetUsage,
        ListAuditLog,
        ListTools,
        CallTool,
        RotateEncryptionKeys,
    )


def providers_for(settings: Settings) -> list[Provider]:
    stores = EmbeddedStoresProvider() if settings.embedded else RedisStoresProvider()
    return [CoreProvider(), stores, PlatformsProvider(), UseCasesProvider()]


def make_container(settings: Settings, environment: Mapping[str, str], *overrides: Provider) -> AsyncContainer:
    return make_async_container(
        *providers_for(settings),
        *overrides,
        context={Settings: settings, Environment: Environment(environment)},
    )
