"""The shared outbound client over real loopback HTTP: what one call leaves behind never reaches the next."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hermes.adapters.client_metadata import make_metadata_client
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.http import PlatformHttp, fallback, header_wait, make_client
from hermes.domain.platform import Platform


class CookieSetter:
    """Answers every request with a new session cookie, and keeps the Cookie header each request brought."""

    def __init__(self) -> None:
        self.cookies: list[str | None] = []
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.cookies.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("session", f"customer-{len(self.cookies)}", path="/")
        return response


@pytest.fixture
async def server() -> AsyncIterator[CookieSetter]:
    setter = CookieSetter()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", setter.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    setter.base = f"http://localhost:{port}"  # a host name: aiohttp's own jar refuses cookies for bare IPs
    yield setter
    await runner.cleanup()


async def test_a_cookie_set_on_one_platform_call_never_rides_on_the_next(server: CookieSetter) -> None:
    config = PlatformConfig(api_bases={Platform.DISCORD: server.base})
    http = make_client(config)
    client = PlatformHttp(Platform.DISCORD, http, config, lambda r: fallback(Platform.DISCORD, r), header_wait)
    try:
        await client.call("POST", server.base + "/customer-a", headers={}, json={"a": 1})
        await client.call("GET", server.base + "/customer-b", headers={})
        await http.get(server.base + "/callback")  # the client's other users (callbacks, Obsidian)
    finally:
        await http.aclose()
    assert server.cookies == [None, None, None]


async def test_the_metadata_fetcher_keeps_no_cookies_either(server: CookieSetter) -> None:
    http = make_metadata_client()
    try:
        await http.get(server.base + "/a.json")
        await http.get(server.base + "/b.json")
    finally:
        await http.aclose()
    assert server.cookies == [None, None]
