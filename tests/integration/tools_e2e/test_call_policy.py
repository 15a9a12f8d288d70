"""How tool calls behave when platforms push back, and between tenants, through /mcp.

Rate limits that name their wait are waited out and retried; a rejected credential is
tried once and reported as "reconnect"; concurrent customers each reach the platform
with their own credentials; a platform that is not connected is neither listed nor
callable, and the error says how to connect it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from hermes.entrypoints.settings import Settings
from tests.fakes.graph import graph_error_body
from tests.integration.mcp_client import MODES, mcp_session
from tests.integration.server import HermesServer
from tests.integration.tools_e2e.world import (
    CONVERSATION_TOOLS,
    TOOLS,
    Account,
    Fakes,
    Tenant,
    audit_count,
    audit_entries,
    connect,
    create_customer,
    error_text,
    structured,
    unique,
)
from tests.support import ADMIN_TOKEN, MCP_API_KEY, effective_hints

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Scenario:
    """One tool call against one fake: what to inject, what to call, which requests count as attempts."""

    tool: str
    arguments: Callable[[Account], dict[str, Any]]
    fake: Callable[[Fakes, Account], Any]
    path: Callable[[Account], str]


SCENARIOS: dict[str, Scenario] = {
    "whatsapp": Scenario(
        "whatsapp_send_message",
        lambda a: {"to": a.wa_recipient, "message": "hello"},
        lambda f, a: f.graph,
        lambda a: f"/{a.wa_phone_id}/messages",
    ),
    "telegram": Scenario(
        "telegram_send_message",
        lambda a: {"chat_id": a.tg_chat, "text": "hello"},
        lambda f, a: f.telegram,
        lambda a: "/sendMessage",
    ),
    "discord": Scenario(
        "discord_send_message",
        lambda a: {"channel_id": a.dc_channel, "content": "hello"},
        lambda f, a: f.discord,
        lambda a: f"/channels/{a.dc_channel}/messages",
    ),
    "twitter": Scenario(
        "twitter_post_tweet",
        lambda a: {"text": f"hello {unique()}"},
        lambda f, a: f.x,
        lambda a: "/2/tweets",
    ),
    "linkedin": Scenario(
        "linkedin_create_post",
        lambda a: {"text": f"hello {unique()}"},
        lambda f, a: f.linkedin,
        lambda a: "/rest/posts",
    ),
    "instagram": Scenario(
        "instagram_list_media",
        lambda a: {"limit": 3},
        lambda f, a: f.graph,
        lambda a: f"/{a.ig_user}/media",
    ),
    "obsidian": Scenario(
        "obsidian_list_notes",
        lambda a: {},
        lambda f, a: a.obsidian,
        lambda a: "/vault/",
    ),
}


def _inject_429(platform: str, fakes: Fakes, account: Account, path: str) -> float:
    """A 429 in the platform's own shape that asks for a short wait; returns the wait."""
    if platform == "whatsapp":
        body = graph_error_body(
            "(#130429) Rate limit hit", 130429, details="Cloud API message throughput has been reached."
        )
        fakes.graph.fail_next(status=429, body=body, headers={"Retry-After": "0.3"}, path=path)
        return 0.3
    if platform == "telegram":
        fakes.telegram.rate_limit_next(retry_after=1, method="sendMessage")  # the Bot API counts whole seconds
        return 1.0
    if platform == "discord":
        fakes.discord.rate_limit_next(retry_after=0.3, path=path)  # body retry_after, X-RateLimit-Reset-After
        return 0.3
    assert platform == "linkedin"
    body = {
        "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        "status": 429,
    }
    fakes.linkedin.fail_next(status=429, body=body, headers={"Retry-After": "0.3"}, path=path)
    return 0.3


@pytest.mark.parametrize("platform", ["whatsapp", "telegram", "discord", "linkedin"])
async def test_a_429_that_names_its_wait_is_retried_after_it(
    customer: Tenant, fakes: Fakes, redis_client: redis.Redis, platform: str
) -> None:
    scenario, account = SCENARIOS[platform], customer.account
    fake, path = scenario.fake(fakes, account), scenario.path(account)
    wait = _inject_429(platform, fakes, account, path)
    before = audit_count(redis_client, customer.audit_id)

    async with mcp_session(customer.url, customer.key) as client:
        started = time.monotonic()
        result = await client.call_tool(scenario.tool, scenario.arguments(account))
        elapsed = time.monotonic() - started

    structured(result)
    assert elapsed >= wait
    attempts = fake.requests_to(path)
    assert len(attempts) == 2
    assert attempts[1].received_at - attempts[0].received_at >= wait
    assert fake.pending_injections == 0
    [entry] = await audit_entries(customer, redis_client, before)
    assert (entry["tool"], entry["outcome"]) == (scenario.tool, "success")


