"""X API v2 gateway: post, delete, search; x-rate-limit-reset; problem-document errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from hermes.adapters.platforms import twitter
from hermes.domain.errors import Invalid, PlatformRejected

from .scripted import Gateway, Script, assert_clean, reply, shown

TOKEN = "dGhpcyBpcyBhIHNlY3JldA-user-token"
CREDS = {"accessToken": TOKEN}


@pytest.fixture
async def x() -> AsyncIterator[Gateway]:
    gateway = Gateway(twitter, Script())
    yield gateway
    await gateway.aclose()


async def test_post_tweet_and_reply(x: Gateway) -> None:
    x.script.steps.append(reply(201, {"data": {"id": "1445880548472328192", "text": "hello"}}))
    result = await x.call("twitter_post_tweet", {"text": "hello", "reply_to": "1445880548472328000"}, CREDS)
    assert result == {
        "success": True,
        "tweet_id": "1445880548472328192",
        "url": "https://x.com/i/web/status/1445880548472328192",
    }
    x.conforms("twitter_post_tweet", result, twitter.PostedResult)
    request = x.script.last
    assert str(request.url) == "https://x.test/2/tweets"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert x.script.json() == {"text": "hello", "reply": {"in_reply_to_tweet_id": "1445880548472328000"}}


async def test_delete_tweet(x: Gateway) -> None:
    x.script.steps.append(reply(200, {"data": {"deleted": True}}))
    result = await x.call("twitter_delete_tweet", {"tweet_id": "1445880548472328192"}, CREDS)
    assert result == {"success": True, "tweet_id": "1445880548472328192", "deleted": True}
    x.conforms("twitter_delete_tweet", result, twitter.DeletedResult)
    assert x.script.last.method == "DELETE"
    assert x.script.last.url.path == "/2/tweets/1445880548472328192"


async def test_delete_that_deleted_nothing_is_an_error(x: Gateway) -> None:
    x.script.steps.append(reply(200, {"data": {"deleted": False}}))
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_delete_tweet", {"tweet_id": "1"}, CREDS)
    assert caught.value.code == "not_deleted"


async def test_search_recent(x: Gateway) -> None:
    body = {
        "data": [
            {
                "id": "2",
                "text": "moon",
                "author_id": "11",
                "created_at": "2026-05-08T10:00:00.000Z",
                "edit_history_tweet_ids": ["2"],
            },
            {"id": "1", "text": "more moon", "edit_history_tweet_ids": ["1"]},
        ],
        "meta": {"newest_id": "2", "oldest_id": "1", "result_count": 2, "next_token": "b26v89c19zqg8o3f"},
    }
    x.script.steps.append(reply(200, body))
    result = await x.call("twitter_search_recent", {"query": "from:nasa moon", "max_results": 20}, CREDS)
    x.conforms("twitter_search_recent", result, twitter.SearchResult)
    assert result["result_count"] == 2
    assert result["next_token"] == "b26v89c19zqg8o3f"
    assert result["tweets"][0] == {
        "tweet_id": "2",
        "text": "moon",
        "author_id": "11",
        "created_at": "2026-05-08T10:00:00.000Z",
    }
    params = dict(x.script.last.url.params)
    assert params == {"query": "from:nasa moon", "max_results": "20", "tweet.fields": "author_id,created_at"}


async def test_empty_search(x: Gateway) -> None:
    x.script.steps.append(reply(200, {"meta": {"result_count": 0}}))
    result = await x.call("twitter_search_recent", {"query": "nothing"}, CREDS)
    assert result == {"success": True, "tweets": [], "result_count": 0, "next_token": None}


async def test_rate_limit_reset_soon_is_waited(x: Gateway) -> None:
    reset = str(time.time() + 0.3)
    x.script.steps.extend(
        [
            reply(429, {"title": "Too Many Requests", "status": 429}, {"x-rate-limit-reset": reset}),
            reply(200, {"meta": {"result_count": 0}}),
        ]
    )
    await x.call("twitter_search_recent", {"query": "moon"}, CREDS)
    assert len(x.script.requests) == 2
    assert x.script.times[1] - x.script.times[0] >= 0.2


async def test_rate_limit_reset_far_away_is_reported(x: Gateway) -> None:
    reset = str(int(time.time()) + 600)
    x.script.steps.append(
        reply(
            429,
            {"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
            {"x-rate-limit-reset": reset, "x-rate-limit-remaining": "0"},
        )
    )
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "hi"}, CREDS)
    assert caught.value.retry_after is not None
    assert 590 <= caught.value.retry_after <= 600
    assert caught.value.code == "88"
    assert len(x.script.requests) == 1


async def test_duplicate_content(x: Gateway) -> None:
    body = {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }
    x.script.steps.append(reply(403, body))
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "secret words"}, CREDS)
    assert caught.value.code == "duplicate_content"
    assert "Nothing was sent. Change the text." in shown(caught.value)
    assert caught.value.reconnect is False
    assert len(x.script.requests) == 1
    assert_clean(caught.value, TOKEN, "secret words")


async def test_unauthorized_is_a_reconnect(x: Gateway) -> None:
    x.script.steps.append(
        reply(401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})
    )
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_post_tweet", {"text": "hi"}, CREDS)
    assert caught.value.reconnect is True
    assert "2 hours" in shown(caught.value)
    assert "Ask the account owner to reconnect X in Hermes." in shown(caught.value)


async def test_invalid_query(x: Gateway) -> None:
    body = {
        "errors": [
            {
                "parameters": {"query": ["(("]},
                "message": "There were errors processing your request: mismatched parentheses",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    x.script.steps.append(reply(400, body))
    with pytest.raises(PlatformRejected) as caught:
        await x.call("twitter_search_recent", {"query": "(("}, CREDS)
    assert "mismatched parentheses" in shown(caught.value)


async def test_arguments_and_hints(x: Gateway) -> None:
    with pytest.raises(Invalid) as caught:
        x.tools["twitter_search_recent"].parse({"query": "a", "max_results": 5})
    assert "max_results" in caught.value.fields
    with pytest.raises(Invalid) as caught:
        x.tools["twitter_delete_tweet"].parse({"tweet_id": "abc"})
    assert "tweet_id" in caught.value.fields
    delete = x.tools["twitter_delete_tweet"].spec
    assert delete.destructive and not delete.read_only
    assert x.tools["twitter_search_recent"].spec.read_only
    assert not x.tools["twitter_post_tweet"].spec.destructive


async def test_verify(x: Gateway) -> None:
    x.script.steps.append(reply(200, {"data": {"id": "1", "name": "A", "username": "a"}}))
    await x.plugin.verify(CREDS)
    assert x.script.last.url.path == "/2/users/me"
