"""Seed flow 4 through the real app under uvicorn, with real Redis and MariaDB: Meta's handshake and
signed webhooks, routing into the right inbox, dedupe, callbacks over https, a SIGKILL between ack and
routing, and Redis going away."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dishka import Provider, Scope, provide

from hermes.adapters.callback_sender import HttpCallbackSender
from hermes.adapters.platforms.http1 import Http1Transport
from hermes.adapters.platforms.network import HostGuard
from hermes.adapters.redis.inbox import inbox_key
from hermes.application.ports.callbacks import CallbackSender
from hermes.domain.callbacks import signature
from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.fakes.graph import FakeGraph
from tests.fakes.telegram import FakeTelegram
from tests.integration.callback_receiver import CallbackReceiver
from tests.integration.inbound_sides import Fakes, Side, sides
from tests.integration.mcp_client import mcp_session
from tests.integration.own_redis import OwnRedis
from tests.integration.process_server import HermesProcess, settings_env
from tests.integration.server import HermesServer
from tests.support import make_settings, whatsapp_credentials

EVENTS = "queue:{inbound}:events"


def number() -> str:
    import secrets

    return str(secrets.randbelow(10**12) + 10**12)


async def post_event(url: str, body: bytes, signature_header: str | None = None, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if signature_header is not None:
        sent["X-Hub-Signature-256"] = signature_header
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.post("/webhook/whatsapp", content=body, headers=sent)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def connected_customer(server: HermesServer | HermesProcess, phone_number_id: str) -> dict[str, Any]:
    customer = await server.create_customer(f"{phone_number_id}@example.com")
    async with server.client(customer["apiKey"]) as client:
        reply = await client.post("/api/connect/whatsapp", json=whatsapp_credentials(phone_number_id))
        assert reply.status_code == 200, reply.text
    return customer


async def inbox_of(server: HermesServer | HermesProcess, api_key: str, **params: Any) -> dict[str, Any]:
    async with server.client(api_key) as client:
        reply = await client.get("/api/inbox", params=params)
    assert reply.status_code == 200, reply.text
    page: dict[str, Any] = reply.json()
    return page


async def wait_for_entries(
    server: HermesServer | HermesProcess, api_key: str, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def enough() -> bool:
        nonlocal found
        found = (await inbox_of(server, api_key))["entries"]
        return len(found) >= count

    await eventually(enough, timeout)
    return found


async def last_queued(aio_redis: Any) -> str:
    try:
        info = await aio_redis.xinfo_stream(EVENTS)
    except Exception:
        return "none"
    last = info["last-generated-id"]
    return last.decode() if isinstance(last, bytes) else str(last)


# --- handshake ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}, 200),
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"}, 403),
        ({"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}, 403),
        ({"hub.mode": "subscribe", "hub.challenge": "1158201444"}, 403),
        ({"hub.mode": "subscribe", "hub.verify_token": "verify-me"}, 403),
        ({}, 403),
    ],
)
async def test_verification_handshake(hermes: HermesServer, params: dict[str, str], status: int) -> None:
    async with httpx.AsyncClient(base_url=hermes.url) as client:
        reply = await client.get("/webhook/whatsapp", params=params)
    assert reply.status_code == status
    if status == 200:
        assert reply.text == "1158201444"
        assert reply.headers["content-type"].startswith("text/plain")
    else:
        assert reply.headers["content-type"] == "application/problem+json"


# --- signature ----------------------------------------------------------------------------------


async def test_bad_missing_or_reserialised_signatures_are_refused_and_nothing_is_queued(
    hermes: HermesServer, aio_redis: Any
) -> None:
    n = number()
    customer = await connected_customer(hermes, n)
    payload = wa.batch(wa.change(n, contacts=[wa.contact()], messages=[wa.text_message(wa.wamid())]))
    body = wa.encode(payload)
    reserialised = json.dumps(payload, indent=1).encode()  # same JSON, other bytes
    before = await last_queued(aio_redis)
    attempts = [
        (body, None),
        (body, wa.sign(body, "not-the-app-secret")),
        (reserialised, wa.sign(body)),
        (body, wa.sign(body).removeprefix("sha256=")),
        (body, "sha1=" + wa.sign(body)[7:]),
        (body + b" ", wa.sign(body)),
    ]
    for sent, header in attempts:
        reply = await post_event(hermes.url, sent, header)
        assert reply.status_code == 401, (header, reply.text)
        assert reply.headers["content-type"] == "application/problem+json"
    assert await last_queued(aio_redis) == before
    await asyncio.sleep(0.5)
    assert (await inbox_of(hermes, customer["apiKey"]))["entries"] == []


async def test_rotated_secrets_both_work(settings: Settings, start_hermes: Any) -> None:
    server = start_hermes(settings.model_copy(update={"whatsapp_app_secret": "new-secret,app-secret"}))
    n = number()
    customer = await connected_customer(server, n)
    for secret in ("new-secret", "app-secret"):
        body = wa.encode(wa.batch(wa.change(n, messages=[wa.text_message(wa.wamid())])))
        reply = await post_event(server.url, body, wa.sign(body, secret))
        assert reply.status_code == 200 and reply.text == "EVENT_RECEIVED"
    await wait_for_entries(server, customer["apiKey"], 2)


async def test_body_over_one_mebibyte_is_refused(hermes: HermesServer) -> None:
    body = b'{"object":"whatsapp_business_account","pad":"' + b"x" * (1024 * 1024) + b'"}'
    reply = await post_event(hermes.url, body, wa.sign(body))
    assert reply.status_code == 413


# --- routing ------------------------------------------------------------------------------------


async def test_real_payload_shapes_land_in_the_right_inbox(hermes: HermesServer) -> None:
    n = number()
    customer = await connected_customer(hermes, n)
    text_id, image_id, reply_id, sent = wa.wamid(), wa.wamid(), wa.wamid(), wa.wamid()
    batches = [
        wa.batch(wa.change(n, contacts=[wa.contact()], messages=[wa.text_message(text_id, "hello there")])),
        wa.batch(wa.change(n, contacts=[wa.contact()], messages=[wa.image_message(image_id)])),
        wa.batch(wa.change(n, contacts=[wa.contact()], messages=[wa.reply_message(reply_id, sent)])),
        wa.batch(wa.change(n, statuses=[wa.status(sent, "sent"), wa.status(sent, "delivered")])),
        wa.batch(wa.change(n, statuses=[wa.status(sent, "read")])),
        wa.batch(wa.change(n, statuses=[wa.status(sent, "failed")])),
    ]
    for payload in batches:
        body = wa.encode(payload)
        reply = await post_event(hermes.url, body, wa.sign(body))
        assert reply.status_code == 200
        assert reply.text == "EVENT_RECEIVED"
        await wait_for_entries(hermes, customer["apiKey"], 1)  # keep arrival order for the assertion below

    entries = await wait_for_entries(hermes, customer["apiKey"], 7)
    assert [e["kind"] for e in entries] == ["message"] * 3 + ["status"] * 4
    text, image, reply_entry = (e["message"] for e in entries[:3])
    assert text["text"] == "hello there" and text["contactName"] == "Sheena" and text["from"] == "16505551234"
    assert text["to"] == n and text["id"] == text_id and text["type"] == "text"
    assert image["media"] == {
        "kind": "image",
        "mediaId": "1203417644567187",
        "mimeType": "image/jpeg",
        "sha256": "HgfUvhVNGqUhcBEsPf1KS6bBmQ4mnPjo/rGX9g0Rzzk=",
        "caption": "the invoice",
    }
    assert reply_entry["replyTo"] == sent and reply_entry["text"] == "yes please"
    statuses = [e["status"] for e in entries[3:]]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read", "failed"]
    assert statuses[3]["errorCode"] == "131047" and statuses[3]["errorTitle"] == "Re-engagement message"
    assert all(e["platform"] == "whatsapp" and e["receivedAt"] for e in entries)

    # Paging with the cursor, oldest first; an empty page keeps the cursor for polling.
    first = await inbox_of(hermes, customer["apiKey"], limit=4)
    rest = await inbox_of(hermes, customer["apiKey"], cursor=first["nextCursor"], limit=4)
    assert [e["id"] for e in first["entries"] + rest["entries"]] == [e["id"] for e in entries]
    done = await inbox_of(hermes, customer["apiKey"], cursor=rest["nextCursor"])
    assert done["entries"] == [] and done["nextCursor"] == rest["nextCursor"]

    # The same over MCP: the agent reads the replies to what it sent.
    async with mcp_session(hermes.url, customer["apiKey"]) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "inbox_list" in names
        result = await client.call_tool("inbox_list", {"limit": 3})
        assert result.is_error is False
        listed = result.structured_content
        assert [e["message"]["id"] for e in listed["entries"]] == [text_id, image_id, reply_id]
        assert listed["entries"][2]["message"]["reply_to"] == sent
        more = await client.call_tool("inbox_list", {"cursor": listed["next_cursor"], "limit": 10})
        assert [e["status"]["status"] for e in more.structured_content["entries"]][-1] == "failed"
        bad = await client.call_tool("inbox_list", {"limit": 0})
        assert bad.is_error and "limit" in bad.content[0].text


async def test_a_mixed_batch_is_split_between_two_customers(hermes: HermesServer) -> None:
    n1, n2 = number(), number()
    alice, bob = await connected_customer(hermes, n1), await connected_customer(hermes, n2)
    a_id, b_id, b_sent = wa.wamid(), wa.wamid(), wa.wamid()
    body = wa.encode(
        wa.batch(
            wa.change(n1, contacts=[wa.contact()], messages=[wa.text_message(a_id, "for alice")]),
            wa.change(n2, contacts=[wa.contact("447700900123", "Bo")], messages=[wa.text_message(b_id, "for bob")]),
            wa.change(n2, statuses=[wa.status(b_sent, "delivered")]),
            wa.change(number(), messages=[wa.text_message(wa.wamid(), "for nobody")]),
        )
    )
    assert (await post_event(hermes.url, body, wa.sign(body))).status_code == 200
    alice_entries = await wait_for_entries(hermes, alice["apiKey"], 1)
    bob_entries = await wait_for_entries(hermes, bob["apiKey"], 2)
    await asyncio.sleep(0.3)
    assert [e["message"]["text"] for e in (await inbox_of(hermes, alice["apiKey"]))["entries"]] == ["for alice"]
    assert [e["kind"] for e in (await inbox_of(hermes, bob["apiKey"]))["entries"]] == ["message", "status"]
    assert alice_entries[0]["message"]["id"] == a_id and bob_entries[0]["message"]["id"] == b_id


async def test_the_same_payload_posted_ten_times_at_once_is_one_inbox_entry(hermes: HermesServer) -> None:
    n = number()
    customer = await connected_customer(hermes, n)
    body = wa.encode(wa.batch(wa.change(n, contacts=[wa.contact()], messages=[wa.text_message(wa.wamid())])))
    replies = await asyncio.gather(*(post_event(hermes.url, body, wa.sign(body)) for _ in range(10)))
    assert [r.status_code for r in replies] == [200] * 10
    await wait_for_entries(hermes, customer["apiKey"], 1)
    await asyncio.sleep(1.0)
    assert len((await inbox_of(hermes, customer["apiKey"]))["entries"]) == 1


async def test_a_customer_sees_only_its_own_inbox(hermes: HermesServer) -> None:
    n = number()
    owner = await connected_customer(hermes, n)
    stranger = await hermes.create_customer("stranger@example.com")
    body = wa.encode(wa.batch(wa.change(n, messages=[wa.text_message(wa.wamid())])))
    await post_event(hermes.url, body, wa.sign(body))
    entries = await wait_for_entries(hermes, owner["apiKey"], 1)
    assert (await inbox_of(hermes, stranger["apiKey"]))["entries"] == []
    assert (await inbox_of(hermes, stranger["apiKey"], cursor="0-0"))["entries"] == []
    assert entries[0]["id"]
    async with hermes.client() as anonymous:
        assert (await anonymous.get("/api/inbox")).status_code == 401


async def test_a_malformed_signed_body_goes_to_the_dead_letters(hermes: HermesServer, aio_redis: Any) -> None:
    body = b'{"object":"whatsapp_business_account","entry":"not a list"}'
    assert (await post_event(hermes.url, body, wa.sign(body))).status_code == 200

    async def buried() -> bool:
        letters = await aio_redis.xrange("queue:{inbound}:dead")
        return any(fields[b"b"] == body for _, fields in letters)

    await eventually(buried)
    letters = await aio_redis.xrange("queue:{inbound}:dead")
    dead_id = next(i for i, f in letters if f[b"b"] == body).decode()
    assert b"not a WhatsApp webhook batch" in next(f[b"why"] for _, f in letters if f[b"b"] == body)
    await aio_redis.xdel("queue:{inbound}:dead", dead_id)


# --- callbacks ----------------------------------------------------------------------------------


def trusting(receiver: CallbackReceiver) -> Provider:
    """The production sender over a client that trusts the receiver's self-signed certificate."""

    class TrustReceiver(Provider):
        scope = Scope.APP

        @provide
        async def sender(self) -> AsyncIterator[CallbackSender]:
            client = httpx.AsyncClient(transport=Http1Transport(verify=receiver.trust()), trust_env=False)
            yield HttpCallbackSender(client, HostGuard(allow_private=True))
            await client.aclose()

    return TrustReceiver()


