from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.callbacks import KEPT_DELIVERIES, CallbackStore
from hermes.domain.callbacks import Callback, Delivery
from hermes.domain.errors import NotFound


@dataclass(frozen=True, slots=True)
class CallbackState:
    callback: Callback
    deliveries: list[Delivery]  # newest first


@dataclass(slots=True)
class GetCallback:
    """The customer's callback URL and how its deliveries are going.

    Shows the most recent deliveries (newest first) with their outcome and HTTP status,
    the number of consecutive failures and when the next attempt is due. The signing
    secret is never shown again: register the callback anew to get a new one.
    """

    store: CallbackStore

    async def __call__(self, customer_id: str) -> CallbackState:
        callback = await self.store.get(customer_id)
        if callback is None:
            raise NotFound("no inbound callback is registered: PUT /api/inbound/callback")
        return CallbackState(callback, await self.store.deliveries(customer_id, KEPT_DELIVERIES))
