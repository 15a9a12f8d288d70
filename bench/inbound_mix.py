"""Ack to conversation at 1,000 webhooks/s spread over WhatsApp, Instagram and Telegram.

Goal (PERFORMANCE.md): from the webhook's 200 to the message being readable in its conversation (what
`conversation_read` reads), p99 < 100 ms; nothing lost, nothing duplicated.

Three customers each connect one account as a customer does: a WhatsApp number and an Instagram account that
Hermes proves against a fake Graph API, a Telegram bot whose webhook Hermes sets (`setWebhook` with a
`secret_token`) on a fake Bot API (tests/fakes). An open loop then posts `RATE` webhooks a second, in turn to
`/webhook/whatsapp`, `/webhook/instagram` and `/webhook/telegram/{botId}`, each in its platform's wire format
and authentication (Meta's `X-Hub-Signature-256`, Telegram's `X-Telegram-Bot-Api-Secret-Token`), built by the
integration tests' platform sides. Every message is new; one in `RETRY_EVERY` is posted again, byte for byte,
`RETRY_AFTER` requests later, as Meta and Telegram retry a delivery they think failed.

While it runs, the acknowledged messages are looked up in their conversations every `POLL_SECONDS` (the
order set `conversation_read` pages through); afterwards every conversation and inbox is read in full through
the stores to count what was lost (acknowledged, never in its conversation) and duplicated (a message twice in
a conversation, or a retried delivery stored twice in the inbox). Hermes's CPU per webhook counts everything
it did from the first request until the last message was in its conversation. The same open loop, run again
under py-spy, shows where that CPU went.

Run: `.venv/bin/python -m bench.inbound_mix [--duration 5 --runs 1 --profile-seconds 5]`.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from tests import whatsapp_payloads as wa
from tests.fakes.graph import FakeGraph
from tests.fakes.telegram import FakeTelegram
from tests.integration.inbound_sides import INSTAGRAM_SECRET, PUBLIC, Delivery, Fakes, Side, sides
from tests.support import WHATSAPP_GRAPHS

from bench.connections import REDIS_URL, bench_database, drop_database, hermes_env, new_customer
from bench.harness import (
    PIDS,
    PROFILE_SECONDS,
    OpenLoop,
    WrkRequest,
    command_line,
    cpu_seconds,
    cpu_text,
    machine,
    open_loop,
    pct,
    profile,
    profile_row,
    serve,
)
from bench.webhook import APP_SECRET, delete_baseline_stream, drain, drain_seconds, signed_requests
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.conversations import RedisConversationStore
from hermes.adapters.redis.inbox import RedisInbox
from hermes.application.ports.conversations import Position
from hermes.domain.conversations import MAX_MESSAGES_PER_CONVERSATION, ConversationKey
from hermes.domain.platform import Platform

RATE = 1000  # webhooks a second, retries included, spread evenly over the three platforms
RETRY_EVERY = 20  # one message in 20 is delivered twice
RETRY_AFTER = 500  # requests later: half a second at RATE
# Each peer writes this many messages per run: well under what a conversation keeps, so none gives way.
MESSAGES_PER_PEER = 100
POLL_SECONDS = 0.002
SETTLE_SECONDS = 30.0  # after the last answer, how long a message may take to reach its conversation
GOAL = "p99 < 100 ms, nothing lost, nothing duplicated"
# Where each platform's peer ids start: a WhatsApp number, an Instagram-scoped id, a Telegram user (private chat).
PEER_BASE = {
    Platform.WHATSAPP: 155_500_000_000,
    Platform.INSTAGRAM: 1_789_000_000_000_000,
    Platform.TELEGRAM: 600_000_000,
}

assert MESSAGES_PER_PEER < MAX_MESSAGES_PER_CONVERSATION


# --- pure parts (tests/unit/test_bench_harness.py) ------------------------------------------------


def messages_for(requests: int, retry_every: int = RETRY_EVERY) -> int:
    """How many distinct messages fill `requests` when one in `retry_every` is delivered twice."""
    return requests * retry_every // (retry_every + 1)


def schedule(messages: int, retry_every: int = RETRY_EVERY, retry_after: int = RETRY_AFTER) -> list[int]:
    """The order in which messages are posted: each once, in turn, and every `retry_every`-th (from the first)
    again `retry_after` positions after its first delivery."""
    slots = [(float(n), n) for n in range(messages)]
    slots += [(n + retry_after + 0.5, n) for n in range(0, messages, retry_every)]
    return [n for _, n in sorted(slots)]


@dataclass(frozen=True)
class Census:
    """What the stores hold after a run, against what was acknowledged."""

    lost: int  # acknowledged, never in its conversation
    duplicated_in_conversations: int  # extra copies of a message in a conversation
    duplicated_in_inbox: int  # extra inbox entries for one delivery
    unexpected: int  # in a conversation, never sent

    @property
    def duplicated(self) -> int:
        return self.duplicated_in_conversations + self.duplicated_in_inbox


def census(
    sent: Iterable[Hashable],
    acked: Iterable[Hashable],
    in_conversations: Iterable[Hashable],
    in_inbox: Iterable[Hashable],
) -> Census:
    """Each message is known by one key; `in_conversations` and `in_inbox` list a key once per stored copy."""
    stored = Counter(in_conversations)
    inbox = Counter(in_inbox)
    sent_keys = set(sent)
    return Census(
        lost=sum(1 for key in set(acked) if key not in stored),
        duplicated_in_conversations=sum(n - 1 for n in stored.values()),
        duplicated_in_inbox=sum(n - 1 for n in inbox.values()),
        unexpected=sum(1 for key in stored if key not in sent_keys),
    )


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Account:
    side: Side
    customer_id: str
    account: str  # the phone number id, Instagram user id or bot id


@dataclass(frozen=True)
class Message:
    account: Account
    conversation_id: str
    delivery: Delivery

    @property
    def key(self) -> tuple[str, str]:
        return (self.conversation_id, self.delivery.message_id)


@dataclass
class Run:
    sent: OpenLoop
    messages: list[Message]
    order: list[int]
    readable_at: dict[int, float] = field(default_factory=dict)  # message -> first seen in its conversation
    acked_at: dict[int, float] = field(default_factory=dict)  # message -> its first 200
    cpu_us: float = float("nan")  # Hermes's, per webhook
    sender_share: float = float("nan")  # of one core, the benchmark's own process (sender and look-ups)
    census: Census = Census(0, 0, 0, 0)

    def ack_to_conversation_ms(self) -> list[float]:
        return sorted((self.readable_at[m] - self.acked_at[m]) * 1000 for m in self.readable_at)


async def connect_accounts(url: str, fakes: Fakes) -> list[Account]:
    accounts = []
    for side in sides():
        customer = new_customer(url, f"mix-{side.platform}-{os.getpid()}-{time.time_ns()}@example.com")
        reply, account = await side.connect(url, fakes, customer["apiKey"])
        reply.raise_for_status()
        accounts.append(Account(side, customer["id"], account))
    return accounts


def plan(fakes: Fakes, accounts: list[Account], messages: int) -> list[Message]:
    """Message n goes to account n % 3, from one of that account's peers in turn."""
    share = math.ceil(messages / len(accounts))
    peers = math.ceil(share / MESSAGES_PER_PEER)
    planned = []
    for n in range(messages):
        account = accounts[n % len(accounts)]
        platform = Platform(account.side.platform)
        peer = str(PEER_BASE[platform] + (n // len(accounts)) % peers)
        delivery = account.side.deliver(fakes, account.account, f"message {n}: can we move the call to 3 pm?", peer)
        conversation = ConversationKey(account.customer_id, platform, peer).id
        planned.append(Message(account, conversation, delivery))
    return planned


async def prepare(
    url: str, fakes: Fakes, duration: int
) -> tuple[list[Account], list[int], list[Message], list[WrkRequest]]:
    """Three customers of their own (so that a census reads one run's messages only), and `duration` seconds of
    webhooks to them: the accounts, the posting order, the messages, and the requests in that order."""
    accounts = await connect_accounts(url, fakes)
    order = schedule(messages_for(RATE * duration))
    messages = plan(fakes, accounts, max(order) + 1)
    requests: list[WrkRequest] = [
        ("POST", m.delivery.path, {"Content-Type": "application/json", **m.delivery.headers}, m.delivery.body)
        for m in (messages[n] for n in order)
    ]
    return accounts, order, messages, requests


async def measure(url: str, fakes: Fakes, duration: int) -> Run:
    """One run: the open loop, the look-ups while it runs and until every message is in, then the census."""
    accounts, order, messages, requests = await prepare(url, fakes, duration)
    redis = Redis.from_url(REDIS_URL)
    acked_at: dict[int, float] = {}
    pending: dict[str, dict[str, int]] = {}  # order-set key -> message id -> message

    def on_answer(request: int, status: int, at: float) -> None:
        m = order[request]
        if status == 200 and m not in acked_at:
            acked_at[m] = at
            message = messages[m]
            order_set = f"conv:{{{message.account.customer_id}}}:t:{message.conversation_id}"
            pending.setdefault(order_set, {})[message.delivery.message_id] = m

    readable_at: dict[int, float] = {}
    sending = True

    async def watch() -> None:
        """Look the acknowledged messages up in their conversations until every one is there (or time is up)."""
        deadline = math.inf
        while sending or (pending and time.monotonic() < deadline):
            if not sending and deadline == math.inf:
                deadline = time.monotonic() + SETTLE_SECONDS
            asked = [(key, list(ids)) for key, ids in pending.items() if ids]
            if asked:
                async with redis.pipeline(transaction=False) as pipe:
                    for key, ids in asked:
                        pipe.zmscore(key, ids)
                    replies = await pipe.execute()
                now = time.time()
                for (key, ids), scores in zip(asked, replies, strict=True):
                    for message_id, score in zip(ids, scores, strict=True):
                        if score is not None:
                            readable_at[pending[key].pop(message_id)] = now
                    if not pending[key]:
                        del pending[key]
            await asyncio.sleep(POLL_SECONDS)

    pid = PIDS[url]
    before, own_before, began = cpu_seconds(pid), time.process_time(), time.monotonic()
    watcher = asyncio.create_task(watch())
    sent = await open_loop(url, requests, RATE, on_answer)
    sending = False
    await watcher
    await drain_seconds(redis)
    cpu = cpu_seconds(pid) - before
    sender_share = (time.process_time() - own_before) / (time.monotonic() - began)
    await redis.aclose()
    result = Run(sent, messages, order, readable_at, acked_at, cpu / len(requests) * 1e6, sender_share)
    result.census = await take_census(accounts, messages, acked_at)
    return result


async def take_census(accounts: list[Account], messages: list[Message], acked: Iterable[int]) -> Census:
    """Every conversation and inbox entry of the run's customers, read through Hermes's own stores."""
    redis = connect(REDIS_URL)
    conversations, inbox = RedisConversationStore(redis), RedisInbox(redis)
    stored: list[tuple[str, str]] = []
    entries: list[tuple[str, str]] = []
    try:
        for account in accounts:
            position: Position | None = None
            while True:
                page, position = await conversations.recent(
                    account.customer_id, platform=None, account=None, unread_only=False, after=position, limit=100
                )
                for conversation in page:
                    older: Position | None = None
                    while True:
                        found, older = await conversations.messages(account.customer_id, conversation.id, older, 100)
                        stored += [(conversation.id, m.message_id) for m in found]
                        if older is None:
                            break
                if position is None:
                    break
            after: str | None = None
            while True:
                listed, last = await inbox.list(account.customer_id, after, 200)
                # The key Hermes deduplicates deliveries by: two entries with one key are one delivery stored twice.
                entries += [(account.customer_id, entry.item.dedupe_key) for entry in listed]
                if len(listed) < 200 or last is None:
                    break
                after = last
    finally:
        await redis.aclose()
    return census((m.key for m in messages), (messages[n].key for n in acked), stored, entries)


def run(
    duration: int = 5, runs: int = 1, connections: int = 50, *, profile_seconds: int = PROFILE_SECONDS
) -> list[dict[str, object]]:
    """The figure, printed and returned as a row for bench/run_all.py; of several runs, the one with the median
    p99 is shown, and what any run lost or duplicated is counted."""
    del connections  # an open loop at a fixed rate
    database_url = bench_database()
    try:
        with FakeGraph() as graph, FakeTelegram() as telegram:
            fakes = Fakes(graph, telegram)
            WHATSAPP_GRAPHS.append(graph)  # connecting a WhatsApp number proves it against this Graph
            env = hermes_env(database_url) | {
                "HERMES_WHATSAPP_API_BASE": graph.api_base(),
                "HERMES_INSTAGRAM_API_BASE": graph.api_base(),
                "HERMES_TELEGRAM_API_BASE": telegram.base_url,
                # Telegram is told an HTTPS URL; the benchmark delivers to the server it started.
                "HERMES_PUBLIC_URL": PUBLIC,
                "HERMES_WHATSAPP_APP_SECRET": wa.APP_SECRET,
                "HERMES_INSTAGRAM_APP_SECRET": INSTAGRAM_SECRET,
            }
            try:
                # The floor on this machine, now: the bare receiver under the same open loop.
                with serve(["--factory", "bench.webhook:baseline_app"], {"BENCH_APP_SECRET": APP_SECRET}) as bare:
                    baseline = [asyncio.run(bare_open_loop(bare, duration)) for _ in range(runs)]
                asyncio.run(delete_baseline_stream())
                with serve(["--factory", "hermes.entrypoints.http.app:make_app"], env) as url:
                    results = [asyncio.run(measure(url, fakes, duration)) for _ in range(runs)]
                    profiled = None
                    if profile_seconds > 0:  # the same open loop again, for as long, under py-spy
                        *_, requests = asyncio.run(prepare(url, fakes, profile_seconds))
                        profiled = profile(
                            "ack to conversation",
                            url,
                            requests,
                            seconds=profile_seconds,
                            load=lambda: asyncio.run(open_loop(url, requests, RATE)),
                        )
                        asyncio.run(drain())
            finally:
                WHATSAPP_GRAPHS.remove(graph)
    finally:
        drop_database(database_url)
    return [report(results, baseline, duration) | profile_row(profiled)]


async def bare_open_loop(url: str, duration: int) -> tuple[OpenLoop, float]:
    """The baseline receiver under the same open loop (signed WhatsApp batches): what it did, and its CPU per
    webhook."""
    requests = signed_requests(f"mix{os.getpid()}x{time.time_ns()}", RATE * duration)
    pid = PIDS[url]
    before = cpu_seconds(pid)
    sent = await open_loop(url + "/webhook/whatsapp", requests, RATE)
    return sent, (cpu_seconds(pid) - before) / len(requests) * 1e6


def report(results: list[Run], baseline: list[tuple[OpenLoop, float]], duration: int) -> dict[str, object]:
    """Print the figure beside the baseline's; of several runs, the one with the median p99 is shown, and what
    any run lost or duplicated is counted."""
    shown = sorted(results, key=lambda r: pct(r.ack_to_conversation_ms(), 99))[len(results) // 2]
    bare, bare_cpu_us = sorted(baseline, key=lambda b: pct(b[0].round_trip_ms(), 99))[len(baseline) // 2]
    latency = shown.ack_to_conversation_ms()
    sent = sum(len(r.order) for r in results)
    failed = sum(1 for r in results for s in r.sent.statuses if s != 200)
    bare_failed = sum(1 for b, _ in baseline for s in b.statuses if s != 200)
    lost = sum(r.census.lost for r in results)
    in_conversations = sum(r.census.duplicated_in_conversations for r in results)
    in_inbox = sum(r.census.duplicated_in_inbox for r in results)
    unexpected = sum(r.census.unexpected for r in results)
    unseen = sum(len(r.acked_at) - len(r.readable_at) for r in results) - lost
    cpu_us = sum(r.cpu_us * len(r.order) for r in results) / sent
    print(f"\nAck to conversation at {RATE} webhooks/s over WhatsApp, Instagram and Telegram  ({machine()})")
    print(f"  {len(results)} run(s) of {duration} s; the run with the median p99 shown, counts over all runs")
    print(
        f"  {'open loop':44s} {'sent/s':>8s} {'done/s':>8s} {'RTT p50':>8s} {'RTT p99':>8s} {'CPU us/req':>10s} "
        f"{'non-200':>8s}"
    )
    for label, loop, us, bad in (
        ("bare Litestar: HMAC verify + one XADD", bare, bare_cpu_us, bare_failed),
        (f"Hermes, 3 platforms, 1 in {RETRY_EVERY + 1} a retry", shown.sent, cpu_us, failed),
    ):
        rtt = loop.round_trip_ms()
        print(
            f"  {label:44s} {loop.offered:8.0f} {loop.rate:8.0f} {pct(rtt, 50):8.2f} {pct(rtt, 99):8.2f} {us:10.0f} "
            f"{bad:8d}"
        )
    print(
        f"  ack -> readable in its conversation   p50 {pct(latency, 50):7.2f} ms   p99 {pct(latency, 99):7.2f} ms"
        f"   max {pct(latency, 100):7.2f} ms   (looked up every {POLL_SECONDS * 1000:.0f} ms)"
    )
    print(
        f"  lost {lost}; duplicated {in_conversations} in conversations, {in_inbox} in the inbox; "
        f"never sent yet stored {unexpected}   (goal {GOAL})"
    )
    answers = Counter(s for r in results for s in r.sent.statuses if s != 200)
    if answers:
        named = ", ".join(f"{n} x {s or 'no answer'}" for s, n in sorted(answers.items()))
        print(f"  Hermes answered other than 200: {named}")
    if unseen:
        print(f"  {unseen} acknowledged messages were stored but not seen by the look-ups: their latency is missing")
    print(
        f"  Hermes CPU per webhook counts routing into conversations; "
        f"the benchmark's own process used {shown.sender_share:.0%} of a core"
    )
    goal = f"{GOAL}; lost {lost}, duplicated {in_conversations + in_inbox}"
    if failed or bare_failed or unexpected or unseen:
        goal += f"; INVALID: {failed + bare_failed} failed requests, {unexpected + unseen} miscounted messages"
    return {
        "figure": f"ack to conversation at {RATE} webhooks/s over WhatsApp, Instagram, Telegram, 1 in "
        f"{RETRY_EVERY + 1} a retry (sent {shown.sent.offered:.0f}/s; req/s: answered; baseline p99: round trip)",
        "baseline": "bare Litestar: HMAC verify + one XADD, same open loop",
        "baseline_rps": round(bare.rate),
        "hermes_rps": round(shown.sent.rate),
        "baseline_p99_ms": round(pct(bare.round_trip_ms(), 99), 2),
        "p50_ms": round(pct(latency, 50), 2),
        "p99_ms": round(pct(latency, 99), 2),
        "baseline_cpu_us": cpu_text(bare_cpu_us),
        "hermes_cpu_us": cpu_text(cpu_us),
        "goal": goal,
    }


if __name__ == "__main__":
    command_line(run)
