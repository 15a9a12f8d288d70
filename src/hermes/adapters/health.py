"""Readiness: can this instance reach its database and Redis right now?"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.client import RedisClient


class InfrastructureProbe:
    def __init__(self, engine: AsyncEngine, redis: RedisClient | None) -> None:
        self._engine = engine
        self._redis = redis

    async def check(self, timeout: float = 2.0) -> dict[str, str]:
        checks = {"database": await self._check_database(timeout)}
        if self._redis is not None:
            checks["redis"] = await self._check_redis(timeout)
        return checks

    async def _check_database(self, timeout: float) -> str:
        try:
            async with asyncio.timeout(timeout), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return "unavailable"
        return "ok"

    async def _check_redis(self, timeout: float) -> str:
        assert self._redis is not None
        try:
            async with asyncio.timeout(timeout):
                await self._redis.ping()
        except Exception:
            return "unavailable"
        return "ok"
