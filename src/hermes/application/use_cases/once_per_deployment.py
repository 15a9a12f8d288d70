from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hermes.application.ports.account_health import BackfillProgress

log = logging.getLogger("hermes.jobs")

# One bounded step of a walk: (position, size) -> (how many it changed, where the next step starts, None at the end).
Step = Callable[[str, int], Awaitable[tuple[int, str | None]]]


@dataclass(frozen=True, slots=True)
class JobRun:
    done: bool  # the job is finished (now, or by an earlier run)
    added: int  # what this run changed (accounts given a turn, routes moved)
    steps: int  # steps this run took


@dataclass(slots=True)
class OncePerDeployment:
    """Run a walk (through the credential store, say) once per deployment, whatever the number of instances.

    One instance at a time walks, under a lease it renews at every step; the position
    it reached is recorded with each renewal, so an instance that stops half-way leaves
    the rest to whichever takes the lease next. Each step reads a bounded number of
    entries and is followed by a pause, so the walk never crowds out the requests the
    store serves. Once the walk ends, the job is marked done and no instance walks
    again. A step must be safe to repeat: a step whose holder died is taken again.
    """

    step: Step
    progress: BackfillProgress
    name: str = "job"
    page: int = 500
    pause: float = 0.05
    lease: float = 30.0
    holder: str = field(default_factory=lambda: secrets.token_hex(16))

    async def __call__(self) -> JobRun:
        if await self.progress.done():
            return JobRun(True, 0, 0)
        position = await self.progress.take(self.holder, self.lease)
        if position is None:
            return JobRun(await self.progress.done(), 0, 0)
        added = steps = 0
        while True:
            step, following = await self.step(position, self.page)
            added, steps = added + step, steps + 1
            if following is None:
                await self.progress.finish(self.holder)
                return JobRun(True, added, steps)
            if not await self.progress.advance(self.holder, following, self.lease):
                log.info("%s handed over to another instance after %d step(s)", self.name, steps)
                return JobRun(False, added, steps)
            position = following
            await asyncio.sleep(self.pause)
