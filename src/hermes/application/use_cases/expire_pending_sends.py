from __future__ import annotations

import logging
from dataclasses import dataclass

from hermes.application.use_cases.list_pending_sends import ListPendingSends
from hermes.domain.errors import HermesError

log = logging.getLogger("hermes.approvals")


@dataclass(slots=True)
class ExpirePendingSends:
    """Mark every held send whose approval time ran out as expired, and audit it so, once.

    Run periodically on every instance: the move to `expired` is atomic, so two sweeps audit it once.
    """

    list_pending: ListPendingSends

    async def __call__(self) -> int:
        """How many customers still have sends waiting."""
        store = self.list_pending.held.store
        waiting = 0
        for customer_id in await store.customers():
            try:
                if await self.list_pending(customer_id):
                    waiting += 1
                else:
                    await store.forget(customer_id)
            except HermesError as exc:
                log.warning("expiry sweep skipped customer %s: %s", customer_id, exc.detail)
        return waiting
