"""Discord REST v10 gateway: bot auth and User-Agent, mentions, rate-limit bodies, error codes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hermes.adapters.platforms import discord
from hermes.domain.errors import Invalid, PlatformRejected

from .scripted import Gateway, Script, assert_clean, reply, shown

TOKEN = "MTA1OTk0.secret.discordTOKEN"
CREDS = {"botToken": TOKEN}
CHANNEL = "1097442416466190356"
MESSAGE = {
    "id": "1162153548234895380",
    "channel_id": CHANNEL,
    "author": {"id": "1059943", "username": "hermes", "bot": True},
    "content": "hello",
    "timestamp": "2026-05-08T12:00:00.000000+00:00",
    "attachments": [],
    "embeds": [],
    "mentions": [],
    "pinned": False,
    "type": 0,
}


@pytest.fixture
async def dc() -> AsyncIterator[Gateway]:
    gateway = Gateway(discord, Script())
    yield gateway
    await gateway.aclose()


async def test_send_message_wire_format_and_result(dc: Gateway) -> None:
    dc.script.steps.append(reply(200, MESSAGE))
    args = {"channel_id": CHANNEL, "content": "hello", "reply_to": "1162153548234895000"}
    result = await dc.call("discord_send_message", args, CREDS)
    assert result == {"success": True, "message_id": "1162153548234895380", "channel_id": CHANNEL}
    dc.conforms("discord_send_message", result, discord.SentResult)
    request = dc.script.last
    assert str(request.url) == f"https://discord.test/api/v10/channels/{CHANNEL}/messages"
    assert request.headers["authorization"] == f"Bot {TOKEN}"
    assert request.headers["user-agent"].startswith("DiscordBot (")
    assert dc.script.json() == {
        "content": "hello",
        "allowed_mentions": {"parse": ["users"], "replied_user": True},
        "message_reference": {"message_id": "1162153548234895000", "channel_id": CHANNEL},
    }


async def test_read_messages(dc: Gateway) -> None:
    reply_message = {
        **MESSAGE,
        "id": "2",
        "author": {"id": "9", "username": "ann"},
        "message_reference": {"message_id": "1"},
    }
    attached = {**MESSAGE, "id": "1", "attachments": [{"id": "5", "url": "https://cdn.discordapp.com/a.png"}]}
    dc.script.steps.append(reply(200, [reply_message, attached]))
    result = await dc.call(
        "discord_read_messages", {"channel_id": CHANNEL, "limit": 2, "before": "1162153548234895380"}, CREDS
    )
    dc.conforms("discord_read_messages", result, discord.ReadResult)
    assert result["oldest_message_id"] == "1"
    assert result["messages"][0]["reply_to"] == "1"
    assert result["messages"][0]["author_username"] == "ann"
    assert result["messages"][1]["attachments"] == ["https://cdn.discordapp.com/a.png"]
    assert dict(dc.script.last.url.params) == {"limit": "2", "before": "1162153548234895380"}


async def test_429_body_retry_after_is_honoured(dc: Gateway) -> None:
    limited = {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}
    dc.script.steps.extend(
        [reply(429, limited, {"Retry-After": "1", "X-RateLimit-Scope": "user"}), reply(200, MESSAGE)]
    )
    await dc.call("discord_send_message", {"channel_id": CHANNEL, "content": "hi"}, CREDS)
    assert len(dc.script.requests) == 2
    # The body's precise retry_after wins over the rounded Retry-After header.
    assert 0.2 <= dc.script.times[1] - dc.script.times[0] < 0.9


async def test_reset_after_header_is_used_without_a_body(dc: Gateway) -> None:
    dc.script.steps.extend([reply(429, "", {"X-RateLimit-Reset-After": "0.2"}), reply(200, [])])
    await dc.call("discord_read_messages", {"channel_id": CHANNEL}, CREDS)
    assert dc.script.times[1] - dc.script.times[0] >= 0.2


async def test_long_global_limit_is_reported(dc: Gateway) -> None:
    dc.script.steps.append(reply(429, {"message": "You are being rate limited.", "retry_after": 64.57, "global": True}))
    with pytest.raises(PlatformRejected) as caught:
        await dc.call("discord_send_message", {"channel_id": CHANNEL, "content": "hi"}, CREDS)
    assert caught.value.retry_after == pytest.approx(64.57)
    assert "global" in shown(caught.value)
    assert "Try again in 65 s" in shown(caught.value)


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (404, 10003, "channel_id"),
        (403, 50013, "Send Messages"),
        (403, 50001, "View Channel"),
        (404, 10008, "message"),
    ],
)
async def test_error_codes(dc: Gateway, status: int, code: int, words: str) -> None:
    dc.script.steps.append(reply(status, {"message": "Missing Permissions", "code": code}))
    with pytest.raises(PlatformRejected) as caught:
        await dc.call("discord_send_message", {"channel_id": CHANNEL, "content": "secret text"}, CREDS)
    assert caught.value.code == str(code)
    assert words in shown(caught.value)
    assert caught.value.reconnect is False
    assert len(dc.script.requests) == 1
    assert_clean(caught.value, TOKEN, "secret text")


async def test_invalid_form_body_names_the_fields(dc: Gateway) -> None:
    body = {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {
            "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]},
            "message_reference": {"_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message"}]},
        },
    }
    dc.script.steps.append(reply(400, body))
    with pytest.raises(PlatformRejected) as caught:
        await dc.call("discord_send_message", {"channel_id": CHANNEL, "content": "x"}, CREDS)
    assert "content: Must be 2000 or fewer in length." in shown(caught.value)
    assert "reply_to: Unknown message" in shown(caught.value)


async def test_unauthorized_is_a_reconnect(dc: Gateway) -> None:
    dc.script.steps.append(reply(401, {"message": "401: Unauthorized", "code": 0}))
    with pytest.raises(PlatformRejected) as caught:
        await dc.call("discord_read_messages", {"channel_id": CHANNEL}, CREDS)
    assert caught.value.reconnect is True
    assert "Ask the account owner to reconnect Discord in Hermes." in shown(caught.value)
    assert len(dc.script.requests) == 1


async def test_read_retries_a_gateway_error(dc: Gateway) -> None:
    dc.script.steps.extend([reply(502, "<html>502</html>"), reply(200, [MESSAGE])])
    result = await dc.call("discord_read_messages", {"channel_id": CHANNEL}, CREDS)
    assert len(result["messages"]) == 1


async def test_arguments(dc: Gateway) -> None:
    tool = dc.tools["discord_send_message"]
    for bad, field in [
        ({"channel_id": "general", "content": "x"}, "channel_id"),
        ({"channel_id": CHANNEL, "content": "x" * 2001}, "content"),
        ({"channel_id": CHANNEL, "content": ""}, "content"),
    ]:
        with pytest.raises(Invalid) as caught:
            tool.parse(bad)
        assert field in caught.value.fields
    with pytest.raises(Invalid) as caught:
        dc.tools["discord_read_messages"].parse({"channel_id": CHANNEL, "limit": 101})
    assert "limit" in caught.value.fields
    assert tool.target(tool.parse({"channel_id": CHANNEL, "content": "body"})) == CHANNEL
    assert dc.tools["discord_read_messages"].spec.read_only


async def test_verify(dc: Gateway) -> None:
    dc.script.steps.append(reply(200, {"id": "1", "username": "hermes", "bot": True}))
    await dc.plugin.verify(CREDS)
    assert dc.script.last.url.path == "/api/v10/users/@me"
