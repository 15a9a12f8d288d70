"""Inbound on every platform that declares a webhook: WhatsApp, Instagram and Telegram, each with the same
guarantees (authenticated before parsing, stored before the answer, duplicates dropped, one owner per account).

Each platform's side of the test speaks its real wire format: Meta's signed batches (WhatsApp, Instagram) and
Telegram's `Update` objects delivered by the fake to the URL Hermes gave `setWebhook`, with the secret header.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from hermes.domain.platform import Platform
from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.fakes.graph import FakeGraph, instagram_messaging_batch
from tests.fakes.telegram import FakeTelegram
from tests.integration.server import HermesServer
from tests.support import make_settings, whatsapp_credentials

PUBLIC = "https://hermes.test:8443"  # what Telegram is told; the fake delivers to the test server instead


@dataclass
class World:
    hermes: HermesServer
    graph: FakeGraph
    telegram: FakeTelegram
    sent: dict[str, list[bytes]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(settings: Settings) -> Iterator[World]:
    with FakeGraph() as graph, FakeTelegram() as telegram:
        shared = (
            settings.with_api_base(Platform.INSTAGRAM, graph.api_base())
            .with_api_base(Platform.TELEGRAM, telegram.base_url)
            .model_copy(update={"public_url": PUBLIC, "instagram_app_secret": "ig-secret"})
        )
        with HermesServer(shared) as hermes:
            yield World(hermes, graph, telegram)


@pytest.fixture(scope="module")
def settings(mariadb_url: str, redis_url: str) -> Settings:
    return make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=redis_url)


class Side:
    """One platform as a test drives it."""

    platform: str

    async def connect(self, world: World, api_key: str) -> tuple[httpx.Response, str]:
        raise NotImplementedError

    async def send(self, world: World, account: str, text: str, message_id: str | None = None) -> tuple[int, str]:
        """Deliver one inbound message the way the platform does; returns (status, message id)."""
        raise NotImplementedError

    async def forge(self, world: World, account: str) -> int:
        """Deliver one message with wrong authentication; returns the status."""
        raise NotImplementedError


def _digits() -> str:
    return str(secrets.randbelow(10**12) + 10**12)


class WhatsAppSide(Side):
    platform = "whatsapp"

    async def connect(self, world: World, api_key: str) -> tuple[httpx.Response, str]:
        number = _digits()
        async with world.hermes.client(api_key) as client:
            return await client.post("/api/connect/whatsapp", json=whatsapp_credentials(number)), number

    async def send(self, world: World, account: str, text: str, message_id: str | None = None) -> tuple[int, str]:
        mid = message_id or wa.wamid()
        message = wa.text_message(mid)
        message["text"]["body"] = text
        body = wa.encode(wa.batch(wa.change(account, messages=[message])))
        return await _post(world, "/webhook/whatsapp", body, {"X-Hub-Signature-256": wa.sign(body)}), mid

    async def forge(self, world: World, account: str) -> int:
        body = wa.encode(wa.batch(wa.change(account, messages=[wa.text_message(wa.wamid())])))
        return await _post(world, "/webhook/whatsapp", body, {"X-Hub-Signature-256": wa.sign(body, "not-it")})


class InstagramSide(Side):
    platform = "instagram"

    async def connect(self, world: World, api_key: str) -> tuple[httpx.Response, str]:
        ig_user_id, token = world.graph.add_instagram_user(_digits())
        async with world.hermes.client(api_key) as client:
            body = {"accessToken": token, "igUserId": ig_user_id}
            return await client.post("/api/connect/instagram", json=body), ig_user_id

    async def send(self, world: World, account: str, text: str, message_id: str | None = None) -> tuple[int, str]:
        batch = instagram_messaging_batch(account, "1789" + _digits(), text, message_id)
        mid = batch["entry"][0]["messaging"][0]["message"]["mid"]
        body = json.dumps(batch).encode()
        return await _post(world, "/webhook/instagram", body, {"X-Hub-Signature-256": wa.sign(body, "ig-secret")}), mid

    async def forge(self, world: World, account: str) -> int:
        body = json.dumps(instagram_messaging_batch(account, "1789", "hi")).encode()
        return await _post(world, "/webhook/instagram", body, {"X-Hub-Signature-256": wa.sign(body, "app-secret")})


class TelegramSide(Side):
    platform = "telegram"
    tokens: dict[str, str] = {}

    async def connect(self, world: World, api_key: str) -> tuple[httpx.Response, str]:
        # Ids unique across runs: routes live in the shared Redis, like a deployment's.
        token = world.telegram.add_bot(f"{secrets.randbelow(10**12) + 10**12}:AA{secrets.token_urlsafe(24)}")
        bot_id = token.split(":", 1)[0]
        self.tokens[bot_id] = token
        async with world.hermes.client(api_key) as client:
            return await client.post("/api/connect/telegram", json={"botToken": token}), bot_id

    async def send(self, world: World, account: str, text: str, message_id: str | None = None) -> tuple[int, str]:
        token = self.tokens[account]
        if message_id is None:
            message = world.telegram.push_message(token, 424242, text)
        else:  # Telegram retrying an update it got no 2xx for: the same update again
            world.telegram.push_update(token, {"update_id": int(message_id), "message": self._last[account]})
            message = self._last[account]
        self._last[account] = message
        statuses = await world.telegram.deliver(token, world.hermes.url)
        return statuses[-1], str(message["message_id"])

    _last: dict[str, dict[str, Any]] = {}

    async def forge(self, world: World, account: str) -> int:
        update = {
            "update_id": 1,
            "message": {"message_id": 1, "chat": {"id": 1}, "date": int(time.time()), "text": "x"},
        }
        headers = {"X-Telegram-Bot-Api-Secret-Token": "guessed"}
        return await _post(world, f"/webhook/telegram/{account}", json.dumps(update).encode(), headers)


SIDES = [WhatsAppSide(), InstagramSide(), TelegramSide()]


async def _post(world: World, path: str, body: bytes, headers: dict[str, str]) -> int:
    async with httpx.AsyncClient(base_url=world.hermes.url, timeout=30) as client:
        reply = await client.post(path, content=body, headers={"Content-Type": "application/json", **headers})
    return reply.status_code


async def _inbox(world: World, api_key: str, platform: str) -> list[dict[str, Any]]:
    async with world.hermes.client(api_key) as client:
        reply = await client.get("/api/inbox", params={"platform": platform})
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()["entries"]
    return entries


async def _wait_for(world: World, api_key: str, platform: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        entries = await _inbox(world, api_key, platform)
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.platform)
async def test_a_message_lands_in_the_owners_inbox_once(world: World, side: Side) -> None:
    owner = await world.hermes.create_customer()
    reply, account = await side.connect(world, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    status, message_id = await side.send(world, account, "hello from outside")
    assert status == 200
    entries = await _wait_for(world, owner["apiKey"], side.platform, 1)
    assert [(e["platform"], e["message"]["id"], e["message"]["text"]) for e in entries] == [
        (side.platform, message_id, "hello from outside")
    ]
    # The platform delivers again (it got no answer in time, say): the inbox keeps one.
    again, _ = await side.send(world, account, "hello from outside", message_id=_retry_id(side, message_id))
    assert again == 200
    await asyncio.sleep(0.5)
    assert len(await _inbox(world, owner["apiKey"], side.platform)) == 1


def _retry_id(side: Side, message_id: str) -> str:
    if isinstance(side, TelegramSide):
        return str(10**9 + int(message_id))  # a fresh update id carrying the same message
    return message_id


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.platform)
async def test_wrong_authentication_is_refused_and_nothing_is_routed(world: World, side: Side) -> None:
    owner = await world.hermes.create_customer()
    reply, account = await side.connect(world, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    assert await side.forge(world, account) == 401
    await asyncio.sleep(0.3)
    assert await _inbox(world, owner["apiKey"], side.platform) == []


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.platform)
async def test_an_account_routed_to_one_customer_cannot_be_claimed_by_another(world: World, side: Side) -> None:
    owner = await world.hermes.create_customer()
    reply, account = await side.connect(world, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    other = await world.hermes.create_customer()
    body = await _same_account_body(world, side, account)
    async with world.hermes.client(other["apiKey"]) as client:
        taken = await client.post(f"/api/connect/{side.platform}", json=body)
    assert taken.status_code == 409, taken.text
    assert account in taken.json()["detail"]


async def _same_account_body(world: World, side: Side, account: str) -> dict[str, Any]:
    if isinstance(side, WhatsAppSide):
        return whatsapp_credentials(account)
    if isinstance(side, InstagramSide):
        token = "EAAG" + secrets.token_hex(20)
        world.graph.grant(token, account)
        return {"accessToken": token, "igUserId": account}
    return {"botToken": TelegramSide.tokens[account]}


async def test_telegram_connect_sets_the_webhook_and_disconnect_deletes_it(world: World) -> None:
    owner = await world.hermes.create_customer()
    side = TelegramSide()
    reply, bot_id = await side.connect(world, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    webhook = world.telegram.bot(TelegramSide.tokens[bot_id]).webhook
    assert webhook is not None
    assert webhook["url"] == f"{PUBLIC}/webhook/telegram/{bot_id}"
    assert len(webhook["secret_token"]) >= 32
    async with world.hermes.client(owner["apiKey"]) as client:
        # Telegram refuses getUpdates while a webhook is set: the tool says where the messages are.
        call = await client.post("/api/tools/telegram_get_updates", json={})
        assert "inbox_list" in call.text
        gone = await client.delete("/api/connect/telegram")
    assert gone.status_code == 200
    assert world.telegram.bot(TelegramSide.tokens[bot_id]).webhook is None
    # The route is released: another customer may connect the bot now.
    other = await world.hermes.create_customer()
    async with world.hermes.client(other["apiKey"]) as client:
        again = await client.post("/api/connect/telegram", json={"botToken": TelegramSide.tokens[bot_id]})
    assert again.status_code == 200, again.text


async def test_instagram_echoes_of_the_accounts_own_sends_are_not_inbound(world: World) -> None:
    owner = await world.hermes.create_customer()
    side = InstagramSide()
    reply, account = await side.connect(world, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    body = json.dumps(instagram_messaging_batch(account, "17890001", "sent by us", echo=True)).encode()
    assert await _post(world, "/webhook/instagram", body, {"X-Hub-Signature-256": wa.sign(body, "ig-secret")}) == 200
    status, _ = await side.send(world, account, "from a person")
    assert status == 200
    entries = await _wait_for(world, owner["apiKey"], "instagram", 1)
    await asyncio.sleep(0.3)
    assert [e["message"]["text"] for e in await _inbox(world, owner["apiKey"], "instagram")] == ["from a person"]
    assert len(entries) == 1
