"""The REST twin of /mcp (`GET /api/tools`, `POST /api/tools/{tool}`) and the monthly tool-call quota."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from tests.integration.mcp_client import mcp_session
from tests.integration.server import HermesServer
from tests.integration.tools_e2e.world import (
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
from tests.support import ADMIN_TOKEN, effective_hints

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


async def test_rest_lists_the_same_catalogue_as_mcp(customer: Tenant) -> None:
    async with mcp_session(customer.url, customer.key) as client:
        over_mcp = (await client.list_tools()).tools
    async with customer.rest() as rest:
        reply = await rest.get("/api/tools")
    assert reply.status_code == 200
    over_rest = reply.json()["tools"]
    assert [t["name"] for t in over_rest] == [t.name for t in over_mcp]
    for listed, tool in zip(over_rest, over_mcp, strict=True):
        assert listed["description"] == tool.description
        assert listed["inputSchema"] == tool.input_schema
        assert tool.output_schema is None  # kept out of the model's context; REST shows it to developers
        assert listed["outputSchema"]["type"] == "object"
        assert listed["title"] and tool.title is None  # a label for people; MCP clients show the name
        hints = effective_hints(tool.annotations)
        assert listed.get("readOnly", False) == hints["readOnlyHint"]
        if not hints["readOnlyHint"]:  # the spec gives destructiveHint no meaning on a read-only tool
            assert listed.get("destructive", False) == hints["destructiveHint"]


# Read-only calls whose result depends only on the platform's state, so MCP and REST must agree exactly.
def _seed_note(fakes: Fakes, a: Account) -> dict[str, Any]:
    a.obsidian.write("Twin/Note.md", "---\ntags: [twin]\n---\nsame over both\n")
    return {"path": "Twin/Note.md"}


def _seed_channel(fakes: Fakes, a: Account) -> dict[str, Any]:
    fakes.discord.post_message(a.dc_channel, f"twin {unique()}")
    return {"channel_id": a.dc_channel, "limit": 3}


def _seed_media(fakes: Fakes, a: Account) -> dict[str, Any]:
    fakes.graph.add_media(a.ig_user, f"twin {unique()}")
    return {"limit": 2}


def _seed_mail(fakes: Fakes, a: Account) -> dict[str, Any]:
    uid = fakes.imap.deliver(a.mail_user, f"Subject: twin {unique()}\r\nFrom: x@vendor.test\r\n\r\nhello twin\r\n")
    return {"uid": uid}


def _seed_search(fakes: Fakes, a: Account) -> dict[str, Any]:
    needle = unique("twin")
    fakes.x.add_tweet(f"about {needle}", username="twin_fan")
    return {"query": needle}


TWIN_CASES: dict[str, Callable[[Fakes, Account], dict[str, Any]]] = {
    "connections_status": lambda f, a: {},
    "inbox_list": lambda f, a: {},
    "obsidian_read_note": _seed_note,
    "discord_read_messages": _seed_channel,
    "instagram_list_media": _seed_media,
    "email_read": _seed_mail,
    "twitter_search_recent": _seed_search,
}


@pytest.mark.parametrize("tool", list(TWIN_CASES))
async def test_rest_call_gives_the_same_structured_result_as_mcp(customer: Tenant, fakes: Fakes, tool: str) -> None:
    arguments = TWIN_CASES[tool](fakes, customer.account)
    async with mcp_session(customer.url, customer.key) as client:
        over_mcp = structured(await client.call_tool(tool, arguments))
    mcp_requests = [(r.method, r.path, r.query_string) for f in fakes.http_fakes for r in f.requests]
    fakes.reset()
    async with customer.rest() as rest:
        reply = await rest.post(f"/api/tools/{tool}", json=arguments)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == over_mcp
    # ... because the same platform requests were made.
    assert [(r.method, r.path, r.query_string) for f in fakes.http_fakes for r in f.requests] == mcp_requests


async def test_rest_call_sends_like_mcp(customer: Tenant, fakes: Fakes) -> None:
    a = customer.account
    async with customer.rest() as rest:
        reply = await rest.post("/api/tools/whatsapp_send_message", json={"to": a.wa_recipient, "message": "via REST"})
    assert reply.status_code == 200, reply.text
    sent = fakes.graph.sent[-1]
    assert reply.json() == {"success": True, "message_id": sent.message_id, "wa_id": sent.wa_id}
    assert (sent.token, sent.payload["text"]["body"]) == (a.wa_token, "via REST")


def _tg_only(server: HermesServer, fakes: Fakes, plan: str = "pro") -> Tenant:
    account = fakes.new_account("rest")
    created = create_customer(server, ADMIN_TOKEN, plan=plan, label="rest")
    connect(server, created["apiKey"], account.connect_bodies(fakes.smtp, fakes.imap), "telegram")
    return Tenant(server, created["apiKey"], account, created["id"])


def _flooded(fakes: Fakes, a: Account) -> tuple[str, dict[str, Any]]:
    # Longer than Hermes waits: reported with the wait (one 429 for the MCP call, one for the REST call).
    fakes.telegram.rate_limit_next(retry_after=120, n=2, method="sendMessage")
    return "telegram_send_message", {"chat_id": a.tg_chat, "text": "too fast"}


ERROR_CASES: dict[str, tuple[int, Callable[[Fakes, Account], tuple[str, dict[str, Any]]]]] = {
    "not connected": (409, lambda f, a: ("whatsapp_send_message", {"to": a.wa_recipient, "message": "hi"})),
    "invalid arguments": (400, lambda f, a: ("telegram_send_message", {"text": "no chat"})),
    "platform refusal": (502, lambda f, a: ("telegram_send_message", {"chat_id": 4242, "text": "nobody there"})),
    "platform rate limit": (502, _flooded),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
async def test_a_tool_error_over_rest_is_problem_details_with_the_mcp_text(
    customer_server: HermesServer, fakes: Fakes, case: str
) -> None:
    tenant = _tg_only(customer_server, fakes)
    status, build = ERROR_CASES[case]
    tool, arguments = build(fakes, tenant.account)
    async with mcp_session(tenant.url, tenant.key) as client:
        text = error_text(await client.call_tool(tool, arguments))
    async with tenant.rest() as rest:
        reply = await rest.post(f"/api/tools/{tool}", json=arguments)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    problem = reply.json()
    assert problem["status"] == status and problem["title"]
    assert problem["detail"] == text
    if case == "invalid arguments":
        assert [e["field"] for e in problem["errors"]] == ["chat_id"]
    if case == "platform rate limit":
        assert "120 s" in text
        assert reply.headers["retry-after"] == "120"


async def test_an_unknown_tool_is_a_404_over_rest_and_invalid_params_over_mcp(
    customer_server: HermesServer, fakes: Fakes
) -> None:
    tenant = _tg_only(customer_server, fakes)
    async with tenant.rest() as rest:
        reply = await rest.post("/api/tools/myspace_post", json={})
    assert reply.status_code == 404, reply.text
    assert reply.headers["content-type"].startswith(PROBLEM)
    assert "myspace_post" in reply.json()["detail"]
    async with mcp_session(tenant.url, tenant.key) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("myspace_post", {})
    assert unknown.value.code == INVALID_PARAMS


async def test_a_customer_over_its_monthly_quota_is_refused_with_the_time_to_wait(
    customer_server: HermesServer, fakes: Fakes, redis_client: redis.Redis
) -> None:
    tenant = _tg_only(customer_server, fakes, plan="free")
    month = datetime.now(UTC).strftime("%Y-%m")
    async with tenant.rest() as rest:
        usage = (await rest.get("/api/usage")).json()
    assert (usage["plan"], usage["month"], usage["toolCallsUsed"]) == ("free", month, 0)
    limit = usage["monthlyToolCalls"]
    redis_client.set(f"usage:{{{tenant.customer_id}}}:{month}", limit)
    before = audit_count(redis_client, tenant.audit_id)

    arguments = {"chat_id": tenant.account.tg_chat, "text": "one too many"}
    async with mcp_session(tenant.url, tenant.key) as client:
        text = error_text(await client.call_tool("telegram_send_message", arguments))
    async with tenant.rest() as rest:
        reply = await rest.post("/api/tools/telegram_send_message", json=arguments)
        usage = (await rest.get("/api/usage")).json()

    assert f"monthly quota of {limit} tool calls" in text
    retry = int(reply.headers["retry-after"])
    assert 0 < retry <= 31 * 86400
    # The model learns when to try again: the same wait as the REST answer's, made a moment earlier.
    told = re.search(r"Try again in (\d+) s\.", text)
    assert told is not None and 0 <= int(told.group(1)) - retry <= 1, text
    assert reply.status_code == 429 and reply.headers["content-type"].startswith(PROBLEM)
    # The same words on both transports; the waits may differ by the second between the two calls.
    wait = re.compile(r"Try again in \d+ s\.")
    assert wait.sub("Try again in N s.", reply.json()["detail"]) == wait.sub("Try again in N s.", text)
    assert fakes.telegram.requests_to("/sendMessage") == []  # refused before the platform
    assert (usage["toolCallsUsed"], usage["toolCallsRemaining"]) == (limit, 0)
    entries = await audit_entries(tenant, redis_client, before)
    assert [(e["outcome"], e["errorCode"]) for e in entries] == [("error", "rate_limited")] * 2


async def test_usage_counts_every_tool_call(customer_server: HermesServer, fakes: Fakes) -> None:
    tenant = _tg_only(customer_server, fakes, plan="free")
    async with tenant.rest() as rest:
        first = (await rest.get("/api/usage")).json()
        async with mcp_session(tenant.url, tenant.key, "legacy") as client:
            structured(await client.call_tool("connections_status", {}))
            structured(
                await client.call_tool("telegram_send_message", {"chat_id": tenant.account.tg_chat, "text": "1"})
            )
        assert (await rest.post("/api/tools/connections_status", json={})).status_code == 200
        then = (await rest.get("/api/usage")).json()
    assert first["customerId"] == then["customerId"] == tenant.customer_id
    assert (first["toolCallsUsed"], first["toolCallsRemaining"]) == (0, first["monthlyToolCalls"])
    assert (then["toolCallsUsed"], then["toolCallsRemaining"]) == (3, first["monthlyToolCalls"] - 3)
