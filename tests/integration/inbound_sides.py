"""Each platform that receives messages, as a test drives it: connect an account, and build the request the
platform would send for one inbound message (its real wire format and authentication)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from hermes.domain.platform import Platform
from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.fakes.graph import FakeGraph, instagram_messaging_batch
from tests.fakes.telegram import FakeTelegram
from tests.support import whatsapp_credentials

PUBLIC = "https://hermes.test:8443"  # what Telegram is told; tests deliver to the server they started
INSTAGRAM_SECRET = "ig-secret"


@dataclass
class Fakes:
    graph: FakeGraph
    telegram: FakeTelegram

    def settings(self, settings: Settings) -> Settings:
        """`settings` pointed at these fakes, with an HTTPS public URL so that Telegram bots get a webhook."""
        return (
            settings.with_api_base(Platform.INSTAGRAM, self.graph.api_base())
            .with_api_base(Platform.TELEGRAM, self.telegram.base_url)
            .model_copy(update={"public_url": PUBLIC, "instagram_app_secret": INSTAGRAM_SECRET})
        )


@dataclass(frozen=True)
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]
    message_id: str

    async def post(self, url: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await client.post(
                self.path, content=self.body, headers={"Content-Type": "application/json", **self.headers}
            )


def _digits() -> str:
    return str(secrets.randbelow(10**12) + 10**12)


class Side:
    platform: str

    async def connect(self, url: str, fakes: Fakes, api_key: str, account: str = "") -> tuple[httpx.Response, str]:
        """Connect a new platform account, under the customer's account name `account` (default when empty)."""
        raise NotImplementedError

    def same_account(self, fakes: Fakes, account: str) -> dict[str, Any]:
        """Credentials another customer could hold for the same account."""
        raise NotImplementedError

    def deliver(self, fakes: Fakes, account: str, text: str, sender: str | None = None) -> Delivery:
        """One message from `sender` (the platform's id of the person writing; None: any) to `account`."""
        raise NotImplementedError

    def forged(self, fakes: Fakes, account: str) -> Delivery:
        raise NotImplementedError


async def _connect(url: str, api_key: str, platform: str, body: dict[str, Any], account: str = "") -> httpx.Response:
    params = {"account": account} if account else {}
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": api_key}, timeout=30) as client:
        return await client.post(f"/api/connect/{platform}", json=body, params=params)


class WhatsAppSide(Side):
    platform = "whatsapp"

    async def connect(self, url: str, fakes: Fakes, api_key: str, account: str = "") -> tuple[httpx.Response, str]:
        number = _digits()
        return await _connect(url, api_key, "whatsapp", whatsapp_credentials(number), account), number

    def same_account(self, fakes: Fakes, account: str) -> dict[str, Any]:
        return whatsapp_credentials(account)

    def deliver(self, fakes: Fakes, account: str, text: str, sender: str | None = None) -> Delivery:
        mid = wa.wamid()
        contact, message = (
            (wa.contact(), wa.text_message(mid, text))
            if sender is None
            else (wa.contact(sender), wa.text_message(mid, text, sender))
        )
        message["timestamp"] = str(int(time.time()))  # sent now: conversations order and keep messages by it
        body = wa.encode(wa.batch(wa.change(account, contacts=[contact], messages=[message])))
        return Delivery("/webhook/whatsapp", body, {"X-Hub-Signature-256": wa.sign(body)}, mid)

    def forged(self, fakes: Fakes, account: str) -> Delivery:
        real = self.deliver(fakes, account, "forged")
        return Delivery(real.path, real.body, {"X-Hub-Signature-256": wa.sign(real.body, "not-it")}, real.message_id)


class InstagramSide(Side):
    platform = "instagram"

    async def connect(self, url: str, fakes: Fakes, api_key: str, account: str = "") -> tuple[httpx.Response, str]:
        ig_user_id, token = fakes.graph.add_instagram_user(_digits())
        body = {"accessToken": token, "igUserId": ig_user_id}
        return await _connect(url, api_key, "instagram", body, account), ig_user_id

    def same_account(self, fakes: Fakes, account: str) -> dict[str, Any]:
        token = "EAAG" + secrets.token_hex(20)
        fakes.graph.grant(token, account)
        return {"accessToken": token, "igUserId": account}

    def deliver(self, fakes: Fakes, account: str, text: str, sender: str | None = None) -> Delivery:
        batch = instagram_messaging_batch(account, sender or "1789" + _digits(), text)
        body = json.dumps(batch).encode()
        mid = batch["entry"][0]["messaging"][0]["message"]["mid"]
        return Delivery("/webhook/instagram", body, {"X-Hub-Signature-256": wa.sign(body, INSTAGRAM_SECRET)}, mid)

    def forged(self, fakes: Fakes, account: str) -> Delivery:
        real = self.deliver(fakes, account, "forged")
        # Signed with WhatsApp's secret: a valid Meta signature, but not this app's.
        return Delivery(real.path, real.body, {"X-Hub-Signature-256": wa.sign(real.body)}, real.message_id)


class TelegramSide(Side):
    platform = "telegram"

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    async def connect(self, url: str, fakes: Fakes, api_key: str, account: str = "") -> tuple[httpx.Response, str]:
        # Ids unique across runs: routes live in the shared Redis, like a deployment's.
        bot_id = str(secrets.randbelow(10**12) + 10**12)
        token = fakes.telegram.add_bot(f"{bot_id}:AA{secrets.token_urlsafe(24)}")
        self.tokens[bot_id] = token
        return await _connect(url, api_key, "telegram", {"botToken": token}, account), bot_id

    def same_account(self, fakes: Fakes, account: str) -> dict[str, Any]:
        return {"botToken": self.tokens[account]}

    def deliver(self, fakes: Fakes, account: str, text: str, sender: str | None = None) -> Delivery:
        """The update Telegram posts to the webhook Hermes set, with the secret Hermes gave it; `sender` writes
        in the private chat it has with the bot (a private chat's id is the user's)."""
        token = self.tokens[account]
        message = fakes.telegram.push_message(token, int(sender or 424242), text)
        update = fakes.telegram.bot(token).updates.pop()  # delivered by the test, not polled
        webhook = fakes.telegram.bot(token).webhook
        assert webhook is not None, "connecting the bot sets its webhook"
        path = "/" + webhook["url"].split("/", 3)[3]
        headers = {"X-Telegram-Bot-Api-Secret-Token": str(webhook["secret_token"])}
        return Delivery(path, json.dumps(update).encode(), headers, str(message["message_id"]))

    def forged(self, fakes: Fakes, account: str) -> Delivery:
        real = self.deliver(fakes, account, "forged")
        return Delivery(real.path, real.body, {"X-Telegram-Bot-Api-Secret-Token": "guessed"}, real.message_id)


def sides() -> list[Side]:
    return [WhatsAppSide(), InstagramSide(), TelegramSide()]


async def inbox(url: str, api_key: str, platform: str, limit: int = 200) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": api_key}, timeout=30) as client:
        reply = await client.get("/api/inbox", params={"platform": platform, "limit": limit})
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()["entries"]
    return entries


async def wait_for(url: str, api_key: str, platform: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        entries = await inbox(url, api_key, platform)
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        await asyncio.sleep(0.05)
