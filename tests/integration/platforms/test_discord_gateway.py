"""Discord tools against the fake REST API: bot auth, the User-Agent rule, permissions and rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hermes.adapters.platforms import discord
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.fakes.discord import FakeDiscord

from .conftest import Gateway, assert_clean


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(bucket_limit=3, bucket_window=0.6) as server:
        yield server
        assert not server.handler_errors


@pytest.fixture
def dc(fake: FakeDiscord, gateway: Callable[..., Gateway]) -> Gateway:
    return gateway(discord, Platform.DISCORD, fake.api_base())


@pytest.fixture
def bot(fake: FakeDiscord) -> tuple[str, str]:
    token = fake.add_bot()
    channel = fake.add_channel()
    fake.grant(token, channel)
    return token, channel


async def test_send_and_reply(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    token, channel = bot
    theirs = fake.post_message(channel, "question?")
    result = await dc.call(
        "discord_send_message",
        {"channel_id": channel, "content": "answer", "reply_to": theirs["id"]},
        {"botToken": token},
    )
    mine = fake.messages(channel)[0]
    assert result == {"success": True, "message_id": mine["id"], "channel_id": channel}
    assert mine["content"] == "answer"
    assert mine["message_reference"]["message_id"] == theirs["id"]


async def test_read_messages_and_page_back(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    token, channel = bot
    for i in range(5):
        fake.post_message(channel, f"m{i}")
    page = await dc.call("discord_read_messages", {"channel_id": channel, "limit": 3}, {"botToken": token})
    assert [m["content"] for m in page["messages"]] == ["m4", "m3", "m2"]
    assert page["messages"][0]["author_username"] == "alice"
    older = await dc.call(
        "discord_read_messages",
        {"channel_id": channel, "limit": 3, "before": page["oldest_message_id"]},
        {"botToken": token},
    )
    assert [m["content"] for m in older["messages"]] == ["m1", "m0"]


async def test_without_message_content_intent_text_is_empty(fake: FakeDiscord, dc: Gateway) -> None:
    token = fake.add_bot(message_content_intent=False)
    channel = fake.add_channel()
    fake.grant(token, channel)
    fake.post_message(channel, "hidden")
    result = await dc.call("discord_read_messages", {"channel_id": channel}, {"botToken": token})
    assert result["messages"][0]["content"] == ""


async def test_permission_problems(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    token, _ = bot
    unknown = fake.new_snowflake()
    hidden = fake.add_channel()
    read_only = fake.add_channel()
    fake.grant(token, read_only, send=False)
    cases = [(unknown, "10003", "channel_id"), (hidden, "50001", "View Channel"), (read_only, "50013", "Send Messages")]
    for channel, code, words in cases:
        with pytest.raises(PlatformRejected) as caught:
            await dc.call("discord_send_message", {"channel_id": channel, "content": "secret"}, {"botToken": token})
        assert caught.value.code == code
        assert words in error_text(caught.value)
        assert_clean(caught.value, token, "secret")


async def test_reply_to_a_missing_message_names_reply_to(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    token, channel = bot
    with pytest.raises(PlatformRejected) as caught:
        await dc.call(
            "discord_send_message",
            {"channel_id": channel, "content": "x", "reply_to": fake.new_snowflake()},
            {"botToken": token},
        )
    assert caught.value.code == "50035"
    assert "reply_to: Unknown message" in error_text(caught.value)


async def test_bucket_exhaustion_is_waited_out(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    token, channel = bot
    for i in range(5):
        await dc.call("discord_send_message", {"channel_id": channel, "content": f"n{i}"}, {"botToken": token})
    assert [m["content"] for m in fake.messages(channel)][:5] == ["n4", "n3", "n2", "n1", "n0"]
    # At least one create met an empty bucket, got a 429 and was sent again after its wait.
    assert len(fake.requests_to("/messages", "POST")) > 5


async def test_injected_429_uses_the_body_wait(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    token, channel = bot
    fake.rate_limit_next(retry_after=0.3, path="/messages")
    fake.clear_requests()
    await dc.call("discord_send_message", {"channel_id": channel, "content": "hi"}, {"botToken": token})
    first, second = fake.requests
    assert second.received_at - first.received_at >= 0.3


async def test_unauthorized_is_a_reconnect(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    _, channel = bot
    fake.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await dc.call("discord_read_messages", {"channel_id": channel}, {"botToken": "bad.token.value"})
    assert len(fake.requests) == 1
    assert caught.value.reconnect is True
    assert_clean(caught.value, "bad.token.value")


async def test_read_survives_a_gateway_error(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    token, channel = bot
    fake.server_error_next(path="/messages")
    result = await dc.call("discord_read_messages", {"channel_id": channel}, {"botToken": token})
    assert result["success"] is True


async def test_verify(fake: FakeDiscord, dc: Gateway, bot: tuple[str, str]) -> None:
    await dc.plugin.verify({"botToken": bot[0]})
    with pytest.raises(PlatformRejected):
        await dc.plugin.verify({"botToken": "nope"})
