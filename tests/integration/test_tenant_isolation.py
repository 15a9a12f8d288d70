"""Tenant isolation matrix: customer A, with its own key, calls every customer-scoped REST route and
every MCP tool aimed at customer B's things; B's state must not change and nothing of B's may show.

The calls are generated from the live OpenAPI document and the full tool catalogue, so a route or
tool added later is exercised without editing this test.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any

import httpx
import pytest

from hermes.adapters.platforms import build_plugins
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import default_api_bases
from hermes.adapters.redis.account_routes import route_key
from tests.fakes.telegram import FakeTelegram
from tests.integration.mcp_client import mcp_session
from tests.integration.oauth_support import OAuthAgent, start_public
from tests.integration.server import HermesServer
from tests.support import whatsapp_credentials
from tests.whatsapp_payloads import batch, change, contact, encode, sign, text_message, wamid


class Tenant:
    def __init__(self, created: dict[str, Any]) -> None:
        self.id: str = created["id"]
        self.key: str = created["apiKey"]
        self.email: str = created["email"]


async def _snapshot(server: HermesServer, tenant: Tenant) -> dict[str, Any]:
    """Everything B can see of itself through its own key."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    async with server.client(tenant.key) as client:
        views = {
            path: (await client.get(path)).json()
            for path in [
                "/api/connections",
                "/api/usage",
                f"/api/logs?date={today}",
                "/api/inbox?limit=200",
                "/api/inbound/callback",
                "/api/oauth/clients",
                "/api/tools",
            ]
        }
    for client in views["/api/oauth/clients"].get("clients", []):
        client.pop("lastUsedAt", None)  # moves when B itself uses the client, not A
    return views


def _fill_path(path: str, values: dict[str, list[str]]) -> list[str]:
    """Every way to fill a templated path with values aimed at B."""
    names = re.findall(r"{([^}:]+)(?::[^}]+)?}", path)
    paths = [path]
    for name in names:
        paths = [re.sub(r"{" + name + r"(?::[^}]+)?}", value, p) for p in paths for value in values.get(name, ["x"])]
    return paths


def _arguments(schema: dict[str, Any], aimed: dict[str, Any]) -> dict[str, Any]:
    """Schema-shaped arguments, with every field that could name B's things set to B's value."""
    arguments: dict[str, Any] = {}
    for name, spec in schema.get("properties", {}).items():
        if name in aimed:
            arguments[name] = aimed[name]
        elif name in schema.get("required", []):
            kind = spec.get("type")
            arguments[name] = 1 if kind == "integer" else True if kind == "boolean" else spec.get("enum", ["x"])[0]
    return arguments


def _platform_catalogue() -> dict[str, dict[str, Any]]:
    """Every platform tool Hermes has, connected or not (the plug-in registry is the catalogue)."""
    config = PlatformConfig(api_bases=dict.fromkeys(default_api_bases(), "http://unused.invalid"))
    plugins = build_plugins(httpx.AsyncClient(), config)
    return {t.spec.name: dict(t.spec.input_schema) for plugin in plugins for t in plugin.tools}


@pytest.fixture
async def world(settings: Any, start_hermes: Any) -> Any:
    telegram = FakeTelegram().start()
    server = start_public(start_hermes, settings.model_copy(update={"telegram_api_base": telegram.base_url}))
    yield server, telegram
    telegram.stop()


