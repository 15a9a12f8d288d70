"""The accounts, fakes and Hermes instances the end-to-end tool tests act on.

Each tenant (a customer, or the single-user deployment) owns its own accounts on every
platform: its own WhatsApp number and token, Telegram and Discord bots, X and LinkedIn
members, Instagram account, mailbox and Obsidian vault. A request reaching a fake with
one tenant's token can therefore only have been made with that tenant's credentials.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from mcp.types import CallToolResult

from hermes.domain.audit import SINGLE_USER_ID
from tests.fakes.base import FakeServer
from tests.fakes.discord import FakeDiscord
from tests.fakes.graph import FakeGraph
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.mail import ImapServer, SmtpServer
from tests.fakes.obsidian import FakeObsidian
from tests.fakes.telegram import FakeTelegram
from tests.fakes.x import DEFAULT_LIMITS, FakeX
from tests.integration.server import HermesServer

WABA_ID = "102290129340398"
PLATFORMS = ("email", "whatsapp", "linkedin", "telegram", "discord", "instagram", "twitter", "obsidian")
# DESIGN.md section 4, by platform ("" for the platform-independent ones).
TOOLS: dict[str, str] = {
    "whatsapp_send_message": "whatsapp",
    "whatsapp_send_template": "whatsapp",
    "whatsapp_send_media": "whatsapp",
    "whatsapp_mark_read": "whatsapp",
    "telegram_send_message": "telegram",
    "telegram_get_updates": "telegram",
    "discord_send_message": "discord",
    "discord_read_messages": "discord",
    "twitter_post_tweet": "twitter",
    "twitter_delete_tweet": "twitter",
    "twitter_search_recent": "twitter",
    "linkedin_create_post": "linkedin",
    "instagram_publish_image": "instagram",
    "instagram_list_media": "instagram",
    "email_send": "email",
    "email_search": "email",
    "email_read": "email",
    "obsidian_read_note": "obsidian",
    "obsidian_write_note": "obsidian",
    "obsidian_append_note": "obsidian",
    "obsidian_search": "obsidian",
    "obsidian_list_notes": "obsidian",
    "inbox_list": "",
    "inbox_wait": "",
    "connections_status": "",
}
# DESIGN.md section 10: platform-independent too, checked in tests/integration/test_conversations.py.
CONVERSATION_TOOLS = ("conversations_list", "conversation_read", "conversation_reply")
GENERATIONS = {"legacy": "2025-11-25", "auto": "2026-07-28"}


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def unique(prefix: str = "") -> str:
    return f"{prefix}{secrets.token_hex(4)}"


@dataclass
class Account:
    """One tenant's accounts on the eight platforms, registered in the fakes."""

    label: str
    wa_phone_id: str
    wa_token: str
    wa_recipient: str
    tg_token: str
    tg_chat: int
    dc_token: str
    dc_channel: str
    x_token: str
    x_username: str
    li_token: str
    li_urn: str
    ig_user: str
    ig_token: str
    mail_user: str
    mail_password: str
    obsidian: FakeObsidian

    @property
    def secrets(self) -> list[str]:
        """What must never show in an audit entry, a tool result or an error."""
        return [
            self.wa_token,
            self.tg_token,
            self.dc_token,
            self.x_token,
            self.li_token,
            self.ig_token,
            self.mail_password,
            self.obsidian.api_key,
        ]

    def connect_bodies(self, smtp: SmtpServer, imap: ImapServer) -> dict[str, dict[str, Any]]:
        """`POST /api/connect/{platform}` bodies (DESIGN.md section 3). LinkedIn's author is left to /v2/userinfo."""
        return {
            "whatsapp": {"phoneNumberId": self.wa_phone_id, "accessToken": self.wa_token, "businessAccountId": WABA_ID},
            "telegram": {"botToken": self.tg_token},
            "discord": {"botToken": self.dc_token},
            "twitter": {"accessToken": self.x_token},
            "linkedin": {"accessToken": self.li_token},
            "instagram": {"accessToken": self.ig_token, "igUserId": self.ig_user},
            "email": {
                "smtpHost": smtp.host,
                "smtpPort": smtp.port,
                "smtpSecurity": "none",
                "username": self.mail_user,
                "password": self.mail_password,
                "fromAddress": self.mail_user,
                "imapHost": imap.host,
                "imapPort": imap.port,
                "imapSecurity": "none",
            },
            "obsidian": {"apiUrl": self.obsidian.base_url, "apiKey": self.obsidian.api_key},
        }

    def env(self, smtp: SmtpServer, imap: ImapServer) -> dict[str, str]:
        """Single-user mode's `{PLATFORM}_DEFAULT_{FIELD}` variables, spelled out as an operator writes them."""
        return {
            "WHATSAPP_DEFAULT_PHONE_NUMBER_ID": self.wa_phone_id,
            "WHATSAPP_DEFAULT_ACCESS_TOKEN": self.wa_token,
            "WHATSAPP_DEFAULT_BUSINESS_ACCOUNT_ID": WABA_ID,
            "TELEGRAM_DEFAULT_BOT_TOKEN": self.tg_token,
            "DISCORD_DEFAULT_BOT_TOKEN": self.dc_token,
            "TWITTER_DEFAULT_ACCESS_TOKEN": self.x_token,
            "LINKEDIN_DEFAULT_ACCESS_TOKEN": self.li_token,
            "LINKEDIN_DEFAULT_AUTHOR_URN": self.li_urn,
            "INSTAGRAM_DEFAULT_ACCESS_TOKEN": self.ig_token,
            "INSTAGRAM_DEFAULT_IG_USER_ID": self.ig_user,
            "EMAIL_DEFAULT_SMTP_HOST": smtp.host,
            "EMAIL_DEFAULT_SMTP_PORT": str(smtp.port),
            "EMAIL_DEFAULT_SMTP_SECURITY": "none",
            "EMAIL_DEFAULT_USERNAME": self.mail_user,
            "EMAIL_DEFAULT_PASSWORD": self.mail_password,
            "EMAIL_DEFAULT_FROM_ADDRESS": self.mail_user,
            "EMAIL_DEFAULT_IMAP_HOST": imap.host,
            "EMAIL_DEFAULT_IMAP_PORT": str(imap.port),
            "EMAIL_DEFAULT_IMAP_SECURITY": "none",
            "OBSIDIAN_DEFAULT_API_URL": self.obsidian.base_url,
            "OBSIDIAN_DEFAULT_API_KEY": self.obsidian.api_key,
        }


