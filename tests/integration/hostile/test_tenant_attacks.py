"""Attacks of one tenant on another, and of anyone on everyone, run against a real server (uvicorn,
real Redis and MariaDB, the fake Graph and Telegram APIs); each asserts what a user would notice.

- claiming another business's WhatsApp number, or the single-user deployment's own number;
- hiding an action in the audit log behind a flood of failing calls;
- `/mcp` and webhook bodies over the cap, declared or streamed;
- a cursor with a trailing newline;
- credentials that can no longer be decrypted;
- `hermes serve --workers 2` in embedded mode.

The cache write-back race after a deactivation needs a controlled interleaving, so it is proven in
tests/integration/test_port_contracts.py (real Redis, two instances) rather than here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from hermes.adapters.redis.account_routes import route_key
from hermes.adapters.redis.credential_store import creds_key
from hermes.domain.platform import Platform
from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.fakes.graph import FakeGraph
from tests.fakes.telegram import FakeTelegram
from tests.integration.mcp_client import mcp_session
from tests.integration.redis_process import RedisProcess
from tests.integration.server import HermesServer
from tests.integration.test_embedded_and_cli import clean_env, run
from tests.support import MCP_API_KEY, free_port, whatsapp_credentials

TODAY = time.strftime("%Y-%m-%d", time.gmtime())


def a_number() -> str:
    return str(secrets.randbelow(9 * 10**14) + 10**14)


def field_errors(reply: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in reply.json().get("errors", [])}


async def webhook(server: HermesServer, phone_number_id: str, text: str) -> None:
    body = wa.encode(wa.batch(wa.change(phone_number_id, messages=[wa.text_message(wa.wamid(), text)])))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as meta:
        reply = await meta.post("/webhook/whatsapp", content=body, headers={"X-Hub-Signature-256": wa.sign(body)})
    assert reply.status_code == 200, reply.text


async def inbox_texts(server: HermesServer, api_key: str) -> list[str]:
    async with server.client(api_key) as client:
        reply = await client.get("/api/inbox", params={"limit": 200})
    assert reply.status_code == 200, reply.text
    return [str(e.get("message", {}).get("text")) for e in reply.json()["entries"]]


async def eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# --- claiming someone else's WhatsApp number ----------------------------------------------------


async def test_a_tenant_cannot_claim_another_businesss_whatsapp_number(hermes: HermesServer, aio_redis: Any) -> None:
    victim, attacker = await hermes.create_customer("victim@example.com"), await hermes.create_customer()
    victim_number, attacker_number = a_number(), a_number()
    async with hermes.client(victim["apiKey"]) as client:
        connected = await client.post("/api/connect/whatsapp", json=whatsapp_credentials(victim_number, "EAAG-v"))
        assert connected.status_code == 200, connected.text
    own = whatsapp_credentials(attacker_number, "EAAG-attacker-" + secrets.token_hex(4))  # a token of its own

    async with hermes.client(attacker["apiKey"]) as client:
        # Its real token, the victim's number: Graph says the token cannot see it, with or without ?verify.
        stolen = {**own, "phoneNumberId": victim_number}
        for params in ({}, {"verify": "false"}, {"verify": "true"}):
            reply = await client.post("/api/connect/whatsapp", params=params, json=stolen)
            assert reply.status_code == 400, reply.text
            assert reply.headers["content-type"].startswith("application/problem+json")
            assert set(field_errors(reply)) == {"phoneNumberId"}
        # A made-up token: Graph refuses the token itself (190).
        reply = await client.post("/api/connect/whatsapp", json={**stolen, "accessToken": "EAAG-made-up"})
        assert reply.status_code == 400 and set(field_errors(reply)) == {"accessToken"}
        assert "EAAG-made-up" not in reply.text
        assert (await client.get("/api/connections")).json()["connections"]["whatsapp"] is False

    # Nothing changed hands: the victim's messages keep reaching the victim only.
    assert (await aio_redis.get(route_key(victim_number))).decode() == victim["id"]
    secret_code = "your code is " + secrets.token_hex(3)
    await webhook(hermes, victim_number, secret_code)

    async def victim_has_it() -> bool:
        return secret_code in await inbox_texts(hermes, victim["apiKey"])

    await eventually(victim_has_it)
    assert secret_code not in await inbox_texts(hermes, attacker["apiKey"])


async def test_the_single_user_number_stays_with_the_single_user(
    settings: Settings, start_hermes: Any, shared_graph: FakeGraph
) -> None:
    single_number, single_token = a_number(), "EAAG-single-" + secrets.token_hex(4)
    shared_graph.add_phone_number(single_number, single_token)
    env = {
        "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": single_number,
        "WHATSAPP_DEFAULT_ACCESS_TOKEN": single_token,
        "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": "1",
    }
    # A Redis of its own: on the shared one, any Hermes running on this machine may route the event.
    with RedisProcess() as own_redis:
        server: HermesServer = start_hermes(settings.model_copy(update={"redis_url": own_redis.url}), env)
        routes = Redis.from_url(own_redis.url)
        tenant = await server.create_customer()
        # Even a token that can read the number (say, an employee's) does not make it a tenant's.
        async with server.client(tenant["apiKey"]) as client:
            body = whatsapp_credentials(single_number, "EAAG-employee")
            reply = await client.post("/api/connect/whatsapp", json=body)
        assert reply.status_code == 409, reply.text
        assert reply.json()["detail"].startswith(
            f"WhatsApp phone number id {single_number} is reserved by this deployment"
        )
        assert await routes.get(route_key(single_number)) is None

        # A route to a tenant left from before the number was reserved does not win either.
        await routes.set(route_key(single_number), tenant["id"])
        code = "single-user code " + secrets.token_hex(3)
        await webhook(server, single_number, code)

        async def single_user_has_it() -> bool:
            async with mcp_session(server.url, MCP_API_KEY) as session:
                listed = await session.call_tool("inbox_list", {"limit": 50})
            return code in json.dumps(listed.structured_content)

        await eventually(single_user_has_it)
        assert code not in await inbox_texts(server, tenant["apiKey"])
        await routes.aclose()
        server.stop()


# --- hiding an action in the audit log ----------------------------------------------------------


async def test_a_send_after_a_thousand_failing_calls_is_on_the_audit_pages(
    settings: Settings, start_hermes: Any, redis_client: Any
) -> None:
    with FakeTelegram() as telegram:
        server: HermesServer = start_hermes(settings.model_copy(update={"telegram_api_base": telegram.base_url}))
        customer = await server.create_customer(plan="pro")
        bot = telegram.add_bot()
        telegram.add_chat(bot, 4242)
        started = time.monotonic()
        async with server.client(customer["apiKey"]) as client:
            assert (await client.post("/api/connect/telegram", json={"botToken": bot})).status_code == 200

            async def bad_call(i: int) -> int:
                reply = await client.post("/api/tools/telegram_send_message", json={"chat_id": 4242, "bogus": i})
                return reply.status_code

            victim = await server.create_customer()
            victim_latencies: list[float] = []

            async def victim_keeps_working() -> None:
                async with server.client(victim["apiKey"]) as other:
                    while True:
                        asked = time.monotonic()
                        assert (await other.get("/api/connections")).status_code == 200
                        victim_latencies.append(time.monotonic() - asked)
                        await asyncio.sleep(0.05)

            watcher = asyncio.create_task(victim_keeps_working())
            for start in range(0, 1000, 50):
                assert set(await asyncio.gather(*(bad_call(i) for i in range(start, start + 50)))) == {400}
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher  # re-raises a refusal the victim met during the flood
            assert victim_latencies and max(victim_latencies) < 2.0  # a liveness bound, not a benchmark
            sent = await client.post("/api/tools/telegram_send_message", json={"chat_id": 4242, "text": "real"})
            assert sent.status_code == 200, sent.text
            flood_seconds = time.monotonic() - started

            pages: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                params = {"date": TODAY} | ({"cursor": cursor} if cursor else {})
                page = (await client.get("/api/logs", params=params)).json()
                pages.append(page)
                cursor = page["nextCursor"]
                if cursor is None:
                    break
            usage = (await client.get("/api/usage")).json()

        entries = [e for p in pages for e in p["entries"]]
        assert [len(p["entries"]) for p in pages] == [100] * 10 + [1]  # default page size 100
        assert len(entries) == 1001
        assert [e["outcome"] for e in entries[:1000]] == ["error"] * 1000
        assert {e["errorCode"] for e in entries[:1000]} == {"invalid_arguments"}
        assert (entries[-1]["tool"], entries[-1]["outcome"], entries[-1]["target"]) == (
            "telegram_send_message",
            "success",
            "4242",
        )
        assert usage["toolCallsUsed"] == 1001  # the failing calls count like any other

        # Nothing but entries under logs:{cust}:, as a reader scanning the day's keys expects.
        keys = list(redis_client.scan_iter(match=f"logs:{{{customer['id']}}}:{TODAY}:*", count=2000))
        assert len(keys) == 1001
        assert all(json.loads(v)["tool"] == "telegram_send_message" for v in redis_client.mget(keys))
        print(
            f"\n1,000 failing calls + 1 send: {flood_seconds:.1f} s (another tenant's slowest request meanwhile: "
            f"{max(victim_latencies) * 1000:.0f} ms); the send is entry 1001, on page 11"
        )


async def test_failing_tool_calls_hit_the_per_minute_limit(hermes: HermesServer) -> None:
    customer = await hermes.create_customer(plan="free")  # 60 requests a minute
    if time.time() % 60 > 45:  # all 70 calls in one fixed window
        await asyncio.sleep(61 - time.time() % 60)
    statuses: list[int] = []
    async with hermes.client(customer["apiKey"]) as client:
        for i in range(70):
            reply = await client.post("/api/tools/whatsapp_send_message", json={"bogus": i})
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                assert 1 <= int(reply.headers["retry-after"]) <= 60
                assert reply.headers["content-type"].startswith("application/problem+json")
    assert statuses.count(429) == 10
    assert set(statuses) <= {400, 409, 429}
    # Over MCP the same minute is spent: the call is refused before it reaches a tool.
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whatsapp_send_message"}}
    headers = {"x-api-key": customer["apiKey"], "Accept": "application/json", "MCP-Protocol-Version": "2025-11-25"}
    async with httpx.AsyncClient(base_url=hermes.url, headers=headers, timeout=30) as client:
        reply = await client.post("/mcp", json=call)
    assert reply.status_code == 429 and "retry-after" in reply.headers


# --- bodies over the cap ------------------------------------------------------------------------


def assert_413(reply: httpx.Response, limit: int) -> None:
    assert reply.status_code == 413, reply.text[:200]
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["detail"] == f"the request body is larger than {limit} bytes, the limit of this server"


async def test_mcp_and_webhook_bodies_over_the_cap_are_413_problem_json(hermes: HermesServer) -> None:
    customer = await hermes.create_customer()
    limit = hermes.settings.max_body_bytes
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "connections_status", "arguments": {"pad": "x" * 200_000}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx.AsyncClient(
        base_url=hermes.url, headers={**headers, "x-api-key": customer["apiKey"]}, timeout=30
    ) as client:
        declared = await client.post("/mcp", content=json.dumps(call).encode())
        assert_413(declared, limit)

        async def streamed() -> Any:  # no Content-Length: counted as it arrives
            for _ in range(20):
                yield b" " * 10_000

        assert_413(await client.post("/mcp", content=streamed()), limit)
        listed = await client.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
            headers={"MCP-Protocol-Version": "2025-11-25"},
        )
        assert listed.status_code == 200, listed.text  # under the cap all is as before

    # Webhooks have their own cap (Meta batches several events in one POST): over /mcp's passes, over theirs not.
    webhook_limit = hermes.settings.webhook_max_body_bytes
    batch = wa.encode(wa.batch(wa.change("1", messages=[wa.text_message(wa.wamid(), "y" * 100_000)])))
    body = b'{"object":"whatsapp_business_account","pad":"' + b"x" * webhook_limit + b'"}'
    async with httpx.AsyncClient(base_url=hermes.url, timeout=30) as meta:
        fits = await meta.post("/webhook/whatsapp", content=batch, headers={"X-Hub-Signature-256": wa.sign(batch)})
        assert fits.status_code == 200, fits.text
        signed = await meta.post("/webhook/whatsapp", content=body, headers={"X-Hub-Signature-256": wa.sign(body)})
    assert_413(signed, webhook_limit)


async def test_a_streamed_body_is_refused_at_the_cap_without_waiting_for_the_rest(hermes: HermesServer) -> None:
    """The answer arrives while the client still holds most of its body: nothing past the cap is read."""
    caps = {"/mcp": hermes.settings.max_body_bytes, "/webhook/whatsapp": hermes.settings.webhook_max_body_bytes}
    for path, limit in caps.items():
        reader, writer = await asyncio.open_connection("127.0.0.1", hermes.port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{hermes.port}\r\nAuthorization: Bearer {MCP_API_KEY}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * 16_384
        for _ in range(limit // len(chunk) + 2):  # just past the cap; the body never ends
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
        writer.close()


# --- cursors ------------------------------------------------------------------------------------


async def test_a_cursor_with_a_trailing_newline_is_refused(hermes: HermesServer) -> None:
    customer = await hermes.create_customer()
    async with hermes.client(customer["apiKey"]) as client:
        for path, cursor in (("/api/inbox", "1-0\n"), ("/api/logs", "1\n")):
            reply = await client.get(path, params={"cursor": cursor})
            assert reply.status_code == 400, (path, reply.text)
            assert "cursor" in reply.text
    async with mcp_session(hermes.url, customer["apiKey"]) as session:
        result = await session.call_tool("inbox_list", {"cursor": "1-0\n"})
    assert result.is_error and "cursor" in result.content[0].text


# --- credentials that cannot be decrypted -------------------------------------------------------


async def test_undecryptable_credentials_ask_the_owner_to_reconnect(hermes: HermesServer, aio_redis: Any) -> None:
    victim, owner = await hermes.create_customer(), await hermes.create_customer()
    async with hermes.client(victim["apiKey"]) as client:
        assert (await client.post("/api/connect/telegram", json={"botToken": "123456789:" + "B" * 35})).is_success
    # A ciphertext bound to another customer, as a restored backup or a lost master key leaves it.
    await aio_redis.set(
        creds_key(owner["id"], Platform.TELEGRAM), await aio_redis.get(creds_key(victim["id"], Platform.TELEGRAM))
    )

    text = (
        "The stored Telegram credentials can no longer be read. Nothing was sent. "
        "Ask the account owner to connect Telegram again in Hermes."
    )
    async with hermes.client(owner["apiKey"]) as client:
        reply = await client.post("/api/tools/telegram_get_updates", json={})
        assert (reply.status_code, reply.json()["detail"]) == (409, text)
        assert "retry-after" not in reply.headers
        assert (await client.get("/api/connections")).json()["connections"]["telegram"] is True
    async with mcp_session(hermes.url, owner["apiKey"]) as session:
        result = await session.call_tool("telegram_get_updates", {})
    assert result.is_error and result.content[0].text == text


# --- embedded mode with several workers ---------------------------------------------------------


def test_embedded_mode_refuses_more_than_one_worker(tmp_path: Path) -> None:
    env = clean_env(HERMES_ENCRYPTION_KEYS="k1:" + "A" * 43 + "=")
    refused = run(["serve", "--workers", "2", "--port", str(free_port())], tmp_path, env)
    assert refused.returncode != 0
    assert "--workers 2 needs HERMES_REDIS_URL" in refused.stderr
    assert "deactivation" in refused.stderr and "multiplied by the worker count" in refused.stderr
    assert not (tmp_path / "var").exists()  # refused before anything started
