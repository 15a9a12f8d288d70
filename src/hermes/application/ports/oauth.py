"""What the OAuth authorization server keeps: clients, authorization requests and codes, grants and tokens.

Every secret is looked up by its SHA-256 digest (`digest_secret`); no store ever
sees a raw code or token. Lifetimes are in seconds; a record past its lifetime
is gone (Redis expiry, or filtered and purged in SQL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from hermes.application.ports.sessions import SessionRevoker
from hermes.domain.oauth import Grant, IssuedCode, IssuedToken, OAuthClient, PendingAuthorization, TokenKind


class OAuthClientStore(Protocol):
    """Clients registered through RFC 7591 dynamic client registration."""

    async def add(self, client: OAuthClient, ttl: int) -> None: ...

    async def get(self, client_id: str) -> OAuthClient | None: ...

    async def keep(self, client_id: str, ttl: int) -> None:
        """Extend a registration's life (it is in use); nothing if it is gone."""
        ...


class ClientMetadataDocuments(Protocol):
    """Client ID Metadata Documents: the JSON a client publishes at its https `client_id`."""

    async def fetch(self, url: str) -> Mapping[str, Any]:
        """The JSON object served at `url`; `Invalid` saying why when it cannot be had or read."""
        ...


class AuthorizationStore(Protocol):
    """Requests waiting on the consent page, and the authorization codes approval produces."""

    async def open(self, request_digest: str, pending: PendingAuthorization, ttl: int) -> None: ...

    async def pending(self, request_digest: str) -> PendingAuthorization | None: ...

    async def update(self, request_digest: str, pending: PendingAuthorization) -> bool:
        """Replace a request that is still open (its lifetime unchanged); False when it is gone."""
        ...

    async def close(self, request_digest: str) -> PendingAuthorization | None:
        """Take the request away, atomically: of two concurrent decisions only one gets it."""
        ...

    async def issue_code(self, code_digest: str, code: IssuedCode, ttl: int) -> None: ...

    async def code(self, code_digest: str) -> IssuedCode | None:
        """The code, redeemed or not (a replay must reach the exchange to be caught)."""
        ...

    async def redeem_code(self, code_digest: str) -> tuple[IssuedCode, bool] | None:
        """Mark the code redeemed, atomically; the bool is False when it already was (a replay)."""
        ...


class GrantStore(SessionRevoker, Protocol):
    """Grants (token families) and their tokens; revoking a grant kills every token in it."""

    async def epoch(self, customer_id: str) -> int:
        """The customer's revocation epoch: `revoke_customer` moves it on."""
        ...

    async def save_grant(self, grant: Grant, ttl: int) -> None:
        """Create or update a grant; it lives `ttl` more seconds (as long as its refresh token)."""
        ...

    async def grant(self, customer_id: str, grant_id: str) -> Grant | None:
        """The grant if it is alive: not revoked, not expired, made in the customer's current epoch."""
        ...

    async def grants(self, customer_id: str) -> list[Grant]:
        """Every live grant of the customer."""
        ...

    async def revoke_grant(self, customer_id: str, grant_id: str) -> bool: ...

    async def revoke_customer(self, customer_id: str) -> None:
        """Revoke every grant of the customer, including one being created concurrently."""
        ...

    async def put_token(self, token_digest: str, kind: TokenKind, token: IssuedToken, ttl: int) -> None: ...

    async def token(self, token_digest: str, kind: TokenKind) -> IssuedToken | None:
        """The token's record, whether or not its grant is still alive (ask `grant` for that)."""
        ...

    async def use_refresh(self, token_digest: str) -> bool:
        """Mark a refresh token used, atomically; False when it already was (a replay)."""
        ...
