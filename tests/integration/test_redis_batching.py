"""The auto-pipelining Redis client keeps every command's own reply and error."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis
from redis.exceptions import DataError, ResponseError

from hermes.adapters.redis.client import BatchingRedis, PackedInC, connect
from tests.integration.own_redis import OwnRedis


async def test_concurrent_commands_each_get_their_own_reply(redis_url: str) -> None:
    client = connect(redis_url)
    assert isinstance(client, BatchingRedis)
    prefix = "batch-test:" + secrets.token_hex(4)
    try:
        await asyncio.gather(*(client.set(f"{prefix}:{i}", str(i)) for i in range(200)))
        values = await asyncio.gather(*(client.get(f"{prefix}:{i}") for i in range(200)))
        assert values == [str(i).encode() for i in range(200)]
        counts = await asyncio.gather(*(client.incr(f"{prefix}:counter") for _ in range(100)))
        assert sorted(counts) == list(range(1, 101))
    finally:
        await client.delete(*[f"{prefix}:{i}" for i in range(200)], f"{prefix}:counter")
        await client.aclose()


async def test_one_failing_command_does_not_fail_its_batch_neighbours(redis_url: str) -> None:
    client = connect(redis_url)
    key = "batch-test:" + secrets.token_hex(4)
    try:
        await client.set(key, "text")
        ok_before, failed, ok_after = await asyncio.gather(
            client.get(key), client.incr(key), client.strlen(key), return_exceptions=True
        )
        assert ok_before == b"text"
        assert isinstance(failed, ResponseError)
        assert ok_after == 4
        with pytest.raises(ResponseError):
            await client.incr(key)  # alone in its batch: raised the same way
    finally:
        await client.delete(key)
        await client.aclose()


async def test_scripts_load_themselves_inside_batches(redis_url: str) -> None:
    client = connect(redis_url)
    await client.script_flush()
    script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    key = "batch-test:" + secrets.token_hex(4)
    try:
        results = await asyncio.gather(*(script(keys=[key], args=[2]) for _ in range(20)))
        assert sorted(results) == list(range(2, 42, 2))
    finally:
        await client.delete(key)
        await client.aclose()


async def test_every_kind_of_argument_reaches_redis_as_the_python_client_would_send_it(redis_url: str) -> None:
    client = connect(redis_url)
    assert isinstance(client, BatchingRedis)
    assert issubclass(client.connection_pool.connection_class, PackedInC)
    plain = Redis.from_url(redis_url)  # redis-py's own packing, for comparison
    key = "batch-test:" + secrets.token_hex(4)
    values: list[str | bytes | int | float] = [
        "ünïcode ✓",
        b"\x00\xffbinary",
        0,
        -7,
        10**20,
        1.5,
        1733397600.123456,
        "",
    ]
    try:
        await asyncio.gather(*(client.rpush(key, v) for v in values))
        assert await plain.lrange(key, 0, -1) == [await _packed_by_plain(plain, v) for v in values]
        assert await client.rpush(key, memoryview(b"view")) == len(values) + 1  # copied to bytes, as redis-py does
        assert await plain.lindex(key, -1) == b"view"
        # A command name of two words goes out as two words.
        encoding = await client.execute_command("OBJECT ENCODING", key)
        assert encoding == await plain.execute_command("OBJECT ENCODING", key)
        with pytest.raises(DataError):
            await client.set(key + ":bool", True)  # type: ignore[arg-type]  # refused as redis-py refuses it
    finally:
        await client.delete(key)
        await client.aclose()
        await plain.aclose()


async def _packed_by_plain(plain: Redis, value: str | bytes | int | float) -> bytes:
    echoed = await plain.echo(value)
    return echoed if isinstance(echoed, bytes) else echoed.encode()


async def test_connections_pooled_before_a_redis_restart_do_not_fail_the_next_requests(own_redis: OwnRedis) -> None:
    client = connect(own_redis.url)
    try:
        # Several connections in the pool, all opened before the restart.
        await asyncio.gather(*(client.blpop([f"idle:{i}"], timeout=0.2) for i in range(4)))
        await client.set("before", "1")
        own_redis.stop()
        own_redis.start()
        await asyncio.sleep(2.5)  # idle past the health-check interval, as between requests at night
        for i in range(8):  # each would meet one of the old connections
            assert await client.blpop([f"idle:{i}"], timeout=0.05) is None
            assert await client.get("before") == b"1"
    finally:
        await client.aclose()