async def test_callbacks_receive_signed_posts_retried_with_backoff(
    settings: Settings, start_hermes: Any, tmp_path: Path, own_redis: OwnRedis
) -> None:
    with CallbackReceiver(tmp_path) as receiver:
        private = settings.model_copy(update={"callback_sweep_seconds": 0.5, "redis_url": own_redis.url})
        server = start_hermes(private, None, trusting(receiver))
        n = number()
        customer = await connected_customer(server, n)
        key = customer["apiKey"]
        async with server.client(key) as client:
            assert (await client.get("/api/inbound/callback")).status_code == 404
            refused = await client.put("/api/inbound/callback", json={"url": receiver.url.replace("https", "http")})
            assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "url"
            unknown = await client.put("/api/inbound/callback", json={"url": receiver.url, "x": 1})
            assert unknown.status_code == 400
            registered = await client.put("/api/inbound/callback", json={"url": receiver.url})
            assert registered.status_code == 200, registered.text
        secret = registered.json()["signingSecret"]
        assert secret.startswith("whsec_") and registered.json()["url"] == receiver.url

        receiver.answers = [500]
        first, second = wa.wamid(), wa.wamid()
        for message_id in (first, second):
            body = wa.encode(wa.batch(wa.change(n, messages=[wa.text_message(message_id, "ping")])))
            assert (await post_event(server.url, body, wa.sign(body))).status_code == 200

        async def both_delivered() -> bool:
            ids = [json.loads(r.body)["entry"]["message"]["id"] for r in receiver.received]
            return ids[-2:] == [first, second]

        await eventually(both_delivered, timeout=20)
        ids = [json.loads(r.body)["entry"]["message"]["id"] for r in receiver.received]
        assert ids == [first, first, second]  # refused once, retried after the backoff, in order
        assert receiver.received[1].at - receiver.received[0].at >= 4.5
        for request in receiver.received:
            stamp = int(request.headers["x-hermes-timestamp"])
            assert abs(stamp - time.time()) < 60
            assert request.headers["x-hermes-signature"] == signature(secret, stamp, request.body)
            assert request.headers["x-hermes-event"] == "inbound.message"
            assert request.headers["content-type"] == "application/json"
        assert json.loads(receiver.received[0].body)["customerId"] == customer["id"]

        async with server.client(key) as client:
            state = (await client.get("/api/inbound/callback")).json()
            assert state["url"] == receiver.url and state["consecutiveFailures"] == 0
            assert [(d["outcome"], d.get("status")) for d in state["deliveries"]] == [
                ("delivered", 200),
                ("delivered", 200),
                ("failed", 500),
            ]
            assert "signingSecret" not in state
            assert (await client.delete("/api/inbound/callback")).status_code == 204
            assert (await client.get("/api/inbound/callback")).status_code == 404
            assert (await client.delete("/api/inbound/callback")).status_code == 204


