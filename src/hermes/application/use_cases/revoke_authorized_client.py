from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.oauth import GrantStore
from hermes.domain.errors import NotFound


@dataclass(slots=True)
class RevokeAuthorizedClient:
    """Revoke a client the customer authorized: every token it holds stops working at once.

    The client may ask again later; the customer would have to approve it again.
    """

    grants: GrantStore

    async def __call__(self, customer_id: str, client_id: str) -> int:
        revoked = 0
        for g in await self.grants.grants(customer_id):
            if g.client_id == client_id and await self.grants.revoke_grant(customer_id, g.grant_id):
                revoked += 1
        if not revoked:
            raise NotFound(f"no authorized client {client_id!r}")
        return revoked
