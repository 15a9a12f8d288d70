"""Inbound on every platform that declares a webhook: WhatsApp, Instagram and Telegram, each with the same
guarantees (authenticated before parsing, stored before the answer, duplicates dropped, one owner per account).

Each platform's side speaks its real wire format (tests/integration/inbound_sides.py): Meta's signed batches,
and Telegram's `Update` objects sent to the URL Hermes gave `setWebhook`, with the secret it gave.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.fakes.graph import FakeGraph, instagram_messaging_batch
from tests.fakes.telegram import FakeTelegram
from tests.integration.inbound_sides import (
    INSTAGRAM_SECRET,
    PUBLIC,
    Delivery,
    Fakes,
    InstagramSide,
    Side,
    TelegramSide,
    inbox,
    sides,
    wait_for,
)
from tests.integration.own_redis import OwnRedis
from tests.integration.server import HermesServer
from tests.support import make_settings

SIDES = sides()


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with FakeGraph() as graph, FakeTelegram() as telegram:
        yield Fakes(graph, telegram)


@pytest.fixture(scope="module")
def hermes(mariadb_url: str, fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HermesServer]:
    # A Redis of its own: other sessions' instances consume the shared inbound stream.
    redis = OwnRedis(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        settings: Settings = make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=redis.url)
        with HermesServer(fakes.settings(settings)) as server:
            yield server
    finally:
        redis.close()


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.platform)
async def test_a_message_lands_in_the_owners_inbox_once(hermes: HermesServer, fakes: Fakes, side: Side) -> None:
    owner = await hermes.create_customer()
    reply, account = await side.connect(hermes.url, fakes, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    delivery = side.deliver(fakes, account, "hello from outside")
    assert (await delivery.post(hermes.url)).status_code == 200
    entries = await wait_for(hermes.url, owner["apiKey"], side.platform, 1)
    assert [(e["platform"], e["message"]["id"], e["message"]["text"]) for e in entries] == [
        (side.platform, delivery.message_id, "hello from outside")
    ]
    # The platform delivers the same event again (it got no answer in time, say): the inbox keeps one.
    assert (await delivery.post(hermes.url)).status_code == 200
    await asyncio.sleep(0.5)
    assert len(await inbox(hermes.url, owner["apiKey"], side.platform)) == 1


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.platform)
async def test_wrong_authentication_is_refused_and_nothing_is_routed(
    hermes: HermesServer, fakes: Fakes, side: Side
) -> None:
    owner = await hermes.create_customer()
    reply, account = await side.connect(hermes.url, fakes, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    refused = await side.forged(fakes, account).post(hermes.url)
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"
    await asyncio.sleep(0.3)
    assert await inbox(hermes.url, owner["apiKey"], side.platform) == []


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.platform)
async def test_an_account_routed_to_one_customer_cannot_be_claimed_by_another(
    hermes: HermesServer, fakes: Fakes, side: Side
) -> None:
    owner = await hermes.create_customer()
    reply, account = await side.connect(hermes.url, fakes, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    other = await hermes.create_customer()
    async with hermes.client(other["apiKey"]) as client:
        taken = await client.post(f"/api/connect/{side.platform}", json=side.same_account(fakes, account))
    assert taken.status_code == 409, taken.text
    assert account in taken.json()["detail"]


async def test_telegram_connect_sets_the_webhook_and_disconnect_deletes_it(hermes: HermesServer, fakes: Fakes) -> None:
    owner = await hermes.create_customer()
    side = TelegramSide()
    reply, bot_id = await side.connect(hermes.url, fakes, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    webhook = fakes.telegram.bot(side.tokens[bot_id]).webhook
    assert webhook is not None
    assert webhook["url"] == f"{PUBLIC}/webhook/telegram/{bot_id}"
    assert len(webhook["secret_token"]) >= 32
    # Telegram delivers what a user writes, the way it does once a webhook is set.
    fakes.telegram.push_message(side.tokens[bot_id], 5151, "hi bot")
    assert await fakes.telegram.deliver(side.tokens[bot_id], hermes.url) == [200]
    (entry,) = await wait_for(hermes.url, owner["apiKey"], "telegram", 1)
    assert (entry["message"]["text"], entry["message"]["chatId"]) == ("hi bot", "5151")
    async with hermes.client(owner["apiKey"]) as client:
        # Telegram refuses getUpdates while a webhook is set: the tool says where the messages are.
        call = await client.post("/api/tools/telegram_get_updates", json={})
        assert call.status_code == 502 and "inbox_list" in call.json()["detail"]
        gone = await client.delete("/api/connect/telegram")
    assert gone.status_code == 200
    assert fakes.telegram.bot(side.tokens[bot_id]).webhook is None
    # The route is released: another customer may connect the bot now.
    other = await hermes.create_customer()
    async with hermes.client(other["apiKey"]) as client:
        again = await client.post("/api/connect/telegram", json={"botToken": side.tokens[bot_id]})
    assert again.status_code == 200, again.text


async def test_instagram_echoes_of_the_accounts_own_sends_are_not_inbound(hermes: HermesServer, fakes: Fakes) -> None:
    owner = await hermes.create_customer()
    side = InstagramSide()
    reply, account = await side.connect(hermes.url, fakes, owner["apiKey"])
    assert reply.status_code == 200, reply.text
    body = json.dumps(instagram_messaging_batch(account, "17890001", "sent by us", echo=True)).encode()
    echo = Delivery("/webhook/instagram", body, {"X-Hub-Signature-256": wa.sign(body, INSTAGRAM_SECRET)}, "")
    assert (await echo.post(hermes.url)).status_code == 200
    assert (await side.deliver(fakes, account, "from a person").post(hermes.url)).status_code == 200
    await wait_for(hermes.url, owner["apiKey"], "instagram", 1)
    await asyncio.sleep(0.3)
    assert [e["message"]["text"] for e in await inbox(hermes.url, owner["apiKey"], "instagram")] == ["from a person"]


async def test_instagram_handshake_answers_with_the_meta_verify_token(hermes: HermesServer) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "8301"}
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        ok = await client.get("/webhook/instagram", params=params)
        wrong = await client.get("/webhook/instagram", params={**params, "hub.verify_token": "nope"})
    assert (ok.status_code, ok.text) == (200, "8301")
    assert wrong.status_code == 403


async def conversations(url: str, api_key: str, platform: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": api_key}, timeout=30) as client:
        reply = await client.get("/api/conversations", params={"platform": platform})
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["conversations"]
    return found


@pytest.mark.parametrize("side", sides(), ids=lambda s: s.platform)
async def test_two_accounts_on_one_platform_each_receive_under_their_name_and_one_can_leave(
    hermes: HermesServer, fakes: Fakes, side: Side
) -> None:
    owner = await hermes.create_customer()
    key = owner["apiKey"]
    reply, default = await side.connect(hermes.url, fakes, key)
    assert reply.status_code == 200, reply.text
    reply, work = await side.connect(hermes.url, fakes, key, account="work")
    assert reply.status_code == 200, reply.text

    for account, text in ((default, "to the first"), (work, "to the second")):
        assert (await side.deliver(fakes, account, text).post(hermes.url)).status_code == 200
    entries = await wait_for(hermes.url, key, side.platform, 2)
    assert sorted((e["account"], e["message"]["text"]) for e in entries) == [
        ("default", "to the first"),
        ("work", "to the second"),
    ]
    assert sorted(
        (c["account"], c["lastMessagePreview"]) for c in await conversations(hermes.url, key, side.platform)
    ) == [
        ("default", "to the first"),
        ("work", "to the second"),
    ]

    # The same platform account under a second name of the same customer: refused, naming who has it.
    async with hermes.client(key) as client:
        twice = await client.post(
            f"/api/connect/{side.platform}", params={"account": "sales"}, json=side.same_account(fakes, work)
        )
        assert twice.status_code == 409, twice.text
        assert '"work"' in twice.json()["detail"] and work in twice.json()["detail"]
        gone = await client.delete(f"/api/connect/{side.platform}", params={"account": "work"})
        assert gone.status_code == 200, gone.text

    if isinstance(side, TelegramSide):
        assert fakes.telegram.bot(side.tokens[work]).webhook is None
        assert fakes.telegram.bot(side.tokens[default]).webhook is not None
    assert (await side.deliver(fakes, default, "still here").post(hermes.url)).status_code == 200
    entries = await wait_for(hermes.url, key, side.platform, 3)
    assert [(e["account"], e["message"]["text"]) for e in entries][-1] == ("default", "still here")
    # The second account's route is released: another customer may connect it now.
    other = await hermes.create_customer()
    async with hermes.client(other["apiKey"]) as client:
        again = await client.post(f"/api/connect/{side.platform}", json=side.same_account(fakes, work))
    assert again.status_code == 200, again.text
