"""Seed flows 2 (connect WhatsApp) and 5 (check connections) through the real HTTP app,
with real MariaDB and Redis."""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import pytest

from hermes.adapters.redis.account_routes import route_key
from hermes.adapters.redis.credential_store import creds_key
from hermes.adapters.redis.customer_cache import cache_key
from hermes.domain.customer import digest_api_key
from hermes.domain.platform import Platform
from tests.integration.conftest import LogCapture, SqlCounter, mysql_dump, redis_dump
from tests.integration.server import HermesServer
from tests.support import whatsapp_credentials

N1, N2, N3, N4 = (str(secrets.randbelow(10**12) + 10**12) for _ in range(4))

PLATFORMS = ["email", "whatsapp", "linkedin", "telegram", "discord", "instagram", "twitter", "obsidian"]


async def test_flow_2_connect_whatsapp_miss_then_hit(
    hermes: HermesServer, aio_redis: Any, sql_counter: SqlCounter
) -> None:
    customer = await hermes.create_customer()
    key, cust = customer["apiKey"], customer["id"]
    digest = digest_api_key(key)
    assert await aio_redis.get(cache_key(digest)) is None

    sql_counter.reset()
    async with hermes.client(key) as client:
        reply = await client.post("/api/connect/whatsapp", json=whatsapp_credentials(N1))
    assert reply.status_code == 200
    assert reply.json() == {"connected": True, "platform": "whatsapp"}
    # Cache miss: the customer came from MariaDB, exactly one SELECT, then SETEX 60 s.
    assert [s for s in sql_counter.statements if "customers" in s] == sql_counter.statements
    assert len(sql_counter.statements) == 1
    assert 55 <= await aio_redis.ttl(cache_key(digest)) <= 60

    envelope = await aio_redis.get(creds_key(cust, Platform.WHATSAPP))
    assert envelope and b"EAAG-test-token" not in envelope
    assert (await aio_redis.get(route_key(N1))).decode() == cust

    # Flow 5: the cache is hit, no SQL at all, one answer for all eight platforms.
    sql_counter.reset()
    async with hermes.client(key) as client:
        reply = await client.get("/api/connections")
    assert reply.status_code == 200
    assert sql_counter.statements == []
    body = reply.json()
    assert body["customerId"] == cust
    assert list(body["connections"]) == PLATFORMS
    assert body["connections"] == {p: p == "whatsapp" for p in PLATFORMS}


async def test_bearer_header_works_like_x_api_key(hermes: HermesServer) -> None:
    customer = await hermes.create_customer()
    async with hermes.client() as client:
        reply = await client.get("/api/connections", headers={"Authorization": f"Bearer {customer['apiKey']}"})
    assert reply.status_code == 200 and reply.json()["customerId"] == customer["id"]


async def test_disconnect_removes_credentials_and_route(hermes: HermesServer, aio_redis: Any) -> None:
    customer = await hermes.create_customer()
    async with hermes.client(customer["apiKey"]) as client:
        await client.post("/api/connect/whatsapp", json=whatsapp_credentials(N2))
        reply = await client.delete("/api/connect/whatsapp")
        assert reply.status_code == 200
        assert reply.json() == {"connected": False, "platform": "whatsapp"}
        assert (await client.get("/api/connections")).json()["connections"]["whatsapp"] is False
    assert await aio_redis.get(route_key(N2)) is None
    assert await aio_redis.get(creds_key(customer["id"], Platform.WHATSAPP)) is None


async def test_a_number_already_routed_to_another_customer_is_409(hermes: HermesServer) -> None:
    alice, mallory = await hermes.create_customer("alice@example.com"), await hermes.create_customer("m@example.com")
    async with hermes.client(alice["apiKey"]) as client:
        assert (await client.post("/api/connect/whatsapp", json=whatsapp_credentials(N3))).status_code == 200
    async with hermes.client(mallory["apiKey"]) as client:
        reply = await client.post("/api/connect/whatsapp", json=whatsapp_credentials(N3, "EAAG-mallory"))
        assert reply.status_code == 409
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert (await client.get("/api/connections")).json()["connections"]["whatsapp"] is False


