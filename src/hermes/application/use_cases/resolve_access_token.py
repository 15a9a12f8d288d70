from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.clock import Clock
from hermes.application.ports.oauth import GrantStore
from hermes.application.use_cases.resolve_customer import ResolveCustomer
from hermes.domain.customer import Customer
from hermes.domain.oauth import ACCESS_TOKEN_PREFIX, MAX_SECRET_LENGTH, IssuedToken, TokenKind, digest_secret


@dataclass(slots=True)
class ResolveAccessToken:
    """The customer an OAuth access token acts for, counted against its plan like an API key.

    A token is good for one hour and only while its grant is alive: revoked by the
    client or the customer, or by deactivating the customer or rotating its key,
    it is refused at once. Anything unknown resolves to nobody (the caller answers 401).
    """

    grants: GrantStore
    resolve: ResolveCustomer
    clock: Clock

    async def __call__(self, token: str) -> Customer | None:
        record = await self.lookup(token)
        if record is None or record.customer is None:
            return None
        await self.resolve.meter(record.customer)
        return record.customer

    async def lookup(self, token: str) -> IssuedToken | None:
        """The live token's record, without counting a request."""
        if not token.startswith(ACCESS_TOKEN_PREFIX) or len(token) > MAX_SECRET_LENGTH:
            return None
        record = await self.grants.token(digest_secret(token), TokenKind.ACCESS)
        if record is None or record.expires_at <= self.clock.now():
            return None
        if await self.grants.grant(record.customer_id, record.grant_id) is None:
            return None
        return record
