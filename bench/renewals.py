"""What one pass of the managed-OAuth token sweep costs on an instance, against the sweep it replaced.

10,000 stored credentials (a fifth of them X tokens, the rest other platforms), 1 % of the X tokens due
for renewal. The baseline is the earlier sweep, run in the same process on the same data: walk every
stored credential (SCAN + GET each), decrypt each managed one and check whether it is due. Hermes's pass
claims what is due from the shared renewal schedule and opens only that. The platform's token endpoint
is a fake that answers at once; both sides renew the same accounts (restored between the two).
Every command the Redis client sends is counted; CPU is this process's.

Run: `.venv/bin/python -m bench.renewals [--accounts 10000]` (`BENCH_REDIS_URL`, default database 1).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import hermes.adapters.platforms  # noqa: F401 - declares the platforms the store parses its keys by
from hermes.adapters.crypto.aes_gcm import AesGcmCipher, parse_keyring
from hermes.adapters.memory.managed_oauth import InMemoryAccountStatuses, InMemoryConnectRequests
from hermes.adapters.redis.account_health import RedisAccountSchedule
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.credential_store import RedisCredentialStore
from hermes.adapters.redis.managed_oauth import RedisRefreshLocks
from hermes.application.credential_vault import CredentialVault
from hermes.application.fresh_credentials import FreshCredentials
from hermes.application.token_renewals import TokenRenewals
from hermes.application.use_cases.create_connect_link import CreateConnectLink
from hermes.application.use_cases.once_per_deployment import OncePerDeployment
from hermes.application.use_cases.refresh_expiring_credentials import RefreshExpiringCredentials
from hermes.domain.credentials import Credentials
from hermes.domain.platform import Platform

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
KEYRING = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
X = Platform.TWITTER
OTHERS = (Platform.TELEGRAM, Platform.DISCORD, Platform.EMAIL, Platform.WHATSAPP)


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class InstantX:
    """X's token endpoint answering at once with a rotated refresh token."""

    def __init__(self) -> None:
        self.refreshes = 0

    def platforms(self) -> Sequence[Platform]:
        return [X]

    def uses_pkce(self, platform: Platform) -> bool:
        return True

    def renewable(self, platform: Platform, credentials: Credentials) -> bool:
        return isinstance(credentials.get("refreshToken"), str)

    def refresh_ahead(self, platform: Platform) -> float:
        return 20 * 60

    def authorize_url(self, platform: Platform, state: str, code_challenge: str | None, redirect_uri: str) -> str:
        return "https://x.test/authorize"

    async def exchange(self, platform: Platform, code: str, verifier: str | None, redirect_uri: str) -> Credentials:
        raise NotImplementedError

    async def refresh(self, platform: Platform, credentials: Credentials) -> Credentials:
        self.refreshes += 1
        return issued(f"renewed-{self.refreshes}", 7200)


def issued(token: str, lifetime: int) -> Credentials:
    ends = int((datetime.now(UTC) + timedelta(seconds=lifetime)).timestamp())
    return {"accessToken": token, "refreshToken": f"refresh-{token}", "expiresAt": ends}


@asynccontextmanager
async def counted(redis: Any, tally: dict[str, int]) -> Any:
    send = redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        tally["commands"] += 1
        return await send(*args, **options)

    redis.execute_command = counting
    try:
        yield
    finally:
        redis.execute_command = send


async def baseline_pass(fresh: FreshCredentials) -> int:
    """The earlier sweep: every stored envelope read, every managed one opened."""
    renewed = 0
    async for customer_id, platform, account, envelope in fresh.vault.store.scan():
        if platform not in fresh.platforms:
            continue
        try:
            credentials = fresh.vault.open(customer_id, platform, envelope, account)
        except ValueError:
            continue
        if fresh.due(platform, credentials):
            await fresh(customer_id, platform, credentials, account)
            renewed += 1
    return renewed


