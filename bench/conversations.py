"""GET /api/conversations (the REST twin of conversations_list) for customers with 10,000 conversations and
100,000 messages each, against GET /api/connections for the same customers in the same run; and Redis memory
per 1,000 stored messages.

Goal: >= 0.8x; the two are measured in turns, `runs` times each. Seeding writes through the Redis store
itself (its script, auto-pipelined) into Redis database 1 (or BENCH_REDIS_URL's), which is emptied afterwards.
Several customers share the load so that no plan's per-minute limit is reached.
Run: `.venv/bin/python -m bench.conversations [--duration 10 --runs 3]`; `BENCH_CONVERSATIONS=100` makes a
quick smoke run.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import httpx

from bench.connections import REDIS_URL, bench_database, drop_database, hermes_env
from bench.harness import (
    PROFILE_SECONDS,
    WrkRequest,
    WrkResult,
    command_line,
    median,
    profile,
    report,
    serve,
    wrk_requests,
)
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.conversations import RedisConversationStore
from hermes.domain.conversations import IN, OUT, ConversationKey, MessageView, Participant, Recorded
from hermes.domain.platform import Platform

CONVERSATIONS = int(os.environ.get("BENCH_CONVERSATIONS", "10000"))
MESSAGES_EACH = 10
CUSTOMERS = int(os.environ.get("BENCH_CONVERSATION_CUSTOMERS", "8"))
CHUNK = 2_000


def _records(customer_id: str, n: int, start: datetime) -> list[Recorded]:
    peer = f"1555{n:08d}"
    key = ConversationKey(customer_id, Platform.WHATSAPP, peer)
    out: list[Recorded] = []
    for m in range(MESSAGES_EACH):
        inbound = m % 2 == 0
        at = start + timedelta(seconds=n * 60 + m)
        text = f"message {m} in conversation {n}: can we move the meeting to Thursday afternoon?"
        message = MessageView(f"wamid.{n}.{m}", IN if inbound else OUT, peer if inbound else "me", text, at)
        out.append(Recorded(key, message, f"Contact {n}", (Participant(peer, f"Contact {n}"),)))
    return out


async def seed(customer_ids: list[str]) -> float:
    """Every customer gets CONVERSATIONS x MESSAGES_EACH messages; returns Redis bytes per 1,000 messages."""
    redis = connect(REDIS_URL)
    store = RedisConversationStore(redis)
    start = datetime.now(UTC) - timedelta(days=30)
    try:
        for customer_id in customer_ids:
            pending: list[Recorded] = []
            for n in range(CONVERSATIONS):
                pending += _records(customer_id, n, start)
                if len(pending) >= CHUNK:
                    await asyncio.gather(*(store.record(customer_id, [r], start) for r in pending))
                    pending = []
            if pending:
                await asyncio.gather(*(store.record(customer_id, [r], start) for r in pending))
        used = 0
        async for key in redis.scan_iter(match=f"conv:{{{customer_ids[0]}}}*", count=1000):
            used += int(await redis.memory_usage(key) or 0)
        return used / (CONVERSATIONS * MESSAGES_EACH / 1000)
    finally:
        await redis.aclose()


def run(
    duration: int = 10, runs: int = 3, connections: int = 50, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    database_url = bench_database()
    admin = {"Authorization": "Bearer bench-admin"}
    try:
        with serve(["--factory", "hermes.entrypoints.http.app:make_app"], hermes_env(database_url)) as url:
            keys: list[dict[str, str]] = []
            ids: list[str] = []
            for n in range(CUSTOMERS):
                created = httpx.post(
                    url + "/admin/customers",
                    json={"email": f"conv{n}@example.com", "plan": "enterprise"},
                    headers=admin,
                )
                created.raise_for_status()
                keys.append({"x-api-key": created.json()["apiKey"]})
                ids.append(created.json()["id"])
            per_thousand = asyncio.run(seed(ids))
            listing: list[WrkRequest] = [("GET", "/api/conversations", k, None) for k in keys]
            baseline: list[WrkRequest] = [("GET", "/api/connections", k, None) for k in keys]
            first = httpx.get(url + "/api/conversations", headers=keys[0]).json()
            if len(first["conversations"]) != min(20, CONVERSATIONS):
                raise SystemExit(f"the seeded conversations are not listed: {first}")

            def measure(requests: list[WrkRequest]) -> WrkResult:
                return wrk_requests(url, requests, connections=connections, duration=duration)

            # Interleaved, so that drift in the machine's load falls on both sides alike.
            pairs = [(measure(baseline), measure(listing)) for _ in range(runs)]
            connections_result = median([p[0] for p in pairs])
            conversations_result = median([p[1] for p in pairs])
            profiled = profile("conversations", url, listing, seconds=profile_seconds, connections=connections)
    finally:
        drop_database(database_url)
    total = CONVERSATIONS * MESSAGES_EACH
    print(
        f"\nRedis memory: {per_thousand / 1024:.1f} KiB per 1,000 stored messages "
        f"({CONVERSATIONS} conversations, {total} messages)"
    )
    row = report(
        f"GET /api/conversations ({CONVERSATIONS} conversations, {total} messages)",
        "GET /api/connections, same customers",
        connections_result,
        "Hermes conversations",
        conversations_result,
        ">= 0.8x",
        profiled,
    )
    row["goal"] = f"{row['goal']}; Redis {per_thousand / 1024:.0f} KiB per 1,000 messages"
    return [row]


if __name__ == "__main__":
    command_line(run)
