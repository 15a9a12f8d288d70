"""One deadline per Redis round trip: a Redis that answers slowly holds a request no longer than the socket
timeout in all, however many replies it drips, and a round trip cut short leaves nothing for the next one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from hermes.adapters.redis.client import connect

pytestmark = pytest.mark.asyncio


@dataclass
class SlowRedis:
    """Speaks enough RESP for GET (the key is the value) after `delay` seconds per reply; OK to anything else."""

    delay: float = 0.0
    port: int = 0
    _server: asyncio.Server | None = field(default=None, repr=False)
    _open: set[asyncio.StreamWriter] = field(default_factory=set, repr=False)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while line := await reader.readline():
                parts = []
                for _ in range(int(line[1:])):
                    size = int((await reader.readline())[1:])
                    parts.append((await reader.readexactly(size + 2))[:-2])
                if parts[0].upper() == b"GET":
                    await asyncio.sleep(self.delay)
                    writer.write(b"$%d\r\n%s\r\n" % (len(parts[1]), parts[1]))
                else:
                    writer.write(b"+OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.close()
        await asyncio.sleep(0.05)  # the handlers see their connections end


@pytest.fixture
async def slow() -> AsyncIterator[SlowRedis]:
    fake = SlowRedis()
    fake._server = await asyncio.start_server(fake._serve, "127.0.0.1", 0)
    fake.port = fake._server.sockets[0].getsockname()[1]
    yield fake
    await fake.close()


async def test_replies_dripped_within_each_reply_s_timeout_still_end_at_the_round_trip_s_deadline(
    slow: SlowRedis,
) -> None:
    redis = connect(f"redis://127.0.0.1:{slow.port}/0")  # socket timeout 2 s
    slow.delay = 1.2  # each reply alone is in time; the three together are not
    started = time.monotonic()
    results = await asyncio.gather(*(redis.get(k) for k in ("a", "b", "c")), return_exceptions=True)
    took = time.monotonic() - started
    assert all(isinstance(r, RedisTimeoutError) for r in results), results
    assert 1.9 < took < 2.8
    await redis.aclose()


async def test_a_round_trip_cut_short_leaves_no_reply_for_the_next(slow: SlowRedis) -> None:
    redis = connect(f"redis://127.0.0.1:{slow.port}/0")
    slow.delay = 3.0
    with pytest.raises(RedisTimeoutError):
        await asyncio.gather(redis.get("late-1"), redis.get("late-2"))
    slow.delay = 0.0
    assert await redis.get("next") == b"next"  # not "late-1", arriving on the connection that was cut
    assert await asyncio.gather(redis.get("x"), redis.get("y")) == [b"x", b"y"]
    await redis.aclose()


async def test_past_the_connection_limit_commands_wait_and_go_out_together_when_one_comes_back(
    slow: SlowRedis,
) -> None:
    redis = connect(f"redis://127.0.0.1:{slow.port}/0")
    redis.connection_pool.max_connections = 1
    slow.delay = 0.2
    first = asyncio.ensure_future(redis.get("first"))
    await asyncio.sleep(0.05)  # its round trip holds the only connection
    later = [asyncio.ensure_future(redis.get(f"later-{n}")) for n in range(3)]
    await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    more = asyncio.ensure_future(redis.get("more"))  # issued in another loop turn while they wait
    assert await first == b"first"
    assert await asyncio.gather(*later, more) == [b"later-0", b"later-1", b"later-2", b"more"]
    assert len(slow._open) == 1  # never a second connection
    await redis.aclose()
    await asyncio.sleep(0.05)
    assert not slow._open  # closing the client closed its own connection too


async def test_a_round_trip_under_way_when_the_client_closes_leaves_no_connection_open(slow: SlowRedis) -> None:
    redis = connect(f"redis://127.0.0.1:{slow.port}/0")
    slow.delay = 0.2
    under_way = asyncio.ensure_future(redis.get("key"))
    await asyncio.sleep(0.05)
    await redis.aclose()
    assert await under_way == b"key"  # it still gets its answer
    await asyncio.sleep(0.05)
    assert not slow._open
    assert await redis.get("again") == b"again"  # a closed client can still be used, as redis-py's can
    await redis.aclose()
