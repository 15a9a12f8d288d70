"""Every tool of DESIGN.md section 4 through the official MCP client over real HTTP, in both modes.

A full pass of all tools runs on each protocol generation: the customer on 2026-07-28, the
single-user deployment on 2025-11-25 (with initialize); a smaller cross-check swaps them (one
tool per platform). Each test asserts what a user sees (isError false, the structured result),
exactly which requests reached the fake platform and with whose credentials, and the one audit
entry the call left (without the message text or a secret).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
import redis

from tests.fakes.linkedin import current_version
from tests.fakes.mail import ImapServer
from tests.integration.mcp_client import mcp_session
from tests.integration.tools_e2e.world import (
    GENERATIONS,
    PLATFORMS,
    TOOLS,
    Account,
    Fakes,
    Tenant,
    audit_count,
    audit_entries,
    audit_raw,
    structured,
    today,
    unique,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Expect:
    """What the audit entry of the call must say, and what it must not contain."""

    target: str | None
    private: tuple[str, ...] = ()


@dataclass
class Ctx:
    client: Any
    tenant: Tenant
    fakes: Fakes
    calls: int = 0

    @property
    def acct(self) -> Account:
        return self.tenant.account

    @property
    def single_user(self) -> bool:
        return self.tenant.customer_id is None

    async def ok(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        result = structured(await self.client.call_tool(tool, arguments))
        shown = json.dumps(result)
        assert not [s for s in self.acct.secrets if s in shown], "a credential is in the tool result"
        return result


Check = Callable[[Ctx], Awaitable[Expect]]
CHECKS: dict[str, Check] = {}


def check(tool: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[tool] = fn
        return fn

    return register


def wire(fake: Any) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


def deliver(imap: ImapServer, user: str, subject: str, body: str, sender: str = "Billing <billing@vendor.test>") -> int:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = user
    message["Subject"] = subject
    message["Date"] = "Tue, 24 Nov 2026 09:30:00 +0000"
    message["Message-ID"] = f"<{unique()}@vendor.test>"
    message.set_content(body)
    return imap.deliver(user, message)


# ---------------------------------------------------------------------------------------------- WhatsApp


def _graph_send(ctx: Ctx) -> dict[str, Any]:
    """The one `POST /{phoneNumberId}/messages` the call made, with this tenant's token."""
    graph, acct = ctx.fakes.graph, ctx.acct
    assert wire(graph) == [("POST", f"/v23.0/{acct.wa_phone_id}/messages")]
    request = graph.last_request
    assert request.bearer_token == acct.wa_token
    assert request.content_type == "application/json"
    body: dict[str, Any] = request.json
    return body


@check("whatsapp_send_message")
async def _(ctx: Ctx) -> Expect:
    acct, graph = ctx.acct, ctx.fakes.graph
    inbound = graph.add_inbound_message(acct.wa_recipient)
    text = f"Your order shipped {unique()}"
    result = await ctx.ok("whatsapp_send_message", {"to": acct.wa_recipient, "message": text, "reply_to": inbound})
    sent = graph.sent[-1]
    assert result == {"success": True, "message_id": sent.message_id, "wa_id": sent.wa_id}
    assert result["message_id"].startswith("wamid.")
    assert (sent.token, sent.phone_number_id, sent.type) == (acct.wa_token, acct.wa_phone_id, "text")
    assert _graph_send(ctx) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": acct.wa_recipient,
        "type": "text",
        "text": {"body": text, "preview_url": True},
        "context": {"message_id": inbound},
    }
    return Expect(acct.wa_recipient, (text,))


