"""GET /api/connections against a bare Litestar endpoint doing one Redis GET, measured in the same run.

Goal (PERFORMANCE.md): >= 0.9x. Run: `.venv/bin/python bench/connections.py [--duration 10 --runs 3]`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess

import httpx

from bench.harness import (
    PROFILE_SECONDS,
    WrkRequest,
    command_line,
    median_of,
    profile,
    report,
    serve,
    wrk,
    wrk_requests,
)
from hermes.adapters.sql.migrate import upgrade_url

# A database of its own, emptied after every benchmark: nothing left behind for the test suite.
# BENCH_REDIS_URL picks another one (the bare baseline reads the same variable), so that two
# checkouts can measure side by side.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
CUSTOMERS = 40  # 40 x 30,000 requests a minute (enterprise): far above what one instance serves


def new_customer(url: str, email: str, plan: str = "enterprise") -> dict[str, str]:
    """A customer created through the admin API: its `id` and `apiKey`."""
    created = httpx.post(
        url + "/admin/customers", json={"email": email, "plan": plan}, headers={"Authorization": "Bearer bench-admin"}
    )
    created.raise_for_status()
    customer: dict[str, str] = created.json()
    return customer


def create_customer(url: str, email: str, plan: str = "enterprise") -> str:
    return new_customer(url, email, plan)["apiKey"]


def hermes_env(database_url: str) -> dict[str, str]:
    return {
        "HERMES_DATABASE_URL": database_url,
        "HERMES_REDIS_URL": REDIS_URL,
        "HERMES_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "HERMES_ADMIN_TOKEN": "bench-admin",
        # The production default log level (INFO): what is logged per request is part of the cost.
    }


def bench_database() -> str:
    name = f"hermes_bench_{secrets.token_hex(3)}"
    subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"CREATE DATABASE {name}"], check=True)
    url = f"mysql+asyncmy://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    asyncio.run(upgrade_url(url))
    return url


def drop_database(url: str) -> None:
    """Drop the benchmark's MariaDB database and empty its Redis database."""
    name = url.rsplit("/", 1)[1].split("?")[0]
    subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE IF EXISTS {name}"], check=False)
    subprocess.run(["redis-cli", "-u", REDIS_URL, "flushdb"], check=False, capture_output=True)


def run(
    duration: int = 10, runs: int = 3, connections: int = 50, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    def measure(url: str, headers: dict[str, str] | None = None) -> object:
        return lambda: wrk(url, headers=headers, connections=connections, duration=duration)

    with serve(["--factory", "bench.baselines:redis_get_app"], {}) as base:
        baseline = median_of(runs, measure(base + "/one-get"))

    database_url = bench_database()
    try:
        with serve(["--factory", "hermes.entrypoints.http.app:make_app"], hermes_env(database_url)) as url:
            # Spread over enough customers that no plan's per-minute limit is reached (429s would be no figure).
            requests: list[WrkRequest] = []
            for n in range(CUSTOMERS):
                key = {"x-api-key": create_customer(url, f"bench{n}@example.com")}
                # Stored unverified (the bench has no network): each answer lists one account.
                httpx.post(
                    url + "/api/connect/discord?verify=false", json={"botToken": "MTA.bench.token"}, headers=key
                ).raise_for_status()
                requests.append(("GET", "/api/connections", key, None))
            result = median_of(runs, lambda: wrk_requests(url, requests, connections=connections, duration=duration))
            profiled = profile("connections", url, requests, seconds=profile_seconds, connections=connections)
    finally:
        drop_database(database_url)
    return [
        report("GET /api/connections", "bare Litestar + one Redis GET", baseline, "Hermes", result, ">= 0.9x", profiled)
    ]


if __name__ == "__main__":
    command_line(run)
