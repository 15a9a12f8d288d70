"""A platform is one declaration: a tenth, test-only platform declared here shows up everywhere Hermes lists
platforms, and its webhook goes through the same entry point (in process, no server) as WhatsApp's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declarations, declare, withdraw
from hermes.adapters.platforms.inbound import RoutedInbound
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.webhook_auth import meta_signed
from hermes.adapters.sql.migrate import upgrade_url
from hermes.domain.credentials import CredentialField, Credentials, digits, token
from hermes.domain.errors import PlatformRejected
from hermes.domain.inbound import InboundChange, InboundMessage
from hermes.domain.platform import Platform
from hermes.entrypoints.http.app import make_app
from hermes.entrypoints.http.raw_asgi import HermesAsgi
from tests import whatsapp_payloads as wa
from tests.support import ADMIN_TOKEN, make_settings

SECRET = "zebra-app-secret"


class PingArgs(msgspec.Struct, forbid_unknown_fields=True):
    word: str = "ping"


def _decode(body: bytes) -> list[InboundChange]:
    batch = json.loads(body)
    account = str(batch["account"])
    items = tuple(
        InboundMessage(
            platform=Platform("zebra"),
            business_id=account,
            message_id=str(m["id"]),
            sender=str(m["from"]),
            sent_at=datetime.fromtimestamp(0, UTC),
            type="text",
            text=str(m["text"]),
        )
        for m in batch["messages"]
    )
    return [InboundChange(Platform("zebra"), account, items)]


def _build(http: httpx.AsyncClient, config: PlatformConfig) -> PlatformPlugin:
    zebra = Platform("zebra")

    async def ping(args: PingArgs, creds: Credentials) -> dict[str, Any]:
        return {"success": True, "answer": args.word[::-1], "base": config.base(zebra)}

    async def verify(creds: Credentials) -> None:
        if creds["apiToken"] != "good-token":
            raise PlatformRejected(zebra.value, "token refused", reconnect=True)

    return PlatformPlugin(
        zebra,
        tools=[tool(zebra, "zebra_ping", PingArgs, ping, description="Ping the zebra.", read_only=True)],
        verify=verify,
        inbound=RoutedInbound("zb_account_id", "account id", lambda c: str(c["accountId"]), _decode),
    )


@pytest.fixture
def zebra() -> Iterator[Platform]:
    platform = declare(
        "zebra",
        display_name="Zebra",
        credentials=(CredentialField("apiToken", token, secret=True), CredentialField("accountId", digits)),
        api_base="https://api.zebra.example",
        build=_build,
        webhook=meta_signed,
    )
    try:
        yield platform
    finally:
        withdraw(platform)


@pytest.fixture
async def client(tmp_path: Path, zebra: Platform) -> AsyncIterator[AsyncTestClient[Litestar]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hermes.db'}"
    await upgrade_url(url)
    settings = make_settings(
        HERMES_DATABASE_URL=url,
        HERMES_WEBHOOK_MAX_BODY_BYTES=64 * 1024,
        HERMES_MAX_BODY_BYTES=4096,
    )
    settings = settings.model_copy(update={"zebra_app_secret": SECRET})
    async with AsyncTestClient(make_app(settings, env={})) as test_client:
        yield test_client


async def _customer(client: AsyncTestClient[Litestar]) -> dict[str, str]:
    reply = await client.post(
        "/admin/customers",
        json={"email": "zebra@example.com", "plan": "pro"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert reply.status_code == 201, reply.text
    return {"x-api-key": reply.json()["apiKey"]}


def _event(account: str, message_id: str, text: str) -> bytes:
    return json.dumps({"account": account, "messages": [{"id": message_id, "from": "42", "text": text}]}).encode()


def test_a_declared_platform_is_a_platform_with_its_names_and_settings(zebra: Platform) -> None:
    assert Platform("zebra") is zebra and zebra in list(Platform)
    assert zebra.display_name == "Zebra"
    assert zebra in declarations()
    settings = make_settings(HERMES_ZEBRA_API_BASE="https://zebra.internal/v2/")
    assert settings.api_base(zebra) == "https://zebra.internal/v2"
    assert make_settings().api_base(zebra) == "https://api.zebra.example"


def test_a_withdrawn_platform_is_unknown_again(zebra: Platform) -> None:
    withdraw(zebra)
    with pytest.raises(ValueError, match="not a declared platform"):
        Platform("zebra")
    assert "zebra" not in [p.value for p in Platform]


async def test_the_tenth_platform_is_listed_connected_documented_and_receives(
    client: AsyncTestClient[Litestar],
) -> None:
    headers = await _customer(client)
    schema = (await client.get("/schema/openapi.json")).json()
    bodies = json.dumps(schema["paths"]["/api/connect/{platform}"]["post"]["requestBody"])
    assert "zebra credentials" in bodies and "accountId" in bodies

    assert (await client.get("/api/connections", headers=headers)).json()["connections"]["zebra"] is False
    refused = await client.post("/api/connect/zebra", json={"apiToken": "bad", "accountId": "77"}, headers=headers)
    assert refused.status_code == 502, refused.text  # an inbound platform is always verified
    connected = await client.post(
        "/api/connect/zebra", json={"apiToken": "good-token", "accountId": "77"}, headers=headers
    )
    assert connected.status_code == 200, connected.text
    assert (await client.get("/api/connections", headers=headers)).json()["connections"]["zebra"] is True

    tools = [t["name"] for t in (await client.get("/api/tools", headers=headers)).json()["tools"]]
    assert "zebra_ping" in tools
    ping = await client.post("/api/tools/zebra_ping", json={"word": "abc"}, headers=headers)
    assert ping.json() == {"success": True, "answer": "cba", "base": "https://api.zebra.example"}

    body = _event("77", "z-1", "hello zebra")
    answer = await client.post("/webhook/zebra", content=body, headers={"X-Hub-Signature-256": wa.sign(body, SECRET)})
    assert (answer.status_code, answer.text) == (200, "EVENT_RECEIVED")
    for _ in range(200):
        entries = (await client.get("/api/inbox", params={"platform": "zebra"}, headers=headers)).json()["entries"]
        if entries:
            break
        await asyncio.sleep(0.02)
    assert [(e["platform"], e["message"]["text"]) for e in entries] == [("zebra", "hello zebra")]


async def test_webhook_entry_point_refuses_what_it_must(client: AsyncTestClient[Litestar]) -> None:
    body = _event("77", "z-2", "hi")
    forged = await client.post("/webhook/zebra", content=body, headers={"X-Hub-Signature-256": wa.sign(body, "x")})
    assert forged.status_code == 401 and forged.headers["content-type"] == "application/problem+json"
    unsigned = await client.post("/webhook/zebra", content=body)
    assert unsigned.status_code == 401
    unknown = await client.post("/webhook/okapi", content=body, headers={"X-Hub-Signature-256": wa.sign(body, SECRET)})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    # The handshake answers the verify token of the platform it names; zebra has none configured.
    handshake = await client.get(
        "/webhook/zebra", params={"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    )
    assert handshake.status_code == 403


async def test_webhooks_have_their_own_body_cap_declared_or_streamed(client: AsyncTestClient[Litestar]) -> None:
    big = b'{"account":"77","pad":"' + b"x" * (64 * 1024) + b'"}'  # over the webhook cap, over /mcp's by far
    declared = await client.post("/webhook/zebra", content=big, headers={"X-Hub-Signature-256": wa.sign(big, SECRET)})
    assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"
    assert "65536 bytes" in declared.json()["detail"]

    # Under the webhook cap but over HERMES_MAX_BODY_BYTES: a webhook batch passes (and is then authenticated).
    batch = _event("77", "z-3", "y" * 8000)
    fits = await client.post("/webhook/zebra", content=batch, headers={"X-Hub-Signature-256": wa.sign(batch, SECRET)})
    assert fits.status_code == 200
    mcp = await client.post("/mcp", content=batch, headers={"Content-Type": "application/json"})
    assert mcp.status_code == 413 and "4096 bytes" in mcp.json()["detail"]


async def test_a_streamed_webhook_body_is_refused_once_it_passes_the_cap() -> None:
    reached: list[bytes] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append((await receive())["body"])

    router = HermesAsgi(inner, max_body_bytes=100, webhook_max_body_bytes=10_000)
    router.start(inner, inner)
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 4096, "more_body": True}  # no Content-Length: endless

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/webhook/zebra", "headers": []}
    await router(scope, receive, send)
    assert sent[0]["status"] == 413 and reached == []
    assert pulled == 3  # stopped reading as soon as the count passed 10,000 bytes
    assert scope["path_template"] == "/webhook/{platform}"
