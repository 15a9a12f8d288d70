"""Minting an access and refresh token pair for a grant (code exchange and refresh share it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from hermes.application.ports.clock import Clock
from hermes.application.ports.oauth import GrantStore, OAuthClientStore
from hermes.domain.customer import Customer
from hermes.domain.oauth import (
    ACCESS_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    Grant,
    IssuedToken,
    OAuthPolicy,
    TokenKind,
    TokenPair,
    digest_secret,
    new_secret,
)


@dataclass(slots=True)
class TokenIssuer:
    grants: GrantStore
    clients: OAuthClientStore
    policy: OAuthPolicy
    clock: Clock

    async def issue(self, grant: Grant, customer: Customer) -> TokenPair:
        """Save the grant as used now, then mint a pair in it; the grant lives as long as the refresh token."""
        now = self.clock.now()
        await self.grants.save_grant(replace(grant, used_at=now), self.policy.refresh_token_ttl)
        access, refresh = new_secret(ACCESS_TOKEN_PREFIX), new_secret(REFRESH_TOKEN_PREFIX)
        access_ttl, refresh_ttl = self.policy.access_token_ttl, self.policy.refresh_token_ttl

        def record(ttl: int, acting_for: Customer | None) -> IssuedToken:
            return IssuedToken(
                grant_id=grant.grant_id,
                customer_id=customer.id,
                client_id=grant.client_id,
                scopes=grant.scopes,
                resource=grant.resource,
                expires_at=now + timedelta(seconds=ttl),
                customer=acting_for,
            )

        await self.grants.put_token(digest_secret(access), TokenKind.ACCESS, record(access_ttl, customer), access_ttl)
        await self.grants.put_token(digest_secret(refresh), TokenKind.REFRESH, record(refresh_ttl, None), refresh_ttl)
        # A registration in use stays; metadata-document clients are not stored at all.
        await self.clients.keep(grant.client_id, self.policy.client_ttl)
        return TokenPair(access, refresh, self.policy.access_token_ttl, grant.scopes)
