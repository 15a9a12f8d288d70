"""GET /api/connections, served ahead of the framework: the same answer, byte for byte, as the routes beside it.

Its neighbours (/api/usage) still go through Litestar and the per-request container, so comparing the
two answers to the same refusal proves the shortcut speaks exactly as the rest of the API.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.integration.server import HermesServer
from tests.support import whatsapp_credentials

pytestmark = pytest.mark.asyncio


def _wire(reply: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    # The request id and the date differ per request by design; everything else must match.
    headers = {k: v for k, v in reply.headers.items() if k not in ("x-request-id", "date")}
    return reply.status_code, headers, reply.content


async def test_connections_answer_names_each_platform(hermes: HermesServer) -> None:
    created: dict[str, Any] = await hermes.create_customer()
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        before = await client.get("/api/connections")
        connected = await client.post(
            "/api/connect/whatsapp", json=whatsapp_credentials(str(secrets.randbelow(10**15)))
        )
        assert connected.status_code == 200, connected.text
        after = await client.get("/api/connections", headers={"x-api-key": "", "authorization": ""})
        bearer = await client.get(
            "/api/connections", headers={"x-api-key": "", "authorization": f"Bearer {created['apiKey']}"}
        )
    assert before.status_code == 200
    assert before.headers["content-type"] == "application/json"
    assert before.headers["x-request-id"]
    assert before.json() == {
        "customerId": created["id"],
        "connections": dict.fromkeys(
            ("email", "whatsapp", "linkedin", "telegram", "discord", "instagram", "twitter", "obsidian"), False
        ),
        "accounts": [],
    }
    assert after.status_code == 401  # an empty key is no key
    assert bearer.status_code == 200
    assert bearer.json()["connections"]["whatsapp"] is True
    assert sum(bearer.json()["connections"].values()) == 1
    assert [(a["platform"], a["account"], a["status"]) for a in bearer.json()["accounts"]] == [
        ("whatsapp", "default", "connected")
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "hms_not-a-key"},
        {"x-api-key": "nonsense"},
        {"authorization": "Bearer hms_" + "x" * 200},
        {"authorization": "Basic aGVybWVzOmhlcm1lcw=="},
    ],
)
async def test_a_refusal_reads_as_on_every_other_route(hermes: HermesServer, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=hermes.url, headers=headers) as client:
        fast = await client.get("/api/connections")
        routed = await client.get("/api/usage")
    assert fast.status_code == 401
    assert fast.headers["content-type"] == "application/problem+json"
    assert fast.headers["www-authenticate"] == 'Bearer realm="hermes"'
    assert _wire(fast) == _wire(routed)


async def test_over_the_rate_limit_the_answer_says_when_to_come_back(hermes: HermesServer) -> None:
    created = await hermes.create_customer(plan="free")
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        replies = [await client.get("/api/connections") for _ in range(200)]
        refused = next((r for r in replies if r.status_code == 429), None)
        assert refused is not None, "the free plan's requests per minute were never reached"
        routed = await client.get("/api/usage")
    assert routed.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["title"] == routed.json()["title"] == "Too many requests"
    assert set(refused.headers) - {"x-request-id", "date", "retry-after"} == set(routed.headers) - {
        "x-request-id",
        "date",
        "retry-after",
    }


async def test_other_methods_and_paths_are_the_framework_s(hermes: HermesServer) -> None:
    created = await hermes.create_customer()
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        posted = await client.post("/api/connections", json={})
        slash = await client.get("/api/connections/")
    assert posted.status_code == 405
    assert posted.headers["content-type"] == "application/problem+json"
    assert slash.status_code == 200
    assert slash.json()["customerId"] == created["id"]
