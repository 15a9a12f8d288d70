"""Telegram Bot API gateway: wire format, updates, retry_after, and the token that lives in the URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from hermes.adapters.platforms import telegram
from hermes.domain.errors import Invalid, PlatformRejected

from .scripted import Gateway, Script, assert_clean, reply, shown

TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CREDS = {"botToken": TOKEN}
MESSAGE = {
    "message_id": 42,
    "from": {"id": 110201543, "is_bot": True, "first_name": "Hermes", "username": "hermes_bot"},
    "chat": {"id": 777, "type": "private", "first_name": "Ann"},
    "date": 1749416383,
    "text": "hello",
}


@pytest.fixture
async def tg() -> AsyncIterator[Gateway]:
    gateway = Gateway(telegram, Script())
    yield gateway
    await gateway.aclose()


async def test_send_message_wire_format_and_result(tg: Gateway) -> None:
    tg.script.steps.append(reply(200, {"ok": True, "result": MESSAGE}))
    args = {"chat_id": 777, "text": "hello", "parse_mode": "HTML", "reply_to": 41}
    result = await tg.call("telegram_send_message", args, CREDS)
    assert result == {"success": True, "message_id": 42, "chat_id": 777, "date": 1749416383}
    tg.conforms("telegram_send_message", result, telegram.SentResult)
    request = tg.script.last
    assert request.method == "POST"
    assert str(request.url) == f"https://telegram.test/bot{TOKEN}/sendMessage"
    assert tg.script.json() == {
        "chat_id": 777,
        "text": "hello",
        "parse_mode": "HTML",
        "reply_parameters": {"message_id": 41},
    }


async def test_chat_id_may_be_a_username_or_a_numeric_string(tg: Gateway) -> None:
    tool = tg.tools["telegram_send_message"]
    assert tool.parse({"chat_id": "@hermes_news", "text": "x"}).chat_id == "@hermes_news"
    assert tool.parse({"chat_id": "-1001234567890", "text": "x"}).chat_id == "-1001234567890"
    with pytest.raises(Invalid) as caught:
        tool.parse({"chat_id": "hermes news", "text": "x"})
    assert "chat_id" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        tool.parse({"chat_id": 1, "text": "x", "parse_mode": "markdown"})
    assert "parse_mode" in caught.value.fields


async def test_get_updates_shapes_messages_and_next_offset(tg: Gateway) -> None:
    updates = [
        {
            "update_id": 900,
            "message": {**MESSAGE, "from": {"id": 5, "is_bot": False, "first_name": "Ann", "username": "ann"}},
        },
        {"update_id": 901, "callback_query": {"id": "1", "from": {"id": 5}, "data": "x"}},
        {
            "update_id": 902,
            "channel_post": {
                "message_id": 3,
                "chat": {"id": -100, "type": "channel", "title": "News"},
                "date": 1,
                "caption": "pic",
            },
        },
    ]
    tg.script.steps.append(reply(200, {"ok": True, "result": updates}))
    result = await tg.call("telegram_get_updates", {"limit": 10, "offset": 899}, CREDS)
    tg.conforms("telegram_get_updates", result, telegram.UpdatesResult)
    assert result["next_offset"] == 903
    first, second, third = result["updates"]
    assert first == {
        "update_id": 900,
        "type": "message",
        "message_id": 42,
        "chat_id": 777,
        "chat_type": "private",
        "from_id": 5,
        "from_username": "ann",
        "from_name": "Ann",
        "date": 1749416383,
        "text": "hello",
    }
    assert second == {"update_id": 901, "type": "callback_query"}
    assert third["chat_title"] == "News"
    assert third["text"] == "pic"
    request = tg.script.last
    assert request.method == "GET"
    assert request.url.path == f"/bot{TOKEN}/getUpdates"
    assert dict(request.url.params) == {"limit": "10", "timeout": "0", "offset": "899"}


async def test_no_updates(tg: Gateway) -> None:
    tg.script.steps.append(reply(200, {"ok": True, "result": []}))
    result = await tg.call("telegram_get_updates", {}, CREDS)
    assert result == {"success": True, "updates": [], "next_offset": None}


async def test_429_with_retry_after_in_the_body_is_retried_after_it(tg: Gateway) -> None:
    limited = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 0.2",
        "parameters": {"retry_after": 0.2},
    }
    tg.script.steps.extend([reply(429, limited), reply(200, {"ok": True, "result": MESSAGE})])
    result = await tg.call("telegram_send_message", {"chat_id": 777, "text": "hello"}, CREDS)
    assert result["message_id"] == 42
    assert len(tg.script.requests) == 2
    assert tg.script.times[1] - tg.script.times[0] >= 0.2


async def test_long_retry_after_is_reported(tg: Gateway) -> None:
    limited = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 34",
        "parameters": {"retry_after": 34},
    }
    tg.script.steps.append(reply(429, limited))
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", {"chat_id": 777, "text": "hello"}, CREDS)
    assert caught.value.retry_after == 34
    assert "Try again in 34 s" in shown(caught.value)
    assert len(tg.script.requests) == 1


async def test_chat_not_found(tg: Gateway) -> None:
    tg.script.steps.append(reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}))
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", {"chat_id": 12345, "text": "secret body"}, CREDS)
    error = caught.value
    assert error.code == "400"
    # Telegram's own code and words come first, so they can be looked up; then what to do.
    assert shown(error) == (
        "Telegram error 400: Bad Request: chat not found. The bot cannot see that chat. Nothing was sent. Check "
        "chat_id; the bot must have been added to the group or channel, or the user must have started a chat with "
        "the bot (/start)."
    )
    assert_clean(error, TOKEN, "secret body")


@pytest.mark.parametrize(
    ("description", "words"),
    [
        ("Forbidden: bot was blocked by the user", "blocked the bot"),
        ("Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 4", "parse_mode"),
        ("Bad Request: message to be replied not found", "reply_to"),
        ("Forbidden: bot can't initiate conversation with a user", "Start"),
    ],
)
async def test_descriptions_become_advice(tg: Gateway, description: str, words: str) -> None:
    status = 403 if description.startswith("Forbidden") else 400
    tg.script.steps.append(reply(status, {"ok": False, "error_code": status, "description": description}))
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", {"chat_id": 1, "text": "x"}, CREDS)
    assert words in shown(caught.value)
    assert caught.value.reconnect is False
    assert len(tg.script.requests) == 1


async def test_migrated_group_names_the_new_chat_id(tg: Gateway) -> None:
    body = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1001234567890},
    }
    tg.script.steps.append(reply(400, body))
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_send_message", {"chat_id": -123, "text": "x"}, CREDS)
    assert "-1001234567890" in shown(caught.value)


async def test_unauthorized_is_a_reconnect_tried_once(tg: Gateway) -> None:
    tg.script.steps.append(reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}))
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_get_updates", {}, CREDS)
    error = caught.value
    assert error.reconnect is True
    assert "Ask the account owner to reconnect Telegram in Hermes." in shown(error)
    assert len(tg.script.requests) == 1
    assert_clean(error, TOKEN)


async def test_webhook_conflict(tg: Gateway) -> None:
    body = {
        "ok": False,
        "error_code": 409,
        "description": "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first",
    }
    tg.script.steps.append(reply(409, body))
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_get_updates", {}, CREDS)
    assert "webhook" in shown(caught.value)


async def test_connection_errors_quoting_the_url_never_leak_the_token(tg: Gateway) -> None:
    url = f"https://telegram.test/bot{TOKEN}/getUpdates"
    tg.script.steps.extend([httpx.ConnectError(f"failed: {url}") for _ in range(3)])
    with pytest.raises(PlatformRejected) as caught:
        await tg.call("telegram_get_updates", {}, CREDS)
    assert caught.value.code == "unreachable"
    assert_clean(caught.value, TOKEN, TOKEN.split(":")[1])


async def test_verify_calls_get_me(tg: Gateway) -> None:
    tg.script.steps.append(reply(200, {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "H"}}))
    await tg.plugin.verify(CREDS)
    assert tg.script.last.url.path == f"/bot{TOKEN}/getMe"


async def test_hints_and_targets(tg: Gateway) -> None:
    send = tg.tools["telegram_send_message"]
    assert send.target(send.parse({"chat_id": 777, "text": "body"})) == "777"
    updates = tg.tools["telegram_get_updates"]
    # An offset confirms the earlier updates, which Telegram then deletes: not a read-only tool.
    assert not updates.spec.read_only
    assert updates.spec.destructive and updates.spec.idempotent
    assert updates.target(updates.parse({})) is None