@check("whatsapp_send_template")
async def _(ctx: Ctx) -> Expect:
    acct, graph = ctx.acct, ctx.fakes.graph
    name, order = unique("Ada-"), unique("order-")
    result = await ctx.ok(
        "whatsapp_send_template",
        {"to": acct.wa_recipient, "template": "e2e_order_update", "language": "en_US", "parameters": [name, order]},
    )
    sent = graph.sent[-1]
    assert result == {
        "success": True,
        "message_id": sent.message_id,
        "wa_id": sent.wa_id,
        "message_status": "accepted",
    }
    assert sent.token == acct.wa_token
    assert _graph_send(ctx) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": acct.wa_recipient,
        "type": "template",
        "template": {
            "name": "e2e_order_update",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": name}, {"type": "text", "text": order}]}
            ],
        },
    }
    return Expect(acct.wa_recipient, (name, order))


@check("whatsapp_send_media")
async def _(ctx: Ctx) -> Expect:
    acct, graph = ctx.acct, ctx.fakes.graph
    graph.add_inbound_message(acct.wa_recipient)  # the 24-hour window is open
    caption = f"Invoice for November {unique()}"
    url = f"https://files.example.com/{unique()}/invoice.pdf"
    result = await ctx.ok(
        "whatsapp_send_media",
        {"to": acct.wa_recipient, "kind": "document", "url": url, "caption": caption, "filename": "invoice.pdf"},
    )
    assert result["success"] is True and result["message_id"] == graph.sent[-1].message_id
    assert _graph_send(ctx) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": acct.wa_recipient,
        "type": "document",
        "document": {"link": url, "caption": caption, "filename": "invoice.pdf"},
    }
    return Expect(acct.wa_recipient, (caption,))


@check("whatsapp_mark_read")
async def _(ctx: Ctx) -> Expect:
    acct, graph = ctx.acct, ctx.fakes.graph
    inbound = graph.add_inbound_message(acct.wa_recipient)
    result = await ctx.ok("whatsapp_mark_read", {"message_id": inbound})
    assert result == {"success": True, "message_id": inbound}
    assert graph.read_receipts[-1] == inbound
    assert _graph_send(ctx) == {"messaging_product": "whatsapp", "status": "read", "message_id": inbound}
    return Expect(inbound)


# ---------------------------------------------------------------------------------------------- Telegram


@check("telegram_send_message")
async def _(ctx: Ctx) -> Expect:
    acct, telegram = ctx.acct, ctx.fakes.telegram
    question = telegram.push_message(acct.tg_token, acct.tg_chat, "is the report ready?")
    secret = unique("figures-")
    text = f"<b>Report</b> ready: {secret}"
    result = await ctx.ok(
        "telegram_send_message",
        {"chat_id": acct.tg_chat, "text": text, "parse_mode": "HTML", "reply_to": question["message_id"]},
    )
    sent = telegram.sent_messages(acct.tg_token, acct.tg_chat)[-1]
    assert result == {"success": True, "message_id": sent["message_id"], "chat_id": acct.tg_chat, "date": sent["date"]}
    assert sent["text"] == f"Report ready: {secret}"
    # The Bot API authenticates by the token in the path: this tenant's bot.
    assert wire(telegram) == [("POST", f"/bot{acct.tg_token}/sendMessage")]
    assert telegram.last_request.json == {
        "chat_id": acct.tg_chat,
        "text": text,
        "parse_mode": "HTML",
        "reply_parameters": {"message_id": question["message_id"]},
    }
    return Expect(str(acct.tg_chat), (secret,))


@check("telegram_get_updates")
async def _(ctx: Ctx) -> Expect:
    acct, telegram = ctx.acct, ctx.fakes.telegram
    text = f"hello bot {unique()}"
    pushed = telegram.push_message(acct.tg_token, acct.tg_chat, text)
    result = await ctx.ok("telegram_get_updates", {"limit": 100})
    assert result["success"] is True
    mine = [u for u in result["updates"] if u.get("text") == text]
    assert len(mine) == 1
    assert mine[0]["type"] == "message"
    assert (mine[0]["chat_id"], mine[0]["message_id"]) == (acct.tg_chat, pushed["message_id"])
    assert result["next_offset"] == max(u["update_id"] for u in result["updates"]) + 1
    request = telegram.last_request
    assert (request.method, request.path) == ("GET", f"/bot{acct.tg_token}/getUpdates")
    assert request.query == {"limit": "100", "timeout": "0"}

    # The offset confirms what was read: nothing comes back twice.
    again = await ctx.ok("telegram_get_updates", {"offset": result["next_offset"]})
    assert again == {"success": True, "updates": [], "next_offset": None}
    assert telegram.last_request.query["offset"] == str(result["next_offset"])
    return Expect(None, (text,))


