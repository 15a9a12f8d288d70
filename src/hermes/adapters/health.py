"""Readiness: can this instance reach its database and Redis right now?"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hermes.adapters.redis.client import RedisClient
from hermes.adapters.redis.durability import durability_problems
from hermes.application.ports.health import Infrastructure


class InfrastructureProbe(Infrastructure):
    def __init__(self, engine: AsyncEngine, redis: RedisClient | None) -> None:
        self._engine = engine
        self._redis = redis

    async def check(self, timeout: float = 2.0) -> dict[str, str]:
        checks = {"database": await self._check_database(timeout)}
        if self._redis is not None:
            checks["redis"] = await self._check_redis(timeout)
        return checks

    async def durability_problems(self) -> list[str]:
        if self._redis is None:
            return []  # embedded: everything durable is in the SQL database
        try:
            return await durability_problems(self._redis)
        except Exception as exc:  # CONFIG may be disabled on managed Redis: say so rather than guess
            return [f"could not read the Redis configuration ({type(exc).__name__}); check persistence by hand"]

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
