"""Anonymous callers against a real server: what they can take from a tenant, and what they are told.

Each attack runs against Hermes on real MariaDB and Redis while a tenant keeps
working; the tenant's requests must still answer within a liveness bound (not a
benchmark), the attacker must get the documented 4xx, and nothing may pile up.
Every test calls from its own address (X-Forwarded-For through 127.0.0.1 as a
trusted proxy), so that its counts are its own.
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from dishka import Provider, Scope, provide
from redis import Redis as SyncRedis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hermes.adapters.client_metadata import HttpClientMetadataDocuments, make_metadata_client
from hermes.adapters.platforms.config import PlatformConfig
from hermes.adapters.platforms.network import HostGuard
from hermes.adapters.sql.migrate import upgrade_url
from hermes.application.ports.oauth import ClientMetadataDocuments
from hermes.entrypoints.http.oauth_server import UNUSABLE_CLIENT
from hermes.entrypoints.settings import Settings
from tests.fakes.base import ServerRunner
from tests.fakes.mail import tls_files
from tests.fakes.telegram import FakeTelegram
from tests.integration.oauth_support import LOOPBACK_REDIRECT, OAuthAgent, Pkce, query_of, start_public
from tests.integration.server import HermesServer
from tests.support import free_port, make_settings

Start = Callable[..., HermesServer]
JSON = {"content-type": "application/json"}
VICTIM_BOUND = 2.0  # seconds: a liveness bound, far above the ~0.05 s these calls take on an idle machine
REDIS_GROWTH_BOUND = 2 * 1024 * 1024  # the flood below stored 390 MB before the limits existed


def new_address() -> str:
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def limited(settings: Settings, **changes: Any) -> Settings:
    """The shipped limits, behind 127.0.0.1 as the trusted proxy."""
    values = {"oauth_register_per_minute": 20, "oauth_requests_per_minute": 120, "trusted_proxies": "127.0.0.1"}
    return settings.model_copy(update={**values, **changes})


def caller(server: HermesServer | str, address: str) -> httpx.AsyncClient:
    base = server if isinstance(server, str) else server.url
    return httpx.AsyncClient(base_url=base, headers={"X-Forwarded-For": address}, timeout=60)


async def while_attacked(
    attack: Awaitable[list[httpx.Response]], victim: Callable[[], Awaitable[httpx.Response]]
) -> tuple[list[httpx.Response], list[float]]:
    """Run the attack; meanwhile the victim calls again and again. Every victim call must succeed."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def keep_working() -> None:
        while not done.is_set():
            started = time.monotonic()
            reply = await victim()
            latencies.append(time.monotonic() - started)
            assert reply.status_code == 200, reply.text
            await asyncio.sleep(0.05)

    worker = asyncio.create_task(keep_working())
    try:
        replies = await attack
    finally:
        done.set()
    await worker
    return replies, latencies


