"""LinkedIn tool against the fake Posts API: versioned headers, author resolution, escaping and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from hermes.adapters.platforms import linkedin
from hermes.domain.errors import PlatformRejected
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.fakes.linkedin import FakeLinkedIn, current_version

from .conftest import Gateway, assert_clean


@pytest.fixture
async def fake() -> AsyncIterator[FakeLinkedIn]:
    async with FakeLinkedIn() as server:
        yield server
        assert not server.handler_errors


@pytest.fixture
def li(fake: FakeLinkedIn, gateway: Callable[..., Gateway]) -> Gateway:
    return gateway(linkedin, Platform.LINKEDIN, fake.base_url, linkedin_version=current_version())


async def test_post_as_the_member_resolved_once(fake: FakeLinkedIn, li: Gateway) -> None:
    token = fake.add_member(sub="782bbtaQ")
    text = "Shipping (finally) v2 of [Hermes] #launch https://example.com/a_(b)"
    result = await li.call("linkedin_create_post", {"text": text}, {"accessToken": token})
    post = fake.posts[-1]
    assert result == {
        "success": True,
        "post_urn": post["id"],
        "url": f"https://www.linkedin.com/feed/update/{post['id']}/",
        "author_urn": "urn:li:person:782bbtaQ",
    }
    assert post["author"] == "urn:li:person:782bbtaQ"
    assert post["visibility"] == "PUBLIC"
    assert post["commentary"] == "Shipping \\(finally\\) v2 of \\[Hermes\\] #launch https://example.com/a_(b)"
    assert post["version"] == current_version()
    await li.call("linkedin_create_post", {"text": "second", "visibility": "CONNECTIONS"}, {"accessToken": token})
    assert len(fake.requests_to("/v2/userinfo")) == 1
    assert fake.posts[-1]["visibility"] == "CONNECTIONS"


async def test_post_as_an_organization(fake: FakeLinkedIn, li: Gateway) -> None:
    token = fake.add_member()
    fake.grant_organization(token, "2414183")
    creds = {"accessToken": token, "authorUrn": "urn:li:organization:2414183"}
    result = await li.call("linkedin_create_post", {"text": "Company news"}, creds)
    assert result["author_urn"] == "urn:li:organization:2414183"
    assert not fake.requests_to("/v2/userinfo")
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {**creds, "authorUrn": "urn:li:organization:1"})
    assert "w_organization_social" in error_text(caught.value)


async def test_retired_version_names_the_operator_setting(fake: FakeLinkedIn, gateway: Callable[..., Gateway]) -> None:
    li = gateway(linkedin, Platform.LINKEDIN, fake.base_url, linkedin_version="202001")
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {"accessToken": fake.add_member()})
    assert caught.value.code == "NONEXISTENT_VERSION"
    assert "HERMES_LINKEDIN_VERSION" in error_text(caught.value)


async def test_duplicate(fake: FakeLinkedIn, li: Gateway) -> None:
    token = fake.add_member()
    await li.call("linkedin_create_post", {"text": "once"}, {"accessToken": token})
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "once"}, {"accessToken": token})
    assert caught.value.code == "DUPLICATE_POST"
    assert "duplicate" in error_text(caught.value)


async def test_token_problems(fake: FakeLinkedIn, li: Gateway) -> None:
    expired = fake.add_member()
    fake.expire_token(expired)
    fake.clear_requests()
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {"accessToken": expired, "authorUrn": "urn:li:person:a"})
    assert len(fake.requests) == 1
    assert caught.value.reconnect is True
    assert "Ask the account owner to reconnect LinkedIn in Hermes" in error_text(caught.value)
    assert_clean(caught.value, expired)

    no_openid = fake.add_member(scopes={"w_member_social"})
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {"accessToken": no_openid})
    assert caught.value.reconnect is True
    assert "openid" in error_text(caught.value)


async def test_daily_limit_is_reported_not_retried(fake: FakeLinkedIn, li: Gateway) -> None:
    token = fake.add_member()
    fake.rate_limit_next(path="/rest/posts")
    with pytest.raises(PlatformRejected) as caught:
        await li.call(
            "linkedin_create_post", {"text": "x"}, {"accessToken": token, "authorUrn": fake.member(token).urn}
        )
    assert "midnight UTC" in error_text(caught.value)
    assert len(fake.requests_to("/rest/posts")) == 1


async def test_verify(fake: FakeLinkedIn, li: Gateway) -> None:
    await li.plugin.verify({"accessToken": fake.add_member()})
    with pytest.raises(PlatformRejected) as caught:
        await li.plugin.verify({"accessToken": "AQVunknown"})
    assert caught.value.reconnect is True
