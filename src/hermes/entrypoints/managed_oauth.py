"""Wiring of managed OAuth (connect links, token refresh), its background sweep and the sweep's schedule.

Kept out of `ioc.py`'s body so the composition root only lists these providers.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import httpx
from dishka import Provider, Scope, decorate, provide

from hermes.adapters.memory.account_health import InMemoryAccountSchedule
from hermes.adapters.memory.managed_oauth import InMemoryConnectRequests, InMemoryRefreshLocks
from hermes.adapters.platforms import instagram, linkedin, twitter
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.managed_oauth import ClientRegistration, HttpPlatformAuthorization, OAuthFacts
from hermes.adapters.platforms.registry import Registry
from hermes.adapters.redis.account_health import RENEWALS, RENEWALS_BACKFILL, RedisAccountSchedule
from hermes.adapters.redis.client import RedisClient
from hermes.adapters.redis.managed_oauth import (
    RedisAccountOverview,
    RedisAccountStatuses,
    RedisConnectRequests,
    RedisRefreshLocks,
)
from hermes.adapters.sql.account_statuses import SqlAccountStatuses
from hermes.application.account_health import AccountHealthRecorder
from hermes.application.account_overview import SeparateAccountOverview
from hermes.application.connect_link_tool import ConnectLinkTool
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.ports.clock import Clock
from hermes.application.ports.credentials import CredentialStore
from hermes.application.ports.customers import CustomerDirectory
from hermes.application.ports.managed_oauth import (
    AccountOverview,
    AccountStatuses,
    ConnectRequests,
    PlatformAuthorization,
    RefreshLocks,
    RenewalSchedule,
)
from hermes.application.token_renewals import TokenRenewals
from hermes.application.use_cases.complete_platform_consent import CompletePlatformConsent
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.application.use_cases.once_per_deployment import OncePerDeployment
from hermes.application.use_cases.refresh_expiring_credentials import RefreshExpiringCredentials
from hermes.domain.platform import Platform
from hermes.entrypoints.deployment_jobs import DeploymentJob, JobProgress
from hermes.entrypoints.recurring import RecurringPasses
from hermes.entrypoints.settings import Settings

log = logging.getLogger("hermes.oauth.refresh")

# Declared once, in each platform's module.
OAUTH_FACTS: tuple[OAuthFacts, ...] = (twitter.OAUTH, linkedin.OAUTH, instagram.OAUTH)


def configured_facts(settings: Settings) -> dict[Platform, OAuthFacts]:
    """Each platform's facts with the endpoint overrides from settings applied."""
    facts: dict[Platform, OAuthFacts] = {}
    for fact in OAUTH_FACTS:
        p = fact.platform
        api = settings.oauth_base(p, "login_api") or (
            fact.endpoints.api if p is Platform.INSTAGRAM else settings.api_base(p)
        )
        endpoints = replace(
            fact.endpoints,
            authorize=settings.oauth_base(p, "auth") or fact.endpoints.authorize,
            exchange=settings.oauth_base(p, "token") or fact.endpoints.exchange,
            api=api,
        )
        facts[p] = replace(fact, endpoints=endpoints)
    return facts


class RefreshSweep(RecurringPasses):
    """Every few minutes (spread by a random offset per instance), renew the tokens whose turn has come;
    at once again while a pass finds more due than it takes."""

    what = "token refresh sweep"
    log = log

    def __init__(self, refresh: RefreshExpiringCredentials, every: float) -> None:
        super().__init__(every)
        self._refresh = refresh

    async def one_pass(self) -> bool:
        result = await self._refresh()
        if result.renewed:
            log.info("renewed %d expiring token(s)", result.renewed)
        return result.more


class RenewalBackfiller(DeploymentJob):
    """Puts every stored managed-OAuth account in the renewal schedule, once per deployment."""


