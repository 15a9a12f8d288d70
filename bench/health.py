"""What the background health check costs: per 10,000 connected accounts, the Redis commands and platform
calls it makes in an hour, and how evenly its checks spread over time.

The scheduler runs for real against the benchmarks' Redis database (`BENCH_REDIS_URL`, default database 1)
with a clock that jumps one poll interval per step, so a simulated day takes seconds; the platform is a
counting fake that accepts every credential. The accounts are stored as they were before checks existed
(no schedule), so the figure includes spreading a whole deployment's first checks. Every command the Redis
client sends is counted.

Run: `.venv/bin/python -m bench.health [--accounts 10000 --hours 24]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.connections import REDIS_URL
from hermes.adapters.crypto.aes_gcm import AesGcmCipher, parse_keyring
from hermes.adapters.memory.inbound import InMemoryInbox
from hermes.adapters.redis.account_health import RedisAccountSchedule
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.credential_store import RedisCredentialStore
from hermes.adapters.redis.managed_oauth import RedisAccountStatuses
from hermes.application.account_health import AccountHealthRecorder
from hermes.application.credential_vault import CredentialVault
from hermes.application.inbound_handlers import LoggingInboundHandler
from hermes.application.use_cases.check_account_health import CheckAccountHealth
from hermes.domain.credentials import Credentials
from hermes.domain.platform import Platform

INTERVAL_HOURS = 6.0
POLL_SECONDS = 30.0  # HERMES_HEALTH_CHECK_POLL_SECONDS's default
KEYRING = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
PLATFORMS = (Platform.TELEGRAM, Platform.DISCORD, Platform.EMAIL, Platform.WHATSAPP)


class SimulatedClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current


class CountingPlatform:
    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self.per_minute: Counter[int] = Counter()
        self.calls = 0

    async def verify(self, platform: Platform, credentials: Credentials) -> None:
        self.calls += 1
        self.per_minute[int(self.clock.now().timestamp() // 60)] += 1


async def measure(accounts: int, hours: float, seed: int = 1) -> dict[str, Any]:
    redis = connect(REDIS_URL, batching=False)
    commands = 0
    send = redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        nonlocal commands
        commands += 1
        return await send(*args, **options)

    redis.execute_command = counted  # type: ignore[method-assign]
    run_id = f"bench-health-{seed}-{time.time_ns()}"
    clock = SimulatedClock()
    platform = CountingPlatform(clock)
    vault = CredentialVault(AesGcmCipher(parse_keyring(KEYRING)), RedisCredentialStore(redis))
    schedule = RedisAccountSchedule(redis, key=f"{run_id}:due")
    statuses = RedisAccountStatuses(redis)
    rng = random.Random(seed)
    health = AccountHealthRecorder(
        statuses, InMemoryInbox(), LoggingInboundHandler(), clock, schedule, interval=INTERVAL_HOURS * 3600
    )
    check = CheckAccountHealth(
        vault, platform, schedule, health, clock, interval=INTERVAL_HOURS * 3600, uniform=rng.uniform
    )
    customers = [f"{run_id}-{i}" for i in range(accounts)]
    try:
        for customer, p in zip(customers, itertools.cycle(PLATFORMS), strict=False):
            await vault.save(customer, p, {"token": customer})
        commands = 0
        added = await check.schedule_unscheduled()
        start = clock.current
        steps = int(hours * 3600 / POLL_SECONDS)
        wall = time.perf_counter()
        for step in range(steps):
            clock.current = start + timedelta(seconds=step * POLL_SECONDS)
            while (await check()).more:
                pass
        wall = time.perf_counter() - wall
        first = int(start.timestamp() // 60)
        minutes = [platform.per_minute.get(m, 0) for m in range(first, first + int(hours * 60))]
    finally:
        await redis.delete(f"{run_id}:due")
        for customer in customers:
            await redis.delete(f"account:status:{{{customer}}}")
        for customer, p in zip(customers, itertools.cycle(PLATFORMS), strict=False):
            await vault.remove(customer, p)
        await redis.aclose()
    scale = 10_000 / accounts
    return {
        "accounts": accounts,
        "hours": hours,
        "scheduled": added,
        "platform_calls_per_hour": round(platform.calls / hours * scale),
        "redis_commands_per_hour": round(commands / hours * scale),
        "redis_commands_per_check": round(commands / max(1, platform.calls), 2),
        "even_share_per_minute": round(accounts / (INTERVAL_HOURS * 60), 1),
        "max_checks_in_a_minute": max(minutes),
        "max_checks_in_a_minute_per_10k": round(max(minutes) * scale),
        "busiest_minute_vs_even": round(max(minutes) / (accounts / (INTERVAL_HOURS * 60)), 2),
        "wall_seconds": round(wall, 1),
    }


def run(duration: int = 10, runs: int = 1, profile_seconds: int = 0, **_: Any) -> list[dict[str, object]]:
    result = asyncio.run(measure(10_000, 24.0))
    print(result)
    return [
        {
            "figure": f"health checks, 10,000 accounts, every {INTERVAL_HOURS:g} h (a simulated day)",
            "baseline": f"even spread: {result['even_share_per_minute']} checks/min",
            "goal": (
                f"{result['platform_calls_per_hour']} platform calls/h, "
                f"{result['redis_commands_per_hour']} Redis commands/h "
                f"({result['redis_commands_per_check']} per check), busiest minute "
                f"{result['max_checks_in_a_minute']} checks ({result['busiest_minute_vs_even']}x the even share)"
            ),
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    for key, value in asyncio.run(measure(args.accounts, args.hours)).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