# ---------------------------------------------------------------------------------------------- Discord


def _discord_request(ctx: Ctx, method: str) -> Any:
    discord, acct = ctx.fakes.discord, ctx.acct
    assert wire(discord) == [(method, f"/api/v10/channels/{acct.dc_channel}/messages")]
    request = discord.last_request
    assert request.header("authorization") == f"Bot {acct.dc_token}"
    assert (request.header("user-agent") or "").startswith("DiscordBot (")
    return request


@check("discord_send_message")
async def _(ctx: Ctx) -> Expect:
    acct, discord = ctx.acct, ctx.fakes.discord
    question = discord.post_message(acct.dc_channel, "did the deploy finish?")
    content = f"Deploy finished {unique()}"
    result = await ctx.ok(
        "discord_send_message", {"channel_id": acct.dc_channel, "content": content, "reply_to": question["id"]}
    )
    newest = discord.messages(acct.dc_channel)[0]
    assert result == {"success": True, "message_id": newest["id"], "channel_id": acct.dc_channel}
    assert newest["content"] == content
    assert _discord_request(ctx, "POST").json == {
        "content": content,
        "allowed_mentions": {"parse": ["users"], "replied_user": True},
        "message_reference": {"message_id": question["id"], "channel_id": acct.dc_channel},
    }
    return Expect(acct.dc_channel, (content,))


@check("discord_read_messages")
async def _(ctx: Ctx) -> Expect:
    acct, discord = ctx.acct, ctx.fakes.discord
    posted = [discord.post_message(acct.dc_channel, f"standup note {i} {unique()}") for i in range(3)]
    result = await ctx.ok("discord_read_messages", {"channel_id": acct.dc_channel, "limit": 2})
    assert result["success"] is True
    assert [m["content"] for m in result["messages"]] == [posted[2]["content"], posted[1]["content"]]
    assert result["messages"][0]["message_id"] == posted[2]["id"]
    assert result["messages"][0]["author_username"] == "alice"
    assert result["oldest_message_id"] == posted[1]["id"]
    assert _discord_request(ctx, "GET").query == {"limit": "2"}
    return Expect(acct.dc_channel, tuple(p["content"] for p in posted))


# ---------------------------------------------------------------------------------------------- X


def _x_request(ctx: Ctx, method: str, path: str) -> Any:
    x = ctx.fakes.x
    assert wire(x) == [(method, path)]
    assert x.last_request.bearer_token == ctx.acct.x_token
    return x.last_request


@check("twitter_post_tweet")
async def _(ctx: Ctx) -> Expect:
    acct, x = ctx.acct, ctx.fakes.x
    original = x.add_tweet("What ships this week?", username="curious_dev")
    text = f"Hermes ships this week {unique()}"
    result = await ctx.ok("twitter_post_tweet", {"text": text, "reply_to": original["id"]})
    posted = x.tweets[result["tweet_id"]]
    assert result == {
        "success": True,
        "tweet_id": posted["id"],
        "url": f"https://x.com/i/web/status/{posted['id']}",
    }
    assert posted["text"] == text and posted["in_reply_to"] == original["id"]
    assert x.users[posted["author_id"]].username == acct.x_username
    request = _x_request(ctx, "POST", "/2/tweets")
    assert request.json == {"text": text, "reply": {"in_reply_to_tweet_id": original["id"]}}
    return Expect(original["id"], (text,))


