"""The whole OAuth dance as Claude.ai runs it, with a real browser on the consent page.

Discover the metadata from /mcp's 401, register, open the authorization URL in
headless Chromium, sign in with the API key, approve, follow the redirect to a
loopback redirect URI this test serves, exchange the code with the PKCE verifier,
use the token through the official MCP client, refresh, revoke, and see the next
call refused. Screenshots of the pages go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from playwright.async_api import Browser, async_playwright

from hermes.entrypoints.settings import Settings
from tests.integration.mcp_client import MODES, mcp_session
from tests.integration.oauth_support import OAuthAgent, Pkce, start_public
from tests.integration.server import HermesServer
from tests.support import free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class RedirectTarget:
    """The client's loopback redirect URI (RFC 8252): records the authorization response it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/callback"
        self.received: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RedirectTarget:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        target = request_line.split(" ")[1] if " " in request_line else "/"
        if target.startswith("/callback"):
            query = parse_qs(urlsplit(target).query, keep_blank_values=True)
            await self.received.put({k: v[0] for k, v in query.items()})
        body = b"<!doctype html><title>Connected</title><p>Connected. You can close this window.</p>"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/ensure-services.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def test_claude_connects_through_the_consent_page(
    settings: Settings, start_hermes: Callable[..., HermesServer], browser: Browser
) -> None:
    server = start_public(start_hermes, settings)
    agent = OAuthAgent(server)
    customer = await server.create_customer("owner@example.com", "pro")
    async with server.client(customer["apiKey"]) as api:
        for platform, body in (
            ("twitter", {"accessToken": "x" * 40}),
            ("discord", {"botToken": "M" + "x" * 58}),
            ("obsidian", {"apiUrl": "https://vault.example.com", "apiKey": "o" * 64}),
        ):
            # The consent page is the subject, not the platforms: their made-up tokens are not checked.
            assert (await api.post(f"/api/connect/{platform}?verify=false", json=body)).status_code == 200

    resource, metadata = await agent.discover()
    assert metadata["issuer"] == resource["authorization_servers"][0] == server.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async with RedirectTarget() as target:
        client = await agent.register("client_secret_post", redirect_uri=target.url, client_name="Claude")
        pkce = Pkce.new()
        context = await browser.new_context(viewport={"width": 900, "height": 1000}, device_scale_factor=1)
        page = await context.new_page()

        await page.goto(agent.authorize_url(client, pkce, state="claude-state-42"))
        await page.get_by_role("heading", name="Connect Claude to your Hermes account").wait_for()
        await page.screenshot(path=str(ARTIFACTS / "sign-in.png"), full_page=True)
        assert await page.get_by_role("button", name="Continue").is_visible()
        assert await page.get_by_role("button", name="Cancel").is_visible()
        await page.get_by_label("Hermes API key").fill(customer["apiKey"])
        await page.get_by_role("button", name="Continue").click()

        await page.get_by_role("heading", name="Allow Claude to use your Hermes account?").wait_for()
        text = await page.inner_text("main")
        for shown in (customer["email"], "Discord", "Obsidian", f"127.0.0.1:{target.port}"):
            assert shown in text
        assert customer["apiKey"] not in await page.content()
        assert "/authorize" not in page.url and customer["apiKey"] not in page.url
        # The test writes only to the git-ignored artifacts folder; docs/consent-page.png is a copy of one
        # of these screenshots, refreshed by hand when the page changes.
        await page.screenshot(path=str(ARTIFACTS / "consent.png"), full_page=True)

        await page.get_by_role("button", name="Allow access").click()
        answer = await asyncio.wait_for(target.received.get(), timeout=15)
        await page.get_by_text("Connected. You can close this window.").wait_for()
        await context.close()

    assert answer["state"] == "claude-state-42"
    assert answer["iss"] == server.url
    exchanged = await agent.exchange(client, answer["code"], pkce.verifier)
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()

    for mode in MODES:
        async with mcp_session(server.url, tokens["access_token"], mode) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"connections_status", "twitter_post_tweet", "discord_send_message"} <= names
            status = await session.call_tool("connections_status", {})
            assert status.structured_content["connections"]["twitter"] is True

    refreshed = await agent.refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    tokens = refreshed.json()
    async with mcp_session(server.url, tokens["access_token"]) as session:
        assert (await session.call_tool("connections_status", {})).is_error is False

    assert (await agent.revoke(client, tokens["access_token"])).status_code == 200
    assert await agent.mcp_status(tokens["access_token"]) == 401
    with pytest.raises(ExceptionGroup) as refused:  # the SDK client reports the 401 from inside its task group
        async with mcp_session(server.url, tokens["access_token"]) as session:
            await session.list_tools()
    assert refused.group_contains(MCPError, depth=None)


async def test_denying_in_the_browser_returns_access_denied(
    settings: Settings, start_hermes: Callable[..., HermesServer], browser: Browser
) -> None:
    server = start_public(start_hermes, settings)
    agent = OAuthAgent(server)
    async with RedirectTarget() as target:
        client = await agent.register("none", redirect_uri=target.url, client_name="Claude")
        page = await browser.new_page()
        await page.goto(agent.authorize_url(client, Pkce.new(), state="s-9"))
        await page.get_by_role("button", name="Cancel").click()
        answer = await asyncio.wait_for(target.received.get(), timeout=15)
        await page.close()
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "s-9", server.url)
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/oauth/consent?request=whatever")).status_code == 400
