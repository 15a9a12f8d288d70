"""LinkedIn Posts API: publish a text post as the customer (member or organization).

`POST {base}/rest/posts` with `LinkedIn-Version: YYYYMM` and `X-Restli-Protocol-Version: 2.0.0`
answers 201 with an empty body and the post's URN in `x-restli-id`. The author is the
credentials' `authorUrn`, else `urn:li:person:<sub>` from `GET /v2/userinfo` (OpenID).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

import httpx
import msgspec
from msgspec import Meta

from hermes.adapters.platforms.answers import read, read_or_none
from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declare
from hermes.adapters.platforms.http import PlatformHttp, Reply, clip, fallback, rate_limited, reconnect, unexpected
from hermes.adapters.platforms.managed_oauth import Endpoints, OAuthFacts, TokenCall
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.domain.credentials import GRANT_FIELDS, CredentialField, Credentials, plain_text, token
from hermes.domain.errors import Actor, PlatformRejected

# Resolved author URNs by token digest; bounded so a long-lived process cannot grow it without limit.
_AUTHOR_CACHE_SIZE = 10_000


class CreatePostArgs(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=3000,
            description="The post's text, up to 3000 characters, sent as written (line breaks kept; #hashtags "
            "and links stay clickable).",
        ),
    ]
    visibility: Annotated[
        Literal["PUBLIC", "CONNECTIONS"],
        Meta(description="PUBLIC: anyone on or off LinkedIn; CONNECTIONS: the member's 1st-degree connections only."),
    ] = "PUBLIC"


class PostResult(msgspec.Struct):
    success: bool
    post_urn: Annotated[str, Meta(description="The new post's URN (urn:li:share:... or urn:li:ugcPost:...).")]
    url: Annotated[str, Meta(description="Link to the post on linkedin.com.")]
    author_urn: str


class _UserInfo(msgspec.Struct):
    sub: str


class _Failure(msgspec.Struct):
    message: str = ""
    status: int | None = None
    serviceErrorCode: int | None = None
    code: str | None = None


_decode_userinfo = msgspec.json.Decoder(_UserInfo).decode
_decode_failure = msgspec.json.Decoder(_Failure).decode

# "little" text: these characters are markup, and an unescaped one silently truncates the post there.
_RESERVED = re.compile(r"[\\|{}@\[\]()<>*_~]|#(?!\w)")
# Links and #hashtags pass through unescaped so that LinkedIn still links them.
_KEEP = re.compile(r"https?://\S+|#\w+")
_VALIDATION_LINE = re.compile(r"ERROR :: (/[A-Za-z0-9_/]*) :: ([^\n]*)")


def escape_little(text: str) -> str:
    """Commentary in LinkedIn's little format, reading exactly as `text`."""
    out: list[str] = []
    last = 0
    for kept in _KEEP.finditer(text):
        out.append(_RESERVED.sub(lambda m: "\\" + m.group(0), text[last : kept.start()]))
        out.append(kept.group(0))
        last = kept.end()
    out.append(_RESERVED.sub(lambda m: "\\" + m.group(0), text[last:]))
    return "".join(out)


def _explain(reply: Reply) -> PlatformRejected:
    failure = read_or_none(_decode_failure, reply.body)
    if failure is None:
        return fallback(P, reply)
    status = failure.status or reply.status
    code = failure.code or (str(failure.serviceErrorCode) if failure.serviceErrorCode is not None else f"http_{status}")
    message = clip(failure.message, 160) or None
    if status == 426 or failure.code == "NONEXISTENT_VERSION":
        return PlatformRejected(
            P.value,
            "LinkedIn has retired the API version Hermes sends",
            code=code,
            said=message,
            actor=Actor.OWNER,
            fix="have the Hermes operator set HERMES_LINKEDIN_VERSION to an active version (YYYYMM, e.g. a month "
            "within the last year)",
        )
    if status == 401:
        return reconnect(
            P, "LinkedIn rejected the access token (tokens last about 60 days; expired or revoked)", code, message
        )
    if status == 403:
        return PlatformRejected(
            P.value,
            "LinkedIn says the token lacks permission: it needs the openid, profile and w_member_social scopes, and "
            "an authorUrn must be the member or an organization they administer (w_organization_social)",
            code=code,
            said=message,
            reconnect=True,
        )
    if status == 429:
        return rate_limited(P, None, "daily limits reset at midnight UTC", code=code, said=message)
    if status == 422:
        if "duplicate" in failure.message.lower():
            return PlatformRejected(
                P.value,
                "LinkedIn refuses duplicate content: this text was already posted",
                code=code,
                fix="change the text",
            )
        # Only the field paths and reasons: LinkedIn's message can quote the request body.
        lines = [f"{path}: {clip(reason, 120)}" for path, reason in _VALIDATION_LINE.findall(failure.message)]
        said = "; ".join(lines[:5]) if lines else None
        return PlatformRejected(P.value, "LinkedIn refused the post", code=code, said=said)
    return fallback(P, reply, clip(failure.message, 200) or None, code)