@check("twitter_delete_tweet")
async def _(ctx: Ctx) -> Expect:
    acct, x = ctx.acct, ctx.fakes.x
    mine = x.add_tweet(f"typo {unique()}", username=acct.x_username)
    result = await ctx.ok("twitter_delete_tweet", {"tweet_id": mine["id"]})
    assert result == {"success": True, "tweet_id": mine["id"], "deleted": True}
    assert x.tweets[mine["id"]]["deleted"] is True
    _x_request(ctx, "DELETE", f"/2/tweets/{mine['id']}")
    return Expect(mine["id"])


@check("twitter_search_recent")
async def _(ctx: Ctx) -> Expect:
    x = ctx.fakes.x
    needle = unique("hermesneedle")
    found = x.add_tweet(f"loving {needle} today", username="fan_account")
    x.add_tweet("unrelated chatter", username="fan_account")
    result = await ctx.ok("twitter_search_recent", {"query": needle, "max_results": 10})
    assert result["success"] is True and result["result_count"] == 1 and result["next_token"] is None
    [tweet] = result["tweets"]
    assert (tweet["tweet_id"], tweet["text"], tweet["author_id"]) == (found["id"], found["text"], found["author_id"])
    request = _x_request(ctx, "GET", "/2/tweets/search/recent")
    assert request.query["query"] == needle and request.query["max_results"] == "10"
    return Expect(None)


# ---------------------------------------------------------------------------------------------- LinkedIn


@check("linkedin_create_post")
async def _(ctx: Ctx) -> Expect:
    acct, linkedin = ctx.acct, ctx.fakes.linkedin
    text = f"Shipping Hermes today #mcp {unique()}"
    result = await ctx.ok("linkedin_create_post", {"text": text, "visibility": "CONNECTIONS"})
    post = linkedin.posts[-1]
    assert result == {
        "success": True,
        "post_urn": post["id"],
        "url": f"https://www.linkedin.com/feed/update/{post['id']}/",
        "author_urn": acct.li_urn,
    }
    assert (post["author"], post["commentary"], post["visibility"]) == (acct.li_urn, text, "CONNECTIONS")
    calls = wire(linkedin)
    # A customer connected without authorUrn: the author is resolved once (then cached) from /v2/userinfo.
    assert calls[-1] == ("POST", "/rest/posts")
    assert calls[:-1] in ([], [("GET", "/v2/userinfo")])
    if ctx.single_user:
        assert calls[:-1] == []  # LINKEDIN_DEFAULT_AUTHOR_URN is set
    for request in linkedin.requests:
        assert request.bearer_token == acct.li_token
    request = linkedin.last_request
    assert request.header("linkedin-version") == current_version()
    assert request.header("x-restli-protocol-version") == "2.0.0"
    return Expect(None, (text,))


# ---------------------------------------------------------------------------------------------- Instagram


@check("instagram_publish_image")
async def _(ctx: Ctx) -> Expect:
    acct, graph = ctx.acct, ctx.fakes.graph
    caption = f"Sunset over the harbour {unique()}"
    image_url = f"https://cdn.example.com/{unique()}.jpg"
    result = await ctx.ok("instagram_publish_image", {"image_url": image_url, "caption": caption})
    media = graph.media[result["media_id"]]
    assert result == {"success": True, "media_id": media.id, "container_id": result["container_id"]}
    assert (media.ig_user_id, media.caption, media.media_url) == (acct.ig_user, caption, image_url)
    container = result["container_id"]
    # Container, its status, publish: Meta's three-step content publishing.
    assert wire(graph) == [
        ("POST", f"/v23.0/{acct.ig_user}/media"),
        ("GET", f"/v23.0/{container}"),
        ("POST", f"/v23.0/{acct.ig_user}/media_publish"),
    ]
    assert all(r.bearer_token == acct.ig_token for r in graph.requests)
    assert graph.requests[0].json == {"image_url": image_url, "caption": caption}
    assert graph.requests[2].query == {"creation_id": container}
    return Expect(None, (caption,))


