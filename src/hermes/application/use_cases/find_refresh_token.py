from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.oauth import GrantStore
from hermes.domain.oauth import MAX_SECRET_LENGTH, REFRESH_TOKEN_PREFIX, IssuedToken, TokenKind, digest_secret


@dataclass(slots=True)
class FindRefreshToken:
    """The refresh token a client presents, while its grant is alive (used or not: a replay must be caught)."""

    grants: GrantStore

    async def __call__(self, token: str) -> IssuedToken | None:
        if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > MAX_SECRET_LENGTH:
            return None
        record = await self.grants.token(digest_secret(token), TokenKind.REFRESH)
        if record is None or await self.grants.grant(record.customer_id, record.grant_id) is None:
            return None
        return record
