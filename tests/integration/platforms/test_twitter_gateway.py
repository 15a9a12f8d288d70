"""X tools against the fake X API v2: post, reply, delete, search, rate-limit resets and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hermes.adapters.platforms import twitter
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.fakes.x import FakeX

from .conftest import Gateway, assert_clean


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    async with FakeX() as server:
        yield server
        assert not server.handler_errors


@pytest.fixture
def x(fake: FakeX, gateway: Callable[..., Gateway]) -> Gateway:
    return gateway(twitter, Platform.TWITTER, fake.base_url)


@pytest.fixture
def creds(fake: FakeX) -> dict[str, str | int]:
    return {"accessToken": fake.add_user(username="hermes_test")}


async def test_post_reply_and_delete(fake: FakeX, x: Gateway, creds: dict[str, str | int]) -> None:
    theirs = fake.add_tweet("What do you think?", username="someone")
    posted = await x.call("twitter_post_tweet", {"text": "Hello, X"}, creds)
    reply = await x.call("twitter_post_tweet", {"text": "I agree", "reply_to": theirs["id"]}, creds)
    assert [t["text"] for t in fake.posts_by("hermes_test")] == ["Hello, X", "I agree"]
    assert fake.tweets[reply["tweet_id"]]["in_reply_to"] == theirs["id"]
    assert posted["url"].endswith(posted["tweet_id"])
    deleted = await x.call("twitter_delete_tweet", {"tweet_id": posted["tweet_id"]}, creds)
    assert deleted == {"success": True, "tweet_id": posted["tweet_id"], "deleted": True}
    assert [t["text"] for t in fake.posts_by("hermes_test")] == ["I agree"]


async def test_refusals(fake: FakeX, x: Gateway, creds: dict[str, str | int]) -> None:
    await x.call("twitter_post_tweet", {"text": "same words"}, creds)
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "same words"}, creds)
    assert caught.value.code == "duplicate_content"
    assert_clean(caught.value, str(creds["accessToken"]), "same words")

    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "x" * 281}, creds)
    assert "too long" in error_text(caught.value)

    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_delete_tweet", {"tweet_id": "1234567890"}, creds)
    assert "Could not find tweet" in error_text(caught.value)

    theirs = fake.add_tweet("not yours", username="someone")
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_delete_tweet", {"tweet_id": theirs["id"]}, creds)
    assert "do not own" in error_text(caught.value)
    assert caught.value.reconnect is False


async def test_search_pages(fake: FakeX, x: Gateway, creds: dict[str, str | int]) -> None:
    for i in range(12):
        fake.add_tweet(f"moon landing {i}", username="nasa")
    fake.add_tweet("sunny day", username="nasa")
    first = await x.call("twitter_search_recent", {"query": "from:nasa moon", "max_results": 10}, creds)
    assert first["result_count"] == 10
    assert all("moon" in t["text"] and t["author_id"] and t["created_at"] for t in first["tweets"])
    assert first["next_token"]
    rest = await x.call(
        "twitter_search_recent",
        {"query": "from:nasa moon", "max_results": 10, "next_token": first["next_token"]},
        creds,
    )
    assert rest["result_count"] == 2
    assert rest["next_token"] is None


async def test_rate_limit_reset_soon_is_waited_far_is_reported(
    fake: FakeX, x: Gateway, creds: dict[str, str | int]
) -> None:
    fake.rate_limit_next(reset_in=1, path="/search")
    result = await x.call("twitter_search_recent", {"query": "anything"}, creds)
    assert result["success"] is True
    fake.rate_limit_next(reset_in=900, path="/tweets")
    fake.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "later"}, creds)
    assert len(fake.requests) == 1
    assert caught.value.retry_after is not None
    assert 890 <= caught.value.retry_after <= 900


async def test_token_problems(fake: FakeX, x: Gateway, creds: dict[str, str | int]) -> None:
    fake.revoke(str(creds["accessToken"]))
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "hi"}, creds)
    assert caught.value.reconnect is True
    assert "Ask the account owner to reconnect X in Hermes" in error_text(caught.value)

    read_only = {"accessToken": fake.add_user(username="reader", scopes={"tweet.read", "users.read"})}
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "hi"}, read_only)
    assert "tweet.write" in error_text(caught.value)

    app_only = {"accessToken": fake.add_app_token()}
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "hi"}, app_only)
    assert "Application-Only" in error_text(caught.value)
    # Search accepts an app-only token.
    await x.call("twitter_search_recent", {"query": "hi"}, app_only)


async def test_verify(fake: FakeX, x: Gateway, creds: dict[str, str | int]) -> None:
    await x.plugin.verify(creds)
    with pytest.raises(PlatformRejected):
        await x.plugin.verify({"accessToken": "unknown"})
