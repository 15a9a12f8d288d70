"""Fake X (Twitter) API v2: posting, deleting, ``users/me`` and recent search.

Point a client at ``fake.base_url`` (what ``HERMES_TWITTER_API_BASE`` is for ``https://api.x.com``); paths start
with ``/2/``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .base import FakeServer, LimitState, Reply, WindowLimiter, json_response, random_token
from .oauth_consent import ConsentDesk

__all__ = ["DEFAULT_LIMITS", "FakeX", "XUser", "weighted_length"]

_TWITTER_EPOCH_MS = 1_288_834_974_657
_INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
_UNSUPPORTED_AUTH = "https://api.twitter.com/2/problems/unsupported-authentication"
_NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
USER_SCOPES = frozenset({"tweet.read", "tweet.write", "users.read", "offline.access"})
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "POST /2/tweets": (100, 900.0),
    "DELETE /2/tweets/:id": (50, 900.0),
    "GET /2/tweets/:id": (15, 900.0),
    "GET /2/users/me": (75, 900.0),
    "GET /2/tweets/search/recent": (60, 900.0),
}
_NEEDED_SCOPES = {
    "POST /2/tweets": {"tweet.read", "tweet.write", "users.read"},
    "DELETE /2/tweets/:id": {"tweet.read", "tweet.write", "users.read"},
    "GET /2/tweets/:id": {"tweet.read", "users.read"},
    "GET /2/users/me": {"tweet.read", "users.read"},
    "GET /2/tweets/search/recent": {"tweet.read", "users.read"},
}
_TWEET_FIELDS = (
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "context_annotations",
    "conversation_id",
    "created_at",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "note_tweet",
    "possibly_sensitive",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "source",
    "text",
    "withheld",
)
_USER_FIELDS = (
    "affiliation",
    "connection_status",
    "created_at",
    "description",
    "entities",
    "id",
    "location",
    "most_recent_tweet_id",
    "name",
    "pinned_tweet_id",
    "profile_banner_url",
    "profile_image_url",
    "protected",
    "public_metrics",
    "receives_your_dm",
    "subscription_type",
    "url",
    "username",
    "verified",
    "verified_type",
    "withheld",
)
_SEARCH_PARAMS = (
    "query",
    "start_time",
    "end_time",
    "since_id",
    "until_id",
    "max_results",
    "next_token",
    "pagination_token",
    "sort_order",
    "expansions",
    "tweet.fields",
    "media.fields",
    "poll.fields",
    "place.fields",
    "user.fields",
)
_POST_KEYS = {
    "text",
    "reply",
    "quote_tweet_id",
    "media",
    "poll",
    "reply_settings",
    "for_super_followers_only",
    "geo",
    "direct_message_deep_link",
    "nullcast",
    "community_id",
    "card_uri",
    "made_with_ai",
    "paid_partnership",
    "share_with_followers",
}

Handler = Callable[[Request, "XUser | None"], Awaitable[Response]]


def _problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> Reply:
    return Reply(json_response({"title": title, "type": type_, "status": status, "detail": detail} | extra, status))


def _invalid(message: str, parameters: dict[str, list[str]] | None = None) -> NoReturn:
    """X's 400 for bad parameters: a list of ``errors`` under the invalid-request problem."""
    error: dict[str, Any] = {"parameters": parameters or {}, "message": message}
    body = {
        "errors": [error],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": _INVALID_REQUEST,
    }
    raise Reply(json_response(body, 400))


def weighted_length(text: str) -> int:
    """Tweet length as twitter-text v3 counts it: URLs are 23, CJK and emoji count 2, NFC-normalised."""
    text = unicodedata.normalize("NFC", text)
    length = 0
    for url in re.findall(r"https?://\S+", text):
        length += 23
        text = text.replace(url, "", 1)
    for ch in text:
        cp = ord(ch)
        light = cp <= 4351 or 8192 <= cp <= 8205 or 8208 <= cp <= 8223 or 8242 <= cp <= 8247
        length += 1 if light else 2
    return length


