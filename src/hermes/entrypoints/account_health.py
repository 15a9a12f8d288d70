"""Wiring of account health: the recorder every call reports to, and the background check.

Kept out of `ioc.py`'s body so the composition root only lists these providers.
"""

from __future__ import annotations

import logging

from dishka import Provider, Scope, decorate, provide

from hermes.adapters.memory.account_health import InMemoryAccountSchedule
from hermes.adapters.platforms.registry import Registry
from hermes.adapters.redis.account_health import BACKFILL, KEY, RedisAccountSchedule
from hermes.adapters.redis.client import RedisClient
from hermes.application.account_health import AccountHealthRecorder
from hermes.application.builtin_tools import ConnectionsStatusTool
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.ports.account_health import BackfillProgress, HealthSchedule
from hermes.application.ports.clock import Clock
from hermes.application.ports.inbound import InboundHandler, Inbox
from hermes.application.ports.managed_oauth import AccountStatuses, PlatformAuthorization
from hermes.application.ports.tools import CredentialVerifier
from hermes.application.token_renewals import TokenRenewals
from hermes.application.use_cases.check_account_health import CheckAccountHealth
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.application.use_cases.list_accounts import ListAccounts
from hermes.application.use_cases.once_per_deployment import OncePerDeployment
from hermes.entrypoints.deployment_jobs import DeploymentJob, JobProgress
from hermes.entrypoints.recurring import RecurringPasses
from hermes.entrypoints.settings import Settings

log = logging.getLogger("hermes.accounts")


class HealthChecker(RecurringPasses):
    """Checks the accounts that are due, every few seconds (offset at random per instance)."""

    what = "health check pass"
    log = log

    def __init__(self, check: CheckAccountHealth, every: float) -> None:
        super().__init__(every)
        self._check = check

    async def one_pass(self) -> bool:
        return (await self._check()).more


class ScheduleBackfiller(DeploymentJob):
    """Gives every stored account a turn in the health schedule, once per deployment."""


class AccountHealthProvider(Provider):
    scope = Scope.APP
    list_accounts = provide(ListAccounts)

    @provide
    def recorder(
        self,
        statuses: AccountStatuses,
        inbox: Inbox,
        handler: InboundHandler,
        clock: Clock,
        schedule: HealthSchedule,
        links: CreateConnectLink,
        authorization: PlatformAuthorization,
        renewals: TokenRenewals,
        settings: Settings,
    ) -> AccountHealthRecorder:
        return AccountHealthRecorder(
            statuses,
            inbox,
            handler,
            clock,
            schedule,
            links,
            frozenset(authorization.platforms()),
            interval=settings.health_check_hours * 3600,
            renewals=renewals,
        )

    @provide
    def maybe_recorder(self, recorder: AccountHealthRecorder) -> AccountHealthRecorder | None:
        return recorder

    @provide
    def check(
        self,
        vault: CredentialVault,
        verifier: CredentialVerifier,
        schedule: HealthSchedule,
        recorder: AccountHealthRecorder,
        clock: Clock,
        fresh: FreshCredentials,
        settings: Settings,
    ) -> CheckAccountHealth:
        return CheckAccountHealth(
            vault, verifier, schedule, recorder, clock, fresh, interval=settings.health_check_hours * 3600
        )

    @provide
    def backfill(self, progress: JobProgress) -> BackfillProgress:
        return progress(BACKFILL)

    @provide
    def checker(self, check: CheckAccountHealth, settings: Settings) -> HealthChecker:
        return HealthChecker(check, settings.health_check_poll_seconds)

    @provide
    def backfiller(
        self, check: CheckAccountHealth, progress: BackfillProgress, settings: Settings
    ) -> ScheduleBackfiller:
        job = OncePerDeployment(check.schedule_page, progress, name="health schedule backfill")
        told = "scheduled health checks for %d account(s) that had none"
        return ScheduleBackfiller(job, min(5.0, settings.health_check_poll_seconds), told)

    @decorate
    def registry(self, registry: Registry, list_accounts: ListAccounts) -> Registry:
        builtin = [
            ConnectionsStatusTool(t.get_connections, t.env, list_accounts)
            if isinstance(t, ConnectionsStatusTool)
            else t
            for t in registry.builtin
        ]
        return Registry(registry.plugins, builtin)


class RedisHealthScheduleProvider(Provider):
    scope = Scope.APP

    @provide
    def schedule(self, redis: RedisClient) -> HealthSchedule:
        return RedisAccountSchedule(redis, KEY)


class EmbeddedHealthScheduleProvider(Provider):
    """One process: its memory holds the schedule, rebuilt from the stored accounts after each start."""

    scope = Scope.APP

    @provide
    def schedule(self) -> HealthSchedule:
        return InMemoryAccountSchedule()