@pytest.mark.parametrize("generation", MODES)
@pytest.mark.parametrize("platform", [*SCENARIOS, "email"])
async def test_a_rejected_credential_is_tried_once_and_reported_as_reconnect(
    customer: Tenant, fakes: Fakes, redis_client: redis.Redis, platform: str, generation: str
) -> None:
    account = customer.account
    before = audit_count(redis_client, customer.audit_id)
    if platform == "email":
        # The mail server now refuses the stored password (535): the SMTP flavour of a 401.
        fakes.smtp.users[account.mail_user] = "changed-elsewhere"
        try:
            async with mcp_session(customer.url, customer.key, generation) as client:
                result = await client.call_tool(
                    "email_send", {"to": "bob@example.test", "subject": "hi", "body": "hello"}
                )
        finally:
            fakes.smtp.users[account.mail_user] = account.mail_password
        attempts: list[Any] = [a for a in fakes.smtp.auth_attempts if a.login == account.mail_user]
        assert [a.success for a in attempts] == [False]
        tool = "email_send"
    else:
        scenario = SCENARIOS[platform]
        fake, path = scenario.fake(fakes, account), scenario.path(account)
        if platform == "telegram":
            fake.unauthorized_next(method="sendMessage")
        else:
            fake.unauthorized_next(path=path)
        async with mcp_session(customer.url, customer.key, generation) as client:
            result = await client.call_tool(scenario.tool, scenario.arguments(account))
        attempts = fake.requests_to(path)
        assert len(attempts) == 1
        tool = scenario.tool

    text = error_text(result)
    # Addressed to the model: who acts next, and no REST path or HTTP verb it could not use anyway.
    assert "Ask the account owner to reconnect" in text and "/api/" not in text and "POST" not in text
    for secret in account.secrets:
        assert secret not in text
    [entry] = await audit_entries(customer, redis_client, before)
    assert (entry["tool"], entry["platform"], entry["outcome"]) == (tool, platform, "error")
    assert entry["errorCode"]


async def test_two_customers_at_once_each_reach_the_platform_with_their_own_credentials(
    customer_server: HermesServer, fakes: Fakes, redis_client: redis.Redis
) -> None:
    tenants: list[Tenant] = []
    for label in ("ann", "ben"):
        account = fakes.new_account(label)
        created = create_customer(customer_server, ADMIN_TOKEN, plan="pro", label=label)
        bodies = account.connect_bodies(fakes.smtp, fakes.imap)
        connect(customer_server, created["apiKey"], bodies, "whatsapp", "telegram", "discord")
        tenants.append(Tenant(customer_server, created["apiKey"], account, created["id"]))
    before = {t.audit_id: audit_count(redis_client, t.audit_id) for t in tenants}
    per_tool = 20

    async def burst(tenant: Tenant, generation: str) -> list[tuple[str, str, dict[str, Any]]]:
        a = tenant.account
        calls = []
        for i in range(per_tool):
            text = f"{a.label} #{i}"
            calls += [
                ("whatsapp_send_message", text, {"to": a.wa_recipient, "message": text}),
                ("telegram_send_message", text, {"chat_id": a.tg_chat, "text": text}),
                ("discord_send_message", text, {"channel_id": a.dc_channel, "content": text}),
            ]
        async with mcp_session(tenant.url, tenant.key, generation) as client:
            results = await asyncio.gather(*(client.call_tool(tool, args) for tool, _, args in calls))
        return [(tool, text, structured(r)) for (tool, text, _), r in zip(calls, results, strict=True)]

    # Both customers interleaved, one on each protocol generation, every call in flight at once.
    outcomes = await asyncio.gather(burst(tenants[0], "auto"), burst(tenants[1], "legacy"))

    sent_by_id = {s.message_id: s for s in fakes.graph.sent}
    for tenant, results in zip(tenants, outcomes, strict=True):
        a = tenant.account
        for tool, text, result in results:
            if tool == "whatsapp_send_message":
                sent = sent_by_id[result["message_id"]]
                assert (sent.token, sent.phone_number_id, sent.payload["text"]["body"]) == (
                    a.wa_token,
                    a.wa_phone_id,
                    text,
                )
            elif tool == "telegram_send_message":
                assert result["chat_id"] == a.tg_chat
            else:
                assert result["channel_id"] == a.dc_channel
        # The platforms saw exactly this customer's messages on this customer's accounts.
        wa_sent = [s for s in fakes.graph.sent if s.phone_number_id == a.wa_phone_id]
        assert sorted(s.payload["text"]["body"] for s in wa_sent) == sorted(f"{a.label} #{i}" for i in range(per_tool))
        assert {s.token for s in wa_sent} == {a.wa_token}
        tg_sent = fakes.telegram.sent_messages(a.tg_token)
        assert sorted(m["text"] for m in tg_sent) == sorted(f"{a.label} #{i}" for i in range(per_tool))
        assert {m["chat"]["id"] for m in tg_sent} == {a.tg_chat}
        dc_msgs = fakes.discord.messages(a.dc_channel)
        assert sorted(m["content"] for m in dc_msgs) == sorted(f"{a.label} #{i}" for i in range(per_tool))
        bot_id = fakes.discord.bots[a.dc_token].id
        assert {m["author"]["id"] for m in dc_msgs} == {bot_id}
        assert audit_count(redis_client, tenant.audit_id) - before[tenant.audit_id] == 3 * per_tool
    for request in fakes.discord.requests_to("/channels/"):
        channel = request.path.split("/")[4]
        owner = next(t.account for t in tenants if t.account.dc_channel == channel)
        assert request.header("authorization") == f"Bot {owner.dc_token}"


