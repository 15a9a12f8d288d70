"""Managed OAuth end to end: connect links, the platforms' consent pages and token endpoints (fakes in their
wire formats), tokens stored encrypted, refreshed ahead of expiry once across instances, rotation, refusal."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from redis import Redis as SyncRedis

from hermes.adapters.redis.account_health import RENEWALS, RENEWALS_BACKFILL
from hermes.adapters.redis.client import connect
from hermes.adapters.redis.managed_oauth import RedisAccountStatuses
from hermes.adapters.sql.migrate import upgrade_url
from hermes.domain.managed_oauth import AccountHealth
from hermes.domain.platform import Platform
from hermes.entrypoints.settings import Settings
from tests.fakes.graph import FakeGraph
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.x import FakeX
from tests.integration.oauth_support import start_public
from tests.integration.own_redis import OwnRedis
from tests.integration.server import HermesServer
from tests.integration.test_inbound_flows import eventually
from tests.support import make_settings

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def x() -> Iterator[FakeX]:
    with FakeX() as fake:
        fake.consent.register_app("hermes-x-client", "hermes-x-secret")
        yield fake


Start = Callable[..., HermesServer]


def x_settings(mariadb_url: str, redis_url: str, fake: FakeX) -> Settings:
    return make_settings(
        HERMES_DATABASE_URL=mariadb_url,
        HERMES_REDIS_URL=redis_url,
        HERMES_TWITTER_API_BASE=fake.base_url,
        HERMES_TWITTER_AUTH_BASE=fake.base_url,
        HERMES_TWITTER_TOKEN_BASE=fake.base_url,
        HERMES_TWITTER_CLIENT_ID="hermes-x-client",
        HERMES_TWITTER_CLIENT_SECRET="hermes-x-secret",
    )


async def consent(url: str, decision: str = "allow") -> httpx.Response:
    """What the owner's browser does on the platform's page: open it, press a button, follow the redirect."""
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(url)
        assert page.status_code == 200, page.text
        fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', page.text))
        action = url.split("?", 1)[0]
        answer = await browser.post(action, data={**fields, "decision": decision})
        assert answer.status_code == 302
        return await browser.get(answer.headers["location"])


async def link(server: HermesServer, api_key: str, platform: str = "twitter") -> dict[str, Any]:
    async with server.client(api_key) as client:
        reply = await client.post(f"/api/connect/{platform}/link")
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def connected(server: HermesServer, fake: FakeX, access_ttl: int = 7200) -> dict[str, Any]:
    customer = await server.create_customer()
    fake.access_ttl = access_ttl
    page = await consent((await link(server, customer["apiKey"]))["url"])
    assert page.status_code == 200 and "X is connected" in page.text
    return customer


async def post(server: HermesServer, api_key: str, text: str) -> httpx.Response:
    async with server.client(api_key) as client:
        return await client.post("/api/tools/twitter_post_tweet", json={"text": text})


async def test_x_connect_link_consent_and_callback_store_working_tokens(
    mariadb_url: str, redis_url: str, x: FakeX, redis_client: SyncRedis, start_hermes: Start
) -> None:
    server = start_public(start_hermes, x_settings(mariadb_url, redis_url, x))
    customer = await server.create_customer()
    made = await link(server, customer["apiKey"])
    parts = urlsplit(made["url"])
    query = parse_qs(parts.query)
    assert made["url"].startswith(f"{x.base_url}/i/oauth2/authorize?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["scope"] == ["tweet.read tweet.write users.read offline.access"]
    assert query["redirect_uri"] == [f"{server.settings.public_url}/connect/callback/twitter"]
    assert made["expiresAt"].endswith("Z")

    page = await consent(made["url"])
    assert page.status_code == 200, page.text
    assert "X is connected" in page.text and "close this page" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"

    exchange = x.token_requests("authorization_code")
    assert len(exchange) == 1 and exchange[0].header("authorization", "").startswith("Basic ")
    assert "code_verifier" in exchange[0].form and "client_secret" not in exchange[0].form

    reply = await post(server, customer["apiKey"], "hello from a managed connection")
    assert reply.status_code == 200, reply.text
    assert [t["text"] for t in x.posts_by("hermes_test")][-1] == "hello from a managed connection"

    # Stored encrypted: neither token is readable in Redis.
    access = next(iter(x.grants.values()))
    for key in redis_client.scan_iter(match=f"creds:{{{customer['id']}}}:*"):
        raw = redis_client.get(key) or b""
        assert not any(t.encode() in raw for t in access)

    # The link was spent by its first use.
    again = await consent((await link(server, customer["apiKey"]))["url"], decision="allow")
    assert again.status_code == 200
    async with httpx.AsyncClient(timeout=10) as browser:
        replay = await browser.get(str(again.request.url))
    assert replay.status_code == 400 and "cannot be used" in replay.text


async def test_a_refused_consent_shows_a_page_and_stores_nothing(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Start
) -> None:
    server = start_public(start_hermes, x_settings(mariadb_url, redis_url, x))
    customer = await server.create_customer()
    page = await consent((await link(server, customer["apiKey"]))["url"], decision="deny")
    assert page.status_code == 400 and "X was not connected" in page.text
    assert "not approved" in page.text
    async with server.client(customer["apiKey"]) as client:
        status = (await client.get("/api/connections")).json()
    assert status["connections"]["twitter"] is False
    assert x.token_requests() == []


async def test_a_link_for_a_platform_without_a_client_is_a_404_naming_the_ones_with(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Start
) -> None:
    server = start_public(start_hermes, x_settings(mariadb_url, redis_url, x))
    customer = await server.create_customer()
    async with server.client(customer["apiKey"]) as client:
        reply = await client.post("/api/connect/linkedin/link")
        bad = await client.post("/api/connect/twitter/link", params={"account": "Not Valid"})
    assert reply.status_code == 404 and "twitter" in reply.json()["detail"]
    assert bad.status_code == 400 and "account" in bad.text


async def test_two_instances_refresh_one_x_token_once_and_both_keep_working(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Start
) -> None:
    settings = x_settings(mariadb_url, redis_url, x)
    one, two = start_public(start_hermes, settings), start_public(start_hermes, settings)
    customer = await connected(one, x, access_ttl=60)  # inside the refresh margin at once
    x.access_ttl = 7200
    x.delay_next(0.5, path="/2/oauth2/token")  # both calls arrive while the refresh is in flight
    replies = await asyncio.gather(
        post(one, customer["apiKey"], "from instance one"), post(two, customer["apiKey"], "from instance two")
    )
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    assert len(x.token_requests("refresh_token")) == 1
    # Later calls use the stored new token on both instances: no further refresh.
    again = await asyncio.gather(post(one, customer["apiKey"], "one again"), post(two, customer["apiKey"], "two"))
    assert [r.status_code for r in again] == [200, 200]
    assert len(x.token_requests("refresh_token")) == 1


async def test_rotated_refresh_tokens_are_stored_and_each_used_once(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Start
) -> None:
    server = start_public(start_hermes, x_settings(mariadb_url, redis_url, x))
    customer = await connected(server, x, access_ttl=60)  # every call refreshes
    for n in range(3):
        reply = await post(server, customer["apiKey"], f"post number {n}")
        assert reply.status_code == 200, reply.text
    used = [r.form["refresh_token"] for r in x.token_requests("refresh_token")]
    assert len(used) == 3 and len(set(used)) == 3
    assert all(token in x.spent_refresh_tokens for token in used)
    assert len(x.refresh_tokens) == 1  # the newest, unused, is what Hermes holds


async def test_a_refused_refresh_sets_needs_reauth_and_the_error_gives_a_connect_link(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Start
) -> None:
    server = start_public(start_hermes, x_settings(mariadb_url, redis_url, x))
    customer = await connected(server, x, access_ttl=60)
    x.revoke_grant(next(iter(x.refresh_tokens)))
    reply = await post(server, customer["apiKey"], "will not go out")
    assert reply.status_code == 502, reply.text
    problem = reply.json()
    text = f"{problem['detail']} {problem.get('remedy', '')} {problem.get('fix', '')}"
    assert "no longer accepts" in text
    assert f"Ask the account owner to connect X again by opening {x.base_url}/i/oauth2/authorize?" in text
    redis = connect(redis_url)
    try:
        status = await RedisAccountStatuses(redis).get(customer["id"], Platform.TWITTER, "default")
    finally:
        await redis.aclose()
    assert status is not None and status.status is AccountHealth.NEEDS_REAUTH
    assert status.last_error and "refused" in status.last_error
    assert x.posts_by("hermes_test") == []


async def test_an_account_deleted_during_a_refresh_stays_deleted(
    mariadb_url: str, redis_url: str, x: FakeX, start_hermes: Start
) -> None:
    server = start_public(start_hermes, x_settings(mariadb_url, redis_url, x))
    customer = await connected(server, x, access_ttl=60)
    x.delay_next(1.0, path="/2/oauth2/token")
    call = asyncio.create_task(post(server, customer["apiKey"], "racing a disconnect"))
    while not x.token_requests("refresh_token"):
        await asyncio.sleep(0.02)
    async with server.client(customer["apiKey"]) as client:
        assert (await client.delete("/api/connect/twitter")).status_code == 200
    reply = await call
    assert reply.status_code == 409, reply.text
    assert "not connected" in reply.json()["detail"]
    async with server.client(customer["apiKey"]) as client:
        status = (await client.get("/api/connections")).json()
    assert status["connections"]["twitter"] is False
    assert x.posts_by("hermes_test") == []


async def test_linkedin_connects_through_its_consent_page_learns_the_author_and_refreshes(
    mariadb_url: str, redis_url: str, start_hermes: Start
) -> None:
    with FakeLinkedIn() as fake:
        fake.consent.register_app("li-client", "li-secret")
        settings = make_settings(
            HERMES_DATABASE_URL=mariadb_url,
            HERMES_REDIS_URL=redis_url,
            HERMES_LINKEDIN_API_BASE=fake.base_url,
            HERMES_LINKEDIN_AUTH_BASE=fake.base_url,
            HERMES_LINKEDIN_TOKEN_BASE=fake.base_url,
            HERMES_LINKEDIN_CLIENT_ID="li-client",
            HERMES_LINKEDIN_CLIENT_SECRET="li-secret",
        )
        server = start_public(start_hermes, settings)
        customer = await server.create_customer()
        made = await link(server, customer["apiKey"], "linkedin")
        query = parse_qs(urlsplit(made["url"]).query)
        assert made["url"].startswith(f"{fake.base_url}/oauth/v2/authorization?")
        assert "code_challenge" not in query and query["scope"] == ["openid profile w_member_social"]
        fake.access_ttl = 86_400  # a day left: inside LinkedIn's refresh margin
        page = await consent(made["url"])
        assert page.status_code == 200 and "LinkedIn is connected" in page.text
        exchange = fake.requests_to("/oauth/v2/accessToken", "POST")
        assert exchange[0].form["client_secret"] == "li-secret"

        fake.access_ttl = 5_184_000
        async with server.client(customer["apiKey"]) as client:
            reply = await client.post("/api/tools/linkedin_create_post", json={"text": "connected by consent"})
        assert reply.status_code == 200, reply.text
        assert fake.posts[-1]["author"] == "urn:li:person:consentingMember1"
        grants = [r.form["grant_type"] for r in fake.requests_to("/oauth/v2/accessToken", "POST")]
        assert grants == ["authorization_code", "refresh_token"]


async def test_instagram_exchanges_for_a_long_lived_token_and_renews_it(
    mariadb_url: str, redis_url: str, start_hermes: Start
) -> None:
    with FakeGraph() as graph:
        graph.consent.register_app("ig-client", "ig-secret")
        ig_user_id, _ = graph.add_instagram_user(username="consenting_shop")
        graph.add_media(ig_user_id, caption="first post")
        graph.consent_ig_user_id = ig_user_id
        settings = make_settings(
            HERMES_DATABASE_URL=mariadb_url,
            HERMES_REDIS_URL=redis_url,
            HERMES_INSTAGRAM_API_BASE=graph.api_base(),
            HERMES_INSTAGRAM_AUTH_BASE=graph.base_url,
            HERMES_INSTAGRAM_TOKEN_BASE=graph.base_url,
            HERMES_INSTAGRAM_LOGIN_API_BASE=graph.base_url,
            HERMES_INSTAGRAM_CLIENT_ID="ig-client",
            HERMES_INSTAGRAM_CLIENT_SECRET="ig-secret",
        )
        server = start_public(start_hermes, settings)
        customer = await server.create_customer()
        made = await link(server, customer["apiKey"], "instagram")
        query = parse_qs(urlsplit(made["url"]).query)
        assert made["url"].startswith(f"{graph.base_url}/oauth/authorize?")
        assert query["scope"] == ["instagram_business_basic,instagram_business_content_publish"]
        graph.long_lived_ttl = 3 * 86_400  # inside Instagram's 7-day refresh margin
        page = await consent(made["url"])
        assert page.status_code == 200 and "Instagram is connected" in page.text
        exchange = graph.requests_to("/access_token", "GET")
        assert exchange[0].query["grant_type"] == "ig_exchange_token"

        graph.long_lived_ttl = 5_184_000
        async with server.client(customer["apiKey"]) as client:
            reply = await client.post("/api/tools/instagram_list_media", json={})
        assert reply.status_code == 200, reply.text
        assert [m["caption"] for m in reply.json()["media"]] == ["first post"]
        renewals = graph.requests_to("/refresh_access_token", "GET")
        assert len(renewals) == 1 and renewals[0].query["grant_type"] == "ig_refresh_token"


def sweeping(mariadb_url: str, own_redis: OwnRedis, x: FakeX) -> Settings:
    return x_settings(mariadb_url, own_redis.url, x).model_copy(update={"oauth_refresh_sweep_seconds": 0.2})


async def renewal_turn(redis_url: str, customer_id: str) -> float | None:
    redis = connect(redis_url)
    try:
        score = await redis.zscore(RENEWALS, f"{customer_id}:twitter:default")
    finally:
        await redis.aclose()
    return None if score is None else float(score)


async def refreshed(x: FakeX, count: int = 1) -> None:
    for _ in range(200):
        if len(x.token_requests("refresh_token")) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no refresh reached the platform")


async def test_the_background_sweep_renews_a_token_nobody_uses(
    mariadb_url: str, own_redis: OwnRedis, x: FakeX, start_hermes: Start
) -> None:
    server = start_public(start_hermes, sweeping(mariadb_url, own_redis, x))
    customer = await connected(server, x, access_ttl=60)
    x.access_ttl = 7200
    await refreshed(x)
    await asyncio.sleep(0.7)  # more sweeps: the renewed token is not due, nothing more is sent
    assert len(x.token_requests("refresh_token")) == 1
    turn = await renewal_turn(own_redis.url, customer["id"])
    assert turn is not None and 7200 - 20 * 60 - 30 < turn - time.time() <= 7200 - 20 * 60  # before it ends
    reply = await post(server, customer["apiKey"], "with the renewed token")
    assert reply.status_code == 200, reply.text
    assert len(x.token_requests("refresh_token")) == 1


async def test_two_instances_sweeping_at_once_call_the_token_endpoint_once(
    mariadb_url: str, own_redis: OwnRedis, x: FakeX, start_hermes: Start
) -> None:
    settings = sweeping(mariadb_url, own_redis, x)
    one, two = start_public(start_hermes, settings), start_public(start_hermes, settings)
    customer = await connected(one, x, access_ttl=60)  # inside the refresh margin at once
    x.access_ttl = 7200
    x.delay_next(1.0, path="/2/oauth2/token")  # in flight through several sweeps of both instances
    await refreshed(x)
    await asyncio.sleep(1.5)
    assert len(x.token_requests("refresh_token")) == 1
    replies = await asyncio.gather(post(one, customer["apiKey"], "one"), post(two, customer["apiKey"], "two"))
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    assert len(x.token_requests("refresh_token")) == 1


async def test_tokens_stored_before_the_renewal_schedule_existed_are_found_once_and_renewed(
    mariadb_url: str, own_redis: OwnRedis, x: FakeX, start_hermes: Start
) -> None:
    settings = x_settings(mariadb_url, own_redis.url, x)
    first = start_public(start_hermes, settings)  # sweeps only after minutes: the token stays as stored
    customer = await connected(first, x, access_ttl=60)
    first.stop()
    redis = connect(own_redis.url)
    try:
        # As a version without the schedule left it: the token stored, no turn, the one-time walk not done.
        await redis.delete(RENEWALS, f"{RENEWALS_BACKFILL}:done")
        start_public(start_hermes, settings.model_copy(update={"oauth_refresh_sweep_seconds": 0.2}))
        x.access_ttl = 7200
        await refreshed(x)

        async def walked() -> bool:
            return bool(await redis.exists(f"{RENEWALS_BACKFILL}:done"))

        await eventually(walked, timeout=10)
        assert not await redis.exists(f"{RENEWALS_BACKFILL}:position", f"{RENEWALS_BACKFILL}:lease")
    finally:
        await redis.aclose()
    assert await renewal_turn(own_redis.url, customer["id"]) is not None
    assert len(x.token_requests("refresh_token")) == 1


async def test_embedded_mode_connects_and_renews_once_for_concurrent_calls(
    tmp_path: Path, x: FakeX, start_hermes: Start
) -> None:
    settings = make_settings(
        HERMES_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'hermes.db'}",
        HERMES_TWITTER_API_BASE=x.base_url,
        HERMES_TWITTER_AUTH_BASE=x.base_url,
        HERMES_TWITTER_TOKEN_BASE=x.base_url,
        HERMES_TWITTER_CLIENT_ID="hermes-x-client",
        HERMES_TWITTER_CLIENT_SECRET="hermes-x-secret",
    )
    await upgrade_url(settings.database_url)
    server = start_public(start_hermes, settings)
    customer = await connected(server, x, access_ttl=60)
    x.access_ttl = 7200
    x.delay_next(0.3, path="/2/oauth2/token")
    replies = await asyncio.gather(*(post(server, customer["apiKey"], f"embedded {n}") for n in range(3)))
    assert [r.status_code for r in replies] == [200, 200, 200], [r.text for r in replies]
    assert len(x.token_requests("refresh_token")) == 1