@check("instagram_list_media")
async def _(ctx: Ctx) -> Expect:
    acct, graph = ctx.acct, ctx.fakes.graph
    newest = graph.add_media(acct.ig_user, f"fresh post {unique()}")
    result = await ctx.ok("instagram_list_media", {"limit": 1})
    assert result["success"] is True
    [item] = result["media"]
    assert (item["media_id"], item["caption"], item["media_type"]) == (newest.id, newest.caption, "IMAGE")
    assert item["permalink"] == newest.permalink
    assert wire(graph) == [("GET", f"/v23.0/{acct.ig_user}/media")]
    request = graph.last_request
    assert request.bearer_token == acct.ig_token
    assert request.query["limit"] == "1"
    assert {"caption", "media_type", "permalink"} <= set(request.query["fields"].split(","))
    return Expect(None)


# ---------------------------------------------------------------------------------------------- email


@check("email_send")
async def _(ctx: Ctx) -> Expect:
    acct, smtp = ctx.acct, ctx.fakes.smtp
    tag = unique()
    to = [f"Bob Example <bob-{tag}@example.test>", f"carol-{tag}@example.test"]
    cc, bcc = f"dave-{tag}@example.test", [f"eve-{tag}@example.test"]
    subject, body = f"Quarterly numbers {tag}", f"Revenue is up. Details inside {tag}.\n"
    result = await ctx.ok("email_send", {"to": to, "subject": subject, "body": body, "cc": cc, "bcc": bcc})
    [received] = await smtp.wait_for_messages_async(1)
    envelope = [f"bob-{tag}@example.test", f"carol-{tag}@example.test", cc, *bcc]
    assert result == {"success": True, "message_id": received.header("Message-ID"), "accepted": envelope}
    # Submitted over this tenant's own SMTP login, as its own address, Bcc only on the envelope.
    assert received.auth_user == acct.mail_user
    assert received.mail_from == acct.mail_user
    assert sorted(received.rcpt_tos) == sorted(envelope)
    assert received.subject == subject and received.text == body
    assert received.header("Bcc") is None and received.bcc == bcc
    return Expect(", ".join(to), (body.strip(), subject))


@check("email_search")
async def _(ctx: Ctx) -> Expect:
    acct, imap = ctx.acct, ctx.fakes.imap
    tag = unique("inv")
    uid = deliver(imap, acct.mail_user, f"Invoice {tag}", f"Amount due: 42 EUR ({tag})")
    deliver(imap, acct.mail_user, "Lunch?", "Are you free on Friday?")
    logins = len(imap.logins(acct.mail_user))
    result = await ctx.ok("email_search", {"query": tag, "limit": 5})
    assert result["folder"] == "INBOX" and result["total"] == 1
    [summary] = result["messages"]
    assert (summary["uid"], summary["subject"], summary["seen"]) == (uid, f"Invoice {tag}", False)
    assert summary["from"] == "Billing <billing@vendor.test>"
    # Over this tenant's own IMAP login.
    assert len(imap.logins(acct.mail_user, min_count=logins + 1)) == logins + 1
    return Expect("INBOX", (f"Amount due: 42 EUR ({tag})",))


@check("email_read")
async def _(ctx: Ctx) -> Expect:
    acct, imap = ctx.acct, ctx.fakes.imap
    tag = unique()
    body = f"The contract is attached in spirit. {tag}"
    uid = deliver(imap, acct.mail_user, f"Contract {tag}", body)
    result = await ctx.ok("email_read", {"uid": uid})
    assert (result["uid"], result["folder"], result["subject"]) == (uid, "INBOX", f"Contract {tag}")
    assert result["text"].strip() == body and result["seen"] is False
    assert result["to"] == [acct.mail_user] and result["attachments"] == []
    # Reading does not mark it read.
    [stored] = [m for m in imap.messages(acct.mail_user) if m.uid == uid]
    assert "\\Seen" not in stored.flags
    return Expect(f"INBOX uid {uid}", (body, f"Contract {tag}"))


