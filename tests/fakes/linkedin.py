"""Fake LinkedIn API: versioned ``POST /rest/posts`` and the OpenID ``GET /v2/userinfo``.

Point a client at ``fake.base_url`` (what ``HERMES_LINKEDIN_API_BASE`` is for ``https://api.linkedin.com``).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .base import FakeServer, Reply, WindowLimiter, json_response, random_token
from .oauth_consent import ConsentDesk

__all__ = ["MEMBER_SCOPES", "FakeLinkedIn", "LinkedInMember", "current_version"]

MEMBER_SCOPES = frozenset({"openid", "profile", "email", "w_member_social"})
_VERSION = re.compile(r"^(\d{4})(\d{2})(?:\.(\d{2}))?$")
_POST_FIELDS = {
    "author",
    "commentary",
    "visibility",
    "distribution",
    "lifecycleState",
    "isReshareDisabledByAuthor",
    "content",
    "contentLandingPage",
    "contentCallToActionLabel",
    "adContext",
    "container",
    "reshareContext",
}
_VISIBILITIES = ("PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER")
_FEEDS = ("MAIN_FEED", "NONE")
_LIFECYCLES = ("PUBLISHED", "DRAFT", "PUBLISH_REQUESTED")


def current_version(months_back: int = 1) -> str:
    """A ``YYYYMM`` LinkedIn-Version that is active now (last month's by default; versions live about a year)."""
    today = datetime.now(UTC)
    year, month = today.year, today.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    return f"{year:04d}{month:02d}"


def _error(status: int, message: str, *, service_code: int | None = None, code: str | None = None) -> Reply:
    body: dict[str, Any] = {}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    if code is not None:
        body["code"] = code
    body |= {"message": message, "status": status}
    return Reply(json_response(body, status))


def _fail(status: int, message: str, *, service_code: int | None = None, code: str | None = None) -> NoReturn:
    raise _error(status, message, service_code=service_code, code=code)


def _unprocessable(path: str, reason: str) -> NoReturn:
    # The Rest.li schema validator's wording: "ERROR :: /field :: reason".
    _fail(422, f"ERROR :: /{path} :: {reason}\n")


@dataclass
class LinkedInMember:
    """A member (the ``sub`` of /v2/userinfo) and the scopes granted to its tokens."""

    sub: str
    given_name: str = "Ada"
    family_name: str = "Lovelace"
    email: str = "ada@example.test"
    scopes: frozenset[str] = MEMBER_SCOPES
    organizations: set[str] = field(default_factory=set)
    """Organization ids this member may post for (w_organization_social as ADMINISTRATOR)."""

    @property
    def urn(self) -> str:
        return f"urn:li:person:{self.sub}"

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class FakeLinkedIn(FakeServer):
    """LinkedIn Posts API and OpenID userinfo with LinkedIn's own error bodies.

    ``/rest/*`` requires ``Authorization: Bearer``, ``LinkedIn-Version: YYYYMM`` (missing: 400 VERSION_MISSING;
    retired, malformed or future: 426 NONEXISTENT_VERSION) and ``X-Restli-Protocol-Version: 2.0.0``.
    ``POST /rest/posts`` validates the body as Rest.li does (422 ``ERROR :: /field :: ...``), checks the author
    belongs to the token (403 ACCESS_DENIED) and answers 201 with an empty body and ``x-restli-id``.

    Args:
        retired_versions: versions answered with 426 in addition to those older than ``sunset_months``.
        sunset_months: versions older than this many months are retired (LinkedIn keeps about a year);
            None keeps every past version active.
        daily_post_limit: posts per member per day before a 429 (LinkedIn: 150).
    """

    platform = "linkedin"

    def __init__(
        self,
        *,
        retired_versions: Iterable[str] = (),
        sunset_months: int | None = 12,
        daily_post_limit: int = 150,
        require_restli_header: bool = True,
    ) -> None:
        self.members: dict[str, LinkedInMember] = {}
        self.tokens: dict[str, LinkedInMember] = {}
        self.expired_tokens: set[str] = set()
        self.revoked_tokens: set[str] = set()
        self.retired_versions: set[str] = set(retired_versions)
        self.sunset_months = sunset_months
        self.require_restli_header = require_restli_header
        self.posts: list[dict[str, Any]] = []
        """Created posts: the body as sent plus ``id`` (the share URN) and ``version`` (the LinkedIn-Version)."""
        self.daily_posts = WindowLimiter(daily_post_limit, 86400.0)
        self._share_ids = itertools.count(7_400_000_000_000_000_001)
        self.consent = ConsentDesk()
        """The consent page at ``/oauth/v2/authorization`` (register apps with ``consent.register_app``)."""
        self.consent_sub = "consentingMember1"
        """The member who approves on the consent page."""
        self.access_ttl = 5_184_000
        """``expires_in`` of issued access tokens (LinkedIn: 60 days)."""
        self.refresh_tokens: dict[str, str] = {}
        """refresh token -> member sub; LinkedIn keeps a refresh token valid (a year) and does not rotate it."""
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth/v2/authorization", self.consent.page, methods=["GET"]),
            Route("/oauth/v2/authorization", self.consent.decide, methods=["POST"]),
            Route("/oauth/v2/accessToken", self._access_token, methods=["POST"]),
            Route("/v2/userinfo", self._userinfo, methods=["GET"]),
            Route("/rest/posts", self._create_post, methods=["POST"]),
            Route("/rest/posts/{urn}", self._delete_post, methods=["DELETE"]),
            Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]

    async def _access_token(self, request: Request) -> Response:
        """``POST /oauth/v2/accessToken``: authorization_code and refresh_token grants, secret in the form."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id = self.consent.client(request, form)
        if client_id is None:
            return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        if form.get("grant_type") == "authorization_code":
            issued = self.consent.redeem(form.get("code", ""), client_id, form.get("redirect_uri", ""), None)
            if issued is None:
                return json_response(
                    {
                        "error": "invalid_request",
                        "error_description": "Unable to retrieve access token: appid/redirect uri/code verifier "
                        "does not match authorization code. Or authorization code expired.",
                    },
                    400,
                )
            refresh_token = "AQW" + random_token(120)
            self.refresh_tokens[refresh_token] = self.consent_sub
        elif form.get("grant_type") == "refresh_token":
            refresh_token = form.get("refresh_token", "")
            if refresh_token not in self.refresh_tokens:
                return json_response(
                    {"error": "invalid_grant", "error_description": "The provided refresh token is invalid"}, 400
                )
        else:
            return json_response({"error": "unsupported_grant_type", "error_description": "grant_type"}, 400)
        token = self.add_member(sub=self.refresh_tokens[refresh_token])
        return json_response(
            {
                "access_token": token,
                "expires_in": self.access_ttl,
                "refresh_token": refresh_token,
                "refresh_token_expires_in": 31_536_000,
                "scope": "email,openid,profile,w_member_social",
                "token_type": "Bearer",
            }
        )

    # ------------------------------------------------------------------ test set-up

    def add_member(
        self,
        token: str | None = None,
        *,
        sub: str | None = None,
        scopes: Iterable[str] = MEMBER_SCOPES,
        given_name: str = "Ada",
        family_name: str = "Lovelace",
        email: str = "ada@example.test",
    ) -> str:
        """Register a member with a token carrying ``scopes``; returns the token. Reusing ``sub`` adds a token."""
        token = token or "AQV" + random_token(180)
        sub = sub or random_token(10)
        member = self.members.get(sub)
        if member is None:
            member = LinkedInMember(sub=sub, given_name=given_name, family_name=family_name, email=email)
            self.members[sub] = member
        member.scopes = frozenset(scopes)
        self.tokens[token] = member
        return token

    def member(self, token: str) -> LinkedInMember:
        return self.tokens[token]

    def grant_organization(self, token: str, organization_id: str) -> None:
        """The token's member administers this organization (w_organization_social)."""
        self.tokens[token].organizations.add(str(organization_id))

    def expire_token(self, token: str) -> None:
        self.expired_tokens.add(token)

    def revoke_token(self, token: str) -> None:
        self.revoked_tokens.add(token)

    def is_version_active(self, version: str) -> bool:
        match = _VERSION.match(version)
        if match is None or version in self.retired_versions or version.split(".")[0] in self.retired_versions:
            return False
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            return False
        today = datetime.now(UTC)
        age = (today.year - year) * 12 + (today.month - month)
        if age < 0:
            return False  # versions are published monthly; a future one does not exist yet
        return self.sunset_months is None or age <= self.sunset_months

    # ------------------------------------------------------------------ failure helpers

    def rate_limit_next(self, n: int = 1, *, path: str | None = None) -> None:
        body = {
            "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
            "status": 429,
        }
        self.fail_next(n, status=429, body=body, path=path)

    def unauthorized_next(self, n: int = 1, *, path: str | None = None) -> None:
        body = {
            "serviceErrorCode": 65601,
            "code": "EXPIRED_ACCESS_TOKEN",
            "message": "The token used in the request has expired",
            "status": 401,
        }
        self.fail_next(n, status=401, body=body, path=path)

    def server_error_next(self, n: int = 1, *, status: int = 500, path: str | None = None) -> None:
        body = {"message": "Internal Server Error", "status": status}
        self.fail_next(n, status=status, body=body, path=path)

    # ------------------------------------------------------------------ plumbing

    async def _not_found(self, request: Request) -> Response:
        return json_response({"status": 404, "code": "RESOURCE_NOT_FOUND", "message": "No virtual resource found"}, 404)

    def _authenticate(self, request: Request) -> tuple[str, LinkedInMember]:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token.strip()
        if not token or scheme.lower() != "bearer":
            _fail(401, "Empty oauth2 access token", service_code=65604, code="EMPTY_ACCESS_TOKEN")
        if token in self.revoked_tokens:
            _fail(
                401,
                "The token used in the request has been revoked by the user",
                service_code=65602,
                code="REVOKED_ACCESS_TOKEN",
            )
        if token in self.expired_tokens:
            _fail(401, "The token used in the request has expired", service_code=65601, code="EXPIRED_ACCESS_TOKEN")
        member = self.tokens.get(token)
        if member is None:
            _fail(401, "Invalid access token", service_code=65600, code="INVALID_ACCESS_TOKEN")
        return token, member

    def _check_versioned(self, request: Request) -> str:
        version = (request.headers.get("linkedin-version") or "").strip()
        if not version:
            _fail(
                400,
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                code="VERSION_MISSING",
            )
        if not self.is_version_active(version):
            _fail(426, f"Requested version {version} is not active", code="NONEXISTENT_VERSION")
        if self.require_restli_header and request.headers.get("x-restli-protocol-version") != "2.0.0":
            _fail(
                400,
                "Rest.li protocol version 2.0.0 is required for this resource: set the X-Restli-Protocol-Version "
                "header to 2.0.0.",
                code="ILLEGAL_ARGUMENT",
            )
        return version

    # ------------------------------------------------------------------ endpoints

    async def _userinfo(self, request: Request) -> Response:
        _, member = self._authenticate(request)
        if "openid" not in member.scopes:
            _fail(403, "Not enough permissions to access: GET /userinfo", service_code=100)
        body: dict[str, Any] = {"sub": member.sub}
        if "profile" in member.scopes:
            body |= {
                "name": member.name,
                "given_name": member.given_name,
                "family_name": member.family_name,
                "picture": f"https://media.licdn.com/dms/image/{member.sub}/profile.jpg",
                "locale": {"country": "US", "language": "en"},
            }
        if "email" in member.scopes:
            body |= {"email": member.email, "email_verified": True}
        return json_response(body)

    async def _create_post(self, request: Request) -> Response:
        _, member = self._authenticate(request)
        version = self._check_versioned(request)
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            _fail(400, "Request body could not be converted to data map", code="ILLEGAL_ARGUMENT")
        if not isinstance(body, dict):
            _fail(400, "Request body could not be converted to data map", code="ILLEGAL_ARGUMENT")
        _validate_post(body)

        author: str = body["author"]
        allowed = (author == member.urn and "w_member_social" in member.scopes) or (
            author.startswith("urn:li:organization:") and author.rsplit(":", 1)[-1] in member.organizations
        )
        if not allowed:
            _fail(
                403,
                f"Not enough permissions to access: partnerApiPostsExternal.CREATE.{version.split('.')[0]}",
                service_code=100,
                code="ACCESS_DENIED",
            )
        commentary = body.get("commentary", "")
        duplicate = next(
            (
                p
                for p in reversed(self.posts)
                if p["author"] == author and p.get("commentary", "") == commentary and commentary
            ),
            None,
        )
        if duplicate is not None:
            _fail(422, f"Content is a duplicate of {duplicate['id']}", code="DUPLICATE_POST")
        if not self.daily_posts.hit(author).allowed:
            _fail(429, "Resource level throttle MEMBER DAY limit for calls to this resource is reached.")
        urn = f"urn:li:share:{next(self._share_ids)}"
        self.posts.append(body | {"id": urn, "version": version, "created_at": time.time()})
        # 201 with no body: the new post's URN only travels in the x-restli-id header.
        return Response(status_code=201, headers={"x-restli-id": urn, "x-linkedin-id": urn})

    async def _delete_post(self, request: Request) -> Response:
        _, member = self._authenticate(request)
        self._check_versioned(request)
        urn = request.path_params["urn"]
        post = next((p for p in self.posts if p["id"] == urn), None)
        if post is None:
            _fail(404, f"Post {urn} does not exist", code="NOT_FOUND")
        if post["author"] != member.urn and post["author"].rsplit(":", 1)[-1] not in member.organizations:
            _fail(
                403,
                "Not enough permissions to access: partnerApiPostsExternal.DELETE",
                service_code=100,
                code="ACCESS_DENIED",
            )
        self.posts.remove(post)
        return Response(status_code=204)