@dataclass
class Fakes:
    """Every platform at once: the six HTTP fakes, a real SMTP server and a real dovecot."""

    graph: FakeGraph
    telegram: FakeTelegram
    discord: FakeDiscord
    x: FakeX
    linkedin: FakeLinkedIn
    smtp: SmtpServer
    imap: ImapServer
    obsidians: list[FakeObsidian] = field(default_factory=list)

    @classmethod
    def start(cls, imap: ImapServer) -> Fakes:
        # Rate limits far above anything these tests send: only the tests about limits meet one (injected).
        unlimited = 1_000_000
        fakes = cls(
            graph=FakeGraph(),
            telegram=FakeTelegram(),
            discord=FakeDiscord(bucket_limit=unlimited, global_limit=unlimited),
            x=FakeX(limits=dict.fromkeys(DEFAULT_LIMITS, (unlimited, 900.0)), daily_post_limit=unlimited),
            linkedin=FakeLinkedIn(daily_post_limit=unlimited),
            smtp=SmtpServer(security="none"),
            imap=imap,
        )
        for server in (fakes.graph, fakes.telegram, fakes.discord, fakes.x, fakes.linkedin):
            server.start()
        fakes.smtp.start()
        fakes.graph.add_template("e2e_order_update", "en_US", body_params=2)
        return fakes

    def stop(self) -> None:
        for server in self.http_fakes:
            server.stop()
        self.smtp.stop()

    @property
    def http_fakes(self) -> list[FakeServer]:
        return [self.graph, self.telegram, self.discord, self.x, self.linkedin, *self.obsidians]

    def api_bases(self) -> dict[str, str]:
        return {
            "HERMES_WHATSAPP_API_BASE": self.graph.api_base(),
            "HERMES_INSTAGRAM_API_BASE": self.graph.api_base(),
            "HERMES_TELEGRAM_API_BASE": self.telegram.base_url,
            "HERMES_DISCORD_API_BASE": self.discord.api_base(),
            "HERMES_TWITTER_API_BASE": self.x.base_url,
            "HERMES_LINKEDIN_API_BASE": self.linkedin.base_url,
        }

    def reset(self) -> None:
        """An empty request log and no pending injected failure on every fake."""
        for server in self.http_fakes:
            server.clear_requests()
            server.clear_injections()
        self.smtp.clear()

    def handler_errors(self) -> list[str]:
        return [error for server in self.http_fakes for error in server.handler_errors]

    def new_account(self, label: str) -> Account:
        tag = unique()
        # Random ids: a number stays routed to its customer in Redis after the test session ends.
        wa_phone_id, wa_token = self.graph.add_phone_number(str(10**15 + secrets.randbelow(9 * 10**15)))
        ig_user, ig_token = self.graph.add_instagram_user(username=f"{label}_{tag}")
        tg_token = self.telegram.add_bot(username=f"{label}_{tag}_bot")
        tg_chat = 100_000_000 + secrets.randbelow(900_000_000)
        self.telegram.add_chat(tg_token, tg_chat)
        dc_token = self.discord.add_bot(username=f"{label}-{tag}")
        dc_channel = self.discord.add_channel(name=f"{label}-{tag}")
        self.discord.grant(dc_token, dc_channel)
        x_username = f"{label}_{tag}"
        x_token = self.x.add_user(username=x_username)
        li_token = self.linkedin.add_member(given_name=label)
        mailbox = self.imap.new_user(prefix=label)
        self.smtp.users[mailbox.name] = mailbox.password
        obsidian = FakeObsidian().start()
        self.obsidians.append(obsidian)
        return Account(
            label=label,
            wa_phone_id=wa_phone_id,
            wa_token=wa_token,
            wa_recipient="+1555" + str(secrets.randbelow(10**7)).zfill(7),
            tg_token=tg_token,
            tg_chat=tg_chat,
            dc_token=dc_token,
            dc_channel=dc_channel,
            x_token=x_token,
            x_username=x_username,
            li_token=li_token,
            li_urn=self.linkedin.member(li_token).urn,
            ig_user=ig_user,
            ig_token=ig_token,
            mail_user=mailbox.name,
            mail_password=mailbox.password,
            obsidian=obsidian,
        )


