from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.callbacks import CallbackStore


@dataclass(slots=True)
class RemoveCallback:
    """Stop delivering inbound messages to the customer's callback.

    Messages keep arriving in the inbox (`GET /api/inbox`). Removing a callback that
    is not registered is not an error: the end state is the one asked for.
    """

    store: CallbackStore

    async def __call__(self, customer_id: str) -> None:
        await self.store.delete(customer_id)
