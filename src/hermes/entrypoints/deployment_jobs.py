"""Jobs that run once per deployment (backfills of the shared schedules, a one-time move of route keys):
the background loop that runs one until it is done, here or on another instance, and where each keeps
its progress."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from dishka import Provider, Scope, provide

from hermes.adapters.memory.account_health import InMemoryBackfillProgress
from hermes.adapters.redis.account_health import RedisBackfillProgress
from hermes.adapters.redis.client import RedisClient
from hermes.application.ports.account_health import BackfillProgress
from hermes.application.use_cases.once_per_deployment import OncePerDeployment
from hermes.domain.errors import HermesError

log = logging.getLogger("hermes.jobs")


class DeploymentJob:
    """Runs a once-per-deployment job until it is done, here or on another instance, then stops.

    While another instance holds it, this one asks again once per lease: if that
    instance died, this one takes over where it stopped.
    """

    def __init__(self, job: OncePerDeployment, spread: float, told: str | None = None) -> None:
        self._job = job
        self._spread = spread
        self._told = told  # what a run that changed something logs, with %d for how much (None: the job logs it)

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, self._spread))  # noqa: S311 - spreading load, not a secret
        while True:
            try:
                result = await self._job()
                if result.added and self._told is not None:
                    log.info(self._told, result.added)
                if result.done:
                    return
            except HermesError as exc:
                log.warning("%s paused: %s", self._job.name, exc.detail)
            await asyncio.sleep(self._job.lease)


class JobProgress:
    """The progress record of each job, by the job's key (`{health:backfill:v1}`)."""

    def __init__(self, make: Callable[[str], BackfillProgress]) -> None:
        self._make = make

    def __call__(self, key: str) -> BackfillProgress:
        return self._make(key)


class RedisJobProgressProvider(Provider):
    """Shared by every instance: a job runs once per deployment."""

    scope = Scope.APP

    @provide
    def progress(self, redis: RedisClient) -> JobProgress:
        return JobProgress(lambda key: RedisBackfillProgress(redis, key))


class EmbeddedJobProgressProvider(Provider):
    """One process: what the jobs build lives in its memory, so each start runs them once."""

    scope = Scope.APP

    @provide
    def progress(self) -> JobProgress:
        return JobProgress(lambda key: InMemoryBackfillProgress())
