"""FakeDiscord: bot auth, the User-Agent rule, messages, error bodies and rate-limit buckets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes_selftest._http import client

UA = "DiscordBot (https://github.com/example/hermes, 0.1.0)"


def _client(discord: FakeDiscord, token: str) -> httpx.Client:
    return client(base_url=discord.api_base(), headers={"Authorization": f"Bot {token}", "User-Agent": UA})


def _setup(discord: FakeDiscord, **grant: bool) -> tuple[str, str, httpx.Client]:
    token = discord.add_bot()
    channel = discord.add_channel()
    discord.grant(token, channel, **grant)
    return token, channel, _client(discord, token)


def _error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def test_user_agent_is_required(discord: FakeDiscord) -> None:
    token = discord.add_bot()
    for agent in ("python-httpx/0.28", "Mozilla/5.0"):
        response = httpx.get(
            f"{discord.api_base()}/users/@me", headers={"Authorization": f"Bot {token}", "User-Agent": agent}
        )
        assert _error(response, 403, 40333)["message"] == "internal network error"


@pytest.mark.parametrize("authorization", [None, "Bot wrong", "Bearer {token}", "{token}"])
def test_bad_auth_is_401(discord: FakeDiscord, authorization: str | None) -> None:
    token = discord.add_bot()
    headers = {"User-Agent": UA}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=token)
    response = httpx.get(f"{discord.api_base()}/users/@me", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "401: Unauthorized", "code": 0}


def test_get_me(discord: FakeDiscord) -> None:
    token = discord.add_bot(username="hermes")
    me = _client(discord, token).get("/users/@me").json()
    assert (me["username"], me["bot"], me["discriminator"]) == ("hermes", True, "0")
    assert me["id"] == discord.bots[token].id


def test_versions_and_unknown_routes(discord: FakeDiscord) -> None:
    token = discord.add_bot()
    headers = {"Authorization": f"Bot {token}", "User-Agent": UA}
    assert httpx.get(f"{discord.base_url}/api/v9/users/@me", headers=headers).status_code == 200
    assert httpx.get(f"{discord.base_url}/api/v6/users/@me", headers=headers).json() == {
        "message": "404: Not Found",
        "code": 0,
    }
    assert httpx.get(f"{discord.api_base()}/nothing/here", headers=headers).status_code == 404


def test_create_message_returns_the_message_object(discord: FakeDiscord) -> None:
    token, channel, client = _setup(discord)
    response = client.post(f"/channels/{channel}/messages", json={"content": "hello"})
    assert response.status_code == 200
    message = response.json()
    assert set(message) >= {
        "id",
        "channel_id",
        "author",
        "content",
        "timestamp",
        "edited_timestamp",
        "tts",
        "mention_everyone",
        "mentions",
        "mention_roles",
        "attachments",
        "embeds",
        "pinned",
        "type",
    }
    assert (message["content"], message["channel_id"], message["type"]) == ("hello", channel, 0)
    assert message["author"]["id"] == discord.bots[token].id
    assert discord.messages(channel)[0]["id"] == message["id"]


def test_rate_limit_headers_on_every_response() -> None:
    with FakeDiscord() as discord:  # Discord's message-create bucket: 5 per 5 s per channel
        _check_rate_limit_headers(discord)


def _check_rate_limit_headers(discord: FakeDiscord) -> None:
    _, channel, client = _setup(discord)
    first = client.post(f"/channels/{channel}/messages", json={"content": "1"})
    second = client.post(f"/channels/{channel}/messages", json={"content": ""})  # an error still reports the bucket
    for response, remaining in ((first, "4"), (second, "3")):
        assert response.headers["x-ratelimit-limit"] == "5"
        assert response.headers["x-ratelimit-remaining"] == remaining
        assert float(response.headers["x-ratelimit-reset-after"]) <= 5
        assert float(response.headers["x-ratelimit-reset"]) > 1_700_000_000
        assert len(response.headers["x-ratelimit-bucket"]) == 32


def test_bucket_exhaustion_is_a_real_429() -> None:
    with FakeDiscord(bucket_limit=2, bucket_window=3.0) as discord:
        _, channel, client = _setup(discord)
        other = discord.add_channel()
        discord.grant(next(iter(discord.bots)), other)
        statuses = [
            client.post(f"/channels/{channel}/messages", json={"content": str(i)}).status_code for i in range(2)
        ]
        assert statuses == [200, 200]
        limited = client.post(f"/channels/{channel}/messages", json={"content": "3"})
        assert limited.status_code == 429
        body = limited.json()
        assert (body["message"], body["global"]) == ("You are being rate limited.", False)
        assert 0 < body["retry_after"] <= 3
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert limited.headers["x-ratelimit-scope"] == "user"
        assert int(limited.headers["retry-after"]) >= 1
        assert len(discord.messages(channel)) == 2
        # Buckets are per channel: another channel is unaffected.
        assert client.post(f"/channels/{other}/messages", json={"content": "ok"}).status_code == 200


def test_global_limit() -> None:
    with FakeDiscord(global_limit=2) as discord:
        token = discord.add_bot()
        client = _client(discord, token)
        assert [client.get("/users/@me").status_code for _ in range(2)] == [200, 200]
        limited = client.get("/users/@me")
        assert limited.status_code == 429
        assert limited.json()["global"] is True
        assert limited.headers["x-ratelimit-global"] == "true"
        assert limited.headers["x-ratelimit-scope"] == "global"


def test_rate_limit_injection(discord: FakeDiscord) -> None:
    _, channel, client = _setup(discord)
    discord.rate_limit_next(retry_after=2.5, path="/messages")
    limited = client.post(f"/channels/{channel}/messages", json={"content": "x"})
    assert limited.json() == {"message": "You are being rate limited.", "retry_after": 2.5, "global": False}
    assert (limited.headers["retry-after"], limited.headers["x-ratelimit-scope"]) == ("3", "user")
    discord.rate_limit_next(scope="shared")
    assert client.get("/users/@me").headers["x-ratelimit-scope"] == "shared"
    assert client.post(f"/channels/{channel}/messages", json={"content": "x"}).status_code == 200


def test_message_validation(discord: FakeDiscord) -> None:
    _, channel, client = _setup(discord)
    too_long = _error(client.post(f"/channels/{channel}/messages", json={"content": "x" * 2001}), 400, 50035)
    assert too_long == {
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": {
            "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}
        },
    }
    assert client.post(f"/channels/{channel}/messages", json={"content": "x" * 2000}).status_code == 200
    assert (
        _error(client.post(f"/channels/{channel}/messages", json={}), 400, 50006)["message"]
        == "Cannot send an empty message"
    )
    assert _error(client.post(f"/channels/{channel}/messages", json={"content": "", "embeds": []}), 400, 50006)
    embeds = [{"description": str(i)} for i in range(11)]
    assert (
        "embeds" in _error(client.post(f"/channels/{channel}/messages", json={"embeds": embeds}), 400, 50035)["errors"]
    )
    assert client.post(f"/channels/{channel}/messages", json={"embeds": embeds[:1]}).status_code == 200
    invalid = client.post(
        f"/channels/{channel}/messages", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert _error(invalid, 400, 50109)["message"] == "The request body contains invalid JSON."


def test_channel_access_errors(discord: FakeDiscord) -> None:
    token, channel, client = _setup(discord, send=False)
    assert (
        _error(client.post("/channels/123/messages", json={"content": "x"}), 404, 10003)["message"] == "Unknown Channel"
    )
    assert _error(client.post(f"/channels/{channel}/messages", json={"content": "x"}), 403, 50013)["message"] == (
        "Missing Permissions"
    )
    hidden = discord.add_channel()
    assert (
        _error(client.post(f"/channels/{hidden}/messages", json={"content": "x"}), 403, 50001)["message"]
        == "Missing Access"
    )
    assert _error(client.get(f"/channels/{hidden}/messages"), 403, 50001)
    del token


def test_replies(discord: FakeDiscord) -> None:
    _, channel, client = _setup(discord)
    original = discord.post_message(channel, "question?")
    reply = client.post(
        f"/channels/{channel}/messages", json={"content": "answer", "message_reference": {"message_id": original["id"]}}
    ).json()
    assert reply["type"] == 19
    assert reply["message_reference"]["message_id"] == original["id"]
    assert reply["referenced_message"]["content"] == "question?"
    unknown = client.post(
        f"/channels/{channel}/messages", json={"content": "x", "message_reference": {"message_id": "1"}}
    )
    assert _error(unknown, 400, 50035)["errors"] == {
        "message_reference": {"_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message"}]}
    }
    tolerant = client.post(
        f"/channels/{channel}/messages",
        json={"content": "x", "message_reference": {"message_id": "1", "fail_if_not_exists": False}},
    )
    assert tolerant.json()["type"] == 0


def test_enforce_nonce_deduplicates_a_retry(discord: FakeDiscord) -> None:
    _, channel, client = _setup(discord)
    body = {"content": "once", "nonce": "abc-1", "enforce_nonce": True}
    first = client.post(f"/channels/{channel}/messages", json=body).json()
    second = client.post(f"/channels/{channel}/messages", json=body).json()
    assert first["id"] == second["id"]
    assert len(discord.messages(channel)) == 1


def test_read_messages_pagination(discord: FakeDiscord) -> None:
    _, channel, client = _setup(discord)
    posted = [discord.post_message(channel, f"m{i}") for i in range(6)]
    ids = [m["id"] for m in posted]

    def contents(**params: Any) -> list[str]:
        response = client.get(f"/channels/{channel}/messages", params=params)
        assert response.status_code == 200, response.text
        return [m["content"] for m in response.json()]

    assert contents() == ["m5", "m4", "m3", "m2", "m1", "m0"]  # newest first
    assert contents(limit=2) == ["m5", "m4"]
    assert contents(before=ids[3], limit=2) == ["m2", "m1"]
    assert contents(after=ids[1], limit=2) == ["m3", "m2"]
    assert contents(around=ids[3], limit=3) == ["m4", "m3", "m2"]


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"limit": 0}, "limit", "NUMBER_TYPE_MIN"),
        ({"limit": 101}, "limit", "NUMBER_TYPE_MAX"),
        ({"limit": "ten"}, "limit", "NUMBER_TYPE_COERCE"),
        ({"before": "abc"}, "before", "NUMBER_TYPE_COERCE"),
    ],
)
def test_read_messages_query_validation(discord: FakeDiscord, params: dict[str, Any], field: str, code: str) -> None:
    _, channel, client = _setup(discord)
    body = _error(client.get(f"/channels/{channel}/messages", params=params), 400, 50035)
    assert body["errors"][field]["_errors"][0]["code"] == code


def test_before_after_around_are_mutually_exclusive(discord: FakeDiscord) -> None:
    _, channel, client = _setup(discord)
    response = client.get(f"/channels/{channel}/messages", params={"before": "1", "after": "2"})
    assert _error(response, 400, 50035)["message"] == "Invalid Form Body"


def test_message_content_intent_and_history_permission(discord: FakeDiscord) -> None:
    token = discord.add_bot(message_content_intent=False)
    channel = discord.add_channel()
    discord.grant(token, channel)
    bot_id = discord.bots[token].id
    discord.post_message(channel, "secret plans")
    discord.post_message(channel, f"<@{bot_id}> hello bot")
    client = _client(discord, token)
    client.post(f"/channels/{channel}/messages", json={"content": "mine"})
    assert [m["content"] for m in client.get(f"/channels/{channel}/messages").json()] == [
        "mine",
        f"<@{bot_id}> hello bot",
        "",
    ]
    discord.grant(token, channel, read_history=False)
    assert client.get(f"/channels/{channel}/messages").json() == []


def test_guilds_and_channels(discord: FakeDiscord) -> None:
    token = discord.add_bot()
    guild = discord.add_guild(name="Acme")
    general = discord.add_channel(guild_id=guild, name="general")
    discord.add_channel(guild_id=guild, name="random")
    discord.grant(token, general)
    client = _client(discord, token)
    guilds = client.get("/users/@me/guilds", params={"with_counts": "true"}).json()
    assert [(g["id"], g["name"]) for g in guilds] == [(guild, "Acme")]
    assert isinstance(guilds[0]["permissions"], str)
    assert "approximate_member_count" in guilds[0]
    assert [c["name"] for c in client.get(f"/guilds/{guild}/channels").json()] == ["general", "random"]
    assert _error(client.get("/guilds/1/channels"), 404, 10004)["message"] == "Unknown Guild"
    assert _error(client.get("/users/@me/guilds", params={"limit": 201}), 400, 50035)


def test_unauthorized_and_server_error_injection(discord: FakeDiscord) -> None:
    token = discord.add_bot()
    client = _client(discord, token)
    discord.unauthorized_next()
    assert client.get("/users/@me").json() == {"message": "401: Unauthorized", "code": 0}
    discord.server_error_next(status=503)
    assert client.get("/users/@me").status_code == 503
    assert client.get("/users/@me").status_code == 200
