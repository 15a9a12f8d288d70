"""X API v2 (platform name "twitter"): post, delete and search as the customer, with an OAuth 2.0 user token.

Errors are problem documents (`{"title", "detail", "type", "status"}`), sometimes with an
`errors` list; 429s carry `x-rate-limit-reset` (epoch seconds) over 15-minute windows.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import msgspec
from msgspec import Meta

from hermes.adapters.platforms.answers import read, read_or_none
from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declare
from hermes.adapters.platforms.http import (
    PlatformHttp,
    Reply,
    clip,
    fallback,
    header_wait,
    rate_limited,
    reconnect,
)
from hermes.adapters.platforms.managed_oauth import Endpoints, OAuthFacts
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.application.untrusted import UntrustedText
from hermes.domain.credentials import GRANT_FIELDS, CredentialField, Credentials, token
from hermes.domain.errors import Actor, PlatformRejected, Sent

TweetId = Annotated[str, Meta(pattern=r"^[0-9]{1,19}$(?!\n)")]


class PostTweetArgs(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=25000,
            description="The post's text. Most accounts may post at most 280 characters (each link counts as 23); "
            "X refuses text identical to a recent post of the same account.",
        ),
    ]
    reply_to: Annotated[
        TweetId | None, Meta(description="Id of the post to reply to (the digits at the end of its URL).")
    ] = None


class DeleteTweetArgs(msgspec.Struct, forbid_unknown_fields=True):
    tweet_id: Annotated[TweetId, Meta(description="Id of one of the account's own posts to delete.")]


class SearchRecentArgs(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=512,
            description="X search query, e.g. 'from:nasa moon -is:retweet' or '#python lang:en'; covers the "
            "last 7 days.",
        ),
    ]
    max_results: Annotated[int, Meta(ge=10, le=100, description="How many posts to return (10-100).")] = 10
    next_token: Annotated[
        Annotated[str, Meta(min_length=1, max_length=512)] | None,
        Meta(description="Next_token from a previous search, to get the next page."),
    ] = None


class PostedResult(msgspec.Struct):
    success: bool
    tweet_id: Annotated[str, Meta(description="The new post's id: use it as reply_to or to delete it.")]
    url: str


class DeletedResult(msgspec.Struct):
    success: bool
    tweet_id: str
    deleted: bool


class TweetView(msgspec.Struct):
    tweet_id: str
    text: str
    author_id: str | None = None
    created_at: str | None = None


class SearchResult(msgspec.Struct):
    success: bool
    tweets: list[TweetView]
    result_count: int
    next_token: Annotated[str | None, Meta(description="Pass back to get the next page; None when there is none.")]


class _Posted(msgspec.Struct):
    id: str
    text: str = ""


class _PostedEnvelope(msgspec.Struct):
    data: _Posted


class _Deleted(msgspec.Struct):
    deleted: bool


class _DeletedEnvelope(msgspec.Struct):
    data: _Deleted


class _Tweet(msgspec.Struct):
    id: str
    text: str = ""
    author_id: str | None = None
    created_at: str | None = None


class _Meta(msgspec.Struct):
    result_count: int = 0
    next_token: str | None = None


class _Search(msgspec.Struct):
    data: list[_Tweet] = []
    meta: _Meta = msgspec.field(default_factory=_Meta)


class _ErrorItem(msgspec.Struct):
    message: str | None = None
    detail: str | None = None
    code: int | None = None


class _Problem(msgspec.Struct):
    title: str = ""
    detail: str = ""
    type: str = ""
    reason: str | None = None
    errors: list[_ErrorItem] = []


_decode_posted = msgspec.json.Decoder(_PostedEnvelope).decode
_decode_deleted = msgspec.json.Decoder(_DeletedEnvelope).decode
_decode_search = msgspec.json.Decoder(_Search).decode
_decode_problem = msgspec.json.Decoder(_Problem).decode


def _wait(reply: Reply) -> float | None:
    reset = reply.headers.get("x-rate-limit-reset")
    if reset is not None:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return header_wait(reply)


def _explain(reply: Reply) -> PlatformRejected:
    problem = read_or_none(_decode_problem, reply.body)
    if problem is None:
        return fallback(P, reply)
    words = " ".join(
        filter(None, [problem.detail, *[e.message or e.detail or "" for e in problem.errors if e is not None]])
    )
    lowered = f"{problem.title} {words} {problem.type} {problem.reason or ''}".lower()
    item_code = next((e.code for e in problem.errors if e.code is not None), None)
    code = str(item_code) if item_code is not None else f"http_{reply.status}"
    said = clip(words or problem.title) or None
    if reply.status == 401:
        return reconnect(
            P,
            "X rejected the access token (OAuth 2.0 user tokens expire after 2 hours unless refreshed, or it was "
            "revoked)",
            code,
            said,
        )
    if "duplicate" in lowered:
        return PlatformRejected(
            P.value,
            "X refuses duplicate content: this text was already posted recently",
            code="duplicate_content",
            said=said,
            fix="change the text",
        )
    if reply.status == 429:
        if "usagecap" in lowered.replace(" ", "") or "usage-capped" in lowered:
            return rate_limited(P, None, "the X app's monthly usage cap is used up", code="usage_capped", said=said)
        return rate_limited(P, _wait(reply), "15-minute window", code=code, said=said)
    if reply.status == 403:
        if "client-not-enrolled" in lowered or "client-forbidden" in lowered or "attached to a project" in lowered:
            return PlatformRejected(
                P.value,
                "the X developer app behind this token has no access to this endpoint",
                code="client_forbidden",
                said=said,
                actor=Actor.OWNER,
                fix="check the app's project and access level in the X developer portal",
            )
        return PlatformRejected(
            P.value,
            "X refused the request",
            code=code,
            said=said,
            actor=Actor.OWNER,
            fix="reconnect X in Hermes if the token lacks the tweet.read, tweet.write or users.read scope",
        )
    if reply.status == 404:
        return PlatformRejected(P.value, "X could not find it", code=code, said=said)
    return fallback(P, reply, said, code)


def plugin(http: httpx.AsyncClient, config: PlatformConfig) -> PlatformPlugin:
    client = PlatformHttp(P, http, config, _explain, _wait)
    base = config.base(P)

    def headers(creds: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {creds['accessToken']}", "Content-Type": "application/json"}

    async def post_tweet(args: PostTweetArgs, creds: Credentials) -> dict[str, Any]:
        body: dict[str, Any] = {"text": args.text}
        if args.reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": args.reply_to}
        reply = await client.call("POST", f"{base}/2/tweets", headers=headers(creds), json=body, keep_url=True)
        posted = read(P, _decode_posted, reply.body, "the post").data
        return {"success": True, "tweet_id": posted.id, "url": f"https://x.com/i/web/status/{posted.id}"}

    async def delete_tweet(args: DeleteTweetArgs, creds: Credentials) -> dict[str, Any]:
        reply = await client.call("DELETE", f"{base}/2/tweets/{args.tweet_id}", headers=headers(creds))
        deleted = read(P, _decode_deleted, reply.body, "the deletion").data.deleted
        if not deleted:
            raise PlatformRejected(
                P.value,
                "X did not delete the post: it may not exist any more or may not belong to this account",
                sent=Sent.NO,
                code="not_deleted",
            )
        return {"success": True, "tweet_id": args.tweet_id, "deleted": True}

    async def search_recent(args: SearchRecentArgs, creds: Credentials) -> dict[str, Any]:
        params: dict[str, str | int] = {
            "query": args.query,
            "max_results": args.max_results,
            "tweet.fields": "author_id,created_at",
        }
        if args.next_token is not None:
            params["next_token"] = args.next_token
        reply = await client.call("GET", f"{base}/2/tweets/search/recent", headers=headers(creds), params=params)
        found = read(P, _decode_search, reply.body, "the search")
        tweets = [
            {"tweet_id": t.id, "text": t.text, "author_id": t.author_id, "created_at": t.created_at} for t in found.data
        ]
        return {
            "success": True,
            "tweets": tweets,
            "result_count": found.meta.result_count or len(tweets),
            "next_token": found.meta.next_token,
        }

    async def verify(creds: Credentials) -> None:
        await client.call("GET", f"{base}/2/users/me", headers=headers(creds))

    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "twitter_post_tweet",
                PostTweetArgs,
                post_tweet,
                title="Post on X",
                description=(
                    "Publish a post (tweet) on the connected X account, optionally as a reply. X refuses a text "
                    "identical to a recent post. Returns the tweet_id and its URL."
                ),
                target="reply_to",
                output_schema=result_schema(PostedResult),
            ),
            tool(
                P,
                "twitter_delete_tweet",
                DeleteTweetArgs,
                delete_tweet,
                title="Delete a post on X",
                description="Permanently delete one of the connected account's own posts. This cannot be undone.",
                target="tweet_id",
                destructive=True,
                idempotent=True,
                output_schema=result_schema(DeletedResult),
            ),
            tool(
                P,
                "twitter_search_recent",
                SearchRecentArgs,
                search_recent,
                title="Search recent posts on X",
                description=(
                    "Search public posts from the last 7 days with X's query language (from:, to:, #tag, "
                    '"exact phrase", -is:retweet, lang:en, ...). Returns up to max_results posts, newest first, '
                    "and a next_token for more."
                ),
                read_only=True,
                untrusted=(UntrustedText("tweets[]", ("text",), ("author_id",)),),
                output_schema=result_schema(SearchResult),
            ),
        ],
        verify=verify,
    )


P = declare(
    "twitter",
    display_name="X",
    credentials=(
        CredentialField("accessToken", token, secret=True, description="OAuth 2.0 user access token"),
        *GRANT_FIELDS,
    ),
    api_base="https://api.x.com",
    build=plugin,
)


# Managed OAuth: X's OAuth 2.0 authorization code flow with PKCE; the app authenticates with HTTP Basic
# (a confidential client). Access tokens last 2 hours; `offline.access` adds a refresh token, which X
# rotates on every refresh and revokes with the grant when an old one is sent again.
OAUTH = OAuthFacts(
    P,
    Endpoints(authorize="https://x.com", exchange="https://api.x.com", api="https://api.x.com"),
    authorize_path="/i/oauth2/authorize",
    exchange_path="/2/oauth2/token",
    scopes=("tweet.read", "tweet.write", "users.read", "offline.access"),
    pkce=True,
    client_auth="basic",
)