async def test_customer_a_can_neither_read_nor_change_anything_of_customer_b(world: Any, aio_redis: Any) -> None:
    server, telegram = world
    a = Tenant(await server.create_customer("a@tenants.example"))
    b = Tenant(await server.create_customer("b@tenants.example"))
    b_token = telegram.add_bot()
    telegram.add_chat(b_token, 5150)
    a_token = telegram.add_bot()
    telegram.add_chat(a_token, 6160)
    b_phone = str(secrets.randbelow(10**12) + 10**12)
    b_secret_text = "B-private-" + secrets.token_hex(6)

    # B's world: connections, a routed inbound message, an audited tool call, a callback, an OAuth client.
    async with server.client(b.key) as client:
        wa = whatsapp_credentials(b_phone, "EAAG-b-" + secrets.token_hex(8))
        assert (await client.post("/api/connect/whatsapp", json=wa)).status_code == 200
        assert (await client.post("/api/connect/telegram", json={"botToken": b_token})).status_code == 200
        sent = await client.post("/api/tools/telegram_send_message", json={"chat_id": 5150, "text": b_secret_text})
        assert sent.status_code == 200
        assert (await client.post("/api/tools/connections_status", json={})).status_code == 200
        b_logs = (await client.get("/api/logs", params={"limit": 1})).json()
        b_log_cursor = b_logs["nextCursor"]
        assert b_log_cursor is not None and len(b_logs["entries"]) == 1
        callback = await client.put("/api/inbound/callback", json={"url": "https://127.0.0.1:9/b-hook"})
        assert callback.status_code == 200, callback.text
        b_signing_secret = callback.json()["signingSecret"]
    message_id = wamid()
    body = encode(batch(change(b_phone, contacts=[contact()], messages=[text_message(message_id, b_secret_text)])))
    async with httpx.AsyncClient(base_url=server.url) as meta:
        acked = await meta.post("/webhook/whatsapp", content=body, headers={"X-Hub-Signature-256": sign(body)})
        assert acked.status_code == 200
    async with server.client(b.key) as client:
        for _ in range(100):
            inbox = (await client.get("/api/inbox")).json()
            if inbox["entries"]:
                break
            await asyncio.sleep(0.05)
        assert inbox["entries"], "B's message was never routed"
    b_cursor = inbox["entries"][0]["id"]
    agent = OAuthAgent(server)
    b_client = await agent.register()
    await agent.tokens(b_client, b.key)

    # A has its own Telegram, so its tool calls really reach a platform.
    async with server.client(a.key) as client:
        assert (await client.post("/api/connect/telegram", json={"botToken": a_token})).status_code == 200

    before = await _snapshot(server, b)
    assert before["/api/oauth/clients"]["clients"], "B's OAuth client must exist for the matrix to mean anything"
    # What A never supplied itself (A does send B's message id and cursor, so their echo is no leak).
    b_secrets = [b.id, b.key, b.email, b_token, b_secret_text, b_signing_secret, wa["accessToken"]]

    # Every customer route of the API, aimed at B's things.
    async with server.client() as anon:
        document = (await anon.get("/schema/openapi.json")).json()
    aimed_path = {
        "platform": ["whatsapp", "telegram", "email"],
        "client_id": [b_client.client_id],
        "tool": ["connections_status", "inbox_list", "telegram_get_updates", "whatsapp_mark_read"],
        "customer_id": [b.id],
    }
    aimed_query = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "cursor": b_cursor, "platform": "whatsapp"}
    aimed_cursors = {"/api/logs": b_log_cursor}  # a page cursor of B's own audit log
    aimed_bodies: dict[str, Any] = {
        "/api/connect/whatsapp": wa,
        "/api/connect/telegram": {"botToken": b_token},
        "/api/inbound/callback": {"url": "https://127.0.0.1:9/a-hook"},
        "/api/tools/whatsapp_mark_read": {"message_id": message_id},
        "/api/tools/inbox_list": {"cursor": b_cursor},
    }
    replies: list[httpx.Response] = []
    calls = 0
    async with server.client(a.key) as client:
        for template, operations in document["paths"].items():
            if not template.startswith("/api/"):
                continue
            for method, operation in operations.items():
                query = {
                    p["name"]: aimed_query[p["name"]]
                    for p in operation.get("parameters", [])
                    if p.get("in") == "query" and p["name"] in aimed_query
                }
                for path in _fill_path(template, aimed_path):
                    body = aimed_bodies.get(path, {}) if method in ("post", "put", "patch") else None
                    if path in aimed_cursors:
                        query = query | {"cursor": aimed_cursors[path], "limit": 1}
                    replies.append(await client.request(method.upper(), path, params=query, json=body))
                    calls += 1
    assert calls >= 20

    # Every tool of the catalogue over MCP, with every argument that can name B's things set to B's.
    aimed_arguments: dict[str, Any] = {
        "chat_id": 5150,
        "to": b_phone,
        "message_id": message_id,
        "cursor": b_cursor,
        "platform": "whatsapp",
        "channel_id": "1",
        "path": "b-notes.md",
        "uid": 1,
        "tweet_id": "1",
        "text": "from A",
        "message": "from A",
        "content": "from A",
        "timeout_seconds": 0,  # inbox_wait: look once, do not wait
    }
    async with server.client(a.key) as client:
        catalogue = (await client.get("/api/tools")).json()["tools"]
    everything = {t["name"]: t["inputSchema"] for t in catalogue} | _platform_catalogue()
    assert len(everything) >= 24
    tool_texts: list[str] = []
    async with mcp_session(server.url, a.key) as session:
        listed = {t.name for t in (await session.list_tools()).tools}
        assert listed == {t["name"] for t in catalogue}
        for name, schema in everything.items():
            result = await session.call_tool(name, _arguments(schema, aimed_arguments))
            tool_texts.append(str(result.structured_content) + " ".join(getattr(c, "text", "") for c in result.content))

    after = await _snapshot(server, b)
    assert after == before, "A changed something of B's"

    seen = "\n".join(r.text + " ".join(r.headers.values()) for r in replies) + "\n".join(tool_texts)
    leaked = [s for s in b_secrets if s in seen]
    assert not leaked, f"A saw B's {leaked}"
    assert all(r.status_code != 500 for r in replies)
    # B's audit cursor only ever pages A's own log.
    (a_logs,) = [r for r in replies if r.request.url.path == "/api/logs"]
    assert a_logs.status_code == 200 and a_logs.json()["customerId"] == a.id
    # B's number still routes to B (A tried to take it and to disconnect it).
    assert (await aio_redis.get(route_key(b_phone))).decode() == b.id
