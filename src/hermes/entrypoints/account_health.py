"""Wiring of account health: the recorder every call reports to, and the background check.

Kept out of `ioc.py`'s body so the composition root only lists these providers.
"""

from __future__ import annotations

import asyncio
import logging
import random

from dishka import Provider, Scope, decorate, provide

from hermes.adapters.memory.account_health import InMemoryBackfillProgress, InMemoryHealthSchedule
from hermes.adapters.platforms.registry import Registry
from hermes.adapters.redis.account_health import RedisBackfillProgress, RedisHealthSchedule
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
from hermes.application.use_cases.backfill_health_schedule import BackfillHealthSchedule
from hermes.application.use_cases.check_account_health import CheckAccountHealth
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.application.use_cases.list_accounts import ListAccounts
from hermes.domain.errors import HermesError
from hermes.entrypoints.settings import Settings

log = logging.getLogger("hermes.accounts")


class HealthChecker:
    """Checks the accounts that are due, every few seconds (offset at random per instance)."""

    def __init__(self, check: CheckAccountHealth, every: float) -> None:
        self._check = check
        self._every = every

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, self._every))  # noqa: S311 - spreading load, not a secret
        while True:
            more = False
            try:
                result = await self._check()
                more = result.more
            except HermesError as exc:
                log.warning("health check pass skipped: %s", exc.detail)
            except Exception:
                log.exception("health check pass failed; trying again at the next one")
            if not more:
                await asyncio.sleep(self._every)


class ScheduleBackfiller:
    """Runs the schedule's backfill until it is done, here or on another instance, then stops.

    While another instance holds it, this one asks again once per lease: if that
    instance died, this one takes over where it stopped.
    """

    def __init__(self, backfill: BackfillHealthSchedule, spread: float) -> None:
        self._backfill = backfill
        self._spread = spread

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, self._spread))  # noqa: S311 - spreading load, not a secret
        while True:
            try:
                result = await self._backfill()
                if result.added:
                    log.info("scheduled health checks for %d account(s) that had none", result.added)
                if result.done:
                    return
            except HermesError as exc:
                log.warning("health schedule backfill paused: %s", exc.detail)
            await asyncio.sleep(self._backfill.lease)


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
    def checker(self, check: CheckAccountHealth, settings: Settings) -> HealthChecker:
        return HealthChecker(check, settings.health_check_poll_seconds)

    @provide
    def backfiller(
        self, check: CheckAccountHealth, progress: BackfillProgress, settings: Settings
    ) -> ScheduleBackfiller:
        return ScheduleBackfiller(BackfillHealthSchedule(check, progress), min(5.0, settings.health_check_poll_seconds))

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
        return RedisHealthSchedule(redis)

    @provide
    def backfill(self, redis: RedisClient) -> BackfillProgress:
        return RedisBackfillProgress(redis)


class EmbeddedHealthScheduleProvider(Provider):
    """One process: its memory holds the schedule, rebuilt from the stored accounts after each start."""

    scope = Scope.APP

    @provide
    def schedule(self) -> HealthSchedule:
        return InMemoryHealthSchedule()

    @provide
    def backfill(self) -> BackfillProgress:
        return InMemoryBackfillProgress()
