from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hermes.application.held_sends import HeldSends
from hermes.domain.errors import NotFound
from hermes.domain.sends import PendingSend


@dataclass(slots=True)
class ReviewPendingSend:
    """One held send as its owner decides on it: tool, platform, recipient, the exact arguments, its state."""

    held: HeldSends

    async def __call__(self, customer_id: str, approval_id: str) -> tuple[PendingSend, dict[str, Any] | None]:
        pending = await self.held.store.get(customer_id, approval_id)
        if pending is None:
            raise NotFound("there is no held send with this id for your account (it may be older than a day)")
        pending = await self.held.expire_if_due(pending)
        try:
            return pending, self.held.arguments(pending)
        except ValueError:
            return pending, None
