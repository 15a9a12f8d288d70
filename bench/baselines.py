"""Bare baselines measured beside Hermes in the same run (PERFORMANCE.md)."""

from __future__ import annotations

import os

from litestar import Litestar, get
from redis.asyncio import Redis

_redis = Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
_KEY = os.environ.get("BENCH_REDIS_KEY", "bench:baseline")


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/one-get")
async def one_get() -> dict[str, bool]:
    """A bare Litestar endpoint doing one Redis GET: the baseline for GET /api/connections."""
    value = await _redis.get(_KEY)
    return {"found": value is not None}


def redis_get_app() -> Litestar:
    return Litestar([healthz, one_get], debug=False)
