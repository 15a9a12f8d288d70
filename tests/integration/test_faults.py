"""Fault matrix: backing services and platforms failing under a running Hermes.

Each fault is applied to a private instance (a redis-server of the test's own, a TCP
proxy in front of MariaDB), never to the services other tests share.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.fakes.telegram import FakeTelegram
from tests.integration.mcp_client import mcp_session
from tests.integration.redis_process import RedisProcess
from tests.integration.tcp_proxy import TcpProxy
from tests.support import make_settings


async def _no_500_no_hang(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    started = time.monotonic()
    reply = await client.request(method, path, **kwargs)
    assert time.monotonic() - started < 10, f"{method} {path} hung"
    assert reply.status_code != 500, reply.text
    assert "Traceback" not in reply.text
    return reply


async def test_redis_down_means_503_with_retry_after_and_recovery_without_restart(
    mariadb_url: str, start_hermes: Any
) -> None:
    redis = RedisProcess("--appendonly", "yes").start()
    try:
        server = start_hermes(make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=redis.url))
        customer = await server.create_customer()
        async with server.client(customer["apiKey"]) as client:
            assert (
                await client.post("/api/connect/discord?verify=false", json={"botToken": "MTA.fault.test"})
            ).status_code == 200

            redis.stop()
            ready = await _no_500_no_hang(client, "GET", "/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["redis"] == "unavailable"
            for method, path, body in [
                ("GET", "/api/connections", None),
                ("GET", "/api/usage", None),
                ("POST", "/api/connect/discord?verify=false", {"botToken": "MTA.fault.again"}),
                ("POST", "/api/tools/connections_status", {}),
            ]:
                reply = await _no_500_no_hang(client, method, path, json=body)
                assert reply.status_code == 503, (path, reply.text)
                assert int(reply.headers["retry-after"]) >= 1
                assert reply.headers["content-type"].startswith("application/problem+json")
            async with httpx.AsyncClient(base_url=server.url) as raw:
                mcp = await _no_500_no_hang(
                    raw,
                    "POST",
                    "/mcp",
                    json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                    headers={
                        "Authorization": f"Bearer {customer['apiKey']}",
                        "Accept": "application/json, text/event-stream",
                        "MCP-Protocol-Version": "2025-11-25",
                    },
                )
                assert mcp.status_code == 503

            redis.start()  # same port, same data directory (AOF): Hermes reconnects by itself
            deadline = time.monotonic() + 15
            while (await client.get("/api/connections")).status_code != 200:
                assert time.monotonic() < deadline, "Hermes did not recover after Redis came back"
                await asyncio.sleep(0.2)
            connections = (await client.get("/api/connections")).json()["connections"]
            assert connections["discord"] is True
            assert (await client.get("/readyz")).status_code == 200
    finally:
        redis.close()


async def test_mariadb_down_keeps_cached_customers_working_and_refuses_uncached_with_503(
    mariadb_url: str, redis_url: str, start_hermes: Any
) -> None:
    proxy = TcpProxy("127.0.0.1", 3306).start()
    try:
        proxied = mariadb_url.replace("127.0.0.1:3306", f"127.0.0.1:{proxy.port}")
        server = start_hermes(make_settings(HERMES_DATABASE_URL=proxied, HERMES_REDIS_URL=redis_url))
        known = await server.create_customer("known@example.com")
        stranger = await server.create_customer("stranger@example.com")
        async with server.client(known["apiKey"]) as client:
            assert (await client.get("/api/connections")).status_code == 200  # now cached

        proxy.cut()

        async with server.client(known["apiKey"]) as client:
            cached = await _no_500_no_hang(client, "GET", "/api/connections")
            assert cached.status_code == 200
            assert (
                await client.post("/api/connect/twitter?verify=false", json={"accessToken": "tok"})
            ).status_code == 200
        async with server.client(stranger["apiKey"]) as client:
            uncached = await _no_500_no_hang(client, "GET", "/api/connections")
        assert uncached.status_code == 503
        assert int(uncached.headers["retry-after"]) >= 1
        async with server.client() as client:
            ready = await _no_500_no_hang(client, "GET", "/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "unavailable"
    finally:
        proxy.close()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_platform_answering_one_byte_a_second_is_a_tool_error_at_the_deadline(
    settings: Any, start_hermes: Any, mode: str
) -> None:
    with FakeTelegram() as telegram:
        token = telegram.add_bot()
        telegram.add_chat(token, 4242)
        server = start_hermes(
            settings.model_copy(update={"telegram_api_base": telegram.base_url, "platform_timeout": 2.0})
        )
        customer = await server.create_customer()
        async with server.client(customer["apiKey"]) as client:
            assert (await client.post("/api/connect/telegram", json={"botToken": token})).status_code == 200
        telegram.drip_next(seconds_per_byte=1.0, n=5)
        async with mcp_session(server.url, customer["apiKey"], mode) as session:
            started = time.monotonic()
            result = await session.call_tool("telegram_send_message", {"chat_id": 4242, "text": "slow"})
            elapsed = time.monotonic() - started
        assert result.is_error
        assert "time" in result.content[0].text.lower()
        assert 1.8 <= elapsed < 6, elapsed
