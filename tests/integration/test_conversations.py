"""Conversations on a real server (Redis, MariaDB, the WhatsApp fake): webhooks in, sends out, the reply window."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dishka import Provider, Scope, provide

from hermes.adapters.redis.client import RedisClient
from hermes.adapters.redis.inbound_queue import RedisInboundQueue
from hermes.application.ports.inbound import InboundQueue
from hermes.entrypoints.settings import Settings
from tests import whatsapp_payloads as wa
from tests.integration.mcp_client import mcp_session
from tests.integration.oauth_support import start_public
from tests.integration.server import HermesServer
from tests.integration.test_console_browser import signed_in
from tests.integration.test_inbound_flows import connected_customer, eventually, number, post_event


class OwnQueue(Provider):
    """A webhook queue of this module's own: servers of other test runs on the same Redis cannot take its events."""

    scope = Scope.APP

    @provide(override=True)
    def queue(self, redis: RedisClient, settings: Settings) -> InboundQueue:
        return RedisInboundQueue(
            redis, name=f"test-{secrets.token_hex(4)}", reclaim_after=settings.inbound_reclaim_after
        )


@pytest.fixture(scope="module")
def server(mariadb_url: str, redis_url: str) -> Iterator[HermesServer]:
    from tests.support import make_settings

    settings: Settings = make_settings(HERMES_DATABASE_URL=mariadb_url, HERMES_REDIS_URL=redis_url)
    with HermesServer(settings, None, OwnQueue()) as running:
        yield running


def contact_number() -> str:
    return "1" + number()[:10]


async def receive(server: HermesServer, phone_number_id: str, sender: str, text: str, age_seconds: int = 60) -> str:
    message_id = wa.wamid()
    message = {**wa.text_message(message_id, text, sender), "timestamp": str(int(time.time()) - age_seconds)}
    body = wa.encode(wa.batch(wa.change(phone_number_id, messages=[message], contacts=[wa.contact(sender, "Sheena")])))
    reply = await post_event(server.url, body, wa.sign(body))
    assert reply.status_code == 200, reply.text
    return message_id


async def tool(client: Any, name: str, arguments: dict[str, Any]) -> Any:
    return await client.call_tool(name, arguments)


async def test_a_webhook_message_is_read_answered_and_the_answer_reaches_whatsapp(
    server: HermesServer, shared_graph: Any
) -> None:
    phone = number()
    customer = await connected_customer(server, phone)
    sender = contact_number()
    await receive(server, phone, sender, "Is the table for 3 still free?")

    async with mcp_session(server.url, customer["apiKey"]) as client:
        listed: dict[str, Any] = {}

        async def arrived() -> bool:
            nonlocal listed
            listed = (await tool(client, "conversations_list", {})).structured_content
            return bool(listed["conversations"])

        await eventually(arrived)
        [conversation] = listed["conversations"]
        assert (conversation["platform"], conversation["title"], conversation["unread_count"]) == (
            "whatsapp",
            "Sheena",
            1,
        )
        assert conversation["can_reply"] is True and conversation["reply_window_expires_at"]
        cid = conversation["conversation_id"]

        read = await tool(client, "conversation_read", {"conversation_id": cid})
        assert [m["text"] for m in read.structured_content["messages"]] == ["Is the table for 3 still free?"]
        assert "<untrusted-content" in read.content[0].text  # the contact's words reach the model fenced
        unread = await tool(client, "conversations_list", {"unread_only": True})
        assert unread.structured_content["conversations"] == []

        reply = await tool(client, "conversation_reply", {"conversation_id": cid, "text": "Yes, see you at 8."})
        assert reply.is_error is False, reply.content
        assert reply.structured_content["platform"] == "whatsapp"
        sent = shared_graph.sent_to(sender)
        assert [(s.phone_number_id, s.payload["text"]["body"]) for s in sent] == [(phone, "Yes, see you at 8.")]
        assert reply.structured_content["message_id"] == sent[0].message_id

        direct = await tool(client, "whatsapp_send_message", {"to": f"+{sender}", "message": "Parking is free."})
        assert direct.is_error is False, direct.content
        read = await tool(client, "conversation_read", {"conversation_id": cid})
        assert [(m["direction"], m["text"]) for m in read.structured_content["messages"]] == [
            ("in", "Is the table for 3 still free?"),
            ("out", "Yes, see you at 8."),
            ("out", "Parking is free."),
        ]