@dataclass
class Tenant:
    """Who calls: a customer (its API key) or the single-user deployment (MCP_API_KEY)."""

    server: HermesServer
    key: str
    account: Account
    customer_id: str | None = None

    @property
    def audit_id(self) -> str:
        return self.customer_id or SINGLE_USER_ID

    @property
    def url(self) -> str:
        return self.server.url

    def rest(self) -> httpx.AsyncClient:
        return self.server.client(self.key)


def create_customer(
    server: HermesServer, admin_token: str, *, plan: str = "pro", label: str = "owner"
) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as admin:
        reply = admin.post("/admin/customers", json={"email": f"{label}-{unique()}@example.com", "plan": plan})
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def connect(server: HermesServer, api_key: str, bodies: dict[str, dict[str, Any]], *platforms: str) -> None:
    """Connect through the public API, each with `?verify=true`: the fake must accept the credentials."""
    with httpx.Client(base_url=server.url, headers={"x-api-key": api_key}, timeout=60) as client:
        for platform in platforms or PLATFORMS:
            reply = client.post(f"/api/connect/{platform}", params={"verify": "true"}, json=bodies[platform])
            assert reply.status_code == 200, (platform, reply.text)
            assert reply.json() == {"connected": True, "platform": platform}


def audit_count(redis_client: redis.Redis, audit_id: str) -> int:
    """How many audit entries today holds for this caller: the day's sequence counter."""
    return int(redis_client.get(f"logseq:{{{audit_id}}}:{today()}") or 0)


def audit_raw(redis_client: redis.Redis, audit_id: str, after: int) -> list[bytes]:
    """Today's stored audit values (exactly as Redis holds them) after the first `after` ones."""
    prefix = f"logs:{{{audit_id}}}:{today()}:"
    keys = [f"{prefix}{seq:08d}" for seq in range(after + 1, audit_count(redis_client, audit_id) + 1)]
    values = redis_client.mget(keys) if keys else []
    return [v if isinstance(v, bytes) else str(v).encode() for v in values if v is not None]


async def audit_entries(tenant: Tenant, redis_client: redis.Redis, after: int) -> list[dict[str, Any]]:
    """The entries a caller's calls left after the first `after` ones, camelCase as the API shows them.

    A customer reads them from `GET /api/logs`; the single-user deployment has no API key to read
    its own log with, so its entries come from Redis (the same `logs:` keys).
    """
    if tenant.customer_id is None:
        return [json.loads(raw) for raw in audit_raw(redis_client, tenant.audit_id, after)]
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    async with tenant.rest() as client:
        while True:
            params = {"date": today(), "limit": "1000"} | ({"cursor": cursor} if cursor else {})
            reply = await client.get("/api/logs", params=params)
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body["customerId"] == tenant.customer_id
            entries += body["entries"]
            cursor = body["nextCursor"]
            if cursor is None:
                return entries[after:]


_FENCE = re.compile(r'<untrusted-content source="[^"]*"(?: sender="[^"]*")?>(.*)</untrusted-content>', re.DOTALL)


_NEUTRALISED = re.compile(r"&lt;(?=\s*/?\s*untrusted-content)", re.IGNORECASE)


def unfenced(value: Any) -> Any:
    """The text content's values without the fences around third parties' text."""
    if isinstance(value, dict):
        return {k: unfenced(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unfenced(v) for v in value]
    if isinstance(value, str) and (match := _FENCE.fullmatch(value)):
        return _NEUTRALISED.sub("<", match.group(1))
    return value


def structured(result: CallToolResult) -> dict[str, Any]:
    """A successful call's structured result; its text content is the same JSON, third parties' text fenced."""
    text = result.content[0].text if result.content and hasattr(result.content[0], "text") else ""
    assert result.is_error is False, text
    assert result.structured_content is not None
    assert unfenced(json.loads(text)) == result.structured_content
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    assert result.is_error is True, result.structured_content
    assert len(result.content) == 1
    text = getattr(result.content[0], "text", "")
    assert isinstance(text, str) and text
    return text
