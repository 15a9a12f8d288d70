"""The platforms' OAuth 2.0 endpoints: the consent page's URL, the code exchange and the refresh.

Each platform module declares its facts (`OAuthFacts`): endpoints, scopes, PKCE or
not, how the client authenticates, and how the account's ids are learnt from a
new token. This module runs the flow those facts describe. Token calls are never
retried: a refresh that reached the platform may already have rotated the
refresh token, and sending the old one again would revoke the grant.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import msgspec

from hermes.adapters.platforms.http import BodyTooLarge, clip, read_capped
from hermes.application.ports.managed_oauth import PlatformAuthorization
from hermes.domain.credentials import Credentials
from hermes.domain.errors import Actor, PlatformRejected
from hermes.domain.managed_oauth import EXPIRES_FIELD, REFRESH_FIELD
from hermes.domain.platform import Platform

_MAX_TOKEN_REPLY = 64 * 1024


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """The operator's app at the platform (HERMES_{PLATFORM}_CLIENT_ID / _CLIENT_SECRET)."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the flow's calls go; the defaults are the platform's, settings may point them at a fake."""

    authorize: str
    exchange: str  # the token endpoint's host
    api: str  # where `identify` asks who the token belongs to, and the long-lived exchange and refresh


class TokenCall:
    """One platform's token endpoint calls: an overall deadline, a capped body, the platform's errors."""

    def __init__(self, platform: Platform, http: httpx.AsyncClient, deadline: float) -> None:
        self.platform = platform
        self._http = http
        self._deadline = deadline

    async def json(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        name = self.platform.display_name
        try:
            async with asyncio.timeout(self._deadline):
                request = self._http.build_request(method, url, data=form, params=params, headers=headers)
                response = await self._http.send(request, stream=True)
                try:
                    body = await read_capped(response, _MAX_TOKEN_REPLY)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise PlatformRejected(self.platform.value, f"{name} did not answer in time", code="timeout") from None
        except BodyTooLarge:
            raise PlatformRejected(self.platform.value, f"{name} sent an oversized answer", code="too_large") from None
        except httpx.HTTPError:
            raise PlatformRejected(self.platform.value, f"{name} could not be reached", code="unreachable") from None
        try:
            decoded = msgspec.json.decode(body) if body else {}
        except msgspec.DecodeError:
            decoded = {}
        if not isinstance(decoded, dict):
            decoded = {}
        if response.status_code >= 400:
            raise _refusal(self.platform, response.status_code, decoded)
        return decoded


def _refusal(platform: Platform, status: int, body: dict[str, Any]) -> PlatformRejected:
    """OAuth errors (`{"error", "error_description"}`) and Meta's (`{"error": {"code", "message"}}`)."""
    name = platform.display_name
    nested = body.get("error") if isinstance(body.get("error"), dict) else None
    code = str(nested.get("code", "")) if nested else str(body.get("error") or body.get("code") or "")
    said = str((nested or {}).get("message") or body.get("error_description") or body.get("error_message") or "")
    lowered = said.lower()
    grant_gone = (
        code in ("invalid_grant", "190")
        or (code == "invalid_request" and "token" in lowered and "invalid" in lowered)
        or "expired" in lowered
    )
    if grant_gone:
        return PlatformRejected(
            platform.value,
            f"{name} refused the authorization (revoked, expired or already used)",
            code=code or f"http_{status}",
            said=clip(said) or None,
            reconnect=True,
        )
    if code == "invalid_client" or status == 401:
        return PlatformRejected(
            platform.value,
            f"{name} refused this server's app credentials",
            code=code or f"http_{status}",
            said=clip(said) or None,
            actor=Actor.OWNER,
            fix=f"ask the Hermes operator to check HERMES_{platform.value.upper()}_CLIENT_ID and _CLIENT_SECRET",
        )
    return PlatformRejected(
        platform.value, f"{name} refused the token request", code=code or f"http_{status}", said=clip(said) or None
    )


Identify = Callable[[TokenCall, Endpoints, str], Awaitable[Credentials]]


async def _nobody(call: TokenCall, endpoints: Endpoints, access_token: str) -> Credentials:
    return {}


@dataclass(frozen=True, slots=True)
class OAuthFacts:
    """How one platform does OAuth 2.0 authorization code grants, as its documentation says."""

    platform: Platform
    endpoints: Endpoints
    authorize_path: str
    exchange_path: str
    scopes: tuple[str, ...]
    scope_separator: str = " "
    pkce: bool = False
    # "basic": HTTP Basic with the client id and secret (X); "body": both as form fields.
    client_auth: Literal["basic", "body"] = "body"
    # "refresh_token": the standard grant; "ig_refresh_token": Instagram's long-lived token renews itself.
    refresh: Literal["refresh_token", "ig_refresh_token"] = "refresh_token"
    # Renew when less than this is left (long-lived tokens well ahead, so a quiet week cannot lose them).
    refresh_ahead: float = 20 * 60
    # The credential fields besides the tokens (LinkedIn's authorUrn, Instagram's igUserId).
    identify: Identify = _nobody


def _expiry(reply: Mapping[str, Any]) -> int | None:
    seconds = reply.get("expires_in")
    return int(time.time()) + int(seconds) if isinstance(seconds, int | float) and seconds > 0 else None


def _token(reply: Mapping[str, Any], platform: Platform, key: str = "access_token") -> str:
    value = reply.get(key)
    if not isinstance(value, str) or not value or len(value) > 4096 or any(c.isspace() for c in value):
        raise PlatformRejected(platform.value, f"{platform.display_name} answered without a usable {key}")
    return value


@dataclass(slots=True)
class HttpPlatformAuthorization(PlatformAuthorization):
    """Managed OAuth over the platforms' token endpoints, for the platforms with a client registration."""

    http: httpx.AsyncClient
    facts: Mapping[Platform, OAuthFacts]
    clients: Mapping[Platform, ClientRegistration]
    deadline: float = 20.0

    def platforms(self) -> Sequence[Platform]:
        return [p for p in self.facts if p in self.clients]

    def uses_pkce(self, platform: Platform) -> bool:
        return self.facts[platform].pkce

    def renewable(self, platform: Platform, credentials: Credentials) -> bool:
        if self.facts[platform].refresh == "ig_refresh_token":
            return True  # the long-lived token renews itself
        return isinstance(credentials.get(REFRESH_FIELD), str)

    def refresh_ahead(self, platform: Platform) -> float:
        return self.facts[platform].refresh_ahead

    def authorize_url(self, platform: Platform, state: str, code_challenge: str | None, redirect_uri: str) -> str:
        facts = self.facts[platform]
        query = {
            "response_type": "code",
            "client_id": self.clients[platform].client_id,
            "redirect_uri": redirect_uri,
            "scope": facts.scope_separator.join(facts.scopes),
            "state": state,
        }
        if code_challenge is not None:
            query |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{facts.endpoints.authorize.rstrip('/')}{facts.authorize_path}?{urlencode(query)}"

    def _client_auth(self, platform: Platform) -> tuple[dict[str, str], dict[str, str]]:
        """(form fields, headers) that authenticate the operator's app."""
        client = self.clients[platform]
        if self.facts[platform].client_auth == "basic":
            pair = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
            return {"client_id": client.client_id}, {"Authorization": f"Basic {pair}"}
        return {"client_id": client.client_id, "client_secret": client.client_secret}, {}

    def _token_url(self, facts: OAuthFacts) -> str:
        return f"{facts.endpoints.exchange.rstrip('/')}{facts.exchange_path}"

    async def exchange(
        self, platform: Platform, code: str, code_verifier: str | None, redirect_uri: str
    ) -> Credentials:
        facts = self.facts[platform]
        call = TokenCall(platform, self.http, self.deadline)
        form, headers = self._client_auth(platform)
        form |= {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        reply = await call.json("POST", self._token_url(facts), form=form, headers=headers)
        if facts.refresh == "ig_refresh_token":
            # Instagram answers `{"data": [{"access_token", "user_id", ...}]}` (older apps: the object itself)
            # with a one-hour token; the long-lived one (60 days) comes from a second exchange.
            data = reply.get("data")
            first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else reply
            short = _token(first, platform)
            reply = await call.json(
                "GET",
                f"{facts.endpoints.api.rstrip('/')}/access_token",
                params={
                    "grant_type": "ig_exchange_token",
                    "client_secret": self.clients[platform].client_secret,
                    "access_token": short,
                },
            )
        credentials = self._credentials(platform, reply, None)
        credentials |= await facts.identify(call, facts.endpoints, str(credentials["accessToken"]))
        return credentials

    async def refresh(self, platform: Platform, credentials: Credentials) -> Credentials:
        facts = self.facts[platform]
        call = TokenCall(platform, self.http, self.deadline)
        if facts.refresh == "ig_refresh_token":
            reply = await call.json(
                "GET",
                f"{facts.endpoints.api.rstrip('/')}/refresh_access_token",
                params={"grant_type": "ig_refresh_token", "access_token": str(credentials["accessToken"])},
            )
        else:
            refresh_token = credentials.get(REFRESH_FIELD)
            if not isinstance(refresh_token, str):
                raise PlatformRejected(
                    platform.value,
                    f"the stored {platform.display_name} access cannot be renewed",
                    code="no_refresh_token",
                    reconnect=True,
                )
            form, headers = self._client_auth(platform)
            form |= {"grant_type": "refresh_token", "refresh_token": refresh_token}
            reply = await call.json("POST", self._token_url(facts), form=form, headers=headers)
        renewed = {k: v for k, v in credentials.items() if k not in ("accessToken", REFRESH_FIELD, EXPIRES_FIELD)}
        return renewed | self._credentials(platform, reply, credentials.get(REFRESH_FIELD))

    def _credentials(self, platform: Platform, reply: Mapping[str, Any], previous_refresh: object) -> Credentials:
        credentials: Credentials = {"accessToken": _token(reply, platform)}
        refresh_token = reply.get("refresh_token")
        if isinstance(refresh_token, str) and refresh_token:
            credentials[REFRESH_FIELD] = _token(reply, platform, "refresh_token")
        elif isinstance(previous_refresh, str):
            credentials[REFRESH_FIELD] = previous_refresh  # platforms that do not rotate keep the old one valid
        expiry = _expiry(reply)
        if expiry is not None:
            credentials[EXPIRES_FIELD] = expiry
        return credentials