@dataclass
class XUser:
    """An X account and the OAuth 2.0 user-context scopes its token carries."""

    id: str
    username: str
    name: str
    scopes: frozenset[str] = USER_SCOPES
    created_at: str = "2020-01-01T00:00:00.000Z"
    description: str = ""
    tokens: set[str] = field(default_factory=set)

    def view(self, fields: Iterable[str] = ()) -> dict[str, Any]:
        full = {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "created_at": self.created_at,
            "description": self.description,
            "protected": False,
            "verified": False,
            "verified_type": "none",
            "profile_image_url": "https://pbs.twimg.com/profile_images/default_normal.png",
            "public_metrics": {"followers_count": 0, "following_count": 0, "tweet_count": 0, "listed_count": 0},
            "url": "",
            "location": "",
        }
        return {k: full[k] for k in ("id", "name", "username", *fields) if k in full}


class FakeX(FakeServer):
    """X API v2 with OAuth 2.0 Bearer tokens: user-context tokens (:meth:`add_user`) and app-only ones.

    Posting, deleting and ``users/me`` need a user-context token (an app-only token gets X's 403
    "Unsupported Authentication"); search accepts both. Every authorised response carries
    ``x-rate-limit-limit/remaining/reset`` for its endpoint and token; an exhausted endpoint answers 429 until
    ``x-rate-limit-reset``. Posts also report ``x-user-limit-24hour-*``.

    Args:
        max_tweet_length: weighted characters a post may have (280; premium accounts get more).
        limits: requests per window per endpoint key (see ``DEFAULT_LIMITS``), merged over the defaults.
        daily_post_limit: posts per user per 24 h (``x-user-limit-24hour-*``).
    """

    platform = "x"

    def __init__(
        self,
        *,
        max_tweet_length: int = 280,
        limits: dict[str, tuple[int, float]] | None = None,
        daily_post_limit: int = 100,
    ) -> None:
        self.users: dict[str, XUser] = {}
        self.user_tokens: dict[str, XUser] = {}
        self.app_tokens: set[str] = set()
        self.revoked_tokens: set[str] = set()
        self.tweets: dict[str, dict[str, Any]] = {}
        """id -> stored tweet (``text``, ``author_id``, ``created_at`` epoch, ``deleted``, reply/quote ids)."""
        self.max_tweet_length = max_tweet_length
        self.limiters = {
            key: WindowLimiter(limit, window) for key, (limit, window) in (DEFAULT_LIMITS | (limits or {})).items()
        }
        self.daily_posts = WindowLimiter(daily_post_limit, 86400.0)
        self._seq = itertools.count()
        self._id_lock = threading.Lock()
        self.consent = ConsentDesk(pkce_required=True)
        """The OAuth 2.0 consent page at ``/i/oauth2/authorize`` (register apps with ``consent.register_app``)."""
        self.consent_username = "hermes_test"
        """The account that approves on the consent page."""
        self.access_ttl = 7200
        """``expires_in`` of the user access tokens the token endpoint issues (X: 2 hours)."""
        self.refresh_tokens: dict[str, tuple[str, str]] = {}
        """live refresh token -> (user id, grant id); each is replaced (rotated) when used."""
        self.spent_refresh_tokens: dict[str, str] = {}
        """refresh token already used once -> its grant id"""
        self.grants: dict[str, set[str]] = {}
        """grant id -> every access and refresh token issued under it (revoked together)."""
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        def route(path: str, method: str, handler: Handler, key: str) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._call(request, handler, key)

            return Route(path, endpoint, methods=[method])

        return [
            Route("/i/oauth2/authorize", self.consent.page, methods=["GET"]),
            Route("/i/oauth2/authorize", self.consent.decide, methods=["POST"]),
            Route("/2/oauth2/token", self._oauth2_token, methods=["POST"]),
            route("/2/tweets", "POST", self._create_tweet, "POST /2/tweets"),
            route("/2/tweets/search/recent", "GET", self._search_recent, "GET /2/tweets/search/recent"),
            route("/2/tweets/{id}", "DELETE", self._delete_tweet, "DELETE /2/tweets/:id"),
            route("/2/tweets/{id}", "GET", self._get_tweet, "GET /2/tweets/:id"),
            route("/2/users/me", "GET", self._get_me, "GET /2/users/me"),
            Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]

    # ------------------------------------------------------------------ test set-up

    def new_id(self, at: float | None = None) -> str:
        with self._id_lock:
            ms = int((time.time() if at is None else at) * 1000)
            return str(((ms - _TWITTER_EPOCH_MS) << 22) | (next(self._seq) & 0x3FFFFF))

    def add_user(
        self,
        token: str | None = None,
        *,
        user_id: str | None = None,
        username: str = "hermes_test",
        name: str = "Hermes Test",
        scopes: Iterable[str] = USER_SCOPES,
    ) -> str:
        """Register a user and an OAuth 2.0 user-context token for it; returns the token.

        Calling it again with the same ``username`` adds another token for the same account.
        """
        token = token or random_token(90)
        user = next((u for u in self.users.values() if u.username == username), None)
        if user is None:
            user = XUser(
                id=user_id or str(1_500_000_000_000_000_000 + len(self.users) + 1), username=username, name=name
            )
            self.users[user.id] = user
        user.scopes = frozenset(scopes)
        user.tokens.add(token)
        self.user_tokens[token] = user
        return token

    def add_app_token(self, token: str | None = None) -> str:
        """An app-only Bearer token (read-only public data)."""
        token = token or "AAAAAAAAAAAAAAAAAAAAA" + random_token(90)
        self.app_tokens.add(token)
        return token

    def revoke(self, token: str) -> None:
        self.revoked_tokens.add(token)

    def add_tweet(
        self, text: str, *, username: str = "someone", created_at: float | None = None, in_reply_to: str | None = None
    ) -> dict[str, Any]:
        """Seed a post (by ``username``, created if unknown) for search and reply tests."""
        author = next((u for u in self.users.values() if u.username == username), None)
        if author is None:
            author = XUser(id=str(2_000_000_000 + len(self.users)), username=username, name=username.title())
            self.users[author.id] = author
        return self._store(author, text, in_reply_to=in_reply_to, created_at=created_at)

    def posts_by(self, username: str) -> list[dict[str, Any]]:
        return [t for t in self.tweets.values() if self.users[t["author_id"]].username == username and not t["deleted"]]

    def token_requests(self, grant_type: str | None = None) -> list[Any]:
        """Requests to ``POST /2/oauth2/token`` (of one ``grant_type`` if given)."""
        calls = self.requests_to("/2/oauth2/token", "POST")
        return [c for c in calls if grant_type is None or c.form.get("grant_type") == grant_type]

    def revoke_grant(self, refresh_token: str) -> None:
        """The owner removed the app in X's settings: every token of the grant stops working."""
        grant = self.refresh_tokens.get(refresh_token, (None, None))[1] or self.spent_refresh_tokens.get(refresh_token)
        for token in self.grants.get(grant or "", set()):
            self.revoked_tokens.add(token)
            self.refresh_tokens.pop(token, None)

    async def _oauth2_token(self, request: Request) -> Response:
        """``POST /2/oauth2/token``: the authorization_code and refresh_token grants of a confidential client.

        Refresh tokens rotate: each works once and the answer carries the next. A refresh token sent a second
        time gets ``invalid_grant`` and, as OAuth 2.0 for browser-based apps recommends and X does, revokes
        the whole grant.
        """
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id = self.consent.client(request, form)
        if client_id is None or not (request.headers.get("authorization") or "").lower().startswith("basic "):
            return json_response(
                {"error": "unauthorized_client", "error_description": "Missing valid authorization header"}, 401
            )
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            issued = self.consent.redeem(
                form.get("code", ""), client_id, form.get("redirect_uri", ""), form.get("code_verifier")
            )
            if issued is None:
                return json_response(
                    {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}, 400
                )
            user_token = self.add_user(username=self.consent_username)
            user = self.user_tokens[user_token]
            grant = random_token(16)
            self.grants[grant] = set()
            return self._issue(user, grant, user_token, issued.scope)
        if grant_type == "refresh_token":
            token = form.get("refresh_token", "")
            if token in self.spent_refresh_tokens:
                self.revoke_grant(token)
                return json_response(
                    {"error": "invalid_grant", "error_description": "Value passed for the token was invalid."}, 400
                )
            held = self.refresh_tokens.pop(token, None)
            if held is None or token in self.revoked_tokens:
                return json_response(
                    {"error": "invalid_grant", "error_description": "Value passed for the token was invalid."}, 400
                )
            user_id, grant = held
            self.spent_refresh_tokens[token] = grant
            user = self.users[user_id]
            user_token = self.add_user(username=user.username, scopes=user.scopes)
            return self._issue(user, grant, user_token, " ".join(sorted(user.scopes)))
        return json_response({"error": "unsupported_grant_type", "error_description": "grant_type"}, 400)

    def _issue(self, user: XUser, grant: str, access_token: str, scope: str) -> Response:
        refresh_token = random_token(80)
        self.refresh_tokens[refresh_token] = (user.id, grant)
        self.grants[grant] |= {access_token, refresh_token}
        return json_response(
            {
                "token_type": "bearer",
                "expires_in": self.access_ttl,
                "access_token": access_token,
                "scope": scope,
                "refresh_token": refresh_token,
            }
        )

    # ------------------------------------------------------------------ failure helpers

    def rate_limit_next(self, reset_in: int = 900, n: int = 1, *, path: str | None = None, limit: int = 100) -> None:
        """429 ``Too Many Requests`` with ``x-rate-limit-remaining: 0`` and a reset ``reset_in`` seconds away."""
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(time.time()) + reset_in),
        }
        body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
        self.fail_next(n, status=429, body=body, headers=headers, path=path)

    def unauthorized_next(self, n: int = 1, *, path: str | None = None) -> None:
        body = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
        self.fail_next(n, status=401, body=body, path=path)

    def server_error_next(self, n: int = 1, *, status: int = 503, path: str | None = None) -> None:
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
        body = {"title": reason, "detail": reason, "type": "about:blank", "status": status}
        self.fail_next(n, status=status, body=body, path=path)

    # ------------------------------------------------------------------ plumbing

    async def _not_found(self, request: Request) -> Response:
        return json_response({"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}, 404)

    async def _call(self, request: Request, handler: Handler, key: str) -> Response:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token.strip()
        user = self.user_tokens.get(token) if scheme.lower() == "bearer" else None
        is_app = scheme.lower() == "bearer" and token in self.app_tokens
        if (user is None and not is_app) or token in self.revoked_tokens:
            raise _problem(401, "Unauthorized", "Unauthorized")
        if user is None and key != "GET /2/tweets/search/recent" and key != "GET /2/tweets/:id":
            raise _problem(
                403,
                "Unsupported Authentication",
                "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported "
                "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
                _UNSUPPORTED_AUTH,
            )
        if user is not None and not _NEEDED_SCOPES[key] <= user.scopes:
            raise _problem(403, "Forbidden", "Forbidden")
        state = self.limiters[key].hit(user.id if user else token)
        headers = {
            "x-rate-limit-limit": str(state.limit),
            "x-rate-limit-remaining": str(state.remaining),
            "x-rate-limit-reset": str(int(state.reset_at)),
        }
        if not state.allowed:
            body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
            raise Reply(json_response(body, 429, headers))
        posting = key == "POST /2/tweets" and user is not None
        if posting:
            assert user is not None
            # Only posts that are created count against the 24-hour cap; a refused one does not.
            daily = self.daily_posts.peek(user.id)
            headers |= _daily_headers(daily)
            if not daily.allowed:
                body = {
                    "title": "Too Many Requests",
                    "detail": "Too Many Requests",
                    "type": "about:blank",
                    "status": 429,
                }
                raise Reply(json_response(body, 429, headers))
        try:
            response = await handler(request, user)
        except Reply as reply:
            reply.response.headers.update(headers)
            raise
        if posting and response.status_code == 201:
            assert user is not None
            headers |= _daily_headers(self.daily_posts.hit(user.id))
        response.headers.update(headers)
        return response

    def _store(
        self,
        author: XUser,
        text: str,
        *,
        in_reply_to: str | None = None,
        quote_of: str | None = None,
        created_at: float | None = None,
    ) -> dict[str, Any]:
        created = time.time() if created_at is None else created_at
        tweet_id = self.new_id(created)
        parent = self.tweets.get(in_reply_to) if in_reply_to else None
        tweet = {
            "id": tweet_id,
            "text": text,
            "author_id": author.id,
            "created_at": created,
            "deleted": False,
            "in_reply_to": in_reply_to,
            "in_reply_to_user_id": parent["author_id"] if parent else None,
            "conversation_id": parent["conversation_id"] if parent else tweet_id,
            "quote_of": quote_of,
        }
        self.tweets[tweet_id] = tweet
        return tweet

    def _tweet_view(self, tweet: dict[str, Any], fields: Iterable[str] = ()) -> dict[str, Any]:
        referenced = []
        if tweet["in_reply_to"]:
            referenced.append({"type": "replied_to", "id": tweet["in_reply_to"]})
        if tweet["quote_of"]:
            referenced.append({"type": "quoted", "id": tweet["quote_of"]})
        full = {
            "id": tweet["id"],
            "text": tweet["text"],
            "edit_history_tweet_ids": [tweet["id"]],
            "author_id": tweet["author_id"],
            "created_at": datetime.fromtimestamp(tweet["created_at"], UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conversation_id": tweet["conversation_id"],
            "in_reply_to_user_id": tweet["in_reply_to_user_id"],
            "referenced_tweets": referenced or None,
            "lang": "en",
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0},
        }
        return {k: full[k] for k in ("id", "text", "edit_history_tweet_ids", *fields) if full.get(k) is not None}

    # ------------------------------------------------------------------ endpoints

    async def _create_tweet(self, request: Request, user: XUser | None) -> Response:
        assert user is not None
        if (request.headers.get("content-type") or "").split(";")[0].strip().lower() != "application/json":
            _invalid("Content-Type must be application/json")
        raw = await request.body()
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            _invalid("Request body is not valid JSON")
        if not isinstance(payload, dict):
            _invalid("$: object expected")
        for key in payload:
            if key not in _POST_KEYS:
                _invalid(f"$.{key}: is not defined in the schema and the schema does not allow additional properties")
        text = payload.get("text")
        if text is not None and not isinstance(text, str):
            _invalid(f"$.text: {type(text).__name__} found, string expected")
        media = payload.get("media")
        if media is not None:
            ids = media.get("media_ids") if isinstance(media, dict) else None
            if (
                not isinstance(ids, list)
                or not 1 <= len(ids) <= 4
                or not all(isinstance(i, str) and i.isdigit() for i in ids)
            ):
                _invalid("$.media.media_ids: must be an array of 1 to 4 numeric strings")
        quote = payload.get("quote_tweet_id")
        if not text and not media and not payload.get("poll") and not quote:
            _invalid("$.text: is missing but it is required")
        reply_to = None
        reply = payload.get("reply")
        if reply is not None:
            if not isinstance(reply, dict) or "in_reply_to_tweet_id" not in reply:
                _invalid("$.reply.in_reply_to_tweet_id: is missing but it is required")
            reply_to = reply["in_reply_to_tweet_id"]
            if not isinstance(reply_to, str) or not reply_to.isdigit():
                _invalid(f"$.reply.in_reply_to_tweet_id: {type(reply_to).__name__} found, string expected")
        if text and weighted_length(text) > self.max_tweet_length:
            raise _problem(
                400,
                "Bad Request",
                "Your Tweet text is too long. For more information on how Twitter determines text length see "
                "https://github.com/twitter/twitter-text.",
            )
        if reply_to is not None and (reply_to not in self.tweets or self.tweets[reply_to]["deleted"]):
            raise _problem(403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you.")
        if quote is not None and (quote not in self.tweets or self.tweets[quote]["deleted"]):
            raise _problem(403, "Forbidden", "You attempted to quote a Tweet that is deleted or not visible to you.")
        if text and any(
            t["text"] == text and not t["deleted"] for t in self.tweets.values() if t["author_id"] == user.id
        ):
            raise _problem(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
        tweet = self._store(user, text or "", in_reply_to=reply_to, quote_of=quote)
        return json_response(
            {"data": {"id": tweet["id"], "text": tweet["text"], "edit_history_tweet_ids": [tweet["id"]]}}, 201
        )

    async def _delete_tweet(self, request: Request, user: XUser | None) -> Response:
        assert user is not None
        tweet_id = request.path_params["id"]
        if not tweet_id.isdigit() or len(tweet_id) > 19:
            _invalid(f"The `id` query parameter value [{tweet_id}] is not valid", {"id": [tweet_id]})
        tweet = self.tweets.get(tweet_id)
        if tweet is None or tweet["deleted"]:
            raise _problem(
                404,
                "Not Found Error",
                f"Could not find tweet with id: [{tweet_id}].",
                _NOT_FOUND,
                resource_type="tweet",
                resource_id=tweet_id,
                parameter="id",
                value=tweet_id,
            )
        if tweet["author_id"] != user.id:
            raise _problem(403, "Forbidden", "You are not allowed to delete a Tweet you do not own.")
        tweet["deleted"] = True
        return json_response({"data": {"deleted": True}})

    async def _get_tweet(self, request: Request, user: XUser | None) -> Response:
        tweet_id = request.path_params["id"]
        if not tweet_id.isdigit():
            _invalid(f"The `id` query parameter value [{tweet_id}] is not valid", {"id": [tweet_id]})
        fields = _fields_param(request, "tweet.fields", _TWEET_FIELDS)
        tweet = self.tweets.get(tweet_id)
        if tweet is None or tweet["deleted"]:
            # Lookups report a missing post as a partial error inside a 200.
            error = {
                "value": tweet_id,
                "detail": f"Could not find tweet with id: [{tweet_id}].",
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "id",
                "resource_id": tweet_id,
                "type": _NOT_FOUND,
            }
            return json_response({"errors": [error]})
        return json_response({"data": self._tweet_view(tweet, fields)})

    async def _get_me(self, request: Request, user: XUser | None) -> Response:
        assert user is not None
        fields = _fields_param(request, "user.fields", _USER_FIELDS)
        return json_response({"data": user.view(fields)})

    async def _search_recent(self, request: Request, user: XUser | None) -> Response:
        params = request.query_params
        for name in params:
            if name not in _SEARCH_PARAMS:
                _invalid(
                    f"The query parameter [{name}] is not one of [{','.join(_SEARCH_PARAMS)}]", {name: [params[name]]}
                )
        query = params.get("query", "")
        if not query.strip():
            _invalid("The `query` query parameter can not be empty", {"query": [query]})
        if len(query) > 512:
            _invalid(f"The `query` query parameter value [{query}] is not valid", {"query": [query]})
        raw_max = params.get("max_results", "10")
        if not raw_max.isdigit() or not 10 <= int(raw_max) <= 100:
            _invalid(
                f"The `max_results` query parameter value [{raw_max}] is not between 10 and 100",
                {"max_results": [raw_max]},
            )
        max_results = int(raw_max)
        tweet_fields = _fields_param(request, "tweet.fields", _TWEET_FIELDS)
        user_fields = _fields_param(request, "user.fields", _USER_FIELDS)
        expansions = [e for e in params.get("expansions", "").split(",") if e]
        for expansion in expansions:
            if expansion not in ("author_id", "referenced_tweets.id", "in_reply_to_user_id"):
                _invalid(
                    f"The `expansions` query parameter value [{expansion}] is not valid", {"expansions": [expansion]}
                )
        now = time.time()
        earliest = now - 7 * 86400
        start = _time_param(params, "start_time", earliest, now)
        end = _time_param(params, "end_time", earliest, now)
        token = params.get("next_token") or params.get("pagination_token")
        offset = 0
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().removeprefix("p:"))
            except ValueError:
                _invalid(f"The `next_token` query parameter value [{token}] is not valid", {"next_token": [token]})
        matcher = _compile_query(query, self.users)
        hits = [
            t
            for t in self.tweets.values()
            if not t["deleted"]
            and t["created_at"] >= max(earliest, start or earliest)
            and (end is None or t["created_at"] < end)
            and (not params.get("since_id") or int(t["id"]) > int(params["since_id"]))
            and (not params.get("until_id") or int(t["id"]) < int(params["until_id"]))
            and matcher(t)
        ]
        hits.sort(key=lambda t: int(t["id"]), reverse=True)
        page = hits[offset : offset + max_results]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]} | meta
        if offset + max_results < len(hits):
            meta["next_token"] = base64.urlsafe_b64encode(f"p:{offset + max_results}".encode()).decode().rstrip("=")
        body: dict[str, Any] = {}
        if page:
            body["data"] = [self._tweet_view(t, tweet_fields) for t in page]
            if "author_id" in expansions:
                authors = dict.fromkeys(t["author_id"] for t in page)
                body["includes"] = {"users": [self.users[a].view(user_fields) for a in authors]}
        body["meta"] = meta
        return json_response(body)


# ---------------------------------------------------------------------- helpers


def _daily_headers(state: LimitState) -> dict[str, str]:
    return {
        "x-user-limit-24hour-limit": str(state.limit),
        "x-user-limit-24hour-remaining": str(state.remaining),
        "x-user-limit-24hour-reset": str(int(state.reset_at)),
    }


def _fields_param(request: Request, name: str, allowed: tuple[str, ...]) -> list[str]:
    raw = request.query_params.get(name)
    if raw is None:
        return []
    fields = [f for f in raw.split(",") if f]
    for item in fields:
        if item not in allowed:
            _invalid(f"The `{name}` query parameter value [{item}] is not one of [{','.join(allowed)}]", {name: [raw]})
    return fields


def _time_param(params: Any, name: str, earliest: float, now: float) -> float | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        _invalid(f"Invalid '{name}':'{raw}'. '{name}' must be a valid RFC3339 date-time", {name: [raw]})
    if value < earliest:
        floor = datetime.fromtimestamp(earliest, UTC) + timedelta(seconds=1)
        _invalid(
            f"Invalid '{name}':'{raw}'. '{name}' must be on or after {floor.strftime('%Y-%m-%dT%H:%MZ')}", {name: [raw]}
        )
    if value > now:
        _invalid(
            f"Invalid '{name}':'{raw}'. '{name}' must be a minimum of 10 seconds prior to the request time.",
            {name: [raw]},
        )
    return value


def _compile_query(query: str, users: dict[str, XUser]) -> Callable[[dict[str, Any]], bool]:
    """A small subset of X search syntax: terms (AND), "phrases", -negation, OR, from:, to:, is:reply, is:quote."""
    clauses = [
        [_term_test(token, users) for token in re.findall(r'-?"[^"]*"|\S+', alternative)]
        for alternative in re.split(r"\s+OR\s+", query.strip())
        if alternative
    ]
    return lambda tweet: any(all(test(tweet) for test in clause) for clause in clauses)


def _term_test(raw: str, users: dict[str, XUser]) -> Callable[[dict[str, Any]], bool]:
    negate = raw.startswith("-") and len(raw) > 1
    token = raw[1:] if negate else raw
    lowered = token.lower()

    def test(tweet: dict[str, Any]) -> bool:
        if token.startswith('"') and token.endswith('"') and len(token) > 1:
            return token[1:-1].lower() in tweet["text"].lower()
        if lowered.startswith("from:"):
            return users[tweet["author_id"]].username.lower() == lowered[5:].lstrip("@")
        if lowered.startswith("to:"):
            parent = tweet["in_reply_to_user_id"]
            return bool(parent) and users[parent].username.lower() == lowered[3:].lstrip("@")
        if lowered == "is:reply":
            return bool(tweet["in_reply_to"])
        if lowered == "is:quote":
            return bool(tweet["quote_of"])
        if lowered == "is:retweet":
            return False  # the fake stores no retweets
        if lowered.startswith(("lang:", "has:")):
            return True  # not modelled: never filters anything out
        return lowered in tweet["text"].lower()

    return (lambda tweet: not test(tweet)) if negate else test
