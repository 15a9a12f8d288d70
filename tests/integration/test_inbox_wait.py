"""inbox_wait through real servers: a wait on one instance wakes when another routes a webhook, it times
out, it is bounded per customer across instances, it ends when its client goes away, and embedded mode
wakes in process."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from dishka import Provider, Scope, provide
from redis.asyncio import Redis

from hermes.adapters.redis.customer_cache import LayeredCustomerCache
from hermes.adapters.redis.inbox_signals import RedisInboxSignals, slots_key
from hermes.adapters.sql.migrate import upgrade_url
from hermes.entrypoints.ioc import Workers
from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.integration.mcp_client import MODES, mcp_session
from tests.integration.redis_cluster import RedisClusterProcess, cluster_available
from tests.integration.redis_process import RedisProcess
from tests.integration.server import HermesServer
from tests.integration.test_inbound_flows import connected_customer, number, post_event
from tests.support import make_settings


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    """Instances of other test sessions consume the shared inbound queue too: here only ours route."""
    with RedisProcess() as server:
        yield server


@pytest.fixture
def private(settings: Settings, private_redis: RedisProcess) -> Settings:
    return settings.model_copy(update={"redis_url": private_redis.url})


@pytest.fixture
async def private_aio(private_redis: RedisProcess) -> AsyncIterator[Any]:
    client = Redis.from_url(private_redis.url)
    yield client
    await client.aclose()


class NoRouting(Provider):
    """An instance that never routes webhooks itself, so what wakes its waits comes from another."""

    scope = Scope.APP

    @provide
    def workers(self, cache: LayeredCustomerCache, signals: RedisInboxSignals) -> Workers:
        return Workers([("customer-cache-evictions", cache.listen), ("inbox-signals", signals.run)])


async def deliver(server: HermesServer, phone_number_id: str, text: str) -> str:
    message_id = wa.wamid()
    body = wa.encode(
        wa.batch(wa.change(phone_number_id, contacts=[wa.contact()], messages=[wa.text_message(message_id, text)]))
    )
    reply = await post_event(server.url, body, wa.sign(body))
    assert reply.status_code == 200, reply.text
    return message_id


async def until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def waits_open(aio_redis: Any, customer_id: str) -> int:
    count: int = await aio_redis.zcard(slots_key(customer_id))
    return count


@pytest.mark.parametrize("mode", MODES)
async def test_a_wait_on_one_instance_wakes_within_a_second_of_a_webhook_routed_on_another(
    private: Settings, start_hermes: Any, private_aio: Any, mode: str
) -> None:
    aio_redis = private_aio
    waiting_side = start_hermes(private, None, NoRouting())
    routing_side = start_hermes(private)
    n = number()
    customer = await connected_customer(routing_side, n)
    async with mcp_session(waiting_side.url, customer["apiKey"], mode) as client:
        wait = asyncio.create_task(client.call_tool("inbox_wait", {"timeout_seconds": 20}))
        await until(lambda: _opened(aio_redis, customer["id"]))
        started = time.monotonic()
        message_id = await deliver(routing_side, n, "are you there?")
        result = await asyncio.wait_for(wait, 5)
        elapsed = time.monotonic() - started
    assert result.is_error is False, result.content
    answer = result.structured_content
    assert [e["message"]["id"] for e in answer["entries"]] == [message_id]
    assert answer["timed_out"] is False and answer["next_cursor"] == answer["entries"][-1]["id"]
    assert elapsed < 1.0, f"woke {elapsed:.2f} s after the webhook"
    assert await waits_open(aio_redis, customer["id"]) == 0


async def _opened(aio_redis: Any, customer_id: str) -> bool:
    return await waits_open(aio_redis, customer_id) > 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_wait_with_nothing_arriving_times_out_with_the_cursor(
    private: Settings, start_hermes: Any, mode: str
) -> None:
    hermes = start_hermes(private)
    n = number()
    customer = await connected_customer(hermes, n)
    async with mcp_session(hermes.url, customer["apiKey"], mode) as client:
        await deliver(hermes, n, "before")
        first = (await client.call_tool("inbox_wait", {"cursor": "0", "timeout_seconds": 5})).structured_content
        started = time.monotonic()
        result = await client.call_tool("inbox_wait", {"cursor": first["next_cursor"], "timeout_seconds": 1})
        elapsed = time.monotonic() - started
    assert result.structured_content == {"entries": [], "next_cursor": first["next_cursor"], "timed_out": True}
    assert 1.0 <= elapsed < 3.0


async def test_waits_are_bounded_per_customer_across_instances(
    settings: Settings, start_hermes: Any, aio_redis: Any
) -> None:
    bounded = settings.model_copy(update={"inbox_waits_per_customer": 2})
    one, two = start_hermes(bounded), start_hermes(bounded)
    customer = await one.create_customer()
    async with (
        mcp_session(one.url, customer["apiKey"]) as a,
        mcp_session(two.url, customer["apiKey"]) as b,
    ):
        held = [asyncio.create_task(c.call_tool("inbox_wait", {"timeout_seconds": 3})) for c in (a, b)]
        await until(lambda: _count_is(aio_redis, customer["id"], 2))
        refused = await a.call_tool("inbox_wait", {"timeout_seconds": 3})
        done = await asyncio.gather(*held)
        again = await b.call_tool("inbox_wait", {"timeout_seconds": 0})
    assert refused.is_error
    assert "2 waits for new messages are already open" in refused.content[0].text
    assert all(r.structured_content["timed_out"] for r in done)
    assert again.is_error is False


async def _count_is(aio_redis: Any, customer_id: str, count: int) -> bool:
    return await waits_open(aio_redis, customer_id) == count


def _raw_call(generation: str) -> tuple[dict[str, str], dict[str, Any]]:
    params: dict[str, Any] = {"name": "inbox_wait", "arguments": {"timeout_seconds": 20}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": generation}
    if generation == "2026-07-28":
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": generation,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers |= {"Mcp-Method": "tools/call", "Mcp-Name": "inbox_wait"}
    return headers, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


@pytest.mark.parametrize("generation", ["2025-11-25", "2026-07-28"])
async def test_a_wait_ends_when_its_client_goes_away(hermes: HermesServer, aio_redis: Any, generation: str) -> None:
    customer = await hermes.create_customer()
    headers, body = _raw_call(generation)
    headers["Authorization"] = f"Bearer {customer['apiKey']}"

    async def call_and_leave() -> None:
        async with httpx.AsyncClient(base_url=hermes.url, timeout=30) as client:
            await client.post("/mcp", content=json.dumps(body), headers=headers | {"Content-Type": "application/json"})

    leaving = asyncio.create_task(call_and_leave())
    await until(lambda: _opened(aio_redis, customer["id"]))
    leaving.cancel()  # closes the connection mid-wait
    with pytest.raises(asyncio.CancelledError):
        await leaving
    started = time.monotonic()
    await until(lambda: _count_is(aio_redis, customer["id"], 0), timeout=5)
    assert time.monotonic() - started < 2, "the wait outlived its client"
    async with hermes.client(customer["apiKey"]) as client:
        logs = (await client.get("/api/logs", params={"date": datetime.now(UTC).date().isoformat()})).json()
    assert [(e["tool"], e["outcome"], e.get("errorCode")) for e in logs["entries"]] == [
        ("inbox_wait", "error", "cancelled")
    ]


async def test_embedded_mode_wakes_in_process(start_hermes: Any, tmp_path: Path) -> None:
    embedded = make_settings(HERMES_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hermes.db'}")
    await upgrade_url(embedded.database_url)
    server = start_hermes(embedded)
    n = number()
    customer = await connected_customer(server, n)
    async with mcp_session(server.url, customer["apiKey"]) as client:
        wait = asyncio.create_task(client.call_tool("inbox_wait", {"timeout_seconds": 20}))
        await asyncio.sleep(0.5)
        assert not wait.done()
        started = time.monotonic()
        message_id = await deliver(server, n, "hello, embedded")
        result = await asyncio.wait_for(wait, 5)
        elapsed = time.monotonic() - started
    assert [e["message"]["id"] for e in result.structured_content["entries"]] == [message_id]
    assert elapsed < 1.0, f"woke {elapsed:.2f} s after the webhook"


@pytest.mark.cluster
@pytest.mark.skipif(not cluster_available(), reason="redis-server/redis-cli not installed")
async def test_on_a_redis_cluster_a_wait_wakes_by_its_signal(
    cluster: RedisClusterProcess, mariadb_url: str, start_hermes: Any, captured_logs: Any
) -> None:
    on_cluster = make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=cluster.url, HERMES_REDIS_CLUSTER=True)
    server = start_hermes(on_cluster)
    n = number()
    customer = await connected_customer(server, n)
    async with mcp_session(server.url, customer["apiKey"]) as client:
        wait = asyncio.create_task(client.call_tool("inbox_wait", {"timeout_seconds": 20}))
        await asyncio.sleep(0.5)
        assert not wait.done()
        started = time.monotonic()
        message_id = await deliver(server, n, "hello, cluster")
        result = await asyncio.wait_for(wait, 5)
        elapsed = time.monotonic() - started
    assert [e["message"]["id"] for e in result.structured_content["entries"]] == [message_id]
    assert elapsed < 1.0, f"woke {elapsed:.2f} s after the webhook"
    assert "lost their Redis feed" not in captured_logs.text  # woken by the signal, not by polling
