"""FakeX: v2 posting, deleting, users/me and recent search with X's problem bodies and rate limits."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.fakes.x import FakeX, weighted_length
from tests.fakes_selftest._http import client


def _client(x_api: FakeX, token: str) -> httpx.Client:
    return client(base_url=x_api.base_url, headers={"Authorization": f"Bearer {token}"})


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["status" if "status" in body else "title"]
    return body


def test_post_tweet(x_api: FakeX) -> None:
    token = x_api.add_user(username="acme")
    response = _client(x_api, token).post("/2/tweets", json={"text": "hello world"})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data == {"id": data["id"], "text": "hello world", "edit_history_tweet_ids": [data["id"]]}
    assert int(response.headers["x-rate-limit-remaining"]) == int(response.headers["x-rate-limit-limit"]) - 1
    assert int(response.headers["x-rate-limit-reset"]) > time.time()
    assert response.headers["x-user-limit-24hour-remaining"] == "99"
    assert [t["text"] for t in x_api.posts_by("acme")] == ["hello world"]


def test_reply(x_api: FakeX) -> None:
    token = x_api.add_user()
    parent = x_api.add_tweet("original", username="bob")
    client = _client(x_api, token)
    response = client.post("/2/tweets", json={"text": "reply", "reply": {"in_reply_to_tweet_id": parent["id"]}})
    assert response.status_code == 201
    assert x_api.tweets[response.json()["data"]["id"]]["in_reply_to"] == parent["id"]
    missing = client.post("/2/tweets", json={"text": "reply 2", "reply": {"in_reply_to_tweet_id": "1"}})
    assert (
        _problem(missing, 403)["detail"] == "You attempted to reply to a Tweet that is deleted or not visible to you."
    )


def test_duplicate_content_is_forbidden(x_api: FakeX) -> None:
    token = x_api.add_user()
    client = _client(x_api, token)
    assert client.post("/2/tweets", json={"text": "same"}).status_code == 201
    assert client.post("/2/tweets", json={"text": "same"}).json() == {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }


def test_text_length_is_weighted(x_api: FakeX) -> None:
    token = x_api.add_user()
    client = _client(x_api, token)
    assert client.post("/2/tweets", json={"text": "a" * 280}).status_code == 201
    too_long = _problem(client.post("/2/tweets", json={"text": "b" * 281}), 400)
    assert too_long["detail"].startswith("Your Tweet text is too long.")
    assert _problem(client.post("/2/tweets", json={"text": "漢" * 141}), 400)
    assert weighted_length("https://example.com/a-very-long-path " + "x" * 200) == 23 + 1 + 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": 5},
        {"text": "x", "unknown": 1},
        {"text": "x", "reply": {"in_reply_to_tweet_id": 123}},
        {"text": "x", "reply": {}},
    ],
)
def test_invalid_bodies(x_api: FakeX, body: dict[str, Any]) -> None:
    token = x_api.add_user()
    problem = _problem(_client(x_api, token).post("/2/tweets", json=body), 400)
    assert problem["title"] == "Invalid Request"
    assert problem["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert problem["errors"][0]["message"]


def test_auth(x_api: FakeX) -> None:
    token = x_api.add_user()
    unauthorized = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
    assert httpx.post(f"{x_api.base_url}/2/tweets", json={"text": "x"}).json() == unauthorized
    assert _client(x_api, "wrong").post("/2/tweets", json={"text": "x"}).json() == unauthorized
    x_api.revoke(token)
    assert _client(x_api, token).get("/2/users/me").status_code == 401


def test_app_only_token_cannot_post_but_can_search(x_api: FakeX) -> None:
    app = x_api.add_app_token()
    x_api.add_tweet("public news", username="bob")
    client = _client(x_api, app)
    problem = _problem(client.post("/2/tweets", json={"text": "x"}), 403)
    assert problem["title"] == "Unsupported Authentication"
    assert problem["type"] == "https://api.twitter.com/2/problems/unsupported-authentication"
    assert _problem(client.get("/2/users/me"), 403)["title"] == "Unsupported Authentication"
    assert client.get("/2/tweets/search/recent", params={"query": "news"}).json()["meta"]["result_count"] == 1


def test_missing_scope(x_api: FakeX) -> None:
    token = x_api.add_user(scopes={"tweet.read", "users.read"})
    assert _client(x_api, token).post("/2/tweets", json={"text": "x"}).status_code == 403
    assert _client(x_api, token).get("/2/users/me").status_code == 200


def test_delete_tweet(x_api: FakeX) -> None:
    token = x_api.add_user(username="acme")
    client = _client(x_api, token)
    tweet_id = client.post("/2/tweets", json={"text": "bye"}).json()["data"]["id"]
    assert client.delete(f"/2/tweets/{tweet_id}").json() == {"data": {"deleted": True}}
    assert (
        _problem(client.delete(f"/2/tweets/{tweet_id}"), 404)["type"]
        == "https://api.twitter.com/2/problems/resource-not-found"
    )
    others = x_api.add_tweet("not yours", username="bob")
    assert _problem(client.delete(f"/2/tweets/{others['id']}"), 403)["title"] == "Forbidden"
    assert _problem(client.delete("/2/tweets/abc"), 400)["title"] == "Invalid Request"
    assert client.post("/2/tweets", json={"text": "bye"}).status_code == 201  # a deleted text is no duplicate


def test_users_me(x_api: FakeX) -> None:
    token = x_api.add_user(username="acme", name="Acme Inc", user_id="42")
    client = _client(x_api, token)
    assert client.get("/2/users/me").json() == {"data": {"id": "42", "name": "Acme Inc", "username": "acme"}}
    with_fields = client.get("/2/users/me", params={"user.fields": "created_at,public_metrics"}).json()["data"]
    assert set(with_fields) == {"id", "name", "username", "created_at", "public_metrics"}
    assert _problem(client.get("/2/users/me", params={"user.fields": "shoe_size"}), 400)["errors"][0][
        "message"
    ].startswith("The `user.fields` query parameter value [shoe_size] is not one of")


def test_search_recent(x_api: FakeX) -> None:
    token = x_api.add_user()
    x_api.add_tweet("Hermes ships today", username="bob")
    x_api.add_tweet("hermes is a messenger god", username="carol")
    x_api.add_tweet("unrelated", username="bob")
    x_api.add_tweet("hermes from long ago", username="bob", created_at=time.time() - 8 * 86400)
    client = _client(x_api, token)

    def texts(query: str, **params: Any) -> list[str]:
        response = client.get("/2/tweets/search/recent", params={"query": query} | params)
        assert response.status_code == 200, response.text
        return [t["text"] for t in response.json().get("data", [])]

    assert texts("hermes") == ["hermes is a messenger god", "Hermes ships today"]  # newest first, last 7 days
    assert texts("hermes from:bob") == ["Hermes ships today"]
    assert texts("hermes -god") == ["Hermes ships today"]
    assert texts('"messenger god" OR unrelated') == ["unrelated", "hermes is a messenger god"]
    body = client.get("/2/tweets/search/recent", params={"query": "nothing"}).json()
    assert body == {"meta": {"result_count": 0}}
    full = client.get(
        "/2/tweets/search/recent",
        params={"query": "hermes", "tweet.fields": "created_at,author_id", "expansions": "author_id"},
    ).json()
    assert set(full["data"][0]) == {"id", "text", "edit_history_tweet_ids", "created_at", "author_id"}
    assert {u["username"] for u in full["includes"]["users"]} == {"bob", "carol"}
    assert full["meta"]["newest_id"] == full["data"][0]["id"]


def test_search_pagination(x_api: FakeX) -> None:
    token = x_api.add_user()
    for i in range(15):
        x_api.add_tweet(f"item {i}", username="bob")
    client = _client(x_api, token)
    first = client.get("/2/tweets/search/recent", params={"query": "item"}).json()
    assert first["meta"]["result_count"] == 10
    second = client.get(
        "/2/tweets/search/recent", params={"query": "item", "next_token": first["meta"]["next_token"]}
    ).json()
    assert second["meta"]["result_count"] == 5
    assert "next_token" not in second["meta"]
    assert {t["id"] for t in first["data"]}.isdisjoint(t["id"] for t in second["data"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "x", "max_results": 5}, "The `max_results` query parameter value [5] is not between 10 and 100"),
        ({"query": "x", "max_results": 101}, "The `max_results` query parameter value [101] is not between 10 and 100"),
        ({"query": ""}, "The `query` query parameter can not be empty"),
        ({"query": "x", "limit": 5}, "The query parameter [limit] is not one of"),
        ({"query": "x", "next_token": "%%%"}, "The `next_token` query parameter value [%%%] is not valid"),
        (
            {"query": "x", "start_time": "2001-01-01T00:00:00Z"},
            "Invalid 'start_time':'2001-01-01T00:00:00Z'. 'start_time' must be on or after",
        ),
    ],
)
def test_search_validation(x_api: FakeX, params: dict[str, Any], message: str) -> None:
    token = x_api.add_user()
    problem = _problem(_client(x_api, token).get("/2/tweets/search/recent", params=params), 400)
    assert problem["errors"][0]["message"].startswith(message)
    assert problem["detail"] == "One or more parameters to your request was invalid."


def test_endpoint_rate_limit_is_enforced() -> None:
    with FakeX(limits={"POST /2/tweets": (2, 900.0)}) as x_api:
        client = _client(x_api, x_api.add_user())
        assert [client.post("/2/tweets", json={"text": f"t{i}"}).status_code for i in range(2)] == [201, 201]
        limited = client.post("/2/tweets", json={"text": "t3"})
        assert limited.status_code == 429
        assert limited.json() == {
            "title": "Too Many Requests",
            "detail": "Too Many Requests",
            "type": "about:blank",
            "status": 429,
        }
        assert limited.headers["x-rate-limit-remaining"] == "0"
        assert int(limited.headers["x-rate-limit-reset"]) >= int(time.time()) + 890
        assert client.get("/2/users/me").status_code == 200  # other endpoints have their own window


def test_daily_post_cap_counts_only_created_posts() -> None:
    with FakeX(daily_post_limit=1) as x_api:
        client = _client(x_api, x_api.add_user())
        assert client.post("/2/tweets", json={"text": "x" * 300}).status_code == 400  # refused: not counted
        created = client.post("/2/tweets", json={"text": "one"})
        assert created.headers["x-user-limit-24hour-remaining"] == "0"
        assert client.post("/2/tweets", json={"text": "two"}).status_code == 429


def test_injections(x_api: FakeX) -> None:
    client = _client(x_api, x_api.add_user())
    x_api.rate_limit_next(reset_in=60)
    limited = client.post("/2/tweets", json={"text": "x"})
    assert (limited.status_code, limited.headers["x-rate-limit-remaining"]) == (429, "0")
    assert int(limited.headers["x-rate-limit-reset"]) <= int(time.time()) + 61
    x_api.unauthorized_next()
    assert client.get("/2/users/me").status_code == 401
    x_api.server_error_next()
    assert client.get("/2/users/me").status_code == 503
    assert client.post("/2/tweets", json={"text": "x"}).status_code == 201


def test_unknown_route(x_api: FakeX) -> None:
    response = httpx.get(f"{x_api.base_url}/1.1/statuses/update.json")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == 34