def _builtin(names: set[str]) -> set[str]:
    return {n for n in names if (n in TOOLS and not TOOLS[n]) or n in CONVERSATION_TOOLS}


@pytest.mark.parametrize("generation", MODES)
async def test_a_customer_sees_and_calls_only_what_it_connected(
    customer: Tenant,
    customer_server: HermesServer,
    fakes: Fakes,
    redis_client: redis.Redis,
    generation: str,
) -> None:
    async with mcp_session(customer.url, customer.key, generation) as client:
        everything = {t.name for t in (await client.list_tools()).tools}
    assert set(TOOLS) - {"inbox_list"} <= everything
    builtin = _builtin(everything)
    assert "connections_status" in builtin

    account = fakes.new_account("tg-only")
    created = create_customer(customer_server, ADMIN_TOKEN, plan="pro", label="tgonly")
    connect(customer_server, created["apiKey"], account.connect_bodies(fakes.smtp, fakes.imap), "telegram")
    tenant = Tenant(customer_server, created["apiKey"], account, created["id"])
    before = audit_count(redis_client, tenant.audit_id)

    async with mcp_session(tenant.url, tenant.key, generation) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("whatsapp_send_message", {"to": account.wa_recipient, "message": "hi"})
        status = structured(await client.call_tool("connections_status", {}))

    assert listed == {"telegram_send_message", "telegram_get_updates"} | builtin
    text = error_text(result)
    assert text == "WhatsApp is not connected for this account. Ask the account owner to connect WhatsApp in Hermes."
    assert fakes.graph.requests == []
    assert status["connections"] == {p: p == "telegram" for p in status["connections"]}
    entries = await audit_entries(tenant, redis_client, before)
    assert [(e["tool"], e["outcome"], e.get("errorCode"), e.get("target")) for e in entries] == [
        ("whatsapp_send_message", "error", "not_connected", account.wa_recipient),
        ("connections_status", "success", None, None),
    ]
    async with tenant.rest() as rest:
        catalogue = (await rest.get("/api/tools")).json()["tools"]
    assert {t["name"] for t in catalogue} == listed


@pytest.mark.parametrize("generation", MODES)
async def test_single_user_sees_and_calls_only_what_the_environment_configures(
    e2e_settings: Settings,
    start_hermes: Callable[..., HermesServer],
    fakes: Fakes,
    generation: str,
) -> None:
    account = fakes.new_account("envtg")
    server = start_hermes(e2e_settings, {"TELEGRAM_DEFAULT_BOT_TOKEN": account.tg_token})
    async with mcp_session(server.url, MCP_API_KEY, generation) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        missing = await client.call_tool("whatsapp_send_message", {"to": account.wa_recipient, "message": "hi"})
        sent = await client.call_tool("telegram_send_message", {"chat_id": account.tg_chat, "text": "from env"})
    assert listed == {"telegram_send_message", "telegram_get_updates"} | _builtin(listed)
    text = error_text(missing)
    assert text.startswith("WhatsApp is not configured. Ask the account owner to set ")
    assert "WHATSAPP_DEFAULT_ACCESS_TOKEN" in text and "WHATSAPP_DEFAULT_PHONE_NUMBER_ID" in text
    assert fakes.graph.requests == []
    assert structured(sent)["chat_id"] == account.tg_chat
    assert fakes.telegram.sent_messages(account.tg_token)[-1]["text"] == "from env"


async def test_the_catalogue_tells_a_model_what_each_tool_does(customer: Tenant) -> None:
    async with mcp_session(customer.url, customer.key) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    read_only = {
        "discord_read_messages",
        "twitter_search_recent",
        "instagram_list_media",
        "email_search",
        "email_read",
        "obsidian_read_note",
        "obsidian_search",
        "obsidian_list_notes",
        "inbox_list",
        "inbox_wait",
        "connections_status",
        "conversations_list",
    }
    for name, tool in tools.items():
        assert tool.description, name
        assert tool.input_schema["type"] == "object", name
        for prop, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{name}.{prop} has no description"
        # Results describe themselves; output schemas would triple the listing in every model's context.
        assert tool.output_schema is None, name
        assert effective_hints(tool.annotations)["readOnlyHint"] is (name in read_only), name
    assert effective_hints(tools["twitter_delete_tweet"].annotations)["destructiveHint"] is True
    # An offset confirms updates, which Telegram then deletes: not read-only, and not merely additive.
    assert effective_hints(tools["telegram_get_updates"].annotations)["destructiveHint"] is True