class ManagedOAuthProvider(Provider):
    """Connect links and token refresh for the platforms whose OAuth client the operator configured."""

    scope = Scope.APP

    @provide
    def authorization(
        self, settings: Settings, http: httpx.AsyncClient, config: PlatformConfig
    ) -> PlatformAuthorization:
        facts = configured_facts(settings)
        clients = {p: ClientRegistration(*pair) for p in facts if (pair := settings.oauth_client(p)) is not None}
        return HttpPlatformAuthorization(http, facts, clients, deadline=min(20.0, config.total_timeout))

    @provide
    def create_link(
        self, authorization: PlatformAuthorization, requests: ConnectRequests, clock: Clock, settings: Settings
    ) -> CreateConnectLink:
        return CreateConnectLink(authorization, requests, clock, settings.public_url)

    @provide
    def complete(
        self,
        authorization: PlatformAuthorization,
        requests: ConnectRequests,
        vault: CredentialVault,
        statuses: AccountStatuses,
        directory: CustomerDirectory,
        clock: Clock,
        health: AccountHealthRecorder,
        renewals: TokenRenewals,
    ) -> CompletePlatformConsent:
        return CompletePlatformConsent(authorization, requests, vault, statuses, directory, clock, health, renewals)

    @provide
    def renewals(self, authorization: PlatformAuthorization, schedule: RenewalSchedule) -> TokenRenewals:
        return TokenRenewals(authorization, schedule)

    @provide
    def fresh(
        self,
        vault: CredentialVault,
        authorization: PlatformAuthorization,
        statuses: AccountStatuses,
        locks: RefreshLocks,
        clock: Clock,
        links: CreateConnectLink,
        health: AccountHealthRecorder,
        renewals: TokenRenewals,
    ) -> FreshCredentials:
        return FreshCredentials(vault, authorization, statuses, locks, clock, links, health, renewals)

    @provide
    def maybe_fresh(self, fresh: FreshCredentials) -> FreshCredentials | None:
        return fresh

    @provide
    def refresh(self, fresh: FreshCredentials, renewals: TokenRenewals) -> RefreshExpiringCredentials:
        return RefreshExpiringCredentials(fresh, renewals)

    @provide
    def sweep(self, refresh: RefreshExpiringCredentials, settings: Settings) -> RefreshSweep:
        return RefreshSweep(refresh, settings.oauth_refresh_sweep_seconds)

    @provide
    def backfiller(self, refresh: RefreshExpiringCredentials, progress: JobProgress) -> RenewalBackfiller:
        job = OncePerDeployment(refresh.schedule_page, progress(RENEWALS_BACKFILL), name="token renewal backfill")
        return RenewalBackfiller(job, 5.0, "scheduled the renewal of %d stored token(s)")

    @decorate
    def registry(self, registry: Registry, authorization: PlatformAuthorization, links: CreateConnectLink) -> Registry:
        platforms = authorization.platforms()
        if not platforms:
            return registry  # nothing to link: the tool is not listed
        return Registry(registry.plugins, [*registry.builtin, ConnectLinkTool(links, platforms)])


class RedisManagedOAuthProvider(Provider):
    scope = Scope.APP
    requests = provide(RedisConnectRequests, provides=ConnectRequests)
    statuses = provide(RedisAccountStatuses, provides=AccountStatuses)
    overview = provide(RedisAccountOverview, provides=AccountOverview)

    @provide
    def renewal_schedule(self, redis: RedisClient) -> RenewalSchedule:
        return RedisAccountSchedule(redis, RENEWALS)

    @provide
    def locks(self, redis: RedisClient) -> RefreshLocks:
        return RedisRefreshLocks(redis)


class EmbeddedManagedOAuthProvider(Provider):
    """One process: its memory holds pending links, the locks and the renewal schedule; health records stay in
    the database."""

    scope = Scope.APP
    statuses = provide(SqlAccountStatuses, provides=AccountStatuses)

    @provide
    def requests(self) -> ConnectRequests:
        return InMemoryConnectRequests()

    @provide
    def overview(self, store: CredentialStore, statuses: AccountStatuses) -> AccountOverview:
        return SeparateAccountOverview(store, statuses)

    @provide
    def locks(self) -> RefreshLocks:
        return InMemoryRefreshLocks()

    @provide
    def renewal_schedule(self) -> RenewalSchedule:
        return InMemoryAccountSchedule()  # rebuilt from the stored credentials after each start
