from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.oauth import GrantStore
from hermes.domain.oauth import (
    ACCESS_TOKEN_PREFIX,
    MAX_SECRET_LENGTH,
    REFRESH_TOKEN_PREFIX,
    TokenKind,
    digest_secret,
)


@dataclass(slots=True)
class RevokeToken:
    """Revoke a token at its client's request (RFC 7009).

    Revoking either the access or the refresh token revokes the whole grant, so the
    client's access ends at once. A token that is unknown, already revoked or
    another client's is quietly ignored: the answer never tells which.
    """

    grants: GrantStore

    async def __call__(self, token: str, client_id: str) -> None:
        if len(token) > MAX_SECRET_LENGTH:
            return
        if token.startswith(ACCESS_TOKEN_PREFIX):
            kind = TokenKind.ACCESS
        elif token.startswith(REFRESH_TOKEN_PREFIX):
            kind = TokenKind.REFRESH
        else:
            return
        record = await self.grants.token(digest_secret(token), kind)
        if record is not None and record.client_id == client_id:
            await self.grants.revoke_grant(record.customer_id, record.grant_id)
