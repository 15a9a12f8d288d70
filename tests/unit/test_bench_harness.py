"""What `make bench` reads from wrk, /proc and py-spy, checked on their real output formats."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest
from bench.harness import OpenLoop, WrkResult, cpu_seconds, median, parse_raw_profile, parse_wrk, pct
from bench.inbound_mix import MESSAGES_PER_PEER, Account, census, messages_for, plan, schedule

from hermes.adapters.memory.conversations import InMemoryConversationStore
from hermes.adapters.platforms.instagram_webhook import decode_instagram
from hermes.adapters.platforms.telegram_webhook import decode_telegram
from hermes.adapters.platforms.webhook_auth import signature_matches
from hermes.adapters.platforms.whatsapp_webhook import decode_whatsapp
from hermes.application.conversation_recorder import ConversationRecorder
from hermes.application.ports.clock import SystemClock
from hermes.domain.inbound import InboundMessage
from tests import whatsapp_payloads as wa
from tests.fakes.graph import FakeGraph
from tests.fakes.telegram import FakeTelegram
from tests.integration.inbound_sides import INSTAGRAM_SECRET, PUBLIC, Fakes, sides

WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:41213/webhook/whatsapp
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.02ms    3.11ms  40.05ms   85.51%
    Req/Sec     3.60k   301.46     4.06k    75.00%
  Latency Distribution
     50%    6.50ms
     75%    7.84ms
     90%    9.99ms
     99%    1.02s
  14320 requests in 2.00s, 2.05MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   7158.79
Transfer/sec:      1.02MB
"""


def test_wrk_output_gives_rate_latencies_failures_and_completed_requests() -> None:
    result = parse_wrk(WRK_OUTPUT)

    assert result.requests_per_s == 7158.79
    assert result.p50_ms == 6.5
    assert result.p99_ms == 1020.0
    assert (result.non_2xx, result.errors, result.requests) == (5, 4, 14320)


def test_cpu_per_request_is_the_servers_cpu_over_all_runs_divided_by_their_requests() -> None:
    runs = [
        WrkResult(1000.0, 5.0, 50.0, 0, 0, requests=10_000, cpu_s=2.0),
        WrkResult(1200.0, 4.0, 40.0, 0, 0, requests=12_000, cpu_s=2.0),
        WrkResult(900.0, 6.0, 60.0, 0, 0, requests=9_000, cpu_s=2.2),
    ]

    summary = median(runs)

    assert summary.requests_per_s == 1000.0
    assert summary.p99_ms == 50.0  # latencies come from the median run
    assert round(summary.cpu_us) == 200  # 6.2 s over 31,000 requests


