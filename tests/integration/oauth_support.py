"""An OAuth client as an MCP host runs one (discovery, registration, PKCE, token calls) and a cookie-keeping
browser driven by hand, against a Hermes whose public URL is its real address."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch
from urllib.parse import parse_qs, urlsplit

import httpx

from hermes.entrypoints.settings import Settings
from tests.integration.server import HermesServer
from tests.support import free_port

LOOPBACK_REDIRECT = "http://127.0.0.1:47123/callback"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def start_public(start_hermes: Callable[..., HermesServer], settings: Settings, *overrides: Any) -> HermesServer:
    """A Hermes whose HERMES_PUBLIC_URL is the loopback address it listens on (the issuer must be reachable)."""
    port = free_port()
    public = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    with patch("tests.integration.server.free_port", return_value=port):
        return start_hermes(public, None, *overrides)


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).decode().rstrip("="))


@dataclass
class Registered:
    client_id: str
    client_secret: str | None
    auth_method: str
    redirect_uri: str


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return found.group(1)


class OAuthAgent:
    """What Claude.ai does, step by step, over plain HTTP."""

    def __init__(self, server: HermesServer) -> None:
        self.server = server
        self.base = server.url

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, timeout=30)

    async def discover(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """From an unauthenticated /mcp call to the authorization server's metadata, as the MCP spec says."""
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        async with self.http() as http:
            challenge = await http.post("/mcp", json=body, headers=MCP_HEADERS)
            assert challenge.status_code == 401
            found = re.search(r'resource_metadata="([^"]+)"', challenge.headers["www-authenticate"])
            assert found
            resource = (await http.get(found.group(1))).json()
            issuer = resource["authorization_servers"][0]
            server = (await http.get(issuer + "/.well-known/oauth-authorization-server")).json()
        return resource, server

    async def register(
        self, auth_method: str = "client_secret_post", redirect_uri: str = LOOPBACK_REDIRECT, **extra: Any
    ) -> Registered:
        metadata = {
            "redirect_uris": [redirect_uri],
            "client_name": "Claude (test)",
            "token_endpoint_auth_method": auth_method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            **extra,
        }
        async with self.http() as http:
            reply = await http.post("/register", json=metadata)
        assert reply.status_code == 201, reply.text
        data = reply.json()
        return Registered(data["client_id"], data.get("client_secret"), auth_method, redirect_uri)

    def authorize_url(self, client: Registered, pkce: Pkce, state: str = "state-1", **changes: str | None) -> str:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            "state": state,
            "resource": self.base + "/mcp",
        }
        params.update(changes)
        return str(httpx.URL(self.base + "/authorize", params={k: v for k, v in params.items() if v is not None}))

    async def consent(self, browser: httpx.AsyncClient, url: str, api_key: str, approve: bool = True) -> httpx.Response:
        """Open the authorization URL, sign in, approve or deny; the reply redirects to the client."""
        opened = await browser.get(url)
        assert opened.status_code == 303, opened.text
        page = await browser.get(opened.headers["location"])
        assert page.status_code == 200, page.text
        request_id, csrf = hidden(page.text, "request"), hidden(page.text, "csrf")
        signed = await browser.post(
            "/oauth/consent", data={"request": request_id, "csrf": csrf, "action": "sign_in", "api_key": api_key}
        )
        assert signed.status_code == 303, signed.text
        consent = await browser.get(signed.headers["location"])
        assert "Allow access" in consent.text
        return await browser.post(
            "/oauth/consent", data={"request": request_id, "csrf": csrf, "action": "approve" if approve else "deny"}
        )

    def _client_auth(self, client: Registered, form: dict[str, str]) -> dict[str, str]:
        form["client_id"] = client.client_id
        headers: dict[str, str] = {}
        if client.auth_method == "client_secret_post" and client.client_secret:
            form["client_secret"] = client.client_secret
        if client.auth_method == "client_secret_basic" and client.client_secret:
            pair = f"{client.client_id}:{client.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    async def exchange(
        self, client: Registered, code: str, verifier: str, redirect_uri: str | None = None
    ) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri or client.redirect_uri,
        }
        headers = self._client_auth(client, form)
        async with self.http() as http:
            return await http.post("/token", data=form, headers=headers)

    async def refresh(self, client: Registered, refresh_token: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        headers = self._client_auth(client, form)
        async with self.http() as http:
            return await http.post("/token", data=form, headers=headers)

    async def revoke(self, client: Registered, token: str) -> httpx.Response:
        form = {"token": token}
        headers = self._client_auth(client, form)
        async with self.http() as http:
            return await http.post("/revoke", data=form, headers=headers)

    async def tokens(self, client: Registered, api_key: str) -> dict[str, Any]:
        """The whole dance without a real browser; the token response."""
        pkce = Pkce.new()
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as browser:
            answer = await self.consent(browser, self.authorize_url(client, pkce), api_key)
        code = query_of(answer.headers["location"])["code"]
        reply = await self.exchange(client, code, pkce.verifier)
        assert reply.status_code == 200, reply.text
        tokens: dict[str, Any] = reply.json()
        return tokens

    async def mcp_status(self, token: str) -> int:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}", "MCP-Protocol-Version": "2025-11-25"}
        async with self.http() as http:
            return (await http.post("/mcp", json=body, headers=headers)).status_code
