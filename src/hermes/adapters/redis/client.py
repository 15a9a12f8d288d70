"""Redis connection and error translation shared by the Redis adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hermes.domain.errors import Unavailable

RedisClient = Redis | RedisCluster


def connect(url: str, *, cluster: bool = False) -> RedisClient:
    """A client with short timeouts: a stalled Redis must become a 503, not a hung request."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 2.0,
        "health_check_interval": 15,
    }
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, max_connections=256, **options)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise Unavailable("the data store is unavailable; try again shortly") from exc
    except RedisError as exc:
        raise Unavailable("the data store refused the operation; try again shortly") from exc
