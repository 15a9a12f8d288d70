"""FakeLinkedIn: versioned Posts API, userinfo, and LinkedIn's error bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.linkedin import FakeLinkedIn, current_version


def _headers(token: str, version: str | None = None) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "LinkedIn-Version": version or current_version(),
        "X-Restli-Protocol-Version": "2.0.0",
    }


def _post(author: str, text: str = "Hello LinkedIn", **extra: Any) -> dict[str, Any]:
    return {
        "author": author,
        "commentary": text,
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    } | extra


def test_create_post(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="abc123")
    response = httpx.post(
        f"{linkedin.base_url}/rest/posts", json=_post("urn:li:person:abc123"), headers=_headers(token)
    )
    assert response.status_code == 201
    assert response.content == b""
    urn = response.headers["x-restli-id"]
    assert urn.startswith("urn:li:share:")
    (post,) = linkedin.posts
    assert (post["id"], post["commentary"], post["version"]) == (urn, "Hello LinkedIn", current_version())
    assert linkedin.last_request.json == _post("urn:li:person:abc123")


@pytest.mark.parametrize("visibility", ["PUBLIC", "CONNECTIONS", "LOGGED_IN"])
def test_visibilities(linkedin: FakeLinkedIn, visibility: str) -> None:
    token = linkedin.add_member(sub="abc")
    body = _post("urn:li:person:abc", visibility=visibility)
    assert httpx.post(f"{linkedin.base_url}/rest/posts", json=body, headers=_headers(token)).status_code == 201


def test_userinfo(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="abc123", given_name="Grace", family_name="Hopper", email="grace@example.test")
    body = httpx.get(f"{linkedin.base_url}/v2/userinfo", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["sub"] == "abc123"
    assert (body["name"], body["given_name"], body["family_name"]) == ("Grace Hopper", "Grace", "Hopper")
    assert (body["email"], body["email_verified"]) == ("grace@example.test", True)
    no_openid = linkedin.add_member(sub="zzz", scopes={"w_member_social"})
    response = httpx.get(f"{linkedin.base_url}/v2/userinfo", headers={"Authorization": f"Bearer {no_openid}"})
    assert response.status_code == 403
    assert response.json() == {
        "serviceErrorCode": 100,
        "message": "Not enough permissions to access: GET /userinfo",
        "status": 403,
    }


def test_token_errors(linkedin: FakeLinkedIn) -> None:
    url = f"{linkedin.base_url}/v2/userinfo"
    assert httpx.get(url).json()["serviceErrorCode"] == 65604
    invalid = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert invalid.status_code == 401
    assert invalid.json() == {
        "serviceErrorCode": 65600,
        "code": "INVALID_ACCESS_TOKEN",
        "message": "Invalid access token",
        "status": 401,
    }
    token = linkedin.add_member()
    linkedin.expire_token(token)
    assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()["serviceErrorCode"] == 65601
    other = linkedin.add_member()
    linkedin.revoke_token(other)
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}).json()["serviceErrorCode"] == 65602


def test_version_header(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="a")
    url = f"{linkedin.base_url}/rest/posts"
    headers = _headers(token)
    del headers["LinkedIn-Version"]
    missing = httpx.post(url, json=_post("urn:li:person:a"), headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (400, "VERSION_MISSING")
    for version in ("202401", "209912", "2024-01", "abc"):
        retired = httpx.post(url, json=_post("urn:li:person:a"), headers=_headers(token, version))
        assert retired.status_code == 426
        assert retired.json() == {
            "code": "NONEXISTENT_VERSION",
            "message": f"Requested version {version} is not active",
            "status": 426,
        }
    assert (
        httpx.post(url, json=_post("urn:li:person:a"), headers=_headers(token, f"{current_version()}.01")).status_code
        == 201
    )


def test_configured_retired_version() -> None:
    with FakeLinkedIn(retired_versions={current_version()}, sunset_months=None) as linkedin:
        token = linkedin.add_member(sub="a")
        url = f"{linkedin.base_url}/rest/posts"
        assert httpx.post(url, json=_post("urn:li:person:a"), headers=_headers(token)).status_code == 426
        assert httpx.post(url, json=_post("urn:li:person:a"), headers=_headers(token, "202001")).status_code == 201


def test_restli_protocol_header_is_required(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="a")
    headers = _headers(token)
    del headers["X-Restli-Protocol-Version"]
    response = httpx.post(f"{linkedin.base_url}/rest/posts", json=_post("urn:li:person:a"), headers=headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda b: b.pop("author"), "ERROR :: /author :: field is required but not found"),
        (lambda b: b.pop("visibility"), "ERROR :: /visibility :: field is required"),
        (lambda b: b.pop("distribution"), "ERROR :: /distribution :: field is required"),
        (lambda b: b.pop("lifecycleState"), "ERROR :: /lifecycleState :: field is required"),
        (lambda b: b.update(visibility="FRIENDS"), 'ERROR :: /visibility :: "FRIENDS" is not an enum symbol'),
        (lambda b: b.update(text="x"), "ERROR :: /text :: unrecognized field found but not allowed"),
        (lambda b: b.update(author="person:a"), "ERROR :: /author ::"),
        (lambda b: b.update(commentary="x" * 3001), "ERROR :: /commentary ::"),
        (lambda b: b.update(distribution={}), "ERROR :: /distribution/feedDistribution :: field is required"),
    ],
)
def test_body_validation_is_422(linkedin: FakeLinkedIn, mutate: Any, fragment: str) -> None:
    token = linkedin.add_member(sub="a")
    body = _post("urn:li:person:a")
    mutate(body)
    response = httpx.post(f"{linkedin.base_url}/rest/posts", json=body, headers=_headers(token))
    assert response.status_code == 422
    assert response.json()["status"] == 422
    assert response.json()["message"].startswith(fragment)
    assert linkedin.posts == []


def test_malformed_body_is_400(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="a")
    response = httpx.post(f"{linkedin.base_url}/rest/posts", content=b"{oops", headers=_headers(token))
    assert response.json() == {
        "code": "ILLEGAL_ARGUMENT",
        "message": "Request body could not be converted to data map",
        "status": 400,
    }


def test_author_must_belong_to_the_token(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="mine")
    url = f"{linkedin.base_url}/rest/posts"
    response = httpx.post(url, json=_post("urn:li:person:someone-else"), headers=_headers(token))
    assert response.status_code == 403
    assert response.json()["code"] == "ACCESS_DENIED"
    assert httpx.post(url, json=_post("urn:li:organization:5515715"), headers=_headers(token)).status_code == 403
    linkedin.grant_organization(token, "5515715")
    assert httpx.post(url, json=_post("urn:li:organization:5515715"), headers=_headers(token)).status_code == 201
    no_scope = linkedin.add_member(sub="reader", scopes={"openid", "profile"})
    assert httpx.post(url, json=_post("urn:li:person:reader"), headers=_headers(no_scope)).status_code == 403


def test_duplicate_post(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="a")
    url = f"{linkedin.base_url}/rest/posts"
    first = httpx.post(url, json=_post("urn:li:person:a", "same"), headers=_headers(token))
    duplicate = httpx.post(url, json=_post("urn:li:person:a", "same"), headers=_headers(token))
    assert duplicate.status_code == 422
    assert duplicate.json()["message"] == f"Content is a duplicate of {first.headers['x-restli-id']}"


def test_delete_post(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="a")
    urn = httpx.post(f"{linkedin.base_url}/rest/posts", json=_post("urn:li:person:a"), headers=_headers(token)).headers[
        "x-restli-id"
    ]
    assert httpx.delete(f"{linkedin.base_url}/rest/posts/{urn}", headers=_headers(token)).status_code == 204
    assert httpx.delete(f"{linkedin.base_url}/rest/posts/{urn}", headers=_headers(token)).status_code == 404


def test_rate_limits(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member(sub="a")
    url = f"{linkedin.base_url}/rest/posts"
    linkedin.rate_limit_next()
    limited = httpx.post(url, json=_post("urn:li:person:a"), headers=_headers(token))
    assert limited.status_code == 429
    assert limited.json()["status"] == 429
    assert httpx.post(url, json=_post("urn:li:person:a"), headers=_headers(token)).status_code == 201
    with FakeLinkedIn(daily_post_limit=1) as small:
        member = small.add_member(sub="b")
        statuses = [
            httpx.post(
                f"{small.base_url}/rest/posts", json=_post("urn:li:person:b", f"t{i}"), headers=_headers(member)
            ).status_code
            for i in range(2)
        ]
        assert statuses == [201, 429]


def test_injections_and_unknown_routes(linkedin: FakeLinkedIn) -> None:
    token = linkedin.add_member()
    linkedin.unauthorized_next()
    response = httpx.get(f"{linkedin.base_url}/v2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()["serviceErrorCode"]) == (401, 65601)
    linkedin.server_error_next()
    assert (
        httpx.get(f"{linkedin.base_url}/v2/userinfo", headers={"Authorization": f"Bearer {token}"}).status_code == 500
    )
    assert httpx.get(f"{linkedin.base_url}/v2/me").status_code == 404
