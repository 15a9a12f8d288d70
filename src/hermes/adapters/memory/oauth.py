"""In-memory OAuth stores and metadata documents, for unit tests (same expiry rules as Redis)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hermes.application.ports.oauth import AuthorizationStore, ClientMetadataDocuments, GrantStore, OAuthClientStore
from hermes.domain.errors import Invalid
from hermes.domain.oauth import Grant, IssuedCode, IssuedToken, OAuthClient, PendingAuthorization, TokenKind


@dataclass(slots=True)
class _Entry:
    value: Any
    expires: float
    flag: bool = False

    @property
    def alive(self) -> bool:
        return self.expires > time.monotonic()


def _live(entries: dict[Any, _Entry], key: Any) -> _Entry | None:
    entry = entries.get(key)
    if entry is not None and not entry.alive:
        del entries[key]
        return None
    return entry


class InMemoryOAuthClientStore(OAuthClientStore):
    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}

    async def add(self, client: OAuthClient, ttl: int) -> None:
        self.entries[client.client_id] = _Entry(client, time.monotonic() + ttl)

    async def get(self, client_id: str) -> OAuthClient | None:
        entry = _live(self.entries, client_id)
        return None if entry is None else entry.value  # type: ignore[no-any-return]

    async def keep(self, client_id: str, ttl: int) -> None:
        entry = _live(self.entries, client_id)
        if entry is not None:
            entry.expires = max(entry.expires, time.monotonic() + ttl)


class InMemoryAuthorizationStore(AuthorizationStore):
    def __init__(self) -> None:
        self.requests: dict[str, _Entry] = {}
        self.codes: dict[str, _Entry] = {}

    async def open(self, request_digest: str, pending: PendingAuthorization, ttl: int) -> None:
        self.requests[request_digest] = _Entry(pending, time.monotonic() + ttl)

    async def pending(self, request_digest: str) -> PendingAuthorization | None:
        entry = _live(self.requests, request_digest)
        return None if entry is None else entry.value  # type: ignore[no-any-return]

    async def update(self, request_digest: str, pending: PendingAuthorization) -> bool:
        entry = _live(self.requests, request_digest)
        if entry is None:
            return False
        entry.value = pending
        return True

    async def close(self, request_digest: str) -> PendingAuthorization | None:
        entry = _live(self.requests, request_digest)
        if entry is None:
            return None
        del self.requests[request_digest]
        return entry.value  # type: ignore[no-any-return]

    async def issue_code(self, code_digest: str, code: IssuedCode, ttl: int) -> None:
        self.codes[code_digest] = _Entry(code, time.monotonic() + ttl)

    async def code(self, code_digest: str) -> IssuedCode | None:
        entry = _live(self.codes, code_digest)
        return None if entry is None else entry.value  # type: ignore[no-any-return]

    async def redeem_code(self, code_digest: str) -> tuple[IssuedCode, bool] | None:
        entry = _live(self.codes, code_digest)
        if entry is None:
            return None
        first, entry.flag = not entry.flag, True
        return entry.value, first


class InMemoryGrantStore(GrantStore):
    """Grants and tokens in dicts; also the SessionRevoker of unit tests that need real revocation."""

    def __init__(self) -> None:
        self.grant_entries: dict[tuple[str, str], _Entry] = {}
        self.epochs: dict[str, int] = {}
        self.tokens: dict[tuple[TokenKind, str], _Entry] = {}

    async def epoch(self, customer_id: str) -> int:
        return self.epochs.get(customer_id, 0)

    async def save_grant(self, grant: Grant, ttl: int) -> None:
        self.grant_entries[(grant.customer_id, grant.grant_id)] = _Entry(grant, time.monotonic() + ttl)

    async def grant(self, customer_id: str, grant_id: str) -> Grant | None:
        entry = _live(self.grant_entries, (customer_id, grant_id))
        if entry is None or entry.value.epoch != self.epochs.get(customer_id, 0):
            return None
        return entry.value  # type: ignore[no-any-return]

    async def grants(self, customer_id: str) -> list[Grant]:
        found = [await self.grant(c, g) for c, g in list(self.grant_entries) if c == customer_id]
        return [g for g in found if g is not None]

    async def revoke_grant(self, customer_id: str, grant_id: str) -> bool:
        alive = await self.grant(customer_id, grant_id) is not None
        self.grant_entries.pop((customer_id, grant_id), None)
        return alive

    async def revoke_customer(self, customer_id: str) -> None:
        self.epochs[customer_id] = self.epochs.get(customer_id, 0) + 1
        for key in [k for k in self.grant_entries if k[0] == customer_id]:
            del self.grant_entries[key]

    async def put_token(self, token_digest: str, kind: TokenKind, token: IssuedToken, ttl: int) -> None:
        self.tokens[(kind, token_digest)] = _Entry(token, time.monotonic() + ttl)

    async def token(self, token_digest: str, kind: TokenKind) -> IssuedToken | None:
        entry = _live(self.tokens, (kind, token_digest))
        return None if entry is None else entry.value  # type: ignore[no-any-return]

    async def use_refresh(self, token_digest: str) -> bool:
        entry = _live(self.tokens, (TokenKind.REFRESH, token_digest))
        if entry is None:
            return False
        first, entry.flag = not entry.flag, True
        return first


@dataclass(slots=True)
class StaticClientMetadataDocuments(ClientMetadataDocuments):
    """Client ID Metadata Documents served from a dict (URL -> document)."""

    documents: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    async def fetch(self, url: str) -> Mapping[str, Any]:
        self.fetched.append(url)
        document = self.documents.get(url)
        if document is None:
            raise Invalid("the client's metadata document could not be fetched (HTTP 404)", {"client_id": "HTTP 404"})
        return document