async def test_the_callback_names_the_account_that_received_the_message(
    settings: Settings, start_hermes: Any, tmp_path: Path, own_redis: OwnRedis
) -> None:
    with CallbackReceiver(tmp_path) as receiver:
        private = settings.model_copy(update={"callback_sweep_seconds": 0.5, "redis_url": own_redis.url})
        server = start_hermes(private, None, trusting(receiver))
        shop, office = number(), number()
        customer = await connected_customer(server, shop)
        async with server.client(customer["apiKey"]) as client:
            second = await client.post("/api/connect/whatsapp?account=work", json=whatsapp_credentials(office))
            assert second.status_code == 200, second.text
            registered = await client.put("/api/inbound/callback", json={"url": receiver.url})
            assert registered.status_code == 200, registered.text
        sent = {}
        for phone in (shop, office):
            sent[phone] = wa.wamid()
            body = wa.encode(wa.batch(wa.change(phone, messages=[wa.text_message(sent[phone], "ping")])))
            assert (await post_event(server.url, body, wa.sign(body))).status_code == 200

        async def both_delivered() -> bool:
            return len(receiver.received) >= 2

        await eventually(both_delivered, timeout=20)
        entries = {json.loads(r.body)["entry"]["message"]["id"]: json.loads(r.body)["entry"] for r in receiver.received}
        assert (entries[sent[shop]]["account"], entries[sent[shop]]["message"]["to"]) == ("default", shop)
        assert (entries[sent[office]]["account"], entries[sent[office]]["message"]["to"]) == ("work", office)


