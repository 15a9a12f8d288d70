from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.oauth import GrantStore
from hermes.domain.oauth import AuthorizedClient


@dataclass(slots=True)
class ListAuthorizedClients:
    """The OAuth clients a customer has let in and not revoked, most recently used first.

    A client approved several times (reconnected) is listed once, with when it was
    first approved and when it last obtained a token.
    """

    grants: GrantStore

    async def __call__(self, customer_id: str) -> list[AuthorizedClient]:
        by_client: dict[str, AuthorizedClient] = {}
        for g in await self.grants.grants(customer_id):
            seen = by_client.get(g.client_id)
            if seen is None:
                by_client[g.client_id] = AuthorizedClient(g.client_id, g.client_name, g.created_at, g.used_at, 1)
            else:
                by_client[g.client_id] = AuthorizedClient(
                    g.client_id,
                    g.client_name if g.used_at >= seen.last_used_at else seen.client_name,
                    min(seen.authorized_at, g.created_at),
                    max(seen.last_used_at, g.used_at),
                    seen.grants + 1,
                )
        return sorted(by_client.values(), key=lambda c: c.last_used_at, reverse=True)
