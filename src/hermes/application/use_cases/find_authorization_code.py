from __future__ import annotations

from dataclasses import dataclass

from hermes.application.ports.oauth import AuthorizationStore
from hermes.domain.oauth import CODE_PREFIX, MAX_SECRET_LENGTH, IssuedCode, digest_secret


@dataclass(slots=True)
class FindAuthorizationCode:
    """The authorization code a client presents, redeemed or not, for the token endpoint's checks."""

    authorizations: AuthorizationStore

    async def __call__(self, code: str) -> IssuedCode | None:
        if not code.startswith(CODE_PREFIX) or len(code) > MAX_SECRET_LENGTH:
            return None
        return await self.authorizations.code(digest_secret(code))