async def flood(count: int, parallel: int, send: Callable[[int], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    gate = asyncio.Semaphore(parallel)

    async def one(i: int) -> httpx.Response:
        async with gate:
            return await send(i)

    return await asyncio.gather(*(one(i) for i in range(count)))


def used_memory(redis: SyncRedis) -> int:
    return int(redis.info("memory")["used_memory"])


def registration(uris: int, length: int) -> dict[str, Any]:
    pad = "x" * max(0, length - 40)
    return {
        "redirect_uris": [f"https://app.example.com/{i}/{pad}" for i in range(uris)],
        "token_endpoint_auth_method": "none",
        "client_name": "flood",
    }


async def test_a_register_flood_is_refused_and_redis_stays_small(
    settings: Settings, start_hermes: Start, redis_client: SyncRedis
) -> None:
    server = start_hermes(limited(settings))
    tenant = await server.create_customer()
    # ~4 MB a request of URIs that are each acceptable; encoded once, so the attacker's CPU is not the test's.
    huge = msgspec.json.encode(registration(2000, 1990))
    before = used_memory(redis_client)
    async with caller(server, new_address()) as attacker, server.client(tenant["apiKey"]) as victim:
        replies, latencies = await while_attacked(
            flood(100, 20, lambda _: attacker.post("/register", content=huge, headers=JSON)),
            lambda: victim.get("/api/connections"),
        )
    growth = used_memory(redis_client) - before
    statuses = [r.status_code for r in replies]
    print(f"\n/register flood: statuses {sorted(set(statuses))}, Redis +{growth} B, victim max {max(latencies):.3f} s")

    assert set(statuses) <= {400, 413, 429}
    assert statuses.count(413) <= 20 and statuses.count(429) >= 80
    too_large = next(r for r in replies if r.status_code == 413)
    assert too_large.headers["content-type"] == "application/problem+json"
    assert too_large.json()["title"] == "Request body too large"
    limited_reply = next(r for r in replies if r.status_code == 429)
    assert limited_reply.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited_reply.headers["retry-after"]) <= 60
    assert growth < REDIS_GROWTH_BOUND
    assert max(latencies) < VICTIM_BOUND


async def test_registrations_that_fit_are_capped_per_address_and_in_size(
    settings: Settings, start_hermes: Start, redis_client: SyncRedis
) -> None:
    server = start_hermes(limited(settings))
    async with caller(server, new_address()) as http:
        too_many = await http.post("/register", json=registration(11, 100))
        too_long = await http.post("/register", json=registration(1, 2100))
        assert (too_many.status_code, too_many.json()["error"]) == (400, "invalid_redirect_uri")
        assert "at most 10" in too_many.json()["error_description"]
        assert (too_long.status_code, too_long.json()["error"]) == (400, "invalid_redirect_uri")
        fat = registration(10, 1400)  # just under 16 KiB
        replies = [await http.post("/register", json=fat) for _ in range(25)]
    statuses = [r.status_code for r in replies]
    assert statuses == [201] * 18 + [429] * 7  # the two refusals above counted too
    stored = [redis_client.memory_usage(f"oauth:client:{{{r.json()['client_id']}}}") for r in replies[:18]]
    assert all(size is not None and size < 16 * 1024 + 1024 for size in stored)


async def test_an_address_registers_a_bounded_number_of_clients_a_day(settings: Settings, start_hermes: Start) -> None:
    server = start_hermes(limited(settings, oauth_register_per_day=3))
    async with caller(server, new_address()) as http:
        replies = [await http.post("/register", json=registration(1, 60)) for _ in range(5)]
    assert [r.status_code for r in replies] == [201, 201, 201, 429, 429]
    assert "a day" in replies[3].json()["detail"]
    assert int(replies[3].headers["retry-after"]) >= 1


async def test_two_instances_share_one_address_limit(settings: Settings, start_hermes: Start) -> None:
    shared = limited(settings)
    one, two = start_hermes(shared), start_hermes(shared)
    address = new_address()
    body = registration(1, 60)
    async with caller(one, address) as a, caller(two, address) as b:
        replies = [await (a if i % 2 else b).post("/register", json=body) for i in range(30)]
        elsewhere = await b.post("/register", json=body, headers={"X-Forwarded-For": new_address()})
    assert [r.status_code for r in replies].count(201) == 20
    assert [r.status_code for r in replies[20:]] == [429] * 10
    assert elsewhere.status_code == 201


async def test_every_anonymous_oauth_endpoint_is_limited(settings: Settings, start_hermes: Start) -> None:
    server = start_hermes(limited(settings, oauth_requests_per_minute=8))
    address = new_address()
    async with caller(server, address) as http:
        calls = [
            http.get("/authorize", params={"client_id": "nobody"}),
            http.post("/token", data={"grant_type": "authorization_code", "client_id": "nobody"}),
            http.post("/revoke", data={"token": "x", "client_id": "nobody"}),
            http.get("/oauth/consent", params={"request": "nothing"}),
        ]
        first = [(await c).status_code for c in calls]
        again = [
            (await http.get("/authorize", params={"client_id": "nobody"})).status_code,
            (await http.post("/token", data={"grant_type": "refresh_token"})).status_code,
            (await http.post("/revoke", data={"token": "x"})).status_code,
            (await http.get("/oauth/consent", params={"request": "nothing"})).status_code,
        ]
        over = [
            await http.get("/authorize", params={"client_id": "nobody"}),
            await http.post("/token", data={"grant_type": "refresh_token"}),
            await http.post("/revoke", data={"token": "x"}),
            await http.get("/oauth/consent", params={"request": "nothing"}),
            await http.post("/oauth/consent", data={"request": "nothing", "csrf": "x", "action": "approve"}),
        ]
        metadata = await http.get("/.well-known/oauth-authorization-server")
    assert 429 not in first + again
    assert [r.status_code for r in over] == [429] * 5
    assert all(r.headers["content-type"] == "application/problem+json" and r.headers["retry-after"] for r in over)
    assert metadata.status_code == 200  # discovery documents are not counted


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    settings: Settings, start_hermes: Start
) -> None:
    # No trusted proxies: the peer (127.0.0.1) is the caller whatever the header says.
    server = start_hermes(settings.model_copy(update={"oauth_register_per_minute": 5, "trusted_proxies": ""}))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        replies = [
            await http.post("/register", json=registration(1, 60), headers={"X-Forwarded-For": new_address()})
            for _ in range(8)
        ]
    statuses = [r.status_code for r in replies]
    assert statuses.count(201) <= 5 and statuses.count(429) >= 3


async def test_embedded_mode_limits_addresses_too(tmp_path: Path, start_hermes: Start) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/hermes.db"
    await upgrade_url(database)
    server = start_hermes(limited(make_settings(HERMES_DATABASE_URL=database), oauth_register_per_minute=3))
    async with caller(server, new_address()) as http:
        statuses = [(await http.post("/register", json=registration(1, 60))).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]


