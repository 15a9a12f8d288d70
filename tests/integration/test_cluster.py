"""Seed flows against a 3-master Redis Cluster: every customer key carries a hash tag."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from tests.fakes.graph import FakeGraph
from tests.fakes.telegram import FakeTelegram
from tests.integration.inbound_sides import Fakes, Side, inbox, sides, wait_for
from tests.integration.mcp_client import mcp_session
from tests.integration.redis_cluster import RedisClusterProcess, cluster_available
from tests.support import make_settings, whatsapp_credentials

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not cluster_available(), reason="redis-server/redis-cli not installed"),
]


@pytest.fixture
def cluster_settings(cluster: RedisClusterProcess, mariadb_url: str) -> Any:
    return make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=cluster.url, HERMES_REDIS_CLUSTER=True)


async def test_flows_2_3_5_on_a_cluster(cluster_settings: Any, start_hermes: Any) -> None:
    with FakeTelegram() as telegram:
        token = telegram.add_bot()
        telegram.add_chat(token, 77)
        server = start_hermes(cluster_settings.model_copy(update={"telegram_api_base": telegram.base_url}))
        customer = await server.create_customer()
        phone = str(secrets.randbelow(10**12) + 10**12)
        async with server.client(customer["apiKey"]) as client:
            # Flow 2: connect (credentials + phone route), cache miss then hit.
            assert (await client.post("/api/connect/whatsapp", json=whatsapp_credentials(phone))).status_code == 200
            assert (await client.post("/api/connect/telegram", json={"botToken": token})).status_code == 200
            # Flow 5: one MGET across the customer's eight credential keys (one slot).
            connections = (await client.get("/api/connections")).json()["connections"]
            assert connections["whatsapp"] is True
            assert connections["telegram"] is True
            assert connections["email"] is False

        # Flow 3: a tool call, audited.
        async with mcp_session(server.url, customer["apiKey"]) as session:
            result = await session.call_tool("telegram_send_message", {"chat_id": 77, "text": "on a cluster"})
        assert result.is_error is False
        async with server.client(customer["apiKey"]) as client:
            from datetime import UTC, datetime

            logs = (await client.get("/api/logs", params={"date": datetime.now(UTC).date().isoformat()})).json()
            assert [(e["tool"], e["outcome"]) for e in logs["entries"]] == [("telegram_send_message", "success")]
            assert (await client.get("/api/usage")).json()["toolCallsUsed"] == 1

            # A second customer cannot take the number; disconnect frees it.
            other = await server.create_customer("other@example.com")
            async with server.client(other["apiKey"]) as intruder:
                taken = await intruder.post("/api/connect/whatsapp", json=whatsapp_credentials(phone, "EAAG-x"))
                assert taken.status_code == 409
            assert (await client.delete("/api/connect/whatsapp")).status_code == 200
            async with server.client(other["apiKey"]) as intruder:
                freed = await intruder.post("/api/connect/whatsapp", json=whatsapp_credentials(phone, "EAAG-x"))
                assert freed.status_code == 200

        # Deactivation is refused at once on the cluster too.
        async with server.admin() as admin:
            assert (await admin.post(f"/admin/customers/{customer['id']}/deactivate")).status_code == 200
        async with server.client(customer["apiKey"]) as client:
            assert (await client.get("/api/connections")).status_code == 401


async def test_flow_4_inbound_webhook_on_a_cluster(cluster_settings: Any, start_hermes: Any) -> None:
    from tests.whatsapp_payloads import batch, change, contact, encode, sign, status, text_message, wamid

    server = start_hermes(cluster_settings)
    customer = await server.create_customer()
    phone = str(secrets.randbelow(10**12) + 10**12)
    async with server.client(customer["apiKey"]) as client:
        assert (await client.post("/api/connect/whatsapp", json=whatsapp_credentials(phone))).status_code == 200
    first, second = wamid(), wamid()
    body = encode(
        batch(
            change(phone, contacts=[contact()], messages=[text_message(first, "hello cluster")]),
            change(phone, statuses=[status(second, "delivered")]),
        )
    )
    import httpx

    async with httpx.AsyncClient(base_url=server.url) as meta:
        for _ in range(3):  # Meta retries: delivered once
            reply = await meta.post("/webhook/whatsapp", content=body, headers={"X-Hub-Signature-256": sign(body)})
            assert reply.status_code == 200
            assert reply.text == "EVENT_RECEIVED"
    async with server.client(customer["apiKey"]) as client:
        entries: list[Any] = []
        for _ in range(100):
            entries = (await client.get("/api/inbox")).json()["entries"]
            if len(entries) >= 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a duplicate would have landed by now
        entries = (await client.get("/api/inbox")).json()["entries"]
    assert [e["kind"] for e in entries] == ["message", "status"]
    assert entries[0]["message"]["text"] == "hello cluster"


@pytest.mark.parametrize("side", sides(), ids=lambda s: s.platform)
async def test_inbound_on_every_platform_on_a_cluster(cluster_settings: Any, start_hermes: Any, side: Side) -> None:
    with FakeGraph() as graph, FakeTelegram() as telegram:
        fakes = Fakes(graph, telegram)
        server = start_hermes(fakes.settings(cluster_settings))
        customer = await server.create_customer()
        reply, account = await side.connect(server.url, fakes, customer["apiKey"])
        assert reply.status_code == 200, reply.text
        delivery = side.deliver(fakes, account, "hello cluster")
        for _ in range(3):  # the platform retries: delivered once
            assert (await delivery.post(server.url)).status_code == 200
        await wait_for(server.url, customer["apiKey"], side.platform, 1)
        await asyncio.sleep(0.3)  # a duplicate would have landed by now
        entries = await inbox(server.url, customer["apiKey"], side.platform)
    assert [(e["message"]["id"], e["message"]["text"]) for e in entries] == [(delivery.message_id, "hello cluster")]
