"""The console session store on Redis: the shared contract, and what is (not) kept there."""

from __future__ import annotations

from typing import Any

import pytest

from hermes.adapters.redis.console_sessions import RedisConsoleSessionStore, session_key
from hermes.domain.console import new_session_id, session_digest
from tests.contracts.console import ConsoleSessionStoreContract, a_session


class TestRedisConsoleSessionStore(ConsoleSessionStoreContract):
    @pytest.fixture
    def console_sessions(self, redis: Any) -> RedisConsoleSessionStore:
        return RedisConsoleSessionStore(redis)


async def test_redis_keeps_the_digest_of_the_session_id_with_the_idle_time_to_live(redis: Any) -> None:
    store = RedisConsoleSessionStore(redis)
    session_id = new_session_id()
    digest = session_digest(session_id)
    _, session = a_session()
    await store.open(digest, session, 1800)
    assert 1795 <= await redis.ttl(session_key(digest)) <= 1800
    assert await redis.exists(session_key(session_id)) == 0
    raw = await redis.get(session_key(digest))
    assert session_id.encode() not in raw
    await redis.expire(session_key(digest), 5)
    assert await store.touch(digest, 1800) == session
    assert await redis.ttl(session_key(digest)) > 1700
    await store.close(digest)