@pytest.fixture
def tarpit() -> Iterator[int]:
    """A port that accepts connections (the kernel completes the handshake) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def document_host() -> Iterator[str]:
    """An HTTPS host (the test CA's certificate for localhost): one good document, 404 for anything else."""
    runner: ServerRunner

    async def serve(request: Request) -> Response:
        url = f"https://localhost:{runner.port}/good.json"
        if request.url.path != "/good.json":
            return Response("no such document", status_code=404)
        return JSONResponse(
            {"client_id": url, "redirect_uris": [LOOPBACK_REDIRECT], "token_endpoint_auth_method": "none"}
        )

    files = tls_files()
    runner = ServerRunner(
        Starlette(routes=[Route("/{path:path}", serve)]),
        name="metadata-host",
        ssl_certfile=files.cert_path,
        ssl_keyfile=files.key_path,
    )
    runner.start()
    yield f"https://localhost:{runner.port}"
    runner.stop()


class TrustTestCa(Provider):
    """The shipped metadata fetcher, trusting the test CA instead of the system's."""

    def __init__(self) -> None:
        super().__init__(scope=Scope.APP)

    @provide
    async def documents(self, config: PlatformConfig) -> AsyncIterator[ClientMetadataDocuments]:
        http = make_metadata_client(verify=ssl.create_default_context(cafile=str(tls_files().ca_path)))
        yield HttpClientMetadataDocuments(http, HostGuard(allow_private=config.allow_private_networks))
        await http.aclose()


def page_detail(reply: httpx.Response) -> str:
    """The error page's heading and message."""
    found = re.search(r"<h1>(.*?)</h1>\s*<div class=\"error\" role=\"alert\">(.*?)</div>", reply.text, re.S)
    assert found, reply.text
    return html.unescape(f"{found.group(1)}: {found.group(2)}")


async def test_tarpit_metadata_hosts_neither_slow_a_tenant_nor_tell_ports_apart(
    settings: Settings, start_hermes: Start, tarpit: int, document_host: str
) -> None:
    with FakeTelegram() as telegram:
        server = start_hermes(
            limited(settings, telegram_api_base=telegram.base_url, oauth_requests_per_minute=1000), None, TrustTestCa()
        )
        token = telegram.add_bot()
        telegram.add_chat(token, 7)
        tenant = await server.create_customer()
        async with server.client(tenant["apiKey"]) as api:
            assert (await api.post("/api/connect/telegram", json={"botToken": token})).status_code == 200
            pkce = Pkce.new()

            def authorize(http: httpx.AsyncClient, client_id: str) -> Awaitable[httpx.Response]:
                params = {
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": LOOPBACK_REDIRECT,
                    "code_challenge": pkce.challenge,
                    "code_challenge_method": "S256",
                }
                return http.get("/authorize", params=params)

            async with caller(server, new_address()) as attacker:
                good = await authorize(attacker, f"{document_host}/good.json")
                started = time.monotonic()
                replies, latencies = await while_attacked(
                    flood(60, 60, lambda i: authorize(attacker, f"https://localhost:{tarpit}/c{i}.json")),
                    lambda: api.post("/api/tools/telegram_send_message", json={"chat_id": 7, "text": "still here"}),
                )
                attack_seconds = time.monotonic() - started
                closed = await authorize(attacker, f"https://localhost:{free_port()}/client.json")
                missing = await authorize(attacker, f"{document_host}/missing.json")
    print(f"\ntarpit: {len(replies)} /authorize in {attack_seconds:.1f} s, victim max {max(latencies):.3f} s")

    assert good.status_code == 303  # the fetcher does reach a real host: the refusals below are the hosts'
    assert max(latencies) < VICTIM_BOUND
    assert attack_seconds < 10  # 8 fetches wait out their 5 s; the rest are refused at once
    texts = {page_detail(r) for r in [*replies, closed, missing]}
    assert {r.status_code for r in [*replies, closed, missing]} == {400}
    assert len(texts) == 1
    assert UNUSABLE_CLIENT in texts.pop()


async def test_replaying_a_used_code_revokes_its_grant_even_after_it_expired(
    settings: Settings, start_hermes: Start
) -> None:
    server = start_public(start_hermes, settings.model_copy(update={"oauth_code_ttl": 1}))
    agent = OAuthAgent(server)
    customer = await server.create_customer()
    client = await agent.register()
    pkce = Pkce.new()
    async with httpx.AsyncClient(base_url=agent.base) as browser:
        answer = await agent.consent(browser, agent.authorize_url(client, pkce), customer["apiKey"])
    code = query_of(answer.headers["location"])["code"]
    first = await agent.exchange(client, code, pkce.verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert await agent.mcp_status(tokens["access_token"]) == 200
    await asyncio.sleep(1.5)  # the code has expired
    replay = await agent.exchange(client, code, pkce.verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "already used" in replay.json()["error_description"]
    assert await agent.mcp_status(tokens["access_token"]) == 401
    assert (await agent.refresh(client, tokens["refresh_token"])).json()["error"] == "invalid_grant"
