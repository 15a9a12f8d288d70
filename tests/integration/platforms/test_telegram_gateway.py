"""Telegram tools against the fake Bot API: sends, replies, updates, flood control and token handling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hermes.adapters.platforms import telegram
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.fakes.telegram import FakeTelegram

from .conftest import Gateway, assert_clean

CHAT = 424242


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server
        assert not server.handler_errors


@pytest.fixture
def tg(fake: FakeTelegram, gateway: Callable[..., Gateway]) -> Gateway:
    return gateway(telegram, Platform.TELEGRAM, fake.base_url)


@pytest.fixture
def token(fake: FakeTelegram) -> str:
    token = fake.add_bot()
    fake.add_chat(token, CHAT)
    return token


async def test_send_reply_and_formatting(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    incoming = fake.push_message(token, CHAT, "hello bot")
    args = {"chat_id": CHAT, "text": "<b>Hi</b> there", "parse_mode": "HTML", "reply_to": incoming["message_id"]}
    result = await tg.call("telegram_send_message", args, {"botToken": token})
    sent = fake.sent_messages(token, CHAT)[-1]
    assert result["message_id"] == sent["message_id"]
    assert result["chat_id"] == CHAT
    assert sent["text"] == "Hi there"
    assert sent["reply_to_message"]["message_id"] == incoming["message_id"]
    # A numeric string works as well as a number.
    await tg.call("telegram_send_message", {"chat_id": str(CHAT), "text": "plain"}, {"botToken": token})


async def test_updates_are_read_then_confirmed_with_next_offset(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    fake.push_message(token, CHAT, "first")
    fake.push_message(token, CHAT, "second")
    first = await tg.call("telegram_get_updates", {"limit": 1}, {"botToken": token})
    assert [u["text"] for u in first["updates"]] == ["first"]
    assert first["updates"][0]["chat_id"] == CHAT
    assert first["updates"][0]["from_username"] == "alice"
    rest = await tg.call("telegram_get_updates", {"offset": first["next_offset"]}, {"botToken": token})
    assert [u["text"] for u in rest["updates"]] == ["second"]
    empty = await tg.call("telegram_get_updates", {"offset": rest["next_offset"]}, {"botToken": token})
    assert empty == {"success": True, "updates": [], "next_offset": None}


@pytest.mark.parametrize(
    ("setup", "chat_id", "text", "words"),
    [
        ("none", 999, "hi", "Check chat_id"),
        ("block", CHAT, "hi", "blocked the bot"),
        ("none", CHAT, "1.5 *unclosed", "parse_mode"),
    ],
)
async def test_refusals_are_explained(
    fake: FakeTelegram, tg: Gateway, token: str, setup: str, chat_id: int, text: str, words: str
) -> None:
    if setup == "block":
        fake.block(token, CHAT)
    args = {"chat_id": chat_id, "text": text, "parse_mode": "MarkdownV2"}
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", args, {"botToken": token})
    assert words in error_text(caught.value)
    assert caught.value.reconnect is False
    assert_clean(caught.value, token, token.split(":")[1], text)


async def test_flood_control_is_waited_out(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    fake.rate_limit_next(retry_after=1, method="sendMessage")
    fake.clear_requests()
    result = await tg.call("telegram_send_message", {"chat_id": CHAT, "text": "hi"}, {"botToken": token})
    assert result["success"] is True
    first, second = fake.requests
    assert second.received_at - first.received_at >= 1.0


async def test_long_flood_wait_is_reported(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    fake.rate_limit_next(retry_after=34, method="sendMessage")
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", {"chat_id": CHAT, "text": "hi"}, {"botToken": token})
    assert caught.value.retry_after == 34
    assert "Try again in 34 s" in error_text(caught.value)


async def test_revoked_token_is_a_reconnect_without_the_token(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    fake.revoke(token)
    fake.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", {"chat_id": CHAT, "text": "hi"}, {"botToken": token})
    assert len(fake.requests) == 1
    assert caught.value.reconnect is True
    assert "Ask the account owner to reconnect Telegram in Hermes" in error_text(caught.value)
    assert_clean(caught.value, token, token.split(":")[1])


async def test_gateway_errors_retried_on_reads_only(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    fake.server_error_next(method="getUpdates")
    result = await tg.call("telegram_get_updates", {}, {"botToken": token})
    assert result["success"] is True
    fake.server_error_next(method="sendMessage")
    fake.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", {"chat_id": CHAT, "text": "hi"}, {"botToken": token})
    assert len(fake.requests) == 1
    assert caught.value.code == "http_502"


async def test_webhook_blocks_polling(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    fake.bot(token).webhook = {"url": "https://hooks.example.com/tg", "secret_token": None, "max_connections": 40}
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_get_updates", {}, {"botToken": token})
    assert "webhook" in error_text(caught.value)


async def test_verify(fake: FakeTelegram, tg: Gateway, token: str) -> None:
    await tg.plugin.verify({"botToken": token})
    with pytest.raises(PlatformRejected) as caught:
        await tg.plugin.verify({"botToken": "123456789:AAunknownunknownunknownunknownunknown"})
    assert caught.value.reconnect is True
