"""Background work done in passes over a shared schedule (health checks, token renewals)."""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod

from hermes.domain.errors import HermesError


class RecurringPasses(ABC):
    """Runs a pass every `every` seconds, the first at a random offset per instance so that instances
    started together do not pass together, and at once again while a pass says more is due. A failed pass
    is logged and the next one comes at its time."""

    what = "pass"  # how the logs name a pass
    log = logging.getLogger("hermes")

    def __init__(self, every: float) -> None:
        self._every = every

    @abstractmethod
    async def one_pass(self) -> bool:
        """Do one pass; whether more is due right now."""

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, self._every))  # noqa: S311 - spreading load, not a secret
        while True:
            more = False
            try:
                more = await self.one_pass()
            except HermesError as exc:
                self.log.warning("%s skipped: %s", self.what, exc.detail)
            except Exception:
                self.log.exception("%s failed; trying again at the next one", self.what)
            if not more:
                await asyncio.sleep(self._every)
