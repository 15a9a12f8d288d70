"""GET /api/conversations (the REST twin of conversations_list) for customers with 10,000 conversations and
100,000 messages each, against GET /api/connections for the same customers in the same run; and Redis memory
per 1,000 stored messages.

Two figures: polled as an agent waiting for replies polls it (pages kept rendered between changes), and with
no page kept (HERMES_CONVERSATION_PAGES_KEPT=0), which is what the first call after every change costs.

Goal: >= 0.8x; the two are measured in turns, `runs` times each. Seeding writes through the Redis store
itself (its script, auto-pipelined) into Redis database 1 (or BENCH_REDIS_URL's), which is emptied afterwards.
Several customers share the load so that no plan's per-minute limit is reached; the first is seeded through the
store, the others get copies of its keys.
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
# Enough customers that none reaches its plan's per-minute limit (30,000 on enterprise) at the rates measured.
CUSTOMERS = int(os.environ.get("BENCH_CONVERSATION_CUSTOMERS", "32"))
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
    """Every customer gets CONVERSATIONS x MESSAGES_EACH messages; returns Redis bytes per 1,000 messages.

    The first customer's are written through the store, message by message; every other customer gets a copy of
    each of its keys (Redis COPY), which is the same data at a fraction of the time."""
    redis = connect(REDIS_URL)
    store = RedisConversationStore(redis)
    start = datetime.now(UTC) - timedelta(days=30)
    first = customer_ids[0]
    try:
        pending: list[Recorded] = []
        for n in range(CONVERSATIONS):
            pending += _records(first, n, start)
            if len(pending) >= CHUNK:
                await asyncio.gather(*(store.record(first, [r], start) for r in pending))
                pending = []
        if pending:
            await asyncio.gather(*(store.record(first, [r], start) for r in pending))
        used = 0
        keys: list[str] = []
        async for raw in redis.scan_iter(match=f"conv:{{{first}}}*", count=1000):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            keys.append(key)
            used += int(await redis.memory_usage(key) or 0)
        prefix = f"conv:{{{first}}}"
        for other in customer_ids[1:]:
            for i in range(0, len(keys), CHUNK):
                await asyncio.gather(
                    *(redis.copy(k, f"conv:{{{other}}}" + k[len(prefix) :]) for k in keys[i : i + CHUNK])
                )
        return used / (CONVERSATIONS * MESSAGES_EACH / 1000)
    finally:
        await redis.aclose()


def run(
    duration: int = 10, runs: int = 3, connections: int = 50, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    database_url = bench_database()
    admin = {"Authorization": "Bearer bench-admin"}
    env = hermes_env(database_url)
    try:
        with serve(["--factory", "hermes.entrypoints.http.app:make_app"], env) as url:
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
            kept = _pairs(url, baseline, listing, runs, connections, duration)
            kept_profile = profile("conversations", url, listing, seconds=profile_seconds, connections=connections)
        # The same list with no page kept: what the first call after every change costs.
        with serve(["--factory", "hermes.entrypoints.http.app:make_app"], {**env, NO_PAGES_KEPT: "0"}) as url:
            fresh = _pairs(url, baseline, listing, runs, connections, duration)
            fresh_profile = profile(
                "conversations-rendered", url, listing, seconds=profile_seconds, connections=connections
            )
    finally:
        drop_database(database_url)
    total = CONVERSATIONS * MESSAGES_EACH
    print(
        f"\nRedis memory: {per_thousand / 1024:.1f} KiB per 1,000 stored messages "
        f"({CONVERSATIONS} conversations, {total} messages)"
    )
    row = report(
        f"GET /api/conversations ({CONVERSATIONS} conversations, {total} messages), polled",
        "GET /api/connections, same customers",
        kept[0],
        "Hermes conversations",
        kept[1],
        ">= 0.8x",
        kept_profile,
    )
    row["goal"] = f"{row['goal']}; Redis {per_thousand / 1024:.0f} KiB per 1,000 messages"
    rendered = report(
        f"GET /api/conversations, every page rendered afresh ({NO_PAGES_KEPT}=0: as after every change)",
        "GET /api/connections, same customers",
        fresh[0],
        "Hermes conversations",
        fresh[1],
        "reported",
        fresh_profile,
    )
    return [row, rendered]


NO_PAGES_KEPT = "HERMES_CONVERSATION_PAGES_KEPT"


def _pairs(
    url: str, baseline: list[WrkRequest], listing: list[WrkRequest], runs: int, connections: int, duration: int
) -> tuple[WrkResult, WrkResult]:
    """The baseline and the listing, each `runs` times, interleaved so that drift in the machine's load falls on
    both sides alike; the median of each."""
    pairs = [
        (
            wrk_requests(url, baseline, connections=connections, duration=duration),
            wrk_requests(url, listing, connections=connections, duration=duration),
        )
        for _ in range(runs)
    ]
    return median([p[0] for p in pairs]), median([p[1] for p in pairs])


if __name__ == "__main__":
    command_line(run)