async def measure(accounts: int) -> dict[str, Any]:
    redis = connect(REDIS_URL, batching=False)
    run_id = f"bench-renewals-{time.time_ns()}"
    auth = InstantX()
    vault = CredentialVault(AesGcmCipher(parse_keyring(KEYRING)), RedisCredentialStore(redis))
    schedule = RedisAccountSchedule(redis, key=f"{run_id}:due")
    renewals = TokenRenewals(auth, schedule)
    statuses, clock = InMemoryAccountStatuses(), Clock()
    links = CreateConnectLink(auth, InMemoryConnectRequests(), clock, "https://hermes.example")
    fresh = FreshCredentials(vault, auth, statuses, RedisRefreshLocks(redis), clock, links, renewals=renewals)
    sweep = RefreshExpiringCredentials(fresh, renewals)
    stored: list[tuple[str, Platform]] = []
    managed = accounts // 5
    due = [f"{run_id}-{i}" for i in range(0, managed, 100)]
    figures: dict[str, Any] = {"accounts": accounts, "managed": managed, "due": len(due)}
    try:
        for i in range(accounts):
            customer = f"{run_id}-{i}"
            platform = X if i < managed else OTHERS[i % len(OTHERS)]
            stored.append((customer, platform))
            lifetime = 60 if customer in due else 7200
            await vault.save(customer, platform, issued(customer, lifetime) if platform is X else {"t": customer})
        walk = await OncePerDeployment(sweep.schedule_page, _Done(), pause=0.0)()
        figures["scheduled"] = walk.added
        for name, one_pass in (("baseline", lambda: baseline_pass(fresh)), ("hermes", sweep)):
            for customer in due:  # both sides renew the same accounts
                await vault.save(customer, X, issued(customer, 60))
                await renewals.track(customer, X, "default", issued(customer, 60))
            tally = {"commands": 0}
            cpu, wall = time.process_time(), time.perf_counter()
            async with counted(redis, tally):
                await one_pass()
            figures[f"{name}_cpu_ms"] = round((time.process_time() - cpu) * 1000, 1)
            figures[f"{name}_wall_ms"] = round((time.perf_counter() - wall) * 1000, 1)
            figures[f"{name}_redis_commands"] = tally["commands"]
        figures["renewals"] = auth.refreshes
        figures["idle_pass_redis_commands"] = await _idle(redis, sweep)
    finally:
        await redis.delete(f"{run_id}:due")
        for customer, platform in stored:
            await vault.remove(customer, platform)
        await redis.aclose()
    figures["cpu_ratio"] = round(figures["hermes_cpu_ms"] / max(0.1, figures["baseline_cpu_ms"]), 3)
    return figures


async def _idle(redis: Any, sweep: RefreshExpiringCredentials) -> int:
    """A pass when nothing is due: what every instance pays every few minutes."""
    tally = {"commands": 0}
    async with counted(redis, tally):
        await sweep()
    return tally["commands"]


class _Done:
    """Progress of a walk this benchmark runs alone."""

    async def done(self) -> bool:
        return False

    async def take(self, holder: str, lease: float) -> str | None:
        return ""

    async def advance(self, holder: str, position: str, lease: float) -> bool:
        return True

    async def finish(self, holder: str) -> None:
        return None


def run(duration: int = 10, runs: int = 1, profile_seconds: int = 0, **_: Any) -> list[dict[str, object]]:
    result = asyncio.run(measure(10_000))
    print(result)
    return [
        {
            "figure": f"token sweep pass, {result['accounts']:,} stored credentials, {result['due']} due",
            "baseline": (
                f"walk every credential: {result['baseline_cpu_ms']} ms CPU, "
                f"{result['baseline_redis_commands']} Redis commands"
            ),
            "goal": (
                f"claim what is due: {result['hermes_cpu_ms']} ms CPU ({result['cpu_ratio']}x), "
                f"{result['hermes_redis_commands']} Redis commands; idle pass "
                f"{result['idle_pass_redis_commands']} command(s)"
            ),
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    for key, value in asyncio.run(measure(args.accounts)).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