# ---------------------------------------------------------------------------------------------- Obsidian


def _vault_requests(ctx: Ctx) -> list[tuple[str, str]]:
    obsidian = ctx.acct.obsidian
    assert all(r.header("authorization") == f"Bearer {obsidian.api_key}" for r in obsidian.requests)
    return wire(obsidian)


@check("obsidian_read_note")
async def _(ctx: Ctx) -> Expect:
    obsidian = ctx.acct.obsidian
    secret = unique("milestone-")
    content = f"---\ntags: [plan]\n---\n# Plan\nShip {secret} by Friday #roadmap\n"
    obsidian.write("Projects/Plan.md", content)
    result = await ctx.ok("obsidian_read_note", {"path": "Projects/Plan.md"})
    assert result["path"] == "Projects/Plan.md" and result["content"] == content
    assert result["frontmatter"] == {"tags": ["plan"]}
    assert set(result["tags"]) == {"plan", "roadmap"}
    assert _vault_requests(ctx) == [("GET", "/vault/Projects/Plan.md")]
    return Expect("Projects/Plan.md", (secret,))


@check("obsidian_write_note")
async def _(ctx: Ctx) -> Expect:
    obsidian = ctx.acct.obsidian
    path = f"Inbox/{unique('idea-')}.md"
    content = f"# Idea\n{unique('secret-idea-')}\n"
    result = await ctx.ok("obsidian_write_note", {"path": path, "content": content})
    assert result == {"success": True, "path": path}
    assert obsidian.read(path) == content
    # overwrite false: look first, then write.
    assert _vault_requests(ctx) == [("GET", f"/vault/{path}"), ("PUT", f"/vault/{path}")]
    assert obsidian.last_request.content_type == "text/markdown"
    return Expect(path, (content.strip(),))


@check("obsidian_append_note")
async def _(ctx: Ctx) -> Expect:
    obsidian = ctx.acct.obsidian
    path = f"Journal/{unique('day-')}.md"
    obsidian.write(path, "- woke up\n")
    line = f"- met {unique('someone-')}"
    result = await ctx.ok("obsidian_append_note", {"path": path, "content": line})
    assert result == {"success": True, "path": path}
    assert obsidian.read(path) == f"- woke up\n{line}"
    assert _vault_requests(ctx) == [("POST", f"/vault/{path}")]
    return Expect(path, (line,))


@check("obsidian_search")
async def _(ctx: Ctx) -> Expect:
    obsidian = ctx.acct.obsidian
    word = unique("zebra")
    obsidian.write(f"Notes/{word}.md", f"A note about the {word} project.\n")
    result = await ctx.ok("obsidian_search", {"query": word})
    assert result["query"] == word and result["total"] == 1
    [hit] = result["results"]
    assert hit["filename"] == f"Notes/{word}.md"
    assert any(word in m["context"] for m in hit["matches"])
    assert _vault_requests(ctx) == [("POST", "/search/simple/")]
    assert obsidian.last_request.query["query"] == word
    return Expect(None, (f"A note about the {word} project.",))


@check("obsidian_list_notes")
async def _(ctx: Ctx) -> Expect:
    obsidian = ctx.acct.obsidian
    folder = unique("Area")
    obsidian.write(f"{folder}/a.md", "a")
    obsidian.write(f"{folder}/sub/b.md", "b")
    result = await ctx.ok("obsidian_list_notes", {"dir": folder})
    assert result == {"dir": folder, "files": ["a.md", "sub/"]}
    assert _vault_requests(ctx) == [("GET", f"/vault/{folder}/")]
    return Expect(folder)


# ---------------------------------------------------------------------------------------------- Hermes itself


