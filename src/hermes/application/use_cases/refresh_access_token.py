from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.customers import CustomerDirectory
from hermes.application.token_issuer import TokenIssuer
from hermes.domain.oauth import (
    MAX_SECRET_LENGTH,
    REFRESH_TOKEN_PREFIX,
    TokenKind,
    TokenPair,
    TokenRefused,
    digest_secret,
)

_UNKNOWN = "refresh token does not exist"


@dataclass(slots=True)
class RefreshAccessToken:
    """Trade a refresh token for a new access token and a new refresh token (rotation).

    Each refresh token works once. Presenting one that was already traded in means
    two parties hold it, so the whole grant is revoked: every access and refresh
    token issued from that approval stops working, and the customer has to approve
    the client again. Tokens of a revoked grant, of another client or of a customer
    no longer active are refused.
    """

    directory: CustomerDirectory
    issuer: TokenIssuer

    async def __call__(self, token: str, client_id: str) -> TokenPair:
        if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > MAX_SECRET_LENGTH:
            raise TokenRefused("invalid_grant", _UNKNOWN)
        grants = self.issuer.grants
        token_digest = digest_secret(token)
        record = await grants.token(token_digest, TokenKind.REFRESH)
        if record is None or record.client_id != client_id:
            raise TokenRefused("invalid_grant", _UNKNOWN)
        grant = await grants.grant(record.customer_id, record.grant_id)
        if grant is None:
            raise TokenRefused("invalid_grant", "refresh token was revoked")
        if not await grants.use_refresh(token_digest):
            await grants.revoke_grant(grant.customer_id, grant.grant_id)
            raise TokenRefused("invalid_grant", "refresh token was already used; this client's access is revoked")
        if record.expires_at <= self.issuer.clock.now():
            raise TokenRefused("invalid_grant", "refresh token has expired")
        customer = await self.directory.get(grant.customer_id)
        if customer is None or not customer.active:
            raise TokenRefused("invalid_grant", "the account that approved this client is no longer active")
        return await self.issuer.issue(grant, customer)