async def test_ciphertext_copied_to_another_customer_does_not_decrypt(hermes: HermesServer, aio_redis: Any) -> None:
    alice, bob = await hermes.create_customer("alice@example.com"), await hermes.create_customer("bob@example.com")
    async with hermes.client(alice["apiKey"]) as client:
        await client.post("/api/connect/telegram", json={"botToken": "123456789:" + "A" * 35})
    stolen = await aio_redis.get(creds_key(alice["id"], Platform.TELEGRAM))
    await aio_redis.set(creds_key(bob["id"], Platform.TELEGRAM), stolen)

    # Bob's key now holds Alice's ciphertext: the associated data (customer, platform) refuses it.
    async with hermes.client(bob["apiKey"]) as client:
        reply = await client.post("/api/tools/telegram_get_updates", json={})
    # A state of the account, not an outage: no Retry-After, the owner must reconnect.
    assert reply.status_code == 409
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert "retry-after" not in reply.headers
    assert reply.json()["detail"] == (
        "The stored Telegram credentials can no longer be read. Nothing was sent. "
        "Ask the account owner to connect Telegram again in Hermes."
    )
    assert "123456789" not in reply.text
    async with hermes.client(bob["apiKey"]) as client:
        connections = await client.get("/api/connections")
    assert connections.status_code == 200
    assert connections.json()["connections"]["telegram"] is True


@pytest.mark.parametrize("action", ["deactivate", "rotate-key"])
async def test_deactivated_or_rotated_key_is_refused_on_the_very_next_request(
    hermes: HermesServer, action: str
) -> None:
    customer = await hermes.create_customer()
    async with hermes.client(customer["apiKey"]) as client:
        assert (await client.get("/api/connections")).status_code == 200  # cached now
        async with hermes.admin() as admin:
            reply = await admin.post(f"/admin/customers/{customer['id']}/{action}")
            assert reply.status_code == 200
        refused = await client.get("/api/connections")
    assert refused.status_code == 401
    async with hermes.client("hms_" + "x" * 43) as stranger:
        unknown = await stranger.get("/api/connections")
    assert refused.json() == unknown.json()
    if action == "rotate-key":
        new_key = reply.json()["apiKey"]
        assert reply.json()["id"] == customer["id"] and new_key != customer["apiKey"]
        async with hermes.client(new_key) as client:
            assert (await client.get("/api/connections")).status_code == 200


async def test_missing_malformed_unknown_and_inactive_keys_get_one_identical_401(hermes: HermesServer) -> None:
    customer = await hermes.create_customer()
    async with hermes.admin() as admin:
        await admin.post(f"/admin/customers/{customer['id']}/deactivate")
    bodies = []
    async with hermes.client() as client:
        for headers in [{}, {"x-api-key": "nope"}, {"x-api-key": "hms_" + "z" * 43}, {"x-api-key": customer["apiKey"]}]:
            reply = await client.get("/api/connections", headers=headers)
            assert reply.status_code == 401
            assert reply.headers["content-type"].startswith("application/problem+json")
            bodies.append(reply.json())
    assert all(b == bodies[0] for b in bodies)


def _malformed_bodies(platform: str) -> list[Any]:
    """Twenty bodies that must each be refused with a 400 naming a field."""
    common: list[Any] = [
        {},
        {"unexpected": "x"},
        {"accessToken": None},
        {"botToken": ""},
        {"botToken": 5},
        {"accessToken": ["a"]},
        {"apiKey": {"nested": 1}},
        {"smtpPort": "nope"},
        {"phoneNumberId": "abc"},
        {"igUserId": "x1"},
    ]
    valid: dict[str, dict[str, Any]] = {
        "whatsapp": whatsapp_credentials(),
        "telegram": {"botToken": "123456789:" + "A" * 35},
        "discord": {"botToken": "MTA.abc.def"},
        "twitter": {"accessToken": "tok"},
        "linkedin": {"accessToken": "tok"},
        "instagram": {"accessToken": "tok", "igUserId": "1784"},
        "email": {
            "smtpHost": "smtp.example.com",
            "smtpPort": 587,
            "smtpSecurity": "starttls",
            "username": "me",
            "password": "pw",
            "fromAddress": "me@example.com",
        },
        "obsidian": {"apiUrl": "https://vault.example.com", "apiKey": "k"},
    }
    base = valid[platform]
    first = next(iter(base))
    variants: list[Any] = [
        {**base, first: None},
        {**base, first: ""},
        {**base, first: " "},
        {**base, first: 12.5},
        {**base, first: "x" * 5000},
        {**base, first: "bad\u0000byte"},
        {**base, "extra": True},
        {k: v for k, v in base.items() if k != first},
        {**base, first: {"$gt": ""}},
        {**base, first: [base[first]]},
    ]
    return common + variants


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_twenty_malformed_connect_bodies_each_get_400_naming_the_field_and_store_nothing(
    hermes: HermesServer, aio_redis: Any, platform: str
) -> None:
    customer = await hermes.create_customer()
    bodies = _malformed_bodies(platform)
    assert len(bodies) == 20
    async with hermes.client(customer["apiKey"]) as client:
        for body in bodies:
            reply = await client.post(f"/api/connect/{platform}", json=body)
            assert reply.status_code == 400, (body, reply.text)
            problem = reply.json()
            assert problem["errors"] and all(e["field"] for e in problem["errors"]), problem
            assert "Traceback" not in reply.text
        for raw in [b"not json", b"[1,2]", b'"str"', b"null"]:
            reply = await client.post(
                f"/api/connect/{platform}", content=raw, headers={"content-type": "application/json"}
            )
            assert reply.status_code == 400, (raw, reply.text)
        assert (await client.get("/api/connections")).json()["connections"][platform] is False
    assert await aio_redis.get(creds_key(customer["id"], Platform(platform))) is None