def test_cpu_seconds_counts_the_processes_a_server_started() -> None:
    # It burns a little more than is asked of /proc: the kernel's tick-sampled accounting may read a few
    # hundredths of a second short of what the process's own clock counted.
    burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"]
    )
    try:
        deadline = time.monotonic() + 20
        while cpu_seconds(parent.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The parent itself only waits: the burnt CPU is its child's.
        assert cpu_seconds(parent.pid) >= 0.3
    finally:
        for child in subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split():
            subprocess.run(["kill", child], check=False)
        parent.wait(timeout=10)


PY_SPY_RAW = """\
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86);Litestar.__call__ (litestar/app.py:599);\
McpEndpoint.__call__ (hermes/entrypoints/mcp_server.py:40);PlatformHttp._once (hermes/adapters/platforms/http.py:88);\
StreamWriter._writelines (aiohttp/http_writer.py:120) 30
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86);Litestar.__call__ (litestar/app.py:599);\
McpEndpoint.__call__ (hermes/entrypoints/mcp_server.py:40) 20
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86);\
RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:500) 40
process 1:"python -m uvicorn";Runner.run (asyncio/runners.py:86) 10
"""


def test_profile_ranks_own_time_and_the_innermost_hermes_function() -> None:
    summary = parse_raw_profile(PY_SPY_RAW, top=3)

    assert summary.samples == 100
    assert summary.own == [
        ("uvicorn.protocols.http.httptools_impl.RequestResponseCycle.send", 0.4),
        ("aiohttp.http_writer.StreamWriter._writelines", 0.3),
        ("hermes.entrypoints.mcp_server.McpEndpoint.__call__", 0.2),
    ]
    assert summary.hermes == [
        ("(no Hermes frame)", 0.5),
        ("hermes.adapters.platforms.http.PlatformHttp._once", 0.3),
        ("hermes.entrypoints.mcp_server.McpEndpoint.__call__", 0.2),
    ]
    own_line = summary.lines()[0]
    assert own_line.startswith("own time: uvicorn.protocols.http.httptools_impl.RequestResponseCycle.send 40%;")


def test_percentiles_are_nearest_rank_and_nan_for_nothing() -> None:
    values = [float(n) for n in range(1, 101)]

    assert (pct(values, 50), pct(values, 99), pct(values, 100)) == (51.0, 99.0, 100.0)
    assert pct([], 99) != pct([], 99)  # NaN


def test_an_open_loop_reports_its_rate_and_round_trips_of_answered_requests_only() -> None:
    nan = float("nan")
    loop = OpenLoop(sent_at=[10.0, 10.5, 11.0], answered_at=[10.002, nan, 12.0], statuses=[200, 0, 500])

    assert loop.rate == 3 / 2.0  # from the first send to the last answer
    assert loop.offered == 2 / 1.0  # three sends in one second
    assert loop.round_trip_ms() == [pytest.approx(2.0), 1000.0]


def test_the_schedule_posts_every_message_once_and_one_in_n_again_later() -> None:
    order = schedule(100, retry_every=20, retry_after=30)

    assert Counter(order) == Counter({**dict.fromkeys(range(100), 1), 0: 2, 20: 2, 40: 2, 60: 2, 80: 2})
    for message in (0, 20, 40, 60):
        _, again = (n for n, m in enumerate(order) if m == message)
        assert order[again - 1] == message + 30  # right after the message 30 later in the turn
    assert order[-2:] == [99, 80]  # a retry due after the last message comes last
    assert [m for m in order if m not in (0, 20, 40, 60, 80)] == sorted(set(range(100)) - {0, 20, 40, 60, 80})
    assert messages_for(1050, retry_every=20) == 1000  # 1,000 messages and their 50 retries fill 1,050 posts


def test_the_census_counts_lost_duplicated_and_unexpected_messages() -> None:
    sent = ["a", "b", "c", "d"]
    acked = ["a", "b", "c"]  # d was never acknowledged: not stored is not lost

    clean = census(sent, acked, in_conversations=["a", "b", "c"], in_inbox=["a", "b", "c"])
    assert (clean.lost, clean.duplicated, clean.unexpected) == (0, 0, 0)

    bad = census(sent, acked, in_conversations=["a", "a", "x"], in_inbox=["a", "b", "b", "b"])
    assert bad.lost == 2  # b and c
    assert (bad.duplicated_in_conversations, bad.duplicated_in_inbox, bad.duplicated) == (1, 2, 3)
    assert bad.unexpected == 1  # x


async def test_the_benchmarks_deliveries_are_what_hermes_accepts_and_land_in_the_conversations_it_expects() -> None:
    """Each planned webhook carries a valid signature or secret, decodes with Hermes's own decoder, and the
    recorder puts its message in the conversation the benchmark looks it up in."""
    fakes = Fakes(FakeGraph(), FakeTelegram())  # not started: building deliveries needs no network
    whatsapp, instagram, telegram = sides()
    bot_token = fakes.telegram.add_bot()
    bot_id = bot_token.split(":")[0]
    telegram.tokens[bot_id] = bot_token  # as connecting does, with the webhook Hermes would have set
    secret = "s" * 32
    fakes.telegram.bot(bot_token).webhook = {"url": f"{PUBLIC}/webhook/telegram/{bot_id}", "secret_token": secret}
    accounts = [
        Account(whatsapp, "cust-wa", "106540352242922"),
        Account(instagram, "cust-ig", "17841400000000001"),
        Account(telegram, "cust-tg", bot_id),
    ]
    planned = plan(fakes, accounts, 3 * (MESSAGES_PER_PEER + 1))

    store = InMemoryConversationStore()
    recorder = ConversationRecorder(store, SystemClock())
    for message in planned:
        delivery, account = message.delivery, message.account
        if account.side is telegram:
            assert delivery.path == f"/webhook/telegram/{bot_id}"
            assert delivery.headers == {"X-Telegram-Bot-Api-Secret-Token": secret}
            update = json.loads(delivery.body)
            assert set(update) == {"update_id", "message"}
            envelope = json.dumps({"account": bot_id, "update": update}).encode()
            (change,) = decode_telegram(envelope)
        else:
            app_secret = wa.APP_SECRET if account.side is whatsapp else INSTAGRAM_SECRET
            signature = delivery.headers["X-Hub-Signature-256"].encode()
            assert signature_matches(delivery.body, signature, [app_secret.encode()])
            decode = decode_whatsapp if account.side is whatsapp else decode_instagram
            (change,) = decode(delivery.body)
        assert change.business_id == account.account
        (item,) = change.items
        assert isinstance(item, InboundMessage) and item.message_id == delivery.message_id
        await recorder.inbound(account.customer_id, [item])
        found, _ = await store.messages(account.customer_id, message.conversation_id, None, 100)
        assert delivery.message_id in [m.message_id for m in found]

    # Spread evenly over the accounts; each peer writes at most MESSAGES_PER_PEER, every message is new.
    assert Counter(m.account.side.platform for m in planned) == {"whatsapp": 101, "instagram": 101, "telegram": 101}
    assert max(Counter(m.conversation_id for m in planned).values()) <= MESSAGES_PER_PEER
    assert len({m.key for m in planned}) == len(planned)
