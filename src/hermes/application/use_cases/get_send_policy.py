from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.sends import PolicyStore
from hermes.domain.sends import SendPolicy


@dataclass(slots=True)
class GetSendPolicy:
    """The account's send policy: when sends wait for approval, who they may go to, and how often.

    An account that never set one has the default: no approval, any recipient, no cap.
    """

    store: PolicyStore

    async def __call__(self, customer_id: str) -> SendPolicy:
        return await self.store.get(customer_id) or SendPolicy()