def plugin(http: httpx.AsyncClient, config: PlatformConfig) -> PlatformPlugin:
    client = PlatformHttp(P, http, config, _explain)
    base = config.base(P)
    version = config.linkedin_version
    authors: dict[bytes, str] = {}

    def rest_headers(creds: Credentials) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {creds['accessToken']}",
            "LinkedIn-Version": version,
            "X-Restli-Protocol-Version": "2.0.0",
            "Content-Type": "application/json",
        }

    async def userinfo(creds: Credentials, deadline: float | None = None) -> str:
        reply = await client.call(
            "GET", f"{base}/v2/userinfo", headers={"Authorization": f"Bearer {creds['accessToken']}"}, deadline=deadline
        )
        return read(P, _decode_userinfo, reply.body, "the member profile (/v2/userinfo)").sub

    async def author(creds: Credentials, deadline: float) -> str:
        configured = creds.get("authorUrn")
        if configured:
            return str(configured)
        # Keyed by a digest so the cache never holds a token itself.
        key = hashlib.sha256(str(creds["accessToken"]).encode()).digest()
        cached = authors.get(key)
        if cached is not None:
            return cached
        urn = f"urn:li:person:{await userinfo(creds, deadline)}"
        if len(authors) >= _AUTHOR_CACHE_SIZE:
            authors.clear()
        authors[key] = urn
        return urn

    async def create_post(args: CreatePostArgs, creds: Credentials) -> dict[str, Any]:
        deadline = client.deadline()
        author_urn = await author(creds, deadline)
        body = {
            "author": author_urn,
            "commentary": escape_little(args.text),
            "visibility": args.visibility,
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        reply = await client.call(
            "POST", f"{base}/rest/posts", headers=rest_headers(creds), json=body, deadline=deadline
        )
        urn = reply.headers.get("x-restli-id") or reply.headers.get("x-linkedin-id")
        if not urn:
            raise unexpected(P, "the post (no x-restli-id header)")
        return {
            "success": True,
            "post_urn": urn,
            "url": f"https://www.linkedin.com/feed/update/{urn}/",
            "author_urn": author_urn,
        }

    async def verify(creds: Credentials) -> None:
        await userinfo(creds)

    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "linkedin_create_post",
                CreatePostArgs,
                create_post,
                title="Post on LinkedIn",
                description=(
                    "Publish a text post on LinkedIn as the connected member (or the organization set as author "
                    "when connecting). Visible to everyone (PUBLIC) or to connections only. Returns the post's URN "
                    "and link."
                ),
                output_schema=result_schema(PostResult),
            )
        ],
        verify=verify,
    )


def _author_urn(value: object) -> str:
    text = plain_text(value, 200)
    if not re.fullmatch(r"urn:li:(person|organization):[A-Za-z0-9_-]+", text):
        raise ValueError("must be urn:li:person:<id> or urn:li:organization:<id>")
    return text


P = declare(
    "linkedin",
    display_name="LinkedIn",
    credentials=(
        CredentialField("accessToken", token, secret=True),
        CredentialField("authorUrn", _author_urn, required=False),
        *GRANT_FIELDS,
    ),
    api_base="https://api.linkedin.com",
    build=plugin,
)


async def _member(call: TokenCall, endpoints: Endpoints, access_token: str) -> Credentials:
    """The member a new token belongs to, as the post author (`urn:li:person:<sub>` from OpenID userinfo)."""
    info = await call.json(
        "GET", f"{endpoints.api.rstrip('/')}/v2/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )
    sub = info.get("sub")
    if not isinstance(sub, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", sub):
        raise PlatformRejected(P.value, "LinkedIn did not say which member approved the access")
    return {"authorUrn": f"urn:li:person:{sub}"}


# Managed OAuth: LinkedIn's 3-legged flow (no PKCE for confidential apps; the secret goes in the form).
# Tokens last about 60 days; apps LinkedIn enables for it also get a refresh token (a year).
OAUTH = OAuthFacts(
    P,
    Endpoints(
        authorize="https://www.linkedin.com", exchange="https://www.linkedin.com", api="https://api.linkedin.com"
    ),
    authorize_path="/oauth/v2/authorization",
    exchange_path="/oauth/v2/accessToken",
    scopes=("openid", "profile", "w_member_social"),
    refresh_ahead=3 * 86400,
    identify=_member,
)
