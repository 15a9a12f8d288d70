"""A customer points Hermes at servers it controls and makes them hostile; everyone else must not notice.

Each attack runs against a real Hermes (a child process for the memory attacks, so its resident memory
is its own; in-process for callbacks, whose receivers need a trusted test certificate) with real
MariaDB and Redis, while another tenant keeps calling `/healthz` and `GET /api/connections`. What is
asserted is what people would see: the attacker gets a tool error quickly, the victim's requests
answer within 2 s, the server's peak resident memory (VmHWM) grows by less than `RSS_CEILING`, and an
honest customer's callbacks still arrive while 16 receivers drip.

Each test prints one `hostile:` line with its numbers (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.integration.callback_receiver import CallbackReceiver
from tests.integration.hostile.hostile_servers import DrippingReceiver, GzipBomb, HostileImap, HostileSmtp
from tests.integration.process_server import HermesProcess, settings_env
from tests.integration.server import HermesServer
from tests.integration.test_inbound_flows import (
    OwnRedis,
    connected_customer,
    eventually,
    number,
    post_event,
    trusting,
)

MiB = 1024 * 1024
RSS_CEILING = 64 * MiB  # growth of the server's peak resident memory during one attack
INFLATE_CEILING = 16 * MiB  # the same, for a compressed reply refused at the 4 MiB response cap
VICTIM_BOUND = 2.0  # seconds: a liveness bound, not a benchmark
PLATFORM_TIMEOUT = 4.0


def memory(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start) of a process, in bytes."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


class Victim:
    """Another tenant going about its business: /healthz and its connections, every 100 ms."""

    def __init__(self, server: HermesServer | HermesProcess, api_key: str) -> None:
        self._server = server
        self._key = api_key
        self.latencies: list[float] = []
        self.failures: list[str] = []

    async def _work(self, stop: asyncio.Event) -> None:
        async with self._server.client(self._key) as client:
            while not stop.is_set():
                for path in ("/healthz", "/api/connections"):
                    started = time.monotonic()
                    reply = await client.get(path)
                    self.latencies.append(time.monotonic() - started)
                    if reply.status_code != 200:
                        self.failures.append(f"{path}: {reply.status_code}")
                await asyncio.sleep(0.1)

    @asynccontextmanager
    async def working(self) -> AsyncIterator[Victim]:
        stop = asyncio.Event()
        task = asyncio.create_task(self._work(stop))
        await asyncio.sleep(0.3)
        try:
            yield self
        finally:
            stop.set()
            await task

    @property
    def worst(self) -> float:
        return max(self.latencies)


@pytest.fixture
def hermes_process(settings: Settings, tmp_path: Path) -> Iterator[HermesProcess]:
    env = settings_env(settings, HERMES_PLATFORM_TIMEOUT=str(PLATFORM_TIMEOUT), HERMES_LOG_LEVEL="WARNING")
    server = HermesProcess(env, tmp_path).start()
    yield server
    server.stop()


async def customer_with(server: HermesServer | HermesProcess, platform: str, credentials: dict[str, Any]) -> str:
    customer = await server.create_customer(f"{platform}-{number()}@example.com")
    async with server.client(customer["apiKey"]) as client:
        reply = await client.post(f"/api/connect/{platform}?verify=false", json=credentials)
        assert reply.status_code == 200, reply.text
    key: str = customer["apiKey"]
    return key


def imap_credentials(port: int, smtp_port: int = 1) -> dict[str, Any]:
    return {
        "smtpHost": "127.0.0.1",
        "smtpPort": smtp_port,
        "smtpSecurity": "none",
        "username": "attacker",
        "password": "secret",
        "fromAddress": "attacker@example.org",
        "imapHost": "127.0.0.1",
        "imapPort": port,
        "imapSecurity": "none",
    }


async def attack(
    server: HermesProcess, api_key: str, tool: str, arguments: dict[str, Any]
) -> tuple[int, dict[str, Any], float, dict[str, int], dict[str, int]]:
    """Call `tool` as the attacker while a victim works; the reply, its duration and memory before/after."""
    victim = Victim(server, (await server.create_customer(f"victim-{number()}@example.com"))["apiKey"])
    before = memory(server.pid)
    async with victim.working(), server.client(api_key) as client:
        started = time.monotonic()
        reply = await client.post(f"/api/tools/{tool}", json=arguments)
        took = time.monotonic() - started
    after = memory(server.pid)
    print(
        f"\nhostile: {tool} status={reply.status_code} took={took:.2f}s rss_before={before['VmRSS'] / MiB:.0f}MB "
        f"peak_after={after['VmHWM'] / MiB:.0f}MB victim_worst={victim.worst:.3f}s"
    )
    assert victim.failures == []
    assert victim.worst < VICTIM_BOUND, f"the victim waited {victim.worst:.2f} s"
    return reply.status_code, reply.json(), took, before, after


async def test_a_1_5_gb_imap_literal_ends_the_connection_at_once(hermes_process: HermesProcess) -> None:
    with HostileImap(literal=1_500_000_000) as imap:
        key = await customer_with(hermes_process, "email", imap_credentials(imap.port))
        status, body, took, before, after = await attack(hermes_process, key, "email_read", {"uid": 1})
        assert status == 502 and body["code"] == "response_too_large", body
        assert "larger than 10485760 bytes" in body["detail"]
        assert took < 2.0
        assert after["VmHWM"] - before["VmHWM"] < RSS_CEILING
        assert imap.sent < 16 * MiB  # Hermes stopped reading: the server could only fill the socket buffers


async def test_a_dripping_imap_server_ends_in_a_tool_error_at_the_platform_timeout(
    hermes_process: HermesProcess,
) -> None:
    with HostileImap(literal=5000, drip=0.5) as imap:
        key = await customer_with(hermes_process, "email", imap_credentials(imap.port))
        status, body, took, _, _ = await attack(hermes_process, key, "email_read", {"uid": 1})
        assert status == 502 and body["code"] == "timeout", body
        assert PLATFORM_TIMEOUT - 0.5 < took < PLATFORM_TIMEOUT + 2.0


async def test_a_huge_imap_search_answer_keeps_only_what_the_tool_returns(hermes_process: HermesProcess) -> None:
    with HostileImap(search_uids=1_000_000) as imap:
        key = await customer_with(hermes_process, "email", imap_credentials(imap.port))
        status, body, _, before, after = await attack(hermes_process, key, "email_search", {"limit": 5})
        assert status == 200, body
        assert [m["uid"] for m in body["messages"]] == [1_000_000, 999_999, 999_998, 999_997, 999_996]
        assert body["total"] == 1_000_000
        assert after["VmHWM"] - before["VmHWM"] < RSS_CEILING


SEND = {"to": "someone@example.org", "subject": "hello", "body": "hello"}


async def test_an_smtp_server_that_drips_its_greeting_ends_at_the_platform_timeout(
    hermes_process: HermesProcess,
) -> None:
    with HostileSmtp(drip=0.2) as smtp:
        key = await customer_with(hermes_process, "email", imap_credentials(1, smtp_port=smtp.port))
        status, body, took, _, _ = await attack(hermes_process, key, "email_send", SEND)
        assert status == 502 and body["code"] == "timeout", body
        assert PLATFORM_TIMEOUT - 0.5 < took < PLATFORM_TIMEOUT + 1.0


async def test_an_smtp_server_that_floods_its_greeting_is_cut_off(hermes_process: HermesProcess) -> None:
    with HostileSmtp() as smtp:
        key = await customer_with(hermes_process, "email", imap_credentials(1, smtp_port=smtp.port))
        status, body, took, before, after = await attack(hermes_process, key, "email_send", SEND)
        assert status == 502, body
        assert took < 2.0
        assert after["VmHWM"] - before["VmHWM"] < RSS_CEILING


async def test_an_obsidian_gzip_bomb_is_refused_as_it_inflates(hermes_process: HermesProcess) -> None:
    with GzipBomb() as bomb:
        key = await customer_with(
            hermes_process, "obsidian", {"apiUrl": f"http://127.0.0.1:{bomb.port}", "apiKey": "attacker-key"}
        )
        status, body, took, before, after = await attack(hermes_process, key, "obsidian_read_note", {"path": "a.md"})
        assert bomb.requests == 1
        assert status == 502 and body["code"] == "response_too_large", body
        assert took < 2.0
        # Inflating whole 16 KB chunks (httpx's decoder) took the peak up by about 32 MB here.
        assert after["VmHWM"] - before["VmHWM"] < INFLATE_CEILING


async def test_sixteen_dripping_callback_receivers_do_not_stop_an_honest_customers_callbacks(
    settings: Settings, start_hermes: Any, tmp_path: Path
) -> None:
    own = OwnRedis(tmp_path / "redis")
    own.start()
    try:
        with CallbackReceiver(tmp_path) as honest_receiver:
            cert, key = honest_receiver.cert, tmp_path / "key.pem"
            with DrippingReceiver(cert, key, every=2.0) as dripping:
                private = settings.model_copy(
                    update={"callback_sweep_seconds": 0.5, "redis_url": own.url, "log_level": "WARNING"}
                )
                server = start_hermes(private, None, trusting(honest_receiver))
                try:
                    await _drip_attack(server, honest_receiver, dripping)
                finally:
                    server.stop()  # before its Redis goes away
    finally:
        own.close()


async def _message(server: HermesServer, n: str) -> str:
    message_id = wa.wamid()
    body = wa.encode(wa.batch(wa.change(n, messages=[wa.text_message(message_id, "hello")])))
    assert (await post_event(server.url, body, wa.sign(body))).status_code == 200
    return message_id


async def _with_callback(server: HermesServer, url: str) -> tuple[str, str]:
    n = number()
    customer = await connected_customer(server, n)
    async with server.client(customer["apiKey"]) as client:
        reply = await client.put("/api/inbound/callback", json={"url": url})
        assert reply.status_code == 200, reply.text
    return n, customer["apiKey"]


async def _drip_attack(server: HermesServer, receiver: CallbackReceiver, dripping: DrippingReceiver) -> None:
    attackers = [await _with_callback(server, dripping.url(f"hook/{i}")) for i in range(16)]
    honest_n, honest_key = await _with_callback(server, receiver.url)
    victim = Victim(server, honest_key)

    def arrived(message_id: str) -> bool:
        return any(json.loads(r.body)["entry"]["message"]["id"] == message_id for r in receiver.received)

    async with victim.working():
        for n, _ in attackers:
            await _message(server, n)

        async def all_dripping() -> bool:
            return dripping.requests >= 16

        await eventually(all_dripping, timeout=15)
        started = time.monotonic()
        first = await _message(server, honest_n)

        async def first_arrived() -> bool:
            return arrived(first)

        # At worst it waits once for the attempts that hold every worker to reach their 10 s deadline.
        await eventually(first_arrived, timeout=14)
        first_took = time.monotonic() - started

        # Now the dripping receivers are failing callbacks with their bounded share: no waiting at all.
        await asyncio.sleep(3)
        started = time.monotonic()
        second = await _message(server, honest_n)

        async def second_arrived() -> bool:
            return arrived(second)

        await eventually(second_arrived, timeout=5)
        second_took = time.monotonic() - started
    assert victim.failures == []
    assert victim.worst < VICTIM_BOUND

    async with server.client(attackers[0][1]) as client:
        state = (await client.get("/api/inbound/callback")).json()
    failed = state["deliveries"][-1]
    assert failed["outcome"] == "failed" and "did not answer within 10 s" in failed["error"], failed
    assert failed["durationMs"] < 10_500
    print(
        f"\nhostile: callbacks first_honest={first_took:.2f}s later_honest={second_took:.2f}s "
        f"dripping_connections={dripping.connections} victim_worst={victim.worst:.3f}s"
    )
    assert second_took < 3.0
