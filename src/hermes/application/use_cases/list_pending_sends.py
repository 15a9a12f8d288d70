from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hermes.application.held_sends import HeldSends
from hermes.domain.sends import PendingSend, PendingState


@dataclass(slots=True)
class ListPendingSends:
    """The sends waiting for the owner's approval, oldest first, each with the arguments it would be sent with.

    A send whose approval time ran out is moved to `expired` (and audited so) instead of being listed.
    """

    held: HeldSends

    async def __call__(self, customer_id: str) -> list[tuple[PendingSend, dict[str, Any] | None]]:
        shown: list[tuple[PendingSend, dict[str, Any] | None]] = []
        for pending in await self.held.store.waiting(customer_id):
            current = await self.held.expire_if_due(pending)
            if current.state is PendingState.PENDING:
                shown.append((current, self._opened(current)))
        return shown

    def _opened(self, pending: PendingSend) -> dict[str, Any] | None:
        try:
            return self.held.arguments(pending)
        except ValueError:
            return None  # sealed under a key no longer configured: shown without its text
