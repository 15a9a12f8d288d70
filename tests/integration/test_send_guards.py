"""Sends an owner can trust, on a real Hermes (MariaDB, Redis) and the fake Graph API: the policy, idempotency
keys on two instances, and held sends approved, declined or expired (the browser path is in
test_approval_browser.py)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hermes.entrypoints.settings import Settings
from tests.fakes.graph import FakeGraph
from tests.integration.server import HermesServer
from tests.support import whatsapp_credentials

SEND = "/api/tools/whatsapp_send_message"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The console sign-ins here all come from 127.0.0.1, counted in Redis across the session's tests.
    return settings.model_copy(update={"console_sign_ins_per_minute": 1000})


def new_number() -> str:
    return str(100000000000000 + secrets.randbelow(10**14))


async def connected(server: HermesServer) -> tuple[dict[str, Any], httpx.AsyncClient]:
    """A new customer with WhatsApp connected, and an API client for it (not yet opened)."""
    customer = await server.create_customer()
    credentials = whatsapp_credentials(new_number(), f"EAAG-{secrets.token_hex(6)}")
    async with server.client(customer["apiKey"]) as api:
        reply = await api.post("/api/connect/whatsapp", json=credentials)
    assert reply.status_code == 200, reply.text
    return customer, server.client(customer["apiKey"])


async def audit_outcomes(api: httpx.AsyncClient) -> list[tuple[str, str | None, str]]:
    entries = (await api.get("/api/logs")).json()["entries"]
    return [(e["outcome"], e.get("target"), e["tool"]) for e in entries]


async def test_policy_round_trip_and_bad_input_names_the_field(hermes: HermesServer) -> None:
    customer = await hermes.create_customer()
    async with hermes.client(customer["apiKey"]) as api:
        default = await api.get("/api/policy")
        assert default.json() == {"approval": "never", "recipients": {}, "maxSendsPerRecipientPerHour": None}
        policy = {
            "approval": "new_recipients",
            "recipients": {"whatsapp": ["+3161*"]},
            "maxSendsPerRecipientPerHour": 5,
        }
        assert (await api.put("/api/policy", json=policy)).json() == policy
        bad: list[tuple[dict[str, Any], str]] = [
            ({"approval": "sometimes"}, "approval"),
            ({"recipients": {"fax": ["1"]}}, "fax"),
            ({"maxSendsPerRecipientPerHour": 0}, "maxSendsPerRecipientPerHour"),
            ({"maxSendsPerRecipientPerHour": "many"}, "maxSendsPerRecipientPerHour"),
            ({"recipients": {"whatsapp": [""]}}, "recipients"),
            ({"approvals": "never"}, "approvals"),
        ]
        for body, field in bad:
            reply = await api.put("/api/policy", json=body)
            assert reply.status_code == 400, (body, reply.text)
            assert reply.headers["content-type"].startswith("application/problem+json")
            assert field in reply.text, (field, reply.text)
        assert (await api.get("/api/policy")).json() == policy  # nothing stored half-way


async def test_the_platform_sees_exactly_what_the_policy_allows(hermes: HermesServer, shared_graph: FakeGraph) -> None:
    _, api = await connected(hermes)
    allowed, stranger = "+31612" + str(secrets.randbelow(10**6)).zfill(6), "+4915" + str(secrets.randbelow(10**8))
    async with api:
        policy = {"recipients": {"whatsapp": ["+3161*"]}, "maxSendsPerRecipientPerHour": 2}
        assert (await api.put("/api/policy", json=policy)).status_code == 200
        first = await api.post(SEND, json={"to": allowed, "message": "one"})
        second = await api.post(SEND, json={"to": allowed, "message": "two"})
        third = await api.post(SEND, json={"to": allowed, "message": "three"})
        blocked = await api.post(SEND, json={"to": stranger, "message": "click this link"})
        outcomes = await audit_outcomes(api)

    assert first.status_code == 200 and second.status_code == 200, second.text
    assert third.status_code == 429 and "at most 2 sends per hour" in third.json()["detail"]
    assert int(third.headers["retry-after"]) >= 1
    assert blocked.status_code == 403, blocked.text
    assert "+3161*" in blocked.json()["detail"] and "policy" in blocked.text
    assert [s.payload["text"]["body"] for s in shared_graph.sent_to(allowed)] == ["one", "two"]
    assert shared_graph.sent_to(stranger) == []
    assert ("blocked", stranger, "whatsapp_send_message") in outcomes


async def test_five_concurrent_calls_with_one_key_on_two_instances_send_once(
    settings: Any, start_hermes: Any, shared_graph: FakeGraph
) -> None:
    one, two = start_hermes(settings), start_hermes(settings)
    customer, _ = await connected(one)
    to = "+3162" + str(secrets.randbelow(10**7)).zfill(7)
    key = secrets.token_hex(16)
    clients = [one.client(customer["apiKey"]), two.client(customer["apiKey"])]
    body = {"to": to, "message": "your order shipped", "idempotency_key": key}
    replies = await asyncio.gather(*[c.post(SEND, json=body) for c, _ in zip(itertools.cycle(clients), range(5))])
    later = await clients[1].post(SEND, json=body)
    other = await clients[0].post(SEND, json={**body, "message": "something else"})
    for client in clients:
        await client.aclose()

    assert [r.status_code for r in replies] == [200] * 5, [r.text for r in replies]
    results = [r.json() for r in replies]
    assert len({r["message_id"] for r in results}) == 1
    assert sorted(bool(r.get("duplicate")) for r in results) == [False] + [True] * 4
    assert later.json()["duplicate"] is True and later.json()["message_id"] == results[0]["message_id"]
    assert other.status_code == 409 and "idempotency_key was already used" in other.json()["detail"]
    assert [s.payload["text"]["body"] for s in shared_graph.sent_to(to)] == ["your order shipped"]


async def test_a_key_whose_send_died_mid_flight_is_never_sent_again(
    hermes: HermesServer, redis_client: Any, shared_graph: FakeGraph
) -> None:
    customer, api = await connected(hermes)
    to = "+3163" + str(secrets.randbelow(10**7)).zfill(7)
    # What an instance killed after claiming the key leaves behind: a pending claim, an hour old.
    import hashlib

    from hermes.adapters.send_records import encode_record
    from hermes.domain.sends import IdempotencyRecord

    body = {"to": to, "message": "hello"}
    from hermes.application.send_guard import _fingerprint

    digest = hashlib.sha256(b"died-mid-send").hexdigest()
    stale = IdempotencyRecord(_fingerprint("whatsapp_send_message", body), datetime(2026, 1, 1, tzinfo=UTC))
    redis_client.set(f"idem:{{{customer['id']}}}:{digest}", encode_record(stale), ex=600)
    async with api:
        reply = await api.post(SEND, json={**body, "idempotency_key": "died-mid-send"})
    assert reply.status_code == 409
    assert "may be in progress or may have gone out" in reply.json()["detail"]
    assert "check before retrying" in reply.text.lower()
    assert shared_graph.sent_to(to) == []


async def test_held_sends_wait_for_the_owner_and_go_out_once_approved(
    hermes: HermesServer, shared_graph: FakeGraph
) -> None:
    from tests.integration.test_approval_browser import decide_over_http

    customer, api = await connected(hermes)
    to = "+3164" + str(secrets.randbelow(10**7)).zfill(7)
    async with api:
        assert (await api.put("/api/policy", json={"approval": "new_recipients"})).status_code == 200
        held = (await api.post(SEND, json={"to": to, "message": "first contact"})).json()
        declined = (await api.post(SEND, json={"to": to, "message": "second try"})).json()
        assert held["status"] == "pending_approval" and held["approval_url"].endswith(held["approval_id"])
        assert shared_graph.sent_to(to) == []

        assert await decide_over_http(hermes, customer["apiKey"], held["approval_id"], "approve") == 303
        assert await decide_over_http(hermes, customer["apiKey"], held["approval_id"], "approve") == 409
        assert await decide_over_http(hermes, customer["apiKey"], declined["approval_id"], "decline") == 303
        # The recipient is known now: the next send goes straight out.
        direct = await api.post(SEND, json={"to": to, "message": "follow-up"})
        outcomes = [o for o, target, _ in await audit_outcomes(api) if target == to]

    assert direct.status_code == 200 and "message_id" in direct.json()
    assert [s.payload["text"]["body"] for s in shared_graph.sent_to(to)] == ["first contact", "follow-up"]
    assert outcomes.count("pending_approval") == 2
    assert {"approved", "declined"} <= set(outcomes) and outcomes.count("success") == 2


async def test_a_held_send_expires_and_the_audit_log_says_so(
    settings: Any, start_hermes: Any, shared_graph: FakeGraph
) -> None:
    from dataclasses import replace

    import redis as sync_redis

    from hermes.adapters.send_records import decode_pending, encode_pending
    from tests.integration.test_approval_browser import decide_over_http

    server = start_hermes(settings.model_copy(update={"approval_ttl_hours": 1, "approval_sweep_seconds": 0.2}))
    customer, api = await connected(server)
    to = "+3165" + str(secrets.randbelow(10**7)).zfill(7)
    async with api:
        await api.put("/api/policy", json={"approval": "always"})
        held = (await api.post(SEND, json={"to": to, "message": "too late"})).json()
        expires = datetime.fromisoformat(held["expires_at"])
        assert 3500 < (expires - datetime.now(UTC)).total_seconds() <= 3600
        # Time passes: the held send's expiry is moved into the past where it is stored.
        client = sync_redis.Redis.from_url(settings.redis_url)
        key = f"approval:{{{customer['id']}}}:{held['approval_id']}"
        stored = decode_pending(customer["id"], held["approval_id"], "pending", client.hget(key, "body"))
        client.hset(key, "body", encode_pending(replace(stored, expires_at=datetime(2026, 1, 1, tzinfo=UTC))))
        client.close()
        # The sweep marks it, with nobody opening the console.
        for _ in range(50):
            outcomes = [o for o, target, _ in await audit_outcomes(api) if target == to]
            if "expired" in outcomes:
                break
            await asyncio.sleep(0.1)
    assert outcomes.count("expired") == 1
    assert await decide_over_http(server, customer["apiKey"], held["approval_id"], "approve") == 409
    async with server.client(customer["apiKey"]) as api:
        outcomes = [o for o, target, _ in await audit_outcomes(api) if target == to]
    assert outcomes.count("expired") == 1 and "approved" not in outcomes
    assert shared_graph.sent_to(to) == []


@pytest.mark.parametrize("decision", ["approve", "decline"])
async def test_a_client_with_form_elicitation_is_asked_inline(
    hermes: HermesServer, shared_graph: FakeGraph, decision: str
) -> None:
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import ElicitResult

    customer, api = await connected(hermes)
    to = "+3168" + str(secrets.randbelow(10**7)).zfill(7)
    async with api:
        await api.put("/api/policy", json={"approval": "always"})
    asked: list[str] = []

    async def owner(_: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action="accept", content={"decision": decision})

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {customer['apiKey']}"}, timeout=60)
    transport = streamable_http_client(f"{hermes.url}/mcp", http_client=http)
    async with http, Client(transport, mode="auto", elicitation_callback=owner) as client:
        result = await client.call_tool("whatsapp_send_message", {"to": to, "message": "see you at 5"})
    async with hermes.client(customer["apiKey"]) as api:
        outcomes = [o for o, target, _ in await audit_outcomes(api) if target == to]

    assert len(asked) == 1 and to in asked[0] and "see you at 5" in asked[0]
    assert not result.is_error
    if decision == "approve":
        assert "message_id" in result.structured_content
        assert [s.payload["text"]["body"] for s in shared_graph.sent_to(to)] == ["see you at 5"]
        assert {"pending_approval", "approved", "success"} <= set(outcomes)
    else:
        assert result.structured_content["status"] == "declined"
        assert shared_graph.sent_to(to) == []
        assert "declined" in outcomes


async def test_an_older_client_gets_the_approval_url(hermes: HermesServer, shared_graph: FakeGraph) -> None:
    from tests.integration.mcp_client import mcp_session

    customer, api = await connected(hermes)
    to = "+3169" + str(secrets.randbelow(10**7)).zfill(7)
    async with api:
        await api.put("/api/policy", json={"approval": "always"})
    async with mcp_session(hermes.url, customer["apiKey"], mode="legacy") as client:
        result = await client.call_tool("whatsapp_send_message", {"to": to, "message": "hi"})
    assert not result.is_error
    assert result.structured_content["status"] == "pending_approval"
    assert result.structured_content["approval_url"].endswith(
        "/console/approvals/" + result.structured_content["approval_id"]
    )
    assert shared_graph.sent_to(to) == []


async def test_approving_on_two_instances_at_once_sends_once(
    settings: Any, start_hermes: Any, shared_graph: FakeGraph
) -> None:
    from tests.integration.test_approval_browser import decide_over_http

    one, two = start_hermes(settings), start_hermes(settings)
    customer, api = await connected(one)
    to = "+3160" + str(secrets.randbelow(10**7)).zfill(7)
    async with api:
        await api.put("/api/policy", json={"approval": "always"})
        held = (await api.post(SEND, json={"to": to, "message": "only once"})).json()
    statuses = await asyncio.gather(
        *[decide_over_http(server, customer["apiKey"], held["approval_id"], "approve") for server in (one, two) * 2]
    )
    assert sorted(statuses) == [303, 409, 409, 409]
    assert [s.payload["text"]["body"] for s in shared_graph.sent_to(to)] == ["only once"]
