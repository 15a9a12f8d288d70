"""A held send approved in Chromium: the owner opens the URL the agent got, signs in with the API key, sees
exactly what would be sent to whom, approves, and the fake Graph API receives it once."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
import pytest
from playwright.async_api import Browser

from hermes.entrypoints.settings import Settings
from tests.fakes.graph import FakeGraph
from tests.integration.oauth_support import start_public
from tests.integration.server import HermesServer
from tests.integration.test_console_browser import hidden, screenshot
from tests.integration.test_oauth_browser import browser  # noqa: F401 - the Chromium fixture
from tests.support import whatsapp_credentials


async def decide_over_http(server: HermesServer, key: str, approval_id: str, decision: str) -> int:
    """Sign in to the console as a browser would and post a decision on a held send; the reply's status."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers={"Origin": server.url}) as client:
        page = await client.get("/console/sign-in")
        signed = await client.post("/console/sign-in", data={"csrf": hidden(page.text, "csrf"), "api_key": key})
        assert signed.status_code == 303, signed.text
        review = await client.get(f"/console/approvals/{approval_id}")
        assert review.status_code == 200, review.text
        reply = await client.post(
            f"/console/approvals/{approval_id}/{decision}", data={"csrf": hidden(review.text, "csrf")}
        )
        return reply.status_code


@pytest.fixture
def console(settings: Settings, start_hermes: Callable[..., HermesServer]) -> HermesServer:
    return start_public(start_hermes, settings.model_copy(update={"console_sign_ins_per_minute": 1000}))


@pytest.mark.browser
async def test_the_owner_approves_a_held_send_in_the_browser(
    console: HermesServer,
    shared_graph: FakeGraph,
    browser: Browser,  # noqa: F811
) -> None:
    customer = await console.create_customer("owner@example.com", "pro")
    key = customer["apiKey"]
    to = "+3166" + str(secrets.randbelow(10**7)).zfill(7)
    text = "Hi Anna, your refund of EUR 40 is on its way <b>today</b>"
    async with console.client(key) as api:
        number = str(100000000000000 + secrets.randbelow(10**14))
        assert (
            await api.post("/api/connect/whatsapp", json=whatsapp_credentials(number, "EAAG-approve"))
        ).status_code == 200
        assert (await api.put("/api/policy", json={"approval": "always"})).status_code == 200
        held = (await api.post("/api/tools/whatsapp_send_message", json={"to": to, "message": text})).json()
    assert held["status"] == "pending_approval" and shared_graph.sent_to(to) == []

    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(held["approval_url"])
    assert page.url == console.url + "/console/sign-in?next=/console/approvals/" + held["approval_id"]
    await page.get_by_label("Hermes API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    # Signed in, the browser is back on the held send.
    await page.get_by_role("heading", name="Approve this send?").wait_for()
    assert page.url == held["approval_url"]

    await page.goto(console.url + "/console/approvals")
    row = page.locator("table.grid tbody tr")
    assert await row.count() == 1
    assert to in await row.inner_text() and "WhatsApp" in await row.inner_text()
    await screenshot(page, "approvals")
    await row.get_by_role("link", name="Review").click()
    await page.get_by_role("heading", name="Approve this send?").wait_for()
    await screenshot(page, "approval")
    main = await page.inner_text("main")
    assert to in main and text in main and "your WhatsApp account" in main and "whatsapp_send_message" in main
    assert await page.locator("b").count() == 0  # the agent's text is shown as text, never as markup

    await page.get_by_role("button", name="Approve and send").click()
    await page.get_by_text("Approved. The send went out once").wait_for()
    assert await page.inner_text("#state") == "sent"
    await page.go_back()  # a second click from a stale page cannot send again
    await page.reload()
    assert await page.get_by_role("button", name="Approve and send").count() == 0
    await context.close()
    assert [s.payload["text"]["body"] for s in shared_graph.sent_to(to)] == [text]

    async with httpx.AsyncClient(base_url=console.url) as anonymous:
        page_reply = await anonymous.get(f"/console/approvals/{held['approval_id']}", follow_redirects=False)
    assert page_reply.status_code == 303
    assert page_reply.headers["location"] == "/console/sign-in?next=/console/approvals/" + held["approval_id"]
    # The way back after sign-in leads only to a held send's page, never elsewhere.
    async with httpx.AsyncClient(base_url=console.url, headers={"Origin": console.url}) as fresh:
        page_text = (await fresh.get("/console/sign-in?next=https://evil.example/x")).text
        assert 'name="next"' not in page_text
        form = {"csrf": hidden(page_text, "csrf"), "api_key": key, "next": "//evil.example/console/approvals/x"}
        signed = await fresh.post("/console/sign-in", data=form)
        assert signed.status_code == 303 and signed.headers["location"] == "/console"


async def test_the_approval_page_is_unframeable_and_refuses_forged_posts(
    console: HermesServer, shared_graph: FakeGraph
) -> None:
    customer = await console.create_customer("owner2@example.com", "pro")
    other = await console.create_customer("stranger@example.com", "pro")
    to = "+3167" + str(secrets.randbelow(10**7)).zfill(7)
    async with console.client(customer["apiKey"]) as api:
        number = str(100000000000000 + secrets.randbelow(10**14))
        await api.post("/api/connect/whatsapp", json=whatsapp_credentials(number, "EAAG-forge"))
        await api.put("/api/policy", json={"approval": "always"})
        held = (await api.post("/api/tools/whatsapp_send_message", json={"to": to, "message": "hello"})).json()
    approval = f"/console/approvals/{held['approval_id']}"
    async with httpx.AsyncClient(base_url=console.url, timeout=30, headers={"Origin": console.url}) as client:
        page = await client.get("/console/sign-in")
        await client.post("/console/sign-in", data={"csrf": hidden(page.text, "csrf"), "api_key": customer["apiKey"]})
        review = await client.get(approval)
        csp = review.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "default-src 'none'" in csp
        assert review.headers["x-frame-options"] == "DENY" and review.headers["cache-control"] == "no-store"
        csrf = hidden(review.text, "csrf")
        assert (await client.post(approval + "/approve", data={})).status_code == 403
        forged = await client.post(
            approval + "/approve", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
        )
        assert forged.status_code == 403
    # Another customer signed in cannot see or decide it.
    assert await decide_over_http_status_of_other(console, other["apiKey"], held["approval_id"]) == 404
    assert shared_graph.sent_to(to) == []


async def decide_over_http_status_of_other(server: HermesServer, key: str, approval_id: str) -> int:
    async with httpx.AsyncClient(base_url=server.url, timeout=30, headers={"Origin": server.url}) as client:
        page = await client.get("/console/sign-in")
        await client.post("/console/sign-in", data={"csrf": hidden(page.text, "csrf"), "api_key": key})
        return (await client.get(f"/console/approvals/{approval_id}")).status_code
