"""GET /api/connections against a bare Litestar endpoint doing one Redis GET, measured in the same run.

Goal (PERFORMANCE.md): >= 0.8x. Run: `.venv/bin/python bench/connections.py [--duration 10 --runs 3]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import subprocess

import httpx

from bench.harness import median_of, report, serve, wrk
from hermes.adapters.sql.migrate import upgrade_url

REDIS_URL = "redis://127.0.0.1:6379/0"


def hermes_env(database_url: str) -> dict[str, str]:
    return {
        "HERMES_DATABASE_URL": database_url,
        "HERMES_REDIS_URL": REDIS_URL,
        "HERMES_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "HERMES_ADMIN_TOKEN": "bench-admin",
        "HERMES_LOG_LEVEL": "WARNING",
    }


def bench_database() -> str:
    name = f"hermes_bench_{secrets.token_hex(3)}"
    subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"CREATE DATABASE {name}"], check=True)
    url = f"mysql+asyncmy://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    asyncio.run(upgrade_url(url))
    return url


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE IF EXISTS {name}"], check=False)


def run(duration: int = 10, runs: int = 3, connections: int = 50) -> list[dict[str, object]]:
    def measure(url: str, headers: dict[str, str] | None = None) -> object:
        return lambda: wrk(url, headers=headers, connections=connections, duration=duration)

    with serve(["--factory", "bench.baselines:redis_get_app"], {}) as base:
        baseline = median_of(runs, measure(base + "/one-get"))

    database_url = bench_database()
    try:
        with serve(["--factory", "hermes.entrypoints.http.app:make_app"], hermes_env(database_url)) as url:
            created = httpx.post(
                url + "/admin/customers",
                json={"email": "bench@example.com", "plan": "enterprise"},
                headers={"Authorization": "Bearer bench-admin"},
            ).json()
            key = {"x-api-key": created["apiKey"]}
            httpx.post(url + "/api/connect/telegram", json={"botToken": "123456789:" + "A" * 35}, headers=key)
            result = median_of(runs, measure(url + "/api/connections", key))
    finally:
        drop_database(database_url)
    return [report("GET /api/connections", "bare Litestar + one Redis GET", baseline, "Hermes", result, ">= 0.8x")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    run(args.duration, args.runs, args.connections)


if __name__ == "__main__":
    main()
