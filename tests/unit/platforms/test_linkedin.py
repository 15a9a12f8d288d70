"""LinkedIn Posts API gateway: versioned headers, author resolution, little-text escaping, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hermes.adapters.platforms import linkedin
from hermes.adapters.platforms.linkedin import escape_little
from hermes.domain.errors import PlatformRejected

from .scripted import Gateway, Script, assert_clean, reply, shown

TOKEN = "AQVsecretLinkedInToken"
URN = "urn:li:share:7196578236471918592"
CREATED = {"x-restli-id": URN}


@pytest.fixture
async def li() -> AsyncIterator[Gateway]:
    gateway = Gateway(linkedin, Script(), linkedin_version="202510")
    yield gateway
    await gateway.aclose()


async def test_post_with_configured_author(li: Gateway) -> None:
    li.script.steps.append(reply(201, None, CREATED))
    creds = {"accessToken": TOKEN, "authorUrn": "urn:li:organization:2414183"}
    result = await li.call("linkedin_create_post", {"text": "Hello world", "visibility": "CONNECTIONS"}, creds)
    assert result == {
        "success": True,
        "post_urn": URN,
        "url": f"https://www.linkedin.com/feed/update/{URN}/",
        "author_urn": "urn:li:organization:2414183",
    }
    li.conforms("linkedin_create_post", result, linkedin.PostResult)
    assert len(li.script.requests) == 1
    request = li.script.last
    assert str(request.url) == "https://linkedin.test/rest/posts"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["linkedin-version"] == "202510"
    assert request.headers["x-restli-protocol-version"] == "2.0.0"
    assert li.script.json() == {
        "author": "urn:li:organization:2414183",
        "commentary": "Hello world",
        "visibility": "CONNECTIONS",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


async def test_author_resolved_once_per_token(li: Gateway) -> None:
    userinfo = {"sub": "782bbtaQ", "name": "Ann", "given_name": "Ann", "family_name": "Lee", "locale": "en-US"}
    li.script.steps.extend([reply(200, userinfo), reply(201, None, CREATED), reply(201, None, CREATED)])
    creds = {"accessToken": TOKEN}
    first = await li.call("linkedin_create_post", {"text": "one"}, creds)
    second = await li.call("linkedin_create_post", {"text": "two"}, creds)
    assert first["author_urn"] == second["author_urn"] == "urn:li:person:782bbtaQ"
    paths = [r.url.path for r in li.script.requests]
    assert paths == ["/v2/userinfo", "/rest/posts", "/rest/posts"]
    assert "linkedin-version" not in li.script.requests[0].headers
    assert li.script.json(1)["author"] == "urn:li:person:782bbtaQ"
    assert li.script.json(1)["visibility"] == "PUBLIC"


def test_little_text_reserved_characters_are_escaped() -> None:
    assert escape_little("Hi (all) [x] {y} <z> @you *b* _i_ ~s~ | \\") == (
        "Hi \\(all\\) \\[x\\] \\{y\\} \\<z\\> \\@you \\*b\\* \\_i\\_ \\~s\\~ \\| \\\\"
    )
    # Links and hashtags stay as they are, so LinkedIn still links them.
    assert escape_little("see https://ex.com/a_(b) #ai_news # alone") == "see https://ex.com/a_(b) #ai_news \\# alone"


async def test_retired_version_is_an_operator_problem(li: Gateway) -> None:
    body = {"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 20240401 is not active"}
    li.script.steps.append(reply(426, body))
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {"accessToken": TOKEN, "authorUrn": "urn:li:person:a"})
    assert caught.value.code == "NONEXISTENT_VERSION"
    assert "HERMES_LINKEDIN_VERSION" in shown(caught.value)
    assert caught.value.reconnect is False


async def test_validation_errors_keep_paths_not_body_text(li: Gateway) -> None:
    message = (
        "ERROR :: /commentary :: secret body text is not valid\nERROR :: /author :: field is required but not found\n"
    )
    li.script.steps.append(reply(422, {"message": message, "status": 422}))
    with pytest.raises(PlatformRejected) as caught:
        await li.call(
            "linkedin_create_post", {"text": "secret"}, {"accessToken": TOKEN, "authorUrn": "urn:li:person:a"}
        )
    assert "/author: field is required but not found" in shown(caught.value)
    assert "/commentary" in shown(caught.value)


async def test_missing_permission_is_a_reconnect(li: Gateway) -> None:
    body = {"serviceErrorCode": 100, "message": "Not enough permissions to access: GET /userinfo", "status": 403}
    li.script.steps.append(reply(403, body))
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {"accessToken": TOKEN})
    error = caught.value
    assert error.reconnect is True
    assert error.code == "100"
    assert "openid" in shown(error)
    assert len(li.script.requests) == 1
    assert_clean(error, TOKEN)


async def test_expired_token(li: Gateway) -> None:
    li.script.steps.append(
        reply(401, {"serviceErrorCode": 65601, "message": "The token used in the request has expired", "status": 401})
    )
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {"accessToken": TOKEN, "authorUrn": "urn:li:person:a"})
    assert caught.value.reconnect is True
    assert "Ask the account owner to reconnect LinkedIn in Hermes." in shown(caught.value)


async def test_created_without_an_id_is_reported(li: Gateway) -> None:
    li.script.steps.append(reply(201, None))
    with pytest.raises(PlatformRejected) as caught:
        await li.call("linkedin_create_post", {"text": "x"}, {"accessToken": TOKEN, "authorUrn": "urn:li:person:a"})
    assert caught.value.code == "unexpected_response"


async def test_verify_uses_userinfo(li: Gateway) -> None:
    li.script.steps.append(reply(200, {"sub": "a"}))
    await li.plugin.verify({"accessToken": TOKEN})
    assert li.script.last.url.path == "/v2/userinfo"
