"""The OAuth port contracts against Redis, MariaDB and SQLite (embedded mode)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.oauth import (
    RedisAuthorizationStore,
    RedisGrantStore,
    RedisOAuthClientStore,
    code_key,
    grant_key,
    token_key,
)
from hermes.adapters.sql.oauth import SqlAuthorizationStore, SqlGrantStore, SqlOAuthClientStore
from hermes.domain.oauth import TokenKind
from tests.contracts.oauth import (
    AuthorizationStoreContract,
    GrantStoreContract,
    OAuthClientStoreContract,
    a_code,
    a_digest,
    a_grant,
    a_token,
    uid,
)


class TestRedisOAuthClientStore(OAuthClientStoreContract):
    @pytest.fixture
    def oauth_clients(self, redis: Any) -> RedisOAuthClientStore:
        return RedisOAuthClientStore(redis)


class TestSqlOAuthClientStore(OAuthClientStoreContract):
    @pytest.fixture
    def oauth_clients(self, engine: AsyncEngine) -> SqlOAuthClientStore:
        return SqlOAuthClientStore(engine)


class TestRedisAuthorizationStore(AuthorizationStoreContract):
    @pytest.fixture
    def authorizations(self, redis: Any) -> RedisAuthorizationStore:
        return RedisAuthorizationStore(redis)

    async def test_codes_live_past_their_expiry_to_catch_replays(self, redis: Any) -> None:
        key = a_digest()
        await RedisAuthorizationStore(redis).issue_code(key, a_code(uid()), 720)
        assert 700 < await redis.ttl(code_key(key)) <= 720


class TestSqlAuthorizationStore(AuthorizationStoreContract):
    @pytest.fixture
    def authorizations(self, engine: AsyncEngine) -> SqlAuthorizationStore:
        return SqlAuthorizationStore(engine)


class TestRedisGrantStore(GrantStoreContract):
    @pytest.fixture
    def grant_store(self, redis: Any) -> RedisGrantStore:
        return RedisGrantStore(redis)

    async def test_keys_share_the_customer_slot_and_expire(self, redis: Any) -> None:
        cust = uid()
        grant = a_grant(cust)
        store = RedisGrantStore(redis)
        await store.save_grant(grant, 3600)
        access = a_digest()
        await store.put_token(access, TokenKind.ACCESS, a_token(grant), 3600)
        assert 3500 < await redis.ttl(grant_key(cust, grant.grant_id)) <= 3600
        assert 3500 < await redis.ttl(token_key(TokenKind.ACCESS, access)) <= 3600
        assert grant_key(cust, grant.grant_id).startswith(f"oauth:grant:{{{cust}}}:")


class TestSqlGrantStore(GrantStoreContract):
    @pytest.fixture
    def grant_store(self, engine: AsyncEngine) -> SqlGrantStore:
        return SqlGrantStore(engine)
