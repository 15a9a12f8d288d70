"""The loop that marks held sends expired once their approval time ran out (every instance runs one)."""

from __future__ import annotations

import asyncio
import logging

from hermes.application.use_cases.expire_pending_sends import ExpirePendingSends
from hermes.domain.errors import HermesError

log = logging.getLogger("hermes.approvals")


class ApprovalSweeper:
    def __init__(self, expire: ExpirePendingSends, every: float = 60.0) -> None:
        self._expire = expire
        self._every = every

    async def run(self) -> None:
        while True:
            try:
                await self._expire()
            except HermesError as exc:
                log.warning("expiry sweep skipped: %s", exc.detail)
            await asyncio.sleep(self._every)
