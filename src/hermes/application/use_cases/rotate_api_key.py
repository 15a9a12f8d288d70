from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.customers import CustomerCache, CustomerDirectory
from hermes.application.ports.sessions import SessionRevoker
from hermes.domain.customer import ApiKey
from hermes.domain.errors import NotFound


@dataclass(slots=True)
class RotateApiKey:
    """Issue a new API key; the old one is refused from the very next request.

    The old key's cached lookup is evicted and the customer's OAuth tokens are
    revoked, since they were granted on the strength of the old key.
    """

    directory: CustomerDirectory
    cache: CustomerCache
    sessions: SessionRevoker

    async def __call__(self, customer_id: str) -> str:
        key = ApiKey.generate()
        old_digest = await self.directory.replace_key(customer_id, key.digest, key.prefix)
        if old_digest is None:
            raise NotFound(f"no customer {customer_id!r}")
        await self.cache.evict(old_digest)
        await self.sessions.revoke_customer(customer_id)
        return key.secret