async def test_unknown_platform_is_404_and_oversized_body_is_413(hermes: HermesServer) -> None:
    customer = await hermes.create_customer()
    async with hermes.client(customer["apiKey"]) as client:
        assert (await client.post("/api/connect/myspace", json={})).status_code == 404
        big = {"botToken": "x" * (70 * 1024)}
        reply = await client.post("/api/connect/discord", json=big)
    assert reply.status_code == 413
    assert reply.headers["content-type"].startswith("application/problem+json")


async def test_rate_limit_is_shared_atomic_and_answers_429_with_retry_after(
    hermes: HermesServer, aio_redis: Any
) -> None:
    customer = await hermes.create_customer(plan="free")  # 60 requests per minute
    async with hermes.client(customer["apiKey"]) as client:
        replies = await asyncio.gather(*(client.get("/api/connections") for _ in range(75)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses.count(200) <= 60 and statuses.count(429) >= 15
    limited = next(r for r in replies if r.status_code == 429)
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["content-type"].startswith("application/problem+json")


async def test_secrets_never_reach_redis_the_database_or_the_logs(
    hermes: HermesServer, redis_client: Any, captured_logs: LogCapture, mariadb_url: str
) -> None:
    token = "EAAG-canary-" + base64.b32encode(b"credential!").decode()
    customer = await hermes.create_customer()
    api_key = customer["apiKey"]
    async with hermes.client(api_key) as client:
        await client.post("/api/connect/whatsapp", json=whatsapp_credentials(N4, token))
        await client.post("/api/connect/whatsapp", json={**whatsapp_credentials("x", token)})  # a 400 too
        await client.get("/api/connections")
        for path in ["/api/connections", "/api/usage"]:
            assert token not in (await client.get(path)).text
    assert f"customer {customer['id']} connected whatsapp" in captured_logs.text  # the capture works
    stored = redis_dump(redis_client) + mysql_dump(mariadb_url).encode()
    for secret in (token, api_key):
        assert secret.encode() not in stored
        assert secret not in captured_logs.text
    assert digest_api_key(api_key).encode() in stored  # the digest is what is stored (proves the dump saw the data)


async def test_admin_routes_need_the_admin_token(hermes: HermesServer) -> None:
    customer = await hermes.create_customer()
    async with hermes.client(customer["apiKey"]) as client:
        assert (
            await client.post("/admin/customers", json={"email": "x@example.com", "plan": "free"})
        ).status_code == 401
    async with hermes.admin() as admin:
        shown = await admin.get(f"/admin/customers/{customer['id']}")
        assert shown.status_code == 200
        assert "apiKey" not in shown.json() and customer["apiKey"] not in shown.text
        assert shown.json()["email"] == customer["email"]
        assert (await admin.get("/admin/customers/cust_nope")).status_code == 404
        bad = await admin.post("/admin/customers", json={"email": "nope", "plan": "gold"})
        assert bad.status_code == 400 and {e["field"] for e in bad.json()["errors"]} == {"email"}


async def test_usage_shows_plan_limits(hermes: HermesServer) -> None:
    customer = await hermes.create_customer(plan="pro")
    async with hermes.client(customer["apiKey"]) as client:
        usage = (await client.get("/api/usage")).json()
    assert usage["plan"] == "pro" and usage["toolCallsUsed"] == 0
    assert usage["monthlyToolCalls"] == usage["toolCallsRemaining"] > 0


async def test_probes_and_openapi(hermes: HermesServer) -> None:
    async with hermes.client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/connect/{platform}" in schema["paths"] and "/admin/customers" in schema["paths"]
