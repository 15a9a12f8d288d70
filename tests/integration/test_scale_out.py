"""Two Hermes instances on different ports sharing MariaDB and Redis: any instance serves any request."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.graph import FakeGraph
from tests.fakes.telegram import FakeTelegram
from tests.integration.inbound_sides import Fakes, Side, inbox, sides, wait_for
from tests.integration.mcp_client import MODES
from tests.integration.own_redis import OwnRedis
from tests.integration.server import HermesServer


class Alternating(httpx2.AsyncBaseTransport):
    """Sends each request to the next instance in turn, as a round-robin load balancer would."""

    def __init__(self, ports: list[int]) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._ports = itertools.cycle(ports)
        self.served: list[int] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        port = next(self._ports)
        self.served.append(port)
        request.url = request.url.copy_with(port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def telegram() -> Any:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def pair(settings: Any, start_hermes: Any, telegram: FakeTelegram) -> tuple[HermesServer, HermesServer]:
    shared = settings.model_copy(update={"telegram_api_base": telegram.base_url})
    return start_hermes(shared), start_hermes(shared)


@pytest.mark.parametrize("mode", MODES)
async def test_an_mcp_client_alternating_between_instances_works(
    pair: tuple[HermesServer, HermesServer], telegram: FakeTelegram, mode: str
) -> None:
    one, two = pair
    token = telegram.add_bot()
    telegram.add_chat(token, 99)
    customer = await one.create_customer()
    async with two.client(customer["apiKey"]) as client:  # connected through the other instance
        assert (await client.post("/api/connect/telegram", json={"botToken": token})).status_code == 200

    transport = Alternating([one.port, two.port])
    http = httpx2.AsyncClient(transport=transport, headers={"Authorization": f"Bearer {customer['apiKey']}"})
    async with http, Client(streamable_http_client(f"{one.url}/mcp", http_client=http), mode=mode) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        results = [await session.call_tool("telegram_send_message", {"chat_id": 99, "text": f"m{i}"}) for i in range(4)]

    assert "telegram_send_message" in names
    assert all(not r.is_error for r in results)
    assert {one.port, two.port} <= set(transport.served)
    assert [m["text"] for m in telegram.sent_messages(token, 99)] == ["m0", "m1", "m2", "m3"]


async def test_a_customers_rate_limit_holds_across_instances(pair: tuple[HermesServer, HermesServer]) -> None:
    one, two = pair
    customer = await one.create_customer(plan="free")  # 60 requests per minute in total
    async with one.client(customer["apiKey"]) as a, two.client(customer["apiKey"]) as b:
        replies = await asyncio.gather(*[(a if i % 2 else b).get("/api/connections") for i in range(80)])
    statuses = [r.status_code for r in replies]
    assert statuses.count(200) <= 60
    assert statuses.count(429) >= 20
    assert {r.status_code for r in replies} <= {200, 429}


async def test_deactivation_on_one_instance_is_refused_by_the_other_at_once(
    pair: tuple[HermesServer, HermesServer],
) -> None:
    one, two = pair
    customer = await one.create_customer()
    async with two.client(customer["apiKey"]) as client:
        assert (await client.get("/api/connections")).status_code == 200  # cached on instance two
        async with httpx.AsyncClient(base_url=one.url, headers=one.admin().headers) as admin:
            assert (await admin.post(f"/admin/customers/{customer['id']}/deactivate")).status_code == 200
        assert (await client.get("/api/connections")).status_code == 401


@pytest.fixture
def inbound_pair(
    settings: Any, start_hermes: Any, telegram: FakeTelegram, tmp_path: Path
) -> Iterator[tuple[Fakes, HermesServer, HermesServer]]:
    # A Redis of its own: other sessions' instances consume the shared inbound stream.
    redis = OwnRedis(tmp_path / "redis")
    redis.start()
    try:
        with FakeGraph() as graph:
            fakes = Fakes(graph, telegram)
            shared = fakes.settings(settings.model_copy(update={"redis_url": redis.url}))
            yield fakes, start_hermes(shared), start_hermes(shared)
    finally:
        redis.close()


@pytest.mark.parametrize("side", sides(), ids=lambda s: s.platform)
async def test_inbound_events_are_routed_once_in_total(
    inbound_pair: tuple[Fakes, HermesServer, HermesServer], side: Side
) -> None:
    fakes, one, two = inbound_pair
    customer = await one.create_customer()
    reply, account = await side.connect(one.url, fakes, customer["apiKey"])
    assert reply.status_code == 200, reply.text
    deliveries = [side.deliver(fakes, account, f"n{n}") for n in range(40)]
    # Each event hits both instances (the platform retrying through a load balancer): one inbox entry each.
    replies = await asyncio.gather(*[d.post(server.url) for d in deliveries for server in (one, two)])
    assert {r.status_code for r in replies} == {200}
    await wait_for(two.url, customer["apiKey"], side.platform, len(deliveries))
    await asyncio.sleep(0.5)
    entries = await inbox(two.url, customer["apiKey"], side.platform)
    assert sorted(e["message"]["id"] for e in entries) == sorted(d.message_id for d in deliveries)
