"""GET /api/conversations, served ahead of the framework: the same answer, byte for byte, as Litestar's route.

`/api/conversations/` (with the slash) still goes through Litestar and the per-request container, so
comparing the two answers to one query proves the shortcut speaks exactly as the route it stands in for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hermes.adapters.redis.conversations import RedisConversationStore
from hermes.domain.conversations import IN, OUT, ConversationKey, Media, MessageView, Participant, Recorded
from hermes.domain.platform import Platform
from tests.integration.server import HermesServer

pytestmark = pytest.mark.asyncio


def _wire(reply: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    # The request id and the date differ per request by design; everything else must match.
    headers = {k: v for k, v in reply.headers.items() if k not in ("x-request-id", "date")}
    return reply.status_code, headers, reply.content


async def _seed(redis: Any, customer_id: str) -> None:
    now = datetime.now(UTC).replace(microsecond=123000)
    store = RedisConversationStore(redis)
    wa = ConversationKey(customer_id, Platform.WHATSAPP, "16505551234")
    late = ConversationKey(customer_id, Platform.INSTAGRAM, "17841400000000001", account="shop")
    tg = ConversationKey(customer_id, Platform.TELEGRAM, "-100200300")
    mail = ConversationKey(customer_id, Platform.EMAIL, "<root@example.com>")
    photo = Media("image", "media-1", "a cat", None)
    records = [
        Recorded(
            wa,
            MessageView("wamid.1", IN, wa.peer, "Is the table free? ü 🙂", now),
            "Sheena",
            (Participant(wa.peer, "Sheena"),),
        ),
        Recorded(late, MessageView("ig.1", IN, late.peer, None, now - timedelta(days=2), media=photo), "Ana"),
        Recorded(tg, MessageView("tg.1", OUT, "me", 'sent "quoted"\n twice', now - timedelta(minutes=5))),
        Recorded(mail, MessageView("<root@example.com>", IN, "a@example.com", "x" * 300, now - timedelta(hours=1))),
    ]
    assert await store.record(customer_id, records, now) == 4


@pytest.mark.parametrize(
    "query",
    ["", "limit=2", "limit=1&platform=telegram", "unreadOnly=true", "unreadOnly=false&limit=3", "account=shop"],
)
async def test_the_list_reads_as_the_framework_s_route(hermes: HermesServer, redis: Any, query: str) -> None:
    created = await hermes.create_customer()
    await _seed(redis, created["id"])
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        fast = await client.get(f"/api/conversations?{query}")
        routed = await client.get(f"/api/conversations/?{query}")
        assert fast.status_code == 200, fast.text
        assert _wire(fast) == _wire(routed)
        assert fast.headers["x-request-id"]
        cursor = fast.json()["nextCursor"]
        if cursor is not None:
            more = await client.get("/api/conversations", params={"cursor": cursor, "limit": 1})
            more_routed = await client.get("/api/conversations/", params={"cursor": cursor, "limit": 1})
            assert more.status_code == 200
            assert _wire(more) == _wire(more_routed)


async def test_every_field_and_the_pages(hermes: HermesServer, redis: Any) -> None:
    created = await hermes.create_customer()
    await _seed(redis, created["id"])
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        first = (await client.get("/api/conversations", params={"limit": 2})).json()
        rest = (await client.get("/api/conversations", params={"limit": 2, "cursor": first["nextCursor"]})).json()
    listed = first["conversations"] + rest["conversations"]
    assert rest["nextCursor"] is None
    assert [c["platform"] for c in listed] == ["whatsapp", "telegram", "email", "instagram"]
    whatsapp = listed[0]
    assert set(whatsapp) == {
        "conversationId",
        "platform",
        "account",
        "title",
        "participants",
        "lastMessageAt",
        "lastMessagePreview",
        "unreadCount",
        "canReply",
        "replyWindowExpiresAt",
    }
    assert whatsapp["participants"] == [{"id": "16505551234", "name": "Sheena"}]
    assert whatsapp["lastMessagePreview"] == "Is the table free? ü 🙂"
    assert whatsapp["lastMessageAt"].endswith(".123000Z")
    assert (whatsapp["unreadCount"], whatsapp["canReply"]) == (1, True)
    assert whatsapp["replyWindowExpiresAt"] is not None
    instagram = listed[3]
    assert (instagram["account"], instagram["lastMessagePreview"], instagram["canReply"]) == ("shop", "[image]", False)
    assert listed[1]["participants"] == [] and listed[1]["replyWindowExpiresAt"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=zz", "cursor"),
        ("account=Not%20A%20Name", "account"),
        ("platform=myspace", "platform"),
    ],
)
async def test_bad_queries_name_the_field(hermes: HermesServer, query: str, field: str) -> None:
    created = await hermes.create_customer()
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        fast = await client.get(f"/api/conversations?{query}")
        routed = await client.get(f"/api/conversations/?{query}")
    assert fast.status_code == 400
    assert fast.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in fast.json()["errors"]]
    assert _wire(fast) == _wire(routed)


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "hms_not-a-key"}, {"authorization": "Basic aGVybWVz"}])
async def test_a_refusal_reads_as_on_every_other_route(hermes: HermesServer, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=hermes.url, headers=headers) as client:
        fast = await client.get("/api/conversations")
        routed = await client.get("/api/usage")
    assert fast.status_code == 401
    assert fast.headers["www-authenticate"] == 'Bearer realm="hermes"'
    assert _wire(fast) == _wire(routed)


async def test_over_the_rate_limit_the_answer_says_when_to_come_back(hermes: HermesServer) -> None:
    created = await hermes.create_customer(plan="free")
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        replies = [await client.get("/api/conversations") for _ in range(200)]
        refused = next((r for r in replies if r.status_code == 429), None)
        assert refused is not None, "the free plan's requests per minute were never reached"
        routed = await client.get("/api/conversations/")
    assert routed.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["title"] == routed.json()["title"] == "Too many requests"


async def test_the_openapi_document_still_describes_the_list(hermes: HermesServer) -> None:
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        document = (await client.get("/schema/openapi.json")).json()
    listed = document["paths"]["/api/conversations"]["get"]
    assert {p["name"] for p in listed["parameters"]} >= {"platform", "account", "unreadOnly", "cursor", "limit"}
    assert "200" in listed["responses"]


async def test_a_kept_page_gives_way_to_every_change_made_elsewhere(hermes: HermesServer, redis: Any) -> None:
    """The page an agent polls is rendered once per change: a message recorded by another instance (here, straight
    into Redis) and a read through the framework's route both show at the very next call, as the route shows them."""
    created = await hermes.create_customer()
    cust = created["id"]
    await _seed(redis, cust)
    store = RedisConversationStore(redis)
    async with httpx.AsyncClient(base_url=hermes.url, headers={"x-api-key": created["apiKey"]}) as client:
        first = await client.get("/api/conversations")
        again = await client.get("/api/conversations")
        assert _wire(again) == _wire(first)

        key = ConversationKey(cust, Platform.WHATSAPP, "16505550000")
        now = datetime.now(UTC) + timedelta(seconds=2)  # after every seeded message, whose times are rounded
        arriving = Recorded(key, MessageView("wamid.new", IN, key.peer, "new here", now), "Newcomer")
        await store.record(cust, [arriving], now)
        arrived = await client.get("/api/conversations")
        assert [c["title"] for c in arrived.json()["conversations"]][:2] == ["Newcomer", "Sheena"]
        assert _wire(arrived) == _wire(await client.get("/api/conversations/"))

        newest = arrived.json()["conversations"][0]
        assert newest["unreadCount"] == 1
        assert (await client.get(f"/api/conversations/{newest['conversationId']}")).status_code == 200
        read = await client.get("/api/conversations")
        assert read.json()["conversations"][0]["unreadCount"] == 0
        assert _wire(read) == _wire(await client.get("/api/conversations/"))

        # A status update changes nothing the list shows: the kept page stays as it is.
        version = await redis.get(f"conv:{{{cust}}}:v")
        await store.set_status(cust, Platform.TELEGRAM, "default", "-100200300", "tg.1", "read")
        assert await redis.get(f"conv:{{{cust}}}:v") == version
        assert _wire(await client.get("/api/conversations")) == _wire(read)


async def test_kept_pages_are_each_customer_s_own(hermes: HermesServer, redis: Any) -> None:
    first, second = await hermes.create_customer(), await hermes.create_customer()
    await _seed(redis, first["id"])
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        mine = await client.get("/api/conversations", headers={"x-api-key": first["apiKey"]})
        theirs = await client.get("/api/conversations", headers={"x-api-key": second["apiKey"]})
    assert len(mine.json()["conversations"]) == 4
    assert theirs.json() == {"conversations": [], "nextCursor": None}
