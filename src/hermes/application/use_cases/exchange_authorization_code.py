from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.customers import CustomerDirectory
from hermes.application.ports.oauth import AuthorizationStore
from hermes.application.token_issuer import TokenIssuer
from hermes.domain.oauth import CODE_PREFIX, MAX_SECRET_LENGTH, Grant, TokenPair, TokenRefused, digest_secret


@dataclass(slots=True)
class ExchangeAuthorizationCode:
    """Exchange an authorization code for an access token (one hour) and a refresh token.

    The token endpoint has already matched the client, the redirect URI and the PKCE
    verifier. A code works once: a second exchange, even after the code expired, is
    refused and revokes whatever the first one produced (the code was stolen, or the
    client is confused); the code is remembered for an hour past its expiry. If the
    customer was deactivated or its key rotated since approving, the code is
    worthless: the grant carries the revocation epoch read at approval, so even a
    revocation racing this exchange kills the tokens it returns.
    """

    authorizations: AuthorizationStore
    directory: CustomerDirectory
    issuer: TokenIssuer

    async def __call__(self, code: str, client_id: str) -> TokenPair:
        if not code.startswith(CODE_PREFIX) or len(code) > MAX_SECRET_LENGTH:
            raise TokenRefused("invalid_grant", "authorization code does not exist")
        redeemed = await self.authorizations.redeem_code(digest_secret(code))
        if redeemed is None or redeemed[0].client_id != client_id:
            raise TokenRefused("invalid_grant", "authorization code does not exist")
        issued, first = redeemed
        grants = self.issuer.grants
        if not first:
            await grants.revoke_grant(issued.customer_id, issued.grant_id)
            raise TokenRefused(
                "invalid_grant", "authorization code was already used; the tokens issued for it are revoked"
            )
        now = self.issuer.clock.now()
        if issued.expires_at <= now:
            raise TokenRefused("invalid_grant", "authorization code has expired")
        if await grants.epoch(issued.customer_id) != issued.epoch:
            raise TokenRefused("invalid_grant", "access was revoked after this code was issued")
        customer = await self.directory.get(issued.customer_id)
        if customer is None or not customer.active:
            raise TokenRefused("invalid_grant", "the account that approved this client is no longer active")
        grant = Grant(
            grant_id=issued.grant_id,
            customer_id=customer.id,
            client_id=issued.client_id,
            client_name=issued.client_name,
            scopes=issued.scopes,
            resource=issued.resource,
            created_at=now,
            used_at=now,
            epoch=issued.epoch,
        )
        return await self.issuer.issue(grant, customer)
