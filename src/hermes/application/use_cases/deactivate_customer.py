from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.customers import CustomerCache, CustomerDirectory
from hermes.application.ports.sessions import SessionRevoker
from hermes.domain.customer import Customer
from hermes.domain.errors import NotFound


@dataclass(slots=True)
class DeactivateCustomer:
    """Deactivate a customer: its key is refused from the very next request.

    The cached lookup is evicted in the same request and every OAuth token issued
    to it is revoked, so no instance keeps serving it from a cache.
    """

    directory: CustomerDirectory
    cache: CustomerCache
    sessions: SessionRevoker

    async def __call__(self, customer_id: str) -> Customer:
        customer = await self.directory.set_active(customer_id, False)
        if customer is None:
            raise NotFound(f"no customer {customer_id!r}")
        digest = await self.directory.key_digest(customer_id)
        if digest is not None:
            await self.cache.evict(digest)
        await self.sessions.revoke_customer(customer_id)
        return customer
