"""Swagger UI and Redoc render in Chromium with every request kept to Hermes itself (as offline)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Route, async_playwright

from hermes.entrypoints.settings import Settings
from tests.integration.server import HermesServer
from tests.integration.test_oauth_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/ensure-services.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.mark.parametrize(
    ("page_path", "shown"),
    [("/schema/swagger", "/api/connect/{platform}"), ("/schema/redoc", "Store a customer's credentials")],
)
async def test_api_docs_render_without_leaving_hermes(
    settings: Settings,
    start_hermes: Callable[..., HermesServer],
    browser: Browser,
    page_path: str,
    shown: str,
) -> None:
    server = start_hermes(settings)
    ours = urlsplit(server.url).netloc
    elsewhere: list[str] = []

    async def only_hermes(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).netloc == ours:
            await route.continue_()
        else:
            elsewhere.append(url)
            await route.abort()

    page = await browser.new_page()
    await page.route("**/*", only_hermes)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    reply = await page.goto(server.url + page_path)
    assert reply is not None and reply.status == 200
    await page.get_by_text(shown).first.wait_for(timeout=20_000)
    assert elsewhere == []
    assert errors == []