async def test_callback_urls_on_private_networks_are_refused(settings: Settings, start_hermes: Any) -> None:
    server = start_hermes(settings.model_copy(update={"allow_private_networks": False}))
    customer = await server.create_customer()
    async with server.client(customer["apiKey"]) as client:
        for url in ("https://127.0.0.1/hook", "https://169.254.169.254/latest", "https://10.1.2.3/", "https://[::1]/"):
            reply = await client.put("/api/inbound/callback", json={"url": url})
            assert reply.status_code == 400, url
            assert reply.json()["errors"][0]["field"] == "url"


# --- crash between ack and routing ---------------------------------------------------------------


@pytest.mark.parametrize("side", sides(), ids=lambda s: s.platform)
async def test_sigkill_after_the_ack_and_before_routing_loses_nothing(
    settings: Settings, tmp_path: Path, own_redis: OwnRedis, own_aio_redis: Any, side: Side
) -> None:
    aio_redis = own_aio_redis
    with FakeGraph() as graph, FakeTelegram() as telegram:
        fakes = Fakes(graph, telegram)
        env = settings_env(
            fakes.settings(settings),
            HERMES_REDIS_URL=own_redis.url,
            HERMES_INBOUND_RECLAIM_AFTER="1",
            HERMES_LOG_LEVEL="WARNING",
        )
        server = HermesProcess(env, tmp_path)
        try:
            server.start(HERMES_TEST_ROUTING_DELAY_MS="5000")
            customer = await server.create_customer()
            reply, account = await side.connect(server.url, fakes, customer["apiKey"])
            assert reply.status_code == 200, reply.text
            delivery = side.deliver(fakes, account, "before the crash")
            assert (await delivery.post(server.url)).status_code == 200
            event_id = await last_queued(aio_redis)
            await asyncio.sleep(0.3)  # the consumer has taken it and sits in the routing delay
            server.kill()
            assert await aio_redis.xlen(inbox_key(customer["id"])) == 0  # acknowledged, not routed

            server.start()  # a new process, a new consumer: the dead one's entry is reclaimed
            entries = await wait_for_entries(server, customer["apiKey"], 1, timeout=20)
            assert entries[0]["message"]["id"] == delivery.message_id
            await asyncio.sleep(2.5)  # past another reclaim period: still exactly once
            assert len((await inbox_of(server, customer["apiKey"]))["entries"]) == 1
            # Acknowledged and deleted once routed: neither pending nor in the stream any more.
            assert await aio_redis.xpending_range(EVENTS, "hermes", event_id, event_id, 1) == []
            assert await aio_redis.xrange(EVENTS, event_id, event_id) == []
        finally:
            server.stop()


# --- Redis goes away ------------------------------------------------------------------------------


@pytest.fixture
async def own_aio_redis(own_redis: OwnRedis) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(own_redis.url)
    yield client
    await client.aclose()


async def test_with_redis_stopped_the_webhook_answers_503_then_a_retry_is_routed(
    mariadb_url: str, start_hermes: Any, own_redis: OwnRedis
) -> None:
    settings = make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=own_redis.url)
    server = start_hermes(settings)
    n = number()
    customer = await connected_customer(server, n)
    message_id = wa.wamid()
    body = wa.encode(wa.batch(wa.change(n, contacts=[wa.contact()], messages=[wa.text_message(message_id)])))

    own_redis.stop()
    for _ in range(3):
        reply = await post_event(server.url, body, wa.sign(body))
        assert reply.status_code == 503, reply.text
        assert reply.headers["retry-after"] == "5"

    own_redis.start()

    async def accepted() -> bool:
        return (await post_event(server.url, body, wa.sign(body))).status_code == 200

    await eventually(accepted, timeout=10)  # Meta's retry
    entries = await wait_for_entries(server, customer["apiKey"], 1, timeout=20)
    assert [e["message"]["id"] for e in entries] == [message_id]
