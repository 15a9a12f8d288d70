"""Instagram Graph API content publishing for professional accounts: publish an image, list media.

Publishing is three calls: create a container (`POST /{ig-user-id}/media`; Meta fetches
the image itself), wait until its `status_code` is FINISHED, then
`POST /{ig-user-id}/media_publish?creation_id=...`. Errors use Graph's envelope.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import msgspec
from msgspec import Meta

from hermes.adapters.platforms.answers import read
from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.declaration import declare
from hermes.adapters.platforms.http import PlatformHttp, Reply, fallback
from hermes.adapters.platforms.inbound import RoutedInbound
from hermes.adapters.platforms.instagram_webhook import decode_instagram
from hermes.adapters.platforms.managed_oauth import Endpoints, OAuthFacts, TokenCall
from hermes.adapters.platforms.meta_graph import explain_account, graph_error
from hermes.adapters.platforms.registry import PlatformPlugin
from hermes.adapters.platforms.results import result_schema
from hermes.adapters.platforms.webhook_auth import meta_signed
from hermes.domain.credentials import GRANT_FIELDS, CredentialField, Credentials, digits, token
from hermes.domain.errors import Actor, PlatformRejected, Sent

# Pauses between container status checks: images usually finish within a second or two.
POLL_PAUSES = (0.25, 0.5, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0)
_MEDIA_FIELDS = "id,caption,media_type,media_url,permalink,timestamp"


class PublishImageArgs(msgspec.Struct, forbid_unknown_fields=True):
    image_url: Annotated[
        str,
        Meta(
            pattern=r"^https?://\S+$(?!\n)",
            max_length=2048,
            description="Public URL of a JPEG image (Meta downloads it itself, so no login or private network); "
            "aspect ratio between 4:5 and 1.91:1, at most 8 MB.",
        ),
    ]
    caption: Annotated[
        Annotated[str, Meta(min_length=1, max_length=2200)] | None,
        Meta(description="Caption, up to 2200 characters, 30 hashtags and 20 @mentions."),
    ] = None


class ListMediaArgs(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=100, description="How many posts to return (1-100), newest first.")] = 10
    after: Annotated[
        Annotated[str, Meta(min_length=1, max_length=512)] | None,
        Meta(description="Next_cursor from a previous call, to get older posts."),
    ] = None


class PublishedResult(msgspec.Struct):
    success: bool
    media_id: Annotated[str, Meta(description="The published post's Instagram media id.")]
    container_id: str


class MediaView(msgspec.Struct):
    media_id: str
    caption: str | None = None
    media_type: Annotated[str | None, Meta(description="IMAGE, VIDEO or CAROUSEL_ALBUM")] = None
    media_url: str | None = None
    permalink: str | None = None
    timestamp: str | None = None


class ListResult(msgspec.Struct):
    success: bool
    media: list[MediaView]
    next_cursor: Annotated[str | None, Meta(description="Pass as after to get older posts; None when there are none.")]


class _Id(msgspec.Struct):
    id: str


class _Status(msgspec.Struct):
    status_code: str = ""
    status: str | None = None


class _Media(msgspec.Struct):
    id: str
    caption: str | None = None
    media_type: str | None = None
    media_url: str | None = None
    permalink: str | None = None
    timestamp: str | None = None


class _Cursors(msgspec.Struct):
    after: str | None = None


class _Paging(msgspec.Struct):
    cursors: _Cursors | None = None
    next: str | None = None


class _MediaPage(msgspec.Struct):
    data: list[_Media] = []
    paging: _Paging | None = None


_decode_id = msgspec.json.Decoder(_Id).decode
_decode_status = msgspec.json.Decoder(_Status).decode
_decode_page = msgspec.json.Decoder(_MediaPage).decode


def _explain(reply: Reply) -> PlatformRejected:
    error = graph_error(reply)
    if error is None:
        return fallback(P, reply)
    code, sub, said = error.code_text, error.error_subcode, error.said
    if error.code == 9004 or sub == 2207052:
        return PlatformRejected(
            P.value,
            "Instagram could not download the image from image_url",
            code=code,
            said=said,
            fix="give a public JPEG URL reachable from the internet without login",
        )
    if error.code == 9007 or sub == 2207027:
        return PlatformRejected(
            P.value, "Instagram has not finished processing the image", code=code, said=said, retry_after=60
        )
    if error.code == 9 or sub == 2207042:
        return PlatformRejected(
            P.value,
            "Instagram rate limit reached (at most 50 posts per 24 hours through the API)",
            code=code,
            said=said,
            actor=Actor.NOBODY,
            fix="post again once fewer than 50 posts were published in the last 24 hours",
        )
    if error.code == 100 and sub != 33 and reply.status < 500:
        return PlatformRejected(P.value, "Instagram refused a parameter", code=code, said=said)
    if (error.code is not None and 36000 <= error.code <= 36999) or (sub is not None and 2207000 <= sub <= 2207999):
        # Media problems (size, ratio, format): Meta's user message is the useful part.
        return PlatformRejected(P.value, "Instagram refused the media", code=code, said=said)
    return explain_account(P, reply, error, "igUserId")


def _ig_user_id(creds: Credentials) -> str:
    return str(creds["igUserId"])


# `verify` (GET /{igUserId} with the token) is the proof that the account is the caller's.
INBOUND = RoutedInbound("ig_user_id", "user id", _ig_user_id, decode_instagram)


def plugin(http: httpx.AsyncClient, config: PlatformConfig) -> PlatformPlugin:
    client = PlatformHttp(P, http, config, _explain)
    base = config.base(P)

    def headers(creds: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {creds['accessToken']}", "Content-Type": "application/json"}

    async def wait_until_finished(container: str, creds: Credentials, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        for pause in (0.0, *POLL_PAUSES):
            if pause:
                # Keep time for the publish call itself: give up polling a little before the deadline.
                if loop.time() + pause + 1.0 >= deadline:
                    break
                await asyncio.sleep(pause)
            reply = await client.call(
                "GET",
                f"{base}/{container}",
                headers=headers(creds),
                params={"fields": "status_code"},
                deadline=deadline,
            )
            status = read(P, _decode_status, reply.body, "the container status").status_code
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status in ("ERROR", "EXPIRED"):
                raise PlatformRejected(
                    P.value,
                    f"Instagram could not process the image (container status {status})",
                    code=status,
                    fix="check that image_url is a public JPEG with an aspect ratio between 4:5 and 1.91:1, "
                    "at most 8 MB",
                    sent=Sent.NO,
                )
        raise PlatformRejected(
            P.value, "Instagram is still processing the image", code="IN_PROGRESS", retry_after=60.0, sent=Sent.NO
        )

    async def publish_image(args: PublishImageArgs, creds: Credentials) -> dict[str, Any]:
        deadline = client.deadline()
        user = creds["igUserId"]
        body: dict[str, Any] = {"image_url": args.image_url}
        if args.caption is not None:
            body["caption"] = args.caption
        url = f"{base}/{user}/media"  # no secret in it: kept parsed
        reply = await client.call("POST", url, headers=headers(creds), json=body, deadline=deadline, keep_url=True)
        container = read(P, _decode_id, reply.body, "the media container").id
        await wait_until_finished(container, creds, deadline)
        reply = await client.call(
            "POST",
            f"{base}/{user}/media_publish",
            headers=headers(creds),
            params={"creation_id": container},
            deadline=deadline,
        )
        media = read(P, _decode_id, reply.body, "the published post").id
        return {"success": True, "media_id": media, "container_id": container}

    async def list_media(args: ListMediaArgs, creds: Credentials) -> dict[str, Any]:
        params: dict[str, str | int] = {"fields": _MEDIA_FIELDS, "limit": args.limit}
        if args.after is not None:
            params["after"] = args.after
        reply = await client.call("GET", f"{base}/{creds['igUserId']}/media", headers=headers(creds), params=params)
        page = read(P, _decode_page, reply.body, "the media list")
        media = [
            {
                "media_id": m.id,
                "caption": m.caption,
                "media_type": m.media_type,
                "media_url": m.media_url,
                "permalink": m.permalink,
                "timestamp": m.timestamp,
            }
            for m in page.data
        ]
        # Graph sends cursors on every page; only `next` says an older page exists.
        paging = page.paging
        next_cursor = paging.cursors.after if paging and paging.next and paging.cursors else None
        return {"success": True, "media": media, "next_cursor": next_cursor}

    async def verify(creds: Credentials) -> None:
        await client.call(
            "GET", f"{base}/{creds['igUserId']}", headers=headers(creds), params={"fields": "id,username"}
        )

    return PlatformPlugin(
        P,
        tools=[
            tool(
                P,
                "instagram_publish_image",
                PublishImageArgs,
                publish_image,
                title="Publish an image on Instagram",
                description=(
                    "Publish a feed post with one image, downloaded by Meta from a public URL, and an optional "
                    "caption, on the connected Instagram professional account. Instagram allows 50 API posts "
                    "per 24 hours. Returns the media_id."
                ),
                output_schema=result_schema(PublishedResult),
            ),
            tool(
                P,
                "instagram_list_media",
                ListMediaArgs,
                list_media,
                title="List Instagram posts",
                description=(
                    "List the connected Instagram account's own posts, newest first, with caption, type, media "
                    "URL, permalink and time; page with next_cursor."
                ),
                read_only=True,
                open_world=False,
                output_schema=result_schema(ListResult),
            ),
        ],
        verify=verify,
        inbound=INBOUND,
    )


P = declare(
    "instagram",
    display_name="Instagram",
    credentials=(
        CredentialField("accessToken", token, secret=True),
        CredentialField("igUserId", digits),
        *GRANT_FIELDS,
    ),
    api_base="https://graph.facebook.com/v23.0",
    build=plugin,
    webhook=meta_signed,
)


async def _professional_account(call: TokenCall, endpoints: Endpoints, access_token: str) -> Credentials:
    """The Instagram professional account a new token belongs to (`user_id` of `/me`)."""
    me = await call.json(
        "GET",
        f"{endpoints.api.rstrip('/')}/me",
        params={"fields": "user_id,username"},
        headers={"Authorization": f"Bearer {access_token}"},
    )
    user_id = me.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 64:
        raise PlatformRejected(P.value, "Instagram did not say which account approved the access")
    return {"igUserId": user_id}


# Managed OAuth: Instagram API with Instagram Login. The code gives a one-hour token, exchanged at once
# for a long-lived one (60 days) that renews itself (`ig_refresh_token`) once it is a day old. Its tools
# then call graph.instagram.com (HERMES_INSTAGRAM_API_BASE). No PKCE; the secret goes in the form.
OAUTH = OAuthFacts(
    P,
    Endpoints(
        authorize="https://www.instagram.com", exchange="https://api.instagram.com", api="https://graph.instagram.com"
    ),
    authorize_path="/oauth/authorize",
    exchange_path="/oauth/access_token",
    scopes=("instagram_business_basic", "instagram_business_content_publish"),
    scope_separator=",",
    refresh="ig_refresh_token",
    refresh_ahead=7 * 86400,
    identify=_professional_account,
)