def _validate_post(body: dict[str, Any]) -> None:
    for key in body:
        if key not in _POST_FIELDS:
            _unprocessable(key, "unrecognized field found but not allowed")
    for required in ("author", "visibility", "distribution", "lifecycleState"):
        if required not in body:
            _unprocessable(required, "field is required but not found and has no default value")
    author = body["author"]
    if not isinstance(author, str) or not re.fullmatch(r"urn:li:(person|organization):[A-Za-z0-9_-]+", author):
        _unprocessable("author", f'"{author}" is not a valid person or organization urn')
    if "commentary" in body and not isinstance(body["commentary"], str):
        _unprocessable("commentary", f"{json.dumps(body['commentary'])} is not a string")
    if "commentary" not in body and "content" not in body:
        _unprocessable("commentary", "field is required but not found and has no default value")
    if len(body.get("commentary", "")) > 3000:
        _unprocessable("commentary", "length of string exceeds maximum 3000")
    if body["visibility"] not in _VISIBILITIES:
        _unprocessable("visibility", f'"{body["visibility"]}" is not an enum symbol')
    if body["lifecycleState"] not in _LIFECYCLES:
        _unprocessable("lifecycleState", f'"{body["lifecycleState"]}" is not an enum symbol')
    distribution = body["distribution"]
    if not isinstance(distribution, dict):
        _unprocessable("distribution", f"{json.dumps(distribution)} is not a record")
    if "feedDistribution" not in distribution:
        _unprocessable("distribution/feedDistribution", "field is required but not found and has no default value")
    if distribution["feedDistribution"] not in _FEEDS:
        _unprocessable("distribution/feedDistribution", f'"{distribution["feedDistribution"]}" is not an enum symbol')
    for key in ("targetEntities", "thirdPartyDistributionChannels"):
        if key in distribution and not isinstance(distribution[key], list):
            _unprocessable(f"distribution/{key}", f"{json.dumps(distribution[key])} is not an array")
    if "isReshareDisabledByAuthor" in body and not isinstance(body["isReshareDisabledByAuthor"], bool):
        _unprocessable("isReshareDisabledByAuthor", f"{json.dumps(body['isReshareDisabledByAuthor'])} is not a boolean")
