"""Instagram tools against the fake Graph API: container, polling, publish, listing and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hermes.adapters.platforms import instagram
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.fakes.graph import FakeGraph

from .conftest import Gateway, assert_clean

IMAGE = "https://cdn.example.com/photo.jpg"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(container_in_progress_polls=2, publish_limit=2) as fake:
        yield fake
        assert not fake.handler_errors


@pytest.fixture
def ig(graph: FakeGraph, gateway: Callable[..., Gateway]) -> Gateway:
    return gateway(instagram, Platform.INSTAGRAM, graph.api_base())


def creds(graph: FakeGraph) -> dict[str, str | int]:
    user, token = graph.add_instagram_user()
    return {"accessToken": token, "igUserId": user}


async def test_publish_waits_for_processing(graph: FakeGraph, ig: Gateway) -> None:
    c = creds(graph)
    result = await ig.call("instagram_publish_image", {"image_url": IMAGE, "caption": "Sunset #nofilter"}, c)
    media = graph.media[result["media_id"]]
    assert media.caption == "Sunset #nofilter"
    assert media.media_url == IMAGE
    assert graph.containers[result["container_id"]].status_code == "PUBLISHED"
    polls = [r for r in graph.requests if r.path.endswith(result["container_id"])]
    assert len(polls) == 3  # IN_PROGRESS twice, then FINISHED


async def test_unfetchable_image(graph: FakeGraph, ig: Gateway) -> None:
    c = creds(graph)
    graph.unreachable_media_urls.add(IMAGE)
    with pytest.raises(PlatformRejected) as caught:
        await ig.call("instagram_publish_image", {"image_url": IMAGE, "caption": "private caption"}, c)
    assert caught.value.code == "9004"
    assert "public JPEG" in error_text(caught.value)
    assert_clean(caught.value, str(c["accessToken"]), "private caption")


async def test_daily_publishing_limit(graph: FakeGraph, ig: Gateway) -> None:
    c = creds(graph)
    for _ in range(2):
        await ig.call("instagram_publish_image", {"image_url": IMAGE}, c)
    with pytest.raises(PlatformRejected) as caught:
        await ig.call("instagram_publish_image", {"image_url": IMAGE}, c)
    assert "50 posts per 24 hours" in error_text(caught.value)


async def test_list_media_pages(graph: FakeGraph, ig: Gateway) -> None:
    c = creds(graph)
    for i in range(3):
        graph.add_media(str(c["igUserId"]), f"post {i}", published_at=1_700_000_000 + i)
    first = await ig.call("instagram_list_media", {"limit": 2}, c)
    assert [m["caption"] for m in first["media"]] == ["post 2", "post 1"]
    assert first["media"][0]["permalink"].startswith("https://www.instagram.com/p/")
    assert first["next_cursor"]
    rest = await ig.call("instagram_list_media", {"limit": 2, "after": first["next_cursor"]}, c)
    assert [m["caption"] for m in rest["media"]] == ["post 0"]
    assert rest["next_cursor"] is None


async def test_expired_token(graph: FakeGraph, ig: Gateway) -> None:
    c = creds(graph)
    graph.expire_token(str(c["accessToken"]))
    graph.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await ig.call("instagram_list_media", {}, c)
    assert len(graph.requests) == 1
    assert caught.value.reconnect is True
    assert "Ask the account owner to reconnect Instagram in Hermes" in error_text(caught.value)


async def test_verify(graph: FakeGraph, ig: Gateway) -> None:
    c = creds(graph)
    await ig.plugin.verify(c)
    other = creds(graph)
    with pytest.raises(PlatformRejected) as caught:
        await ig.plugin.verify({**c, "igUserId": other["igUserId"]})
    assert caught.value.reconnect is True
    assert "igUserId" in error_text(caught.value)