@check("inbox_list")
async def _(ctx: Ctx) -> Expect:
    result = await ctx.ok("inbox_list", {"limit": 5})
    assert isinstance(result["entries"], list) and "next_cursor" in result
    assert all(not fake.requests for fake in ctx.fakes.http_fakes)
    return Expect(None)


@check("inbox_wait")
async def _(ctx: Ctx) -> Expect:
    result = await ctx.ok("inbox_wait", {"timeout_seconds": 0.1})
    assert result["entries"] == [] and result["timed_out"] is True
    assert all(not fake.requests for fake in ctx.fakes.http_fakes)
    return Expect(None)


@check("connections_status")
async def _(ctx: Ctx) -> Expect:
    result = await ctx.ok("connections_status", {})
    assert result["connections"] == dict.fromkeys(PLATFORMS, True)
    if ctx.tenant.customer_id is None:
        assert "accounts" not in result  # the single user's accounts are environment variables
    else:
        # Each connected account with its health: the connects just now checked every one with its platform.
        accounts = [(a["platform"], a["account"], a["status"]) for a in result["accounts"]]
        assert sorted(accounts) == sorted((p, "default", "connected") for p in PLATFORMS)
        assert all(a["connected_at"] and a["last_error"] is None for a in result["accounts"])
    assert all(not fake.requests for fake in ctx.fakes.http_fakes)
    return Expect(None)


# ---------------------------------------------------------------------------------------------- the tests

FULL_PASS = [("customer", "auto"), ("single-user", "legacy")]
CROSS_CHECK = [("customer", "legacy"), ("single-user", "auto")]
ONE_PER_PLATFORM = [
    "whatsapp_send_message",
    "telegram_send_message",
    "discord_read_messages",
    "twitter_post_tweet",
    "linkedin_create_post",
    "instagram_publish_image",
    "email_send",
    "obsidian_write_note",
    "connections_status",
]
CASES = [
    pytest.param(mode, generation, tool, id=f"{mode}-{generation}-{tool}")
    for mode, generation in FULL_PASS
    for tool in TOOLS
] + [
    pytest.param(mode, generation, tool, id=f"{mode}-{generation}-{tool}")
    for mode, generation in CROSS_CHECK
    for tool in ONE_PER_PLATFORM
]


def test_every_required_tool_has_a_check() -> None:
    assert set(CHECKS) == set(TOOLS)


@pytest.mark.parametrize(("mode", "generation", "tool"), CASES)
async def test_tool_over_mcp(
    tenants: dict[str, Tenant],
    fakes: Fakes,
    redis_client: redis.Redis,
    mode: str,
    generation: str,
    tool: str,
) -> None:
    tenant = tenants[mode]
    before = audit_count(redis_client, tenant.audit_id)
    async with mcp_session(tenant.url, tenant.key, generation) as client:
        assert client.protocol_version == GENERATIONS[generation]
        ctx = Ctx(client, tenant, fakes)
        expect = await CHECKS[tool](ctx)

    # Exactly one audit entry per call, saying what was done to whom, how it went and how long it took.
    entries = await audit_entries(tenant, redis_client, before)
    assert len(entries) == ctx.calls
    for entry in entries:
        assert entry["tool"] == tool
        assert entry.get("platform") == (TOOLS[tool] or None)
        assert entry.get("target") == expect.target
        assert entry["outcome"] == "success"
        assert entry.get("errorCode") is None
        assert isinstance(entry["durationMs"], int | float) and entry["durationMs"] >= 0
        assert str(entry["time"]).startswith(today())
    # ... and never the message text or a credential, in what the API shows nor in what Redis stores.
    raw = audit_raw(redis_client, tenant.audit_id, before)
    assert len(raw) == ctx.calls
    stored = b"\n".join(raw).decode()
    for secret in (*expect.private, *tenant.account.secrets):
        assert secret not in stored, f"{secret!r} is in the audit log"
        assert secret not in str(entries), f"{secret!r} is in the audit log"
