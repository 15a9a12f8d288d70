"""The Redis OAuth stores on a 3-master Redis Cluster: hash tags keep multi-key commands in one slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from hermes.adapters.redis.client import connect
from hermes.adapters.redis.oauth import RedisAuthorizationStore, RedisGrantStore, RedisOAuthClientStore
from tests.contracts.oauth import AuthorizationStoreContract, GrantStoreContract, OAuthClientStoreContract
from tests.integration.oauth_support import OAuthAgent, start_public
from tests.integration.redis_cluster import RedisClusterProcess, cluster_available
from tests.support import make_settings

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not cluster_available(), reason="redis-server/redis-cli not installed"),
]


@pytest.fixture
async def redis(cluster: RedisClusterProcess) -> AsyncIterator[Any]:
    client = connect(cluster.url, cluster=True)
    yield client
    await client.aclose()


class TestClusterOAuthClientStore(OAuthClientStoreContract):
    @pytest.fixture
    def oauth_clients(self, redis: Any) -> RedisOAuthClientStore:
        return RedisOAuthClientStore(redis)


class TestClusterAuthorizationStore(AuthorizationStoreContract):
    @pytest.fixture
    def authorizations(self, redis: Any) -> RedisAuthorizationStore:
        return RedisAuthorizationStore(redis)


class TestClusterGrantStore(GrantStoreContract):
    @pytest.fixture
    def grant_store(self, redis: Any) -> RedisGrantStore:
        return RedisGrantStore(redis)


async def test_the_dance_and_deactivation_on_a_cluster(
    cluster: RedisClusterProcess, mariadb_url: str, start_hermes: Any
) -> None:
    settings = make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=cluster.url, HERMES_REDIS_CLUSTER=True)
    server = start_public(start_hermes, settings)
    agent = OAuthAgent(server)
    customer = await server.create_customer()
    client = await agent.register()
    tokens = await agent.tokens(client, customer["apiKey"])
    refreshed = await agent.refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    async with server.admin() as admin:
        assert (await admin.post(f"/admin/customers/{customer['id']}/deactivate")).status_code == 200
    assert await agent.mcp_status(refreshed.json()["access_token"]) == 401
