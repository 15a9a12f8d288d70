"""Commands are packed by hiredis exactly as redis-py's own asyncio connection packs them."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from hermes.adapters.redis.client import connect

COMMANDS = [
    ("GET", "creds:{cust_1}:telegram"),
    ("SET", "k", b"\x00envelope\r\n\xff", "EX", 60),
    ("EVALSHA", "a" * 40, 2, "k1", "k2", 8, 0.1, 1e20, -5),
    ("HSET", "h", "f", "naïve ✓", "g", memoryview(b"view"), "b", bytearray(b"array")),
    ("CONFIG GET", "maxmemory"),  # a command name of two words is sent as two arguments
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_bytes_on_the_wire_are_redis_pys(command: tuple[object, ...]) -> None:
    ours = connect("redis://127.0.0.1:1/0").connection_pool.connection_class()
    theirs = Connection()
    assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


@pytest.mark.parametrize("value", [None, True, object()])
def test_a_value_redis_cannot_store_is_refused_before_sending(value: object) -> None:
    ours = connect("redis://127.0.0.1:1/0").connection_pool.connection_class()
    with pytest.raises(DataError):
        ours.pack_command("SET", "k", value)


@pytest.mark.parametrize(
    ("url", "kind"),
    [("rediss://127.0.0.1:1/0", SSLConnection), ("unix:///tmp/redis.sock?db=0", UnixDomainSocketConnection)],
)
def test_the_url_still_chooses_the_transport(url: str, kind: type) -> None:
    assert issubclass(connect(url).connection_pool.connection_class, kind)


def test_a_pipeline_is_packed_as_redis_py_packs_it() -> None:
    ours = connect("redis://127.0.0.1:1/0").connection_pool.connection_class()
    theirs = Connection()
    assert b"".join(ours.pack_commands(COMMANDS)) == b"".join(theirs.pack_commands(COMMANDS))