async def test_the_window_refuses_before_whatsapp_sees_anything(server: HermesServer, shared_graph: Any) -> None:
    phone = number()
    customer = await connected_customer(server, phone)
    quiet, stranger = contact_number(), contact_number()
    await receive(server, phone, quiet, "thanks!", age_seconds=25 * 3600)

    async with mcp_session(server.url, customer["apiKey"]) as client:

        async def arrived() -> bool:
            page = (await tool(client, "conversations_list", {})).structured_content
            return bool(page["conversations"])

        await eventually(arrived)
        [conversation] = (await tool(client, "conversations_list", {})).structured_content["conversations"]
        assert conversation["can_reply"] is False
        for to in (quiet, stranger):
            refused = await tool(client, "whatsapp_send_message", {"to": f"+{to}", "message": "hello again"})
            assert refused.is_error, refused.content
            assert "whatsapp_send_template" in refused.content[0].text
        refused = await tool(
            client, "conversation_reply", {"conversation_id": conversation["conversation_id"], "text": "hi"}
        )
        assert refused.is_error and "24 hours" in refused.content[0].text
        assert shared_graph.sent_to(quiet) == [] and shared_graph.sent_to(stranger) == []

        template = await tool(
            client, "whatsapp_send_template", {"to": f"+{quiet}", "template": "hello_world", "language": "en_US"}
        )
        assert template.is_error is False, template.content
        assert len(shared_graph.sent_to(quiet)) == 1


async def test_rest_twins_speak_camel_case(server: HermesServer, shared_graph: Any) -> None:
    phone = number()
    customer = await connected_customer(server, phone)
    sender = contact_number()
    await receive(server, phone, sender, "hello")

    async with server.client(customer["apiKey"]) as client:
        page: dict[str, Any] = {}

        async def arrived() -> bool:
            nonlocal page
            page = (await client.get("/api/conversations")).json()
            return bool(page.get("conversations"))

        await eventually(arrived)
        [conversation] = page["conversations"]
        assert set(conversation) >= {
            "conversationId",
            "lastMessageAt",
            "unreadCount",
            "canReply",
            "replyWindowExpiresAt",
        }
        assert page["nextCursor"] is None
        cid = conversation["conversationId"]

        read = await client.get(f"/api/conversations/{cid}")
        assert read.status_code == 200, read.text
        assert [m["messageId"] for m in read.json()["messages"]] and read.json()["conversation"]["unreadCount"] == 0

        sent = await client.post(f"/api/conversations/{cid}/messages", json={"text": "Hi from REST"})
        assert sent.status_code == 201, sent.text
        assert set(sent.json()) == {"success", "messageId", "platform"}
        assert shared_graph.sent_to(sender)[-1].payload["text"]["body"] == "Hi from REST"

        missing = await client.get("/api/conversations/c" + "0" * 23)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        malformed = await client.get("/api/conversations/nope")
        empty = await client.post(f"/api/conversations/{cid}/messages", json={"text": ""})
        assert (malformed.status_code, empty.status_code) == (400, 400)
        assert "text" in empty.text
        other = await server.create_customer(f"other-{phone}@example.com")
    async with server.client(other["apiKey"]) as client:
        assert (await client.get(f"/api/conversations/{cid}")).status_code == 404


async def test_the_console_lists_conversations_and_shows_one_escaped_without_marking_it_read(
    settings: Settings, start_hermes: Callable[..., HermesServer]
) -> None:
    console = start_public(start_hermes, settings.model_copy(update={"console_sign_ins_per_minute": 1000}), OwnQueue())
    phone = number()
    customer = await connected_customer(console, phone)
    sender = contact_number()
    await receive(console, phone, sender, "<script>alert(1)</script> see you")

    async with signed_in(console, customer["apiKey"]) as (client, _):
        listing = ""

        async def arrived() -> bool:
            nonlocal listing
            listing = (await client.get("/console/conversations")).text
            return "Sheena" in listing

        await eventually(arrived)
        link = re.search(r'href="(/console/conversations/c[0-9a-f]{23})"', listing)
        assert link, listing
        page = await client.get(link.group(1))
        assert page.status_code == 200
        assert "&lt;script&gt;alert(1)&lt;/script&gt; see you" in page.text and "<script>alert" not in page.text
        assert (await client.get("/console/conversations/c" + "0" * 23)).status_code == 404
    async with console.client(customer["apiKey"]) as api:
        [conversation] = (await api.get("/api/conversations")).json()["conversations"]
        assert conversation["unreadCount"] == 1
