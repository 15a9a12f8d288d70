"""The customer console in a real browser, against a real Hermes, MariaDB, Redis and a fake Telegram.

A customer signs in with its API key, connects Telegram through the form built from
its credential schema (checked with the platform), sees it connected, pages through
its audit log, revokes an app it had authorized, sets a callback and signs out.
Around that: a wrong key, forms posted without the session's token or from another
site, and pages that refuse to be framed.

Screenshots go to tests/artifacts/ on every run; docs/console-*.png are written only
when missing or when HERMES_UPDATE_SCREENSHOTS=1 asks for them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page

from hermes.adapters.sql.migrate import upgrade_url
from hermes.entrypoints.settings import Settings
from tests.fakes.telegram import FakeTelegram
from tests.integration.oauth_support import OAuthAgent, start_public
from tests.integration.server import HermesServer
from tests.integration.test_oauth_browser import ARTIFACTS, ROOT, browser  # noqa: F401 - the Chromium fixture
from tests.support import free_port, make_settings

pytestmark = pytest.mark.browser

DOCS = ROOT / "docs"
CALLS = 30  # more than one page of the audit log (25 a page)


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def console(settings: Settings, start_hermes: Callable[..., HermesServer], telegram: FakeTelegram) -> HermesServer:
    # Every test signs in from 127.0.0.1 and Redis keeps the count across servers: the limit is tested apart.
    changes = {"telegram_api_base": telegram.base_url, "console_sign_ins_per_minute": 1000}
    return start_public(start_hermes, settings.model_copy(update=changes))


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"console-{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    committed = DOCS / f"console-{name}.png"
    if not committed.exists() or os.environ.get("HERMES_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, committed)


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Console").get_by_role("link", name=name, exact=True)


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


async def test_a_customer_runs_its_account_from_the_console(
    console: HermesServer,
    telegram: FakeTelegram,
    browser: Browser,  # noqa: F811
) -> None:
    customer = await console.create_customer("owner@example.com", "pro")
    key = customer["apiKey"]
    bot_token = telegram.add_bot(username="acme_support_bot")
    async with console.client(key) as api:
        for i in range(CALLS):
            if i % 6 == 5:  # Telegram is not connected yet: failed calls are audited too
                sent = await api.post("/api/tools/telegram_send_message", json={"chat_id": "42", "text": "hi"})
                assert sent.status_code == 409
            else:
                assert (await api.post("/api/tools/connections_status", json={})).status_code == 200
    agent = OAuthAgent(console)
    app = await agent.register(client_name="Claude")
    tokens = await agent.tokens(app, key)
    assert await agent.mcp_status(tokens["access_token"]) == 200

    context = await browser.new_context(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    # Signed out, the console sends the browser to its sign-in page; a wrong key is refused there.
    await page.goto(console.url + "/console/accounts")
    assert page.url == console.url + "/console/sign-in"
    await page.get_by_role("heading", name="Sign in to your console").wait_for()
    # The style sheet is Hermes' own and allowed by the CSP: the page is styled.
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(243, 245, 249)"
    await screenshot(page, "sign-in")
    await page.get_by_label("Hermes API key").fill("hms_" + "x" * 43)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("That API key was not accepted").wait_for()

    await page.get_by_label("Hermes API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Overview").wait_for()
    main = await page.inner_text("main")
    for shown in (customer["email"], "pro", f"{CALLS} of 250,000 tool calls", customer["id"]):
        assert shown in main, shown
    assert key not in await page.content() and key not in page.url
    cookies = {c["name"]: c for c in await context.cookies()}
    session = cookies["hermes-console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert key not in session["value"]
    await screenshot(page, "overview")

    # Accounts: every platform listed; Telegram's form is built from its schema and checked with Telegram.
    await nav(page, "Accounts").click()
    await page.get_by_role("heading", name="Accounts").wait_for()
    rows = page.locator("li.account")
    assert await rows.count() == 8
    telegram_row = page.locator("#account-telegram")
    assert await telegram_row.locator(".status").inner_text() == "Not connected"
    email_form = page.locator("form[aria-label='Connect Email']")  # folded away until asked for
    options = await email_form.locator("select[name=smtpSecurity] option").all_text_contents()
    assert options == ["ssl", "starttls", "none"]
    assert await email_form.locator("input[name=password]").get_attribute("type") == "password"
    assert await email_form.locator("input[name=smtpPort]").get_attribute("inputmode") == "numeric"
    assert "(optional)" in (await email_form.locator("label[for=email-imapHost]").text_content() or "")

    await telegram_row.locator("summary").click()
    form = page.get_by_role("form", name="Connect Telegram")
    await form.get_by_label("Bot token").fill("not-a-token")
    await form.get_by_role("button", name="Connect Telegram").click()
    await page.get_by_text("Bot token must look like 123456789:AA").wait_for()
    await screenshot(page, "connect-error")

    form = page.get_by_role("form", name="Connect Telegram")
    await form.get_by_label("Bot token").fill("123456789:AA" + "b" * 33)  # well formed, unknown to Telegram
    await form.get_by_role("button", name="Connect Telegram").click()
    await page.locator("#account-telegram .error").wait_for()
    refused = await page.locator("#account-telegram .error").inner_text()
    assert refused == "Telegram did not accept these credentials (error 401), so nothing was saved."
    assert await page.locator("#account-telegram .status").inner_text() == "Not connected"

    form = page.get_by_role("form", name="Connect Telegram")
    await form.get_by_label("Bot token").fill(bot_token)
    await form.get_by_role("button", name="Connect Telegram").click()
    await page.get_by_text("Telegram is connected.").wait_for()
    assert await page.locator("#account-telegram .status").inner_text() == "Connected"
    assert any(r.path.endswith("/getMe") and bot_token in r.path for r in telegram.requests)
    assert bot_token not in await page.content()
    await screenshot(page, "accounts")
    async with console.client(key) as api:
        assert (await api.get("/api/connections")).json()["connections"]["telegram"] is True

    # Audit log: one day, a page of 25 and then the rest.
    await nav(page, "Audit log").click()
    await page.get_by_role("heading", name="Audit log").wait_for()
    assert await page.locator("table.grid tbody tr").count() == 25
    assert await page.locator("table.grid tbody tr").first.inner_text() != ""
    table = await page.inner_text("table.grid")
    assert "connections_status" in table and "telegram_send_message" in table and "not_connected" in table
    await screenshot(page, "audit")
    await page.get_by_role("link", name="Next page").click()
    await page.get_by_role("link", name="First page").wait_for()
    assert await page.locator("table.grid tbody tr").count() == CALLS - 25
    assert await page.get_by_role("link", name="Next page").count() == 0

    # Authorized apps: Claude is listed; revoking it ends its tokens at once.
    await nav(page, "Authorized apps").click()
    await page.get_by_role("heading", name="Authorized apps").wait_for()
    assert "Claude" in await page.inner_text("table.grid")
    await screenshot(page, "apps")
    await page.get_by_role("button", name="Revoke Claude").click()
    await page.get_by_text("Access revoked.").wait_for()
    assert await page.get_by_text("No app has access to your account.").is_visible()
    assert await agent.mcp_status(tokens["access_token"]) == 401

    # Callback: a URL that is not https is refused on its field; an https one is saved and its secret shown once.
    await nav(page, "Callback").click()
    await page.get_by_role("heading", name="Callback").wait_for()
    hook = f"https://127.0.0.1:{free_port()}/hermes-hook"
    await page.get_by_label("Callback URL").fill("http://example.com/hook")
    await page.get_by_role("button", name="Set callback").click()
    await page.get_by_text("must start with https://").wait_for()
    await page.get_by_label("Callback URL").fill(hook)
    await page.get_by_role("button", name="Set callback").click()
    await page.get_by_text("Copy the signing secret now").wait_for()
    secret = await page.locator(".secret code.copy").inner_text()
    assert secret.startswith("whsec_")
    async with console.client(key) as api:
        assert (await api.get("/api/inbound/callback")).json()["url"] == hook
    await nav(page, "Callback").click()
    await page.get_by_role("button", name="Replace callback").wait_for()
    assert secret not in await page.content()
    await screenshot(page, "callback")

    # Conversations and approvals say what will appear there.
    await nav(page, "Conversations").click()
    await page.get_by_text("No conversations to show.").wait_for()
    await nav(page, "Approvals").click()
    await page.get_by_text("Nothing is waiting for you.").wait_for()

    # Disconnect, then sign out: the session is gone on the server, not only in this browser.
    await nav(page, "Accounts").click()
    await page.get_by_role("button", name="Disconnect Telegram").click()
    await page.get_by_text("Telegram is disconnected.").wait_for()
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_text("You have signed out.").wait_for()
    assert "hermes-console" not in {c["name"] for c in await context.cookies()}
    await page.goto(console.url + "/console")
    assert page.url == console.url + "/console/sign-in"
    async with httpx.AsyncClient(base_url=console.url, cookies={"hermes-console": session["value"]}) as stolen:
        assert (await stolen.get("/console", follow_redirects=False)).headers["location"] == "/console/sign-in"

    # Pages answered 400/401 on purpose above; what must never appear is a blocked style or script.
    assert [p for p in problems if "Failed to load resource" not in p] == []
    await context.close()


@asynccontextmanager
async def signed_in(server: HermesServer, key: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An HTTP client signed in to the console as a browser would be, and its forms' token."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers={"Origin": server.url}) as client:
        page = await client.get("/console/sign-in")
        signed = await client.post("/console/sign-in", data={"csrf": hidden(page.text, "csrf"), "api_key": key})
        assert signed.status_code == 303 and signed.headers["location"] == "/console", signed.text
        accounts = await client.get("/console/accounts")
        yield client, hidden(accounts.text, "csrf")


async def test_forms_without_the_sessions_token_or_from_another_site_are_refused(
    console: HermesServer, telegram: FakeTelegram
) -> None:
    customer = await console.create_customer("owner@example.com", "pro")
    token = telegram.add_bot()
    async with signed_in(console, customer["apiKey"]) as (client, csrf):
        connect = "/console/accounts/telegram/connect"
        for form, headers in (
            ({"botToken": token}, {}),
            ({"botToken": token, "csrf": ""}, {}),
            ({"botToken": token, "csrf": csrf[:-2] + "xx"}, {}),
            ({"botToken": token, "csrf": csrf}, {"Origin": "https://evil.example"}),
            ({"botToken": token, "csrf": csrf}, {"Origin": "null"}),
        ):
            refused = await client.post(connect, data=form, headers=headers)
            assert refused.status_code == 403, (form, headers)
            assert "This form cannot be accepted" in refused.text
        assert not any(r.path.endswith("/getMe") for r in telegram.requests)
        async with console.client(customer["apiKey"]) as api:
            assert (await api.get("/api/connections")).json()["connections"]["telegram"] is False

        # Another customer's session token does not fit this session either.
        other = await console.create_customer("other@example.com", "pro")
        async with signed_in(console, other["apiKey"]) as (_, other_csrf):
            pass
        assert (await client.post("/console/sign-out", data={"csrf": other_csrf})).status_code == 403

        accepted = await client.post(connect, data={"botToken": token, "csrf": csrf})
        assert accepted.status_code == 303

    # The sign-in form is bound to its browser too: without the cookie it came with, it is refused.
    async with httpx.AsyncClient(base_url=console.url, headers={"Origin": console.url}) as fresh:
        page = await fresh.get("/console/sign-in")
        form = {"csrf": hidden(page.text, "csrf"), "api_key": customer["apiKey"]}
        fresh.cookies.clear()
        assert (await fresh.post("/console/sign-in", data=form)).status_code == 403


async def test_console_pages_cannot_be_framed_cached_or_scripted(console: HermesServer, browser: Browser) -> None:  # noqa: F811
    customer = await console.create_customer("owner@example.com", "pro")
    async with signed_in(console, customer["apiKey"]) as (client, _), console.client() as anonymous:
        pages = ["/console", "/console/accounts", "/console/audit", "/console/apps", "/console/callback"]
        for path in ["/console/sign-in", *pages]:
            reply = await (anonymous if path == "/console/sign-in" else client).get(path)
            assert reply.status_code == 200, path
            headers = reply.headers
            csp = headers["content-security-policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
            assert headers["x-frame-options"] == "DENY"
            assert headers["cache-control"] == "no-store"
            assert headers["referrer-policy"] == "same-origin"
            assert headers["x-content-type-options"] == "nosniff"
            assert "<script" not in reply.text

    # And a browser does refuse to show it in a frame on another site.
    page = await browser.new_page()
    await page.set_content(f'<iframe id="f" src="{console.url}/console/sign-in" width="600" height="400"></iframe>')
    frame = page.frame_locator("#f")
    await page.wait_for_timeout(500)
    assert await frame.get_by_role("heading", name="Sign in to your console").count() == 0
    await page.close()


async def test_sign_in_is_limited_per_client_address_in_embedded_mode(tmp_path: Path, start_hermes: Any) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/hermes.db"
    await upgrade_url(database)
    limited = make_settings(HERMES_DATABASE_URL=database, HERMES_CONSOLE_SIGN_INS_PER_MINUTE=3)
    server = start_public(start_hermes, limited)
    customer = await server.create_customer("owner@example.com", "pro")
    # Sessions work in embedded mode too (kept in the one process's memory).
    async with signed_in(server, customer["apiKey"]) as (client, _):
        assert customer["email"] in (await client.get("/console")).text
    async with httpx.AsyncClient(base_url=server.url, headers={"Origin": server.url}) as client:
        page = await client.get("/console/sign-in")
        csrf = hidden(page.text, "csrf")
        for _ in range(2):
            wrong = await client.post("/console/sign-in", data={"csrf": csrf, "api_key": "hms_guess"})
            assert wrong.status_code == 401
        refused = await client.post("/console/sign-in", data={"csrf": csrf, "api_key": customer["apiKey"]})
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert "Too many sign-in attempts" in refused.text
        assert "hermes-console" not in client.cookies
