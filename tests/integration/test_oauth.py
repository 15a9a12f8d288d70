"""OAuth 2.1 for /mcp over real HTTP: discovery, registration, consent, tokens, refusals, revocation.

The browser here is an httpx client keeping cookies; test_oauth_browser.py runs the
same dance in Chromium.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
from dishka import Provider, Scope, provide

from hermes.adapters.memory.oauth import StaticClientMetadataDocuments
from hermes.adapters.sql.migrate import upgrade_url
from hermes.application.ports.oauth import ClientMetadataDocuments
from hermes.entrypoints.settings import Settings
from tests.integration.conftest import LogCapture, redis_dump
from tests.integration.mcp_client import MODES, mcp_session
from tests.integration.oauth_support import (
    LOOPBACK_REDIRECT,
    OAuthAgent,
    Pkce,
    Registered,
    hidden,
    query_of,
    start_public,
)
from tests.integration.server import HermesServer
from tests.support import MCP_API_KEY, make_settings

Start = Callable[..., HermesServer]


@pytest.fixture
def server(settings: Settings, start_hermes: Start) -> HermesServer:
    return start_public(start_hermes, settings)


@pytest.fixture
def agent(server: HermesServer) -> OAuthAgent:
    return OAuthAgent(server)


async def connect_discord(server: HermesServer, api_key: str) -> None:
    async with server.client(api_key) as api:
        # What is stored, not the platform: Discord is not asked whether the token works.
        reply = await api.post("/api/connect/discord?verify=false", json={"botToken": "MTA.oauth.test"})
        assert reply.status_code == 200, reply.text


async def admin(server: HermesServer, path: str) -> None:
    async with server.admin() as http:
        assert (await http.post(path)).status_code == 200


async def test_discovery_starts_from_the_401(agent: OAuthAgent) -> None:
    resource, server = await agent.discover()
    base = agent.base
    assert resource["resource"] == base + "/mcp"
    assert resource["authorization_servers"] == [base]
    assert resource["bearer_methods_supported"] == ["header"]
    assert server["issuer"] == base
    assert server["authorization_endpoint"] == base + "/authorize"
    assert server["token_endpoint"] == base + "/token"
    assert server["registration_endpoint"] == base + "/register"
    assert server["revocation_endpoint"] == base + "/revoke"
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["response_types_supported"] == ["code"]
    assert set(server["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert server["client_id_metadata_document_supported"] is True
    assert "none" in server["token_endpoint_auth_methods_supported"]
    async with agent.http() as http:
        root = await http.get("/.well-known/oauth-protected-resource", headers={"Origin": "https://claude.ai"})
        preflight = await http.options(
            "/token",
            headers={"Origin": "https://inspector.example", "Access-Control-Request-Method": "POST"},
        )
    assert root.json() == resource
    assert root.headers["access-control-allow-origin"] == "*"  # browser-based MCP clients read it too
    assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]


async def test_registration_checks_redirect_uris(agent: OAuthAgent) -> None:
    registered = await agent.register()
    assert registered.client_secret
    for bad in ("http://example.com/callback", "javascript:alert(1)", "https://app.example.com/cb#x"):
        async with agent.http() as http:
            reply = await http.post("/register", json={"redirect_uris": [bad], "client_name": "Evil"})
        assert reply.status_code == 400
        assert reply.json()["error"] == "invalid_redirect_uri"
    async with agent.http() as http:
        assert (await http.post("/register", content=b"not json")).status_code == 400


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic", "none"])
async def test_the_dance_then_refresh_then_revoke(agent: OAuthAgent, server: HermesServer, auth_method: str) -> None:
    customer = await server.create_customer()
    await connect_discord(server, customer["apiKey"])
    client = await agent.register(auth_method)
    tokens = await agent.tokens(client, customer["apiKey"])
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    for mode in MODES:
        async with mcp_session(server.url, tokens["access_token"], mode) as session:
            # The token acts for this customer: it sees the platform the customer connected.
            assert "discord_send_message" in {t.name for t in (await session.list_tools()).tools}
            status = await session.call_tool("connections_status", {})
            assert status.structured_content["connections"]["discord"] is True

    refreshed = await agent.refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    async with mcp_session(server.url, new["access_token"]) as session:
        assert (await session.call_tool("connections_status", {})).is_error is False

    assert (await agent.revoke(client, new["refresh_token"])).status_code == 200
    assert await agent.mcp_status(new["access_token"]) == 401
    assert (await agent.refresh(client, new["refresh_token"])).json()["error"] == "invalid_grant"


async def test_a_wrong_pkce_verifier_is_refused(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    client = await agent.register()
    pkce = Pkce.new()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        answer = await agent.consent(browser, agent.authorize_url(client, pkce), customer["apiKey"])
    code = query_of(answer.headers["location"])["code"]
    wrong = await agent.exchange(client, code, Pkce.new().verifier)
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "incorrect code_verifier"}
    assert wrong.headers["cache-control"] == "no-store"
    assert (await agent.exchange(client, code, pkce.verifier)).status_code == 200


async def test_a_reused_code_is_refused_and_revokes_its_tokens(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    client = await agent.register()
    pkce = Pkce.new()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        answer = await agent.consent(browser, agent.authorize_url(client, pkce), customer["apiKey"])
    code = query_of(answer.headers["location"])["code"]
    first = await agent.exchange(client, code, pkce.verifier)
    assert first.status_code == 200
    again = await agent.exchange(client, code, pkce.verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert await agent.mcp_status(first.json()["access_token"]) == 401


async def test_a_mismatched_redirect_uri_is_refused(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    client = await agent.register()
    pkce = Pkce.new()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        for elsewhere in (
            "https://attacker.example/steal",
            "http://127.0.0.1:47123/callback/x",
            LOOPBACK_REDIRECT + "?a=1",
        ):
            page = await browser.get(agent.authorize_url(client, pkce, redirect_uri=elsewhere))
            assert page.status_code == 400
            assert "location" not in page.headers  # never redirected to an unregistered address
            assert "not one it registered" in page.text
        answer = await agent.consent(browser, agent.authorize_url(client, pkce), customer["apiKey"])
    code = query_of(answer.headers["location"])["code"]
    moved = await agent.exchange(client, code, pkce.verifier, redirect_uri="http://127.0.0.1:47123/other")
    assert moved.status_code == 400
    assert moved.json()["error"] == "invalid_request"


async def test_an_expired_code_is_refused(settings: Settings, start_hermes: Start) -> None:
    server = start_public(start_hermes, settings.model_copy(update={"oauth_code_ttl": 1}))
    agent = OAuthAgent(server)
    customer = await server.create_customer()
    client = await agent.register()
    pkce = Pkce.new()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        answer = await agent.consent(browser, agent.authorize_url(client, pkce), customer["apiKey"])
    await asyncio.sleep(1.5)
    late = await agent.exchange(client, query_of(answer.headers["location"])["code"], pkce.verifier)
    assert late.status_code == 400
    assert late.json() == {"error": "invalid_grant", "error_description": "authorization code has expired"}


async def test_state_round_trips_exactly_and_cannot_be_tampered_with(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    client = await agent.register()
    state = "a b&c=d/é?<script>%20"
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        opened = await browser.get(agent.authorize_url(client, Pkce.new(), state=state))
        page = await browser.get(opened.headers["location"])
        request_id, csrf = hidden(page.text, "request"), hidden(page.text, "csrf")
        await browser.post(
            "/oauth/consent",
            data={"request": request_id, "csrf": csrf, "action": "sign_in", "api_key": customer["apiKey"]},
        )
        answer = await browser.post(
            "/oauth/consent",
            data={"request": request_id, "csrf": csrf, "action": "approve", "state": "forged", "redirect_uri": "x"},
        )
    returned = query_of(answer.headers["location"])
    assert answer.headers["location"].startswith(LOOPBACK_REDIRECT + "?")
    assert returned["state"] == state
    assert returned["iss"] == agent.base


async def test_a_forged_consent_form_is_refused(agent: OAuthAgent, server: HermesServer) -> None:
    victim = await server.create_customer("victim@example.com")
    attacker = await server.create_customer("attacker@example.com")
    client = await agent.register()
    async with (
        httpx.AsyncClient(base_url=agent.base) as browser,
        httpx.AsyncClient(base_url=agent.base) as other_browser,
    ):
        opened = await browser.get(agent.authorize_url(client, Pkce.new()))
        page = await browser.get(opened.headers["location"])
        request_id, csrf = hidden(page.text, "request"), hidden(page.text, "csrf")
        sign_in = {"request": request_id, "action": "sign_in", "api_key": victim["apiKey"]}

        wrong_token = await browser.post("/oauth/consent", data={**sign_in, "csrf": csrf[:-2] + "xx"})
        no_token = await browser.post("/oauth/consent", data=sign_in)
        for refused in (wrong_token, no_token):
            assert refused.status_code == 403 and "location" not in refused.headers

        # Another browser (the attacker's) holds its own cookie: the victim's request is not its to answer,
        # and the page of the attacker's own request cannot be answered from the victim's browser.
        theirs = await other_browser.get(agent.authorize_url(client, Pkce.new()))
        their_page = await other_browser.get(theirs.headers["location"])
        their_request, their_csrf = hidden(their_page.text, "request"), hidden(their_page.text, "csrf")
        crossed = await other_browser.post(
            "/oauth/consent", data={**sign_in, "csrf": their_csrf, "api_key": attacker["apiKey"]}
        )
        assert crossed.status_code == 403
        swapped = await browser.post(
            "/oauth/consent",
            data={"request": their_request, "csrf": csrf, "action": "sign_in", "api_key": victim["apiKey"]},
        )
        assert swapped.status_code == 403
        assert (await other_browser.get(opened.headers["location"])).status_code == 403

        unknown = await browser.post("/oauth/consent", data={**sign_in, "csrf": csrf, "request": "nope"})
        assert unknown.status_code == 400 and "expired" in unknown.text
        assert (await browser.post("/oauth/consent", data={**sign_in, "csrf": csrf})).status_code == 303


async def test_denying_sends_access_denied_back(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    client = await agent.register()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        answer = await agent.consent(
            browser, agent.authorize_url(client, Pkce.new(), state="s1"), customer["apiKey"], approve=False
        )
    assert query_of(answer.headers["location"]) == {
        "error": "access_denied",
        "error_description": "the account owner denied access",
        "state": "s1",
        "iss": agent.base,
    }


async def test_a_wrong_api_key_is_refused_on_the_page(agent: OAuthAgent, server: HermesServer) -> None:
    client = await agent.register()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        opened = await browser.get(agent.authorize_url(client, Pkce.new()))
        page = await browser.get(opened.headers["location"])
        form = {"request": hidden(page.text, "request"), "csrf": hidden(page.text, "csrf"), "action": "sign_in"}
        wrong = await browser.post("/oauth/consent", data={**form, "api_key": "hms_" + "x" * 43})
        assert wrong.status_code == 401
        assert "not accepted" in wrong.text and "hms_" + "x" * 43 not in wrong.text
        approve = await browser.post("/oauth/consent", data={**form, "action": "approve"})
        assert approve.status_code == 303 and approve.headers["location"].startswith("/oauth/consent?")


async def test_authorization_errors_go_back_to_the_client_with_state(agent: OAuthAgent) -> None:
    client = await agent.register()
    cases = {
        "invalid_request": {"code_challenge_method": None},
        "invalid_target": {"resource": "https://elsewhere.example/mcp"},
        "unsupported_response_type": {"response_type": "token"},
    }
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        for error, changes in cases.items():
            reply = await browser.get(agent.authorize_url(client, Pkce.new(), state="st", **changes))
            assert reply.status_code == 303
            returned = query_of(reply.headers["location"])
            assert (returned["error"], returned["state"], returned["iss"]) == (error, "st", agent.base)
        twice = await browser.get(agent.authorize_url(client, Pkce.new(), state="st") + "&state=other")
        assert query_of(twice.headers["location"])["error"] == "invalid_request"
        unknown = await browser.get(agent.authorize_url(client, Pkce.new(), client_id="no-such-client"))
        assert unknown.status_code == 400 and "location" not in unknown.headers
        assert "text/html" in unknown.headers["content-type"]


async def test_a_token_of_a_deactivated_customer_is_refused(agent: OAuthAgent, server: HermesServer) -> None:
    a, b = await server.create_customer("a@example.com"), await server.create_customer("b@example.com")
    client = await agent.register()
    tokens_a, tokens_b = await agent.tokens(client, a["apiKey"]), await agent.tokens(client, b["apiKey"])
    async with mcp_session(server.url, tokens_a["access_token"]) as session:
        assert (await session.call_tool("connections_status", {})).is_error is False
    await admin(server, f"/admin/customers/{a['id']}/deactivate")
    assert await agent.mcp_status(tokens_a["access_token"]) == 401
    assert (await agent.refresh(client, tokens_a["refresh_token"])).json()["error"] == "invalid_grant"
    async with mcp_session(server.url, tokens_b["access_token"]) as session:
        assert (await session.call_tool("connections_status", {})).is_error is False


async def test_rotating_the_api_key_revokes_tokens(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    client = await agent.register()
    tokens = await agent.tokens(client, customer["apiKey"])
    await admin(server, f"/admin/customers/{customer['id']}/rotate-key")
    assert await agent.mcp_status(tokens["access_token"]) == 401
    assert (await agent.refresh(client, tokens["refresh_token"])).status_code == 400


async def test_customers_list_and_revoke_authorized_clients(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    first, second = await agent.register(), await agent.register()
    kept = await agent.tokens(first, customer["apiKey"])
    dropped = await agent.tokens(second, customer["apiKey"])
    async with server.client(customer["apiKey"]) as api:
        listed = (await api.get("/api/oauth/clients")).json()
        assert listed["customerId"] == customer["id"]
        assert {c["clientId"] for c in listed["clients"]} == {first.client_id, second.client_id}
        assert all(c["clientName"] == "Claude (test)" and c["grants"] == 1 for c in listed["clients"])
        revoked = await api.delete(f"/api/oauth/clients/{second.client_id}")
        assert revoked.json() == {"clientId": second.client_id, "revoked": True, "grantsRevoked": 1}
        assert (await api.delete(f"/api/oauth/clients/{second.client_id}")).status_code == 404
        assert [c["clientId"] for c in (await api.get("/api/oauth/clients")).json()["clients"]] == [first.client_id]
    assert await agent.mcp_status(dropped["access_token"]) == 401
    async with mcp_session(server.url, kept["access_token"]) as session:
        assert (await session.call_tool("connections_status", {})).is_error is False
    async with server.client() as anonymous:
        assert (await anonymous.get("/api/oauth/clients")).status_code == 401


async def test_static_bearer_keys_keep_working(agent: OAuthAgent, server: HermesServer) -> None:
    customer = await server.create_customer()
    for key in (MCP_API_KEY, customer["apiKey"]):
        async with mcp_session(server.url, key) as session:
            assert (await session.call_tool("connections_status", {})).is_error is False
    assert await agent.mcp_status("hat_" + "x" * 43) == 401


async def test_pages_are_locked_down(agent: OAuthAgent) -> None:
    client = await agent.register()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        opened = await browser.get(agent.authorize_url(client, Pkce.new()))
        cookie = opened.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        page = await browser.get(opened.headers["location"])
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "form-action 'self' http://127.0.0.1:47123" in csp
    assert "Claude (test)" in page.text and "127.0.0.1:47123" in page.text


async def test_no_key_or_token_in_urls_logs_pages_or_redis(
    agent: OAuthAgent, server: HermesServer, captured_logs: LogCapture, redis_client: redis.Redis
) -> None:
    customer = await server.create_customer()
    client = await agent.register()
    seen: list[str] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.extend([str(response.request.url), response.headers.get("location", ""), response.text])

    pkce = Pkce.new()
    async with httpx.AsyncClient(base_url=agent.base, event_hooks={"response": [record]}) as browser:
        answer = await agent.consent(browser, agent.authorize_url(client, pkce), customer["apiKey"])
    tokens = (await agent.exchange(client, query_of(answer.headers["location"])["code"], pkce.verifier)).json()
    async with mcp_session(server.url, tokens["access_token"]) as session:
        await session.call_tool("connections_status", {})
    everything = "\n".join(seen)
    assert customer["apiKey"] not in everything
    assert customer["apiKey"] not in captured_logs.text
    stored = redis_dump(redis_client)
    for secret in (customer["apiKey"], tokens["access_token"], tokens["refresh_token"], client.client_secret or "-"):
        assert secret.encode() not in stored
        assert secret not in captured_logs.text


class MetadataDocumentsOverride(Provider):
    """Serves Client ID Metadata Documents from memory: real https documents need a public host."""

    def __init__(self, documents: dict[str, Any]) -> None:
        super().__init__(scope=Scope.APP)
        self.documents = documents

    @provide
    def documents_port(self) -> ClientMetadataDocuments:
        return StaticClientMetadataDocuments(self.documents)


async def test_a_metadata_document_client_over_http(settings: Settings, start_hermes: Start) -> None:
    url = "https://claude.example/oauth/mcp-client.json"
    document = {
        "client_id": url,
        "client_name": "Claude",
        "redirect_uris": [LOOPBACK_REDIRECT],
        "token_endpoint_auth_method": "none",
    }
    server = start_public(start_hermes, settings, MetadataDocumentsOverride({url: document}))
    agent = OAuthAgent(server)
    customer = await server.create_customer()
    client = Registered(url, None, "none", LOOPBACK_REDIRECT)
    tokens = await agent.tokens(client, customer["apiKey"])
    async with mcp_session(server.url, tokens["access_token"]) as session:
        assert (await session.call_tool("connections_status", {})).is_error is False
    async with server.client(customer["apiKey"]) as api:
        listed = (await api.get("/api/oauth/clients")).json()["clients"]
        assert [(c["clientId"], c["clientName"]) for c in listed] == [(url, "Claude")]
        assert (await api.delete("/api/oauth/clients/" + quote(url, safe=""))).status_code == 200
    assert await agent.mcp_status(tokens["access_token"]) == 401


async def test_the_dance_in_embedded_mode(tmp_path: Path, start_hermes: Start) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/hermes.db"
    await upgrade_url(database)
    server = start_public(start_hermes, make_settings(HERMES_DATABASE_URL=database))
    agent = OAuthAgent(server)
    customer = await server.create_customer()
    client = await agent.register("none")
    tokens = await agent.tokens(client, customer["apiKey"])
    async with mcp_session(server.url, tokens["access_token"]) as session:
        assert (await session.call_tool("connections_status", {})).is_error is False
    refreshed = (await agent.refresh(client, tokens["refresh_token"])).json()
    assert (await agent.refresh(client, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert await agent.mcp_status(refreshed["access_token"]) == 401  # the replay revoked the grant
    again = await agent.tokens(client, customer["apiKey"])
    await admin(server, f"/admin/customers/{customer['id']}/deactivate")
    assert await agent.mcp_status(again["access_token"]) == 401
