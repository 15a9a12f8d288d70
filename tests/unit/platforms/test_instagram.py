"""Instagram publishing gateway: container, status polling, publish; listing; Graph errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hermes.adapters.platforms import instagram
from hermes.domain.errors import PlatformRejected

from .scripted import Gateway, Script, assert_clean, reply, shown

TOKEN = "EAAGinstagramSECRET"
CREDS = {"accessToken": TOKEN, "igUserId": "17841405822304914"}
IMAGE = "https://cdn.example.com/photo.jpg"


@pytest.fixture
async def ig() -> AsyncIterator[Gateway]:
    gateway = Gateway(instagram, Script())
    yield gateway
    await gateway.aclose()


async def test_publish_waits_for_the_container(ig: Gateway) -> None:
    ig.script.steps.extend(
        [
            reply(200, {"id": "17889455560051444"}),
            reply(200, {"status_code": "IN_PROGRESS", "id": "17889455560051444"}),
            reply(200, {"status_code": "FINISHED", "id": "17889455560051444"}),
            reply(200, {"id": "17920238422030506"}),
        ]
    )
    result = await ig.call("instagram_publish_image", {"image_url": IMAGE, "caption": "Sunset #nofilter"}, CREDS)
    assert result == {"success": True, "media_id": "17920238422030506", "container_id": "17889455560051444"}
    ig.conforms("instagram_publish_image", result, instagram.PublishedResult)
    create, poll1, poll2, publish = ig.script.requests
    assert (create.method, create.url.path) == ("POST", "/v23.0/17841405822304914/media")
    assert ig.script.json(0) == {"image_url": IMAGE, "caption": "Sunset #nofilter"}
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert (poll1.method, poll1.url.path, poll1.url.params["fields"]) == (
        "GET",
        "/v23.0/17889455560051444",
        "status_code",
    )
    assert poll2.url.path == poll1.url.path
    assert ig.script.times[2] - ig.script.times[1] >= instagram.POLL_PAUSES[0]
    assert (publish.method, publish.url.path) == ("POST", "/v23.0/17841405822304914/media_publish")
    assert publish.url.params["creation_id"] == "17889455560051444"


async def test_container_error_stops_before_publishing(ig: Gateway) -> None:
    ig.script.steps.extend([reply(200, {"id": "1"}), reply(200, {"status_code": "ERROR", "id": "1"})])
    with pytest.raises(PlatformRejected) as caught:
        await ig.call("instagram_publish_image", {"image_url": IMAGE}, CREDS)
    assert caught.value.code == "ERROR"
    assert "aspect ratio" in shown(caught.value)
    assert len(ig.script.requests) == 2


async def test_polling_is_bounded_by_the_deadline(ig: Gateway) -> None:
    gateway = Gateway(instagram, Script(), total_timeout=1.5)
    gateway.script.steps.append(reply(200, {"id": "1"}))
    gateway.script.steps.extend(reply(200, {"status_code": "IN_PROGRESS", "id": "1"}) for _ in range(20))
    with pytest.raises(PlatformRejected) as caught:
        await gateway.call("instagram_publish_image", {"image_url": IMAGE}, CREDS)
    await gateway.aclose()
    assert caught.value.code == "IN_PROGRESS"
    assert caught.value.retry_after == 60
    assert all(r.url.path != "/v23.0/17841405822304914/media_publish" for r in gateway.script.requests)


async def test_unfetchable_image(ig: Gateway) -> None:
    body = {
        "error": {
            "message": "Only photo or video can be accepted as media type.",
            "type": "OAuthException",
            "code": 9004,
            "error_subcode": 2207052,
            "error_user_title": "Media download has failed.",
            "error_user_msg": "The media could not be fetched from this URI: https://cdn.example.com/photo.jpg.",
            "fbtrace_id": "A1",
        }
    }
    ig.script.steps.append(reply(400, body))
    with pytest.raises(PlatformRejected) as caught:
        await ig.call("instagram_publish_image", {"image_url": IMAGE, "caption": "secret caption"}, CREDS)
    assert caught.value.code == "9004"
    assert "public JPEG" in shown(caught.value)
    assert_clean(caught.value, TOKEN, "secret caption")


async def test_daily_limit(ig: Gateway) -> None:
    body = {
        "error": {
            "message": "Application request limit reached",
            "type": "OAuthException",
            "code": 9,
            "error_subcode": 2207042,
        }
    }
    ig.script.steps.extend([reply(200, {"id": "1"}), reply(200, {"status_code": "FINISHED"}), reply(400, body)])
    with pytest.raises(PlatformRejected) as caught:
        await ig.call("instagram_publish_image", {"image_url": IMAGE}, CREDS)
    assert "50 posts per 24 hours" in shown(caught.value)


async def test_expired_token(ig: Gateway) -> None:
    body = {
        "error": {
            "message": "Error validating access token",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
        }
    }
    ig.script.steps.append(reply(400, body))
    with pytest.raises(PlatformRejected) as caught:
        await ig.call("instagram_list_media", {}, CREDS)
    assert caught.value.reconnect is True
    # A read: nothing was on its way, so nothing is said about sending.
    assert shown(caught.value) == (
        "Instagram error 190: Error validating access token. Instagram rejected the access token (expired or "
        "revoked). Ask the account owner to reconnect Instagram in Hermes."
    )
    assert len(ig.script.requests) == 1


async def test_list_media(ig: Gateway) -> None:
    body = {
        "data": [
            {
                "id": "17920238422030506",
                "caption": "Sunset",
                "media_type": "IMAGE",
                "media_url": "https://scontent.cdninstagram.com/v/p.jpg",
                "permalink": "https://www.instagram.com/p/Cx1/",
                "timestamp": "2026-05-08T10:00:00+0000",
            }
        ],
        "paging": {
            "cursors": {"before": "QVFI", "after": "QVFIUm"},
            "next": "https://graph.facebook.com/v23.0/x/media?after=QVFIUm",
        },
    }
    ig.script.steps.append(reply(200, body))
    result = await ig.call("instagram_list_media", {"limit": 1}, CREDS)
    ig.conforms("instagram_list_media", result, instagram.ListResult)
    assert result["next_cursor"] == "QVFIUm"
    assert result["media"][0]["media_id"] == "17920238422030506"
    assert result["media"][0]["permalink"] == "https://www.instagram.com/p/Cx1/"
    params = dict(ig.script.last.url.params)
    assert params == {"fields": "id,caption,media_type,media_url,permalink,timestamp", "limit": "1"}


async def test_last_page_has_no_cursor(ig: Gateway) -> None:
    ig.script.steps.append(reply(200, {"data": [{"id": "1"}], "paging": {"cursors": {"before": "a", "after": "b"}}}))
    result = await ig.call("instagram_list_media", {"after": "QVFIUm"}, CREDS)
    assert result["next_cursor"] is None
    assert ig.script.last.url.params["after"] == "QVFIUm"


async def test_verify(ig: Gateway) -> None:
    ig.script.steps.append(reply(200, {"id": "17841405822304914", "username": "acme"}))
    await ig.plugin.verify(CREDS)
    assert ig.script.last.url.path == "/v23.0/17841405822304914"
    assert ig.script.last.url.params["fields"] == "id,username"
