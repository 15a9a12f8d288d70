"""Contract suites for the OAuth ports, run against the in-memory adapters (unit) and Redis/MariaDB/SQLite.

Each class expects a fixture named after the port: `oauth_clients`, `authorizations`, `grant_store`.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hermes.application.ports.oauth import AuthorizationStore, GrantStore, OAuthClientStore
from hermes.domain.customer import Customer
from hermes.domain.oauth import (
    Grant,
    IssuedCode,
    IssuedToken,
    OAuthClient,
    PendingAuthorization,
    TokenKind,
    digest_secret,
    new_grant_id,
)
from hermes.domain.plan import Plan

NOW = datetime(2026, 5, 8, 9, 30, 15, 123456, tzinfo=UTC)


def uid() -> str:
    return "cust_" + secrets.token_hex(6)


def a_digest() -> str:
    return digest_secret(secrets.token_urlsafe(32))


def a_client(**changes: object) -> OAuthClient:
    values: dict[str, object] = {
        "client_id": secrets.token_hex(16),
        "redirect_uris": ("https://app.example.com/callback", "http://127.0.0.1:33418/cb"),
        "name": "Example App",
        "auth_method": "client_secret_post",
        "secret_digest": a_digest(),
        "issued_at": 1_780_000_000,
        "scope": "mcp",
    }
    values.update(changes)
    return OAuthClient(**values)  # type: ignore[arg-type]


def a_pending(**changes: object) -> PendingAuthorization:
    values: dict[str, object] = {
        "client_id": "client-1",
        "client_name": "Example App",
        "redirect_uri": "https://app.example.com/callback",
        "redirect_uri_explicit": True,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "state": "xyz \u00e9 <&>",
        "scopes": ("mcp",),
        "resource": "https://hermes.example.com/mcp",
        "browser_digest": a_digest(),
        "expires_at": NOW + timedelta(minutes=10),
    }
    values.update(changes)
    return PendingAuthorization(**values)  # type: ignore[arg-type]


def a_code(customer_id: str, **changes: object) -> IssuedCode:
    values: dict[str, object] = {
        "grant_id": new_grant_id(),
        "client_id": "client-1",
        "client_name": "Example App",
        "customer_id": customer_id,
        "redirect_uri": "https://app.example.com/callback",
        "redirect_uri_explicit": True,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "scopes": (),
        "resource": None,
        "expires_at": NOW + timedelta(minutes=2),
        "epoch": 2,
    }
    values.update(changes)
    return IssuedCode(**values)  # type: ignore[arg-type]


def a_grant(customer_id: str, epoch: int = 0, client_id: str = "client-1") -> Grant:
    return Grant(
        grant_id=new_grant_id(),
        customer_id=customer_id,
        client_id=client_id,
        client_name="Example App",
        scopes=("mcp",),
        resource="https://hermes.example.com/mcp",
        created_at=NOW,
        used_at=NOW,
        epoch=epoch,
    )


def a_token(grant: Grant, with_customer: bool = True) -> IssuedToken:
    customer = Customer(grant.customer_id, "owner@example.com", Plan.PRO, True, NOW, "hms_abcdef")
    return IssuedToken(
        grant_id=grant.grant_id,
        customer_id=grant.customer_id,
        client_id=grant.client_id,
        scopes=grant.scopes,
        resource=grant.resource,
        expires_at=NOW + timedelta(hours=1),
        customer=customer if with_customer else None,
    )


class OAuthClientStoreContract:
    async def test_add_get_keep(self, oauth_clients: OAuthClientStore) -> None:
        client = a_client()
        assert await oauth_clients.get(client.client_id) is None
        await oauth_clients.add(client, 60)
        assert await oauth_clients.get(client.client_id) == client
        await oauth_clients.keep(client.client_id, 3600)
        assert await oauth_clients.get(client.client_id) == client
        await oauth_clients.keep("no-such-client", 3600)
        assert await oauth_clients.get("no-such-client") is None

    async def test_registration_expires(self, oauth_clients: OAuthClientStore) -> None:
        client = a_client()
        await oauth_clients.add(client, 1)
        await asyncio.sleep(1.2)
        assert await oauth_clients.get(client.client_id) is None


class AuthorizationStoreContract:
    async def test_pending_open_update_close_once(self, authorizations: AuthorizationStore) -> None:
        key = a_digest()
        pending = a_pending()
        await authorizations.open(key, pending, 60)
        assert await authorizations.pending(key) == pending
        signed_in = a_pending(customer_id="cust_1", browser_digest=pending.browser_digest)
        assert await authorizations.update(key, signed_in) is True
        assert await authorizations.pending(key) == signed_in
        taken = await asyncio.gather(*(authorizations.close(key) for _ in range(5)))
        assert [t for t in taken if t is not None] == [signed_in]
        assert await authorizations.pending(key) is None
        assert await authorizations.update(key, pending) is False

    async def test_pending_expires(self, authorizations: AuthorizationStore) -> None:
        key = a_digest()
        await authorizations.open(key, a_pending(), 1)
        await asyncio.sleep(1.2)
        assert await authorizations.pending(key) is None
        assert await authorizations.close(key) is None

    async def test_code_is_redeemed_once_and_stays_recognisable(self, authorizations: AuthorizationStore) -> None:
        key = a_digest()
        code = a_code(uid())
        assert await authorizations.redeem_code(key) is None
        await authorizations.issue_code(key, code, 60)
        assert await authorizations.code(key) == code
        results = await asyncio.gather(*(authorizations.redeem_code(key) for _ in range(6)))
        assert sorted(r[1] for r in results if r is not None) == [False] * 5 + [True]
        assert all(r is not None and r[0] == code for r in results)
        assert await authorizations.code(key) == code  # still there, so a replay reaches the exchange

    async def test_codes_and_requests_do_not_mix(self, authorizations: AuthorizationStore) -> None:
        key = a_digest()
        await authorizations.issue_code(key, a_code(uid()), 60)
        assert await authorizations.pending(key) is None
        assert await authorizations.close(key) is None


class GrantStoreContract:
    async def test_grant_lifecycle(self, grant_store: GrantStore) -> None:
        cust = uid()
        assert await grant_store.epoch(cust) == 0
        grant = a_grant(cust)
        await grant_store.save_grant(grant, 60)
        assert await grant_store.grant(cust, grant.grant_id) == grant
        assert await grant_store.grant(uid(), grant.grant_id) is None
        assert await grant_store.grants(cust) == [grant]
        assert await grant_store.revoke_grant(cust, grant.grant_id) is True
        assert await grant_store.revoke_grant(cust, grant.grant_id) is False
        assert await grant_store.grant(cust, grant.grant_id) is None
        assert await grant_store.grants(cust) == []

    async def test_save_grant_updates_in_place(self, grant_store: GrantStore) -> None:
        cust = uid()
        grant = a_grant(cust)
        await grant_store.save_grant(grant, 60)
        later = replace(grant, used_at=NOW + timedelta(hours=1))
        await grant_store.save_grant(later, 60)
        assert await grant_store.grants(cust) == [later]

    async def test_revoke_customer_kills_every_grant_and_moves_the_epoch(self, grant_store: GrantStore) -> None:
        cust, other = uid(), uid()
        mine = [a_grant(cust, client_id=f"client-{i}") for i in range(3)]
        theirs = a_grant(other)
        for g in [*mine, theirs]:
            await grant_store.save_grant(g, 60)
        await grant_store.revoke_customer(cust)
        assert await grant_store.grants(cust) == []
        assert await grant_store.epoch(cust) == 1
        assert await grant_store.grant(other, theirs.grant_id) == theirs
        # A grant saved with the epoch read before the revocation is dead on arrival.
        await grant_store.save_grant(a_grant(cust, epoch=0), 60)
        assert await grant_store.grants(cust) == []
        fresh = a_grant(cust, epoch=1)
        await grant_store.save_grant(fresh, 60)
        assert await grant_store.grants(cust) == [fresh]

    async def test_tokens_by_kind_and_digest(self, grant_store: GrantStore) -> None:
        grant = a_grant(uid())
        access, refresh = a_digest(), a_digest()
        await grant_store.put_token(access, TokenKind.ACCESS, a_token(grant), 60)
        await grant_store.put_token(refresh, TokenKind.REFRESH, a_token(grant, with_customer=False), 60)
        assert await grant_store.token(access, TokenKind.ACCESS) == a_token(grant)
        assert await grant_store.token(access, TokenKind.REFRESH) is None
        assert await grant_store.token(refresh, TokenKind.REFRESH) == a_token(grant, with_customer=False)
        assert await grant_store.token(a_digest(), TokenKind.ACCESS) is None

    async def test_refresh_token_is_used_once(self, grant_store: GrantStore) -> None:
        grant = a_grant(uid())
        refresh = a_digest()
        assert await grant_store.use_refresh(refresh) is False
        await grant_store.put_token(refresh, TokenKind.REFRESH, a_token(grant, with_customer=False), 60)
        results = await asyncio.gather(*(grant_store.use_refresh(refresh) for _ in range(6)))
        assert sorted(results) == [False] * 5 + [True]
        assert await grant_store.token(refresh, TokenKind.REFRESH) is not None  # kept to recognise a replay

    async def test_tokens_expire(self, grant_store: GrantStore) -> None:
        grant = a_grant(uid())
        access = a_digest()
        await grant_store.put_token(access, TokenKind.ACCESS, a_token(grant), 1)
        await asyncio.sleep(1.2)
        assert await grant_store.token(access, TokenKind.ACCESS) is None
