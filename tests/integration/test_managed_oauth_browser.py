"""Connecting X as an owner does it: the agent asks for a link (MCP `connect_link`), the owner opens it in
Chromium, approves on X's consent page, lands on Hermes's page; then the agent posts, and two instances
renewing the 2-hour token at the same moment call X's token endpoint once. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from playwright.async_api import Browser, async_playwright

from hermes.entrypoints.settings import Settings
from tests.fakes.x import FakeX
from tests.integration.mcp_client import mcp_session
from tests.integration.oauth_support import start_public
from tests.integration.server import HermesServer
from tests.integration.test_oauth_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.support import make_settings

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/ensure-services.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
def x() -> Iterator[FakeX]:
    with FakeX() as fake:
        fake.consent.register_app("hermes-x-client", "hermes-x-secret")
        yield fake


def settings_for(mariadb_url: str, redis_url: str, fake: FakeX) -> Settings:
    return make_settings(
        HERMES_DATABASE_URL=mariadb_url,
        HERMES_REDIS_URL=redis_url,
        HERMES_TWITTER_API_BASE=fake.base_url,
        HERMES_TWITTER_AUTH_BASE=fake.base_url,
        HERMES_TWITTER_TOKEN_BASE=fake.base_url,
        HERMES_TWITTER_CLIENT_ID="hermes-x-client",
        HERMES_TWITTER_CLIENT_SECRET="hermes-x-secret",
    )


async def test_an_owner_connects_x_in_a_browser_and_two_instances_renew_its_token_once(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Callable[..., HermesServer], browser: Browser
) -> None:
    settings = settings_for(mariadb_url, redis_url, x)
    one, two = start_public(start_hermes, settings), start_public(start_hermes, settings)
    customer = await one.create_customer()
    x.access_ttl = 60  # the token is already inside the renewal margin when it arrives

    async with mcp_session(one.url, customer["apiKey"]) as agent:
        names = {t.name for t in (await agent.list_tools()).tools}
        assert "connect_link" in names
        made = await agent.call_tool("connect_link", {"platform": "twitter"})
        assert made.is_error is False, made
        url = made.structured_content["url"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 900, "height": 900})
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_role("heading", name="An app wants to access your account").wait_for()
    await page.get_by_role("button", name="Authorize app").click()
    await page.get_by_role("heading", name="X is connected").wait_for()
    assert page.url.startswith(f"{one.url}/connect/callback/twitter?")
    assert "close this page" in await page.inner_text("main")
    await page.screenshot(path=str(ARTIFACTS / "platform-connected.png"), full_page=True)
    await context.close()

    x.access_ttl = 7200
    x.delay_next(0.5, path="/2/oauth2/token")
    async with mcp_session(one.url, customer["apiKey"]) as a, mcp_session(two.url, customer["apiKey"]) as b:
        posted = await asyncio.gather(
            a.call_tool("twitter_post_tweet", {"text": "posted from instance one"}),
            b.call_tool("twitter_post_tweet", {"text": "posted from instance two"}),
        )
    assert [p.is_error for p in posted] == [False, False], posted
    assert len(x.token_requests("refresh_token")) == 1
    assert sorted(t["text"] for t in x.posts_by("hermes_test")) == [
        "posted from instance one",
        "posted from instance two",
    ]


async def test_the_console_connects_x_with_a_button(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Callable[..., HermesServer], browser: Browser
) -> None:
    settings = settings_for(mariadb_url, redis_url, x).model_copy(update={"console_sign_ins_per_minute": 1000})
    server = start_public(start_hermes, settings)
    customer = await server.create_customer()
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    await page.goto(server.url + "/console/sign-in")
    await page.get_by_label("Hermes API key").fill(customer["apiKey"])
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Overview").wait_for()
    await page.goto(server.url + "/console/accounts")
    # Only the platforms with a configured sign-in get the button.
    assert await page.get_by_role("link", name="Connect with LinkedIn").count() == 0
    await page.get_by_role("link", name="Connect with X").click()
    await page.get_by_role("button", name="Authorize app").click()
    await page.get_by_role("heading", name="X is connected").wait_for()
    await page.goto(server.url + "/console/accounts")
    x_row = page.locator("#account-twitter")
    await x_row.get_by_text("Connected", exact=True).wait_for()
    assert await x_row.get_by_role("link", name="Reconnect with X").is_visible()
    await page.screenshot(path=str(ARTIFACTS / "console-connect-with-x.png"), full_page=True)
    await context.close()
