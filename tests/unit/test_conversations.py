"""Conversations over CallTool: routed messages and sends land in conversations; the 24-hour reply window."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from hermes.adapters.env_credentials import EnvironmentCredentials
from hermes.adapters.memory.conversations import InMemoryConversationStore
from hermes.adapters.memory.inbound import InMemoryInbox
from hermes.adapters.memory.managed_oauth import InMemoryAccountStatuses
from hermes.adapters.platforms import telegram, whatsapp
from hermes.adapters.platforms.base import tool
from hermes.adapters.platforms.registry import PlatformPlugin, Registry
from hermes.application.account_health import AccountHealthRecorder
from hermes.application.conversation_recorder import ConversationRecorder
from hermes.application.conversation_sends import ConversationSends
from hermes.application.conversation_tools import ConversationReadTool, ConversationReplyTool, ConversationsListTool
from hermes.application.inbound_handlers import LoggingInboundHandler
from hermes.application.send_guard import SendGuard
from hermes.application.use_cases.call_tool import Caller, CallTool
from hermes.application.use_cases.connect_platform import ConnectPlatform
from hermes.application.use_cases.list_conversations import ListConversations
from hermes.application.use_cases.read_conversation import ReadConversation
from hermes.application.use_cases.reply_to_conversation import ReplyToConversation
from hermes.domain.conversations import ConversationKey
from hermes.domain.customer import Customer
from hermes.domain.errors import Conflict, NotFound
from hermes.domain.inbound import InboundMessage, StatusUpdate
from hermes.domain.platform import Platform
from hermes.entrypoints.http.problems import error_text
from tests.support import whatsapp_credentials
from tests.unit.conftest import World

NUMBER = "111"
CONTACT = "16505551234"


@dataclass
class Platforms:
    """Send tools with the real argument types, answering like the platforms and remembering each send."""

    sent: list[tuple[str, Any]] = field(default_factory=list)

    def plugins(self) -> list[PlatformPlugin]:
        def runner(name: str, answer: dict[str, Any]) -> Any:
            async def run(parsed: Any, credentials: Any) -> dict[str, Any]:
                self.sent.append((name, parsed))
                return {**answer, "message_id": f"{answer['message_id']}{len(self.sent)}"}

            return run

        wa = [
            tool(
                Platform.WHATSAPP,
                n,
                args,
                runner(n, {"success": True, "message_id": "wamid.out"}),
                description="x",
                target="to",
            )
            for n, args in (
                ("whatsapp_send_message", whatsapp.SendMessageArgs),
                ("whatsapp_send_template", whatsapp.SendTemplateArgs),
                ("whatsapp_send_media", whatsapp.SendMediaArgs),
            )
        ]
        tg = tool(
            Platform.TELEGRAM,
            "telegram_send_message",
            telegram.SendMessageArgs,
            runner("telegram_send_message", {"success": True, "message_id": "7", "chat_id": 42, "date": 0}),
            description="x",
        )

        async def verify(_: Any) -> None:
            return None

        return [PlatformPlugin(Platform.WHATSAPP, wa, verify), PlatformPlugin(Platform.TELEGRAM, [tg], verify)]


@dataclass
class Setup:
    world: World
    call: CallTool
    recorder: ConversationRecorder
    platforms: Platforms
    customer: Customer

    async def tool(self, name: str, **arguments: Any) -> dict[str, Any]:
        return await self.call(Caller(self.customer), name, arguments)

    async def receive(self, text: str, at: datetime, sender: str = CONTACT, message_id: str | None = None) -> None:
        message = InboundMessage(
            Platform.WHATSAPP, NUMBER, message_id or f"wamid.in.{at.timestamp()}", sender, at, "text", text, "Sheena"
        )
        await self.recorder.inbound(self.customer.id, [message])


@pytest.fixture
async def setup(world: World) -> Setup:
    store = InMemoryConversationStore()
    recorder = ConversationRecorder(store, world.clock)
    sends = ConversationSends(recorder, store, world.clock)
    platforms = Platforms()
    env = EnvironmentCredentials({})
    registry = Registry(
        plugins=platforms.plugins(),
        builtin=[
            ConversationsListTool(ListConversations(store, world.clock)),
            ConversationReadTool(ReadConversation(store, world.clock)),
            ConversationReplyTool(ReplyToConversation(store, sends)),
        ],
    )
    call = CallTool(registry, world.vault, env, world.usage, world.audit, world.clock, world.guard, conversations=sends)
    customer = (await world.create("a@example.com", "starter")).customer
    connect = ConnectPlatform(world.vault, world.routes, world.verifier, env, world.inbound, world.mailboxes)
    await connect(customer, Platform.WHATSAPP, whatsapp_credentials(NUMBER, "EAAG-own"), verify=False)
    await connect(customer, Platform.TELEGRAM, {"botToken": "123456:abcdefghijklmnopqrstuvwxyz012345678"}, verify=False)
    return Setup(world, call, recorder, platforms, customer)


async def test_a_received_message_is_listed_read_and_marked_read(setup: Setup) -> None:
    now = setup.world.clock.now()
    await setup.receive("can I book for 3?", now - timedelta(hours=1))

    listed = await setup.tool("conversations_list")
    [conversation] = listed["conversations"]
    assert {k: conversation[k] for k in ("platform", "account", "title", "unread_count", "can_reply")} == {
        "platform": "whatsapp",
        "account": "default",
        "title": "Sheena",
        "unread_count": 1,
        "can_reply": True,
    }
    assert conversation["participants"] == [{"id": CONTACT, "name": "Sheena"}]
    assert conversation["reply_window_expires_at"] == "2026-05-09T11:00:00Z"
    assert conversation["last_message_preview"] == "can I book for 3?"

    read = await setup.tool("conversation_read", conversation_id=conversation["conversation_id"])
    assert [(m["direction"], m["sender"], m["text"]) for m in read["messages"]] == [
        ("in", CONTACT, "can I book for 3?")
    ]
    assert read["conversation"]["unread_count"] == 0
    again = await setup.tool("conversations_list", unread_only=True)
    assert again == {"conversations": [], "next_cursor": None}


async def test_an_agents_send_shows_up_in_the_conversation_with_its_status(setup: Setup) -> None:
    await setup.receive("hi", setup.world.clock.now() - timedelta(minutes=5))
    sent = await setup.tool("whatsapp_send_message", to=f"+{CONTACT}", message="Table for 3 at 8pm is yours.")
    await setup.recorder.inbound(
        setup.customer.id,
        [StatusUpdate(Platform.WHATSAPP, NUMBER, sent["message_id"], "delivered", setup.world.clock.now(), CONTACT)],
    )

    cid = ConversationKey(setup.customer.id, Platform.WHATSAPP, CONTACT).id
    read = await setup.tool("conversation_read", conversation_id=cid)

    assert [(m["direction"], m["text"], m["status"]) for m in read["messages"]] == [
        ("in", "hi", None),
        ("out", "Table for 3 at 8pm is yours.", "delivered"),
    ]


async def test_reply_goes_out_through_the_platforms_own_tool_and_is_audited(setup: Setup) -> None:
    await setup.receive("hi", setup.world.clock.now() - timedelta(minutes=5))
    cid = ConversationKey(setup.customer.id, Platform.WHATSAPP, CONTACT).id

    reply = await setup.tool("conversation_reply", conversation_id=cid, text="Hello Sheena")

    assert reply == {"success": True, "message_id": "wamid.out1", "platform": "whatsapp"}
    [(name, parsed)] = setup.platforms.sent
    assert (name, parsed.to, parsed.message) == ("whatsapp_send_message", f"+{CONTACT}", "Hello Sheena")
    assert [(e.tool, e.target, e.outcome) for e in setup.world.audit.entries] == [
        ("conversation_reply", cid, "success"),
        ("whatsapp_send_message", f"+{CONTACT}", "success"),
    ]
    read = await setup.tool("conversation_read", conversation_id=cid)
    assert [m["text"] for m in read["messages"]] == ["hi", "Hello Sheena"]


async def test_window_closed_refuses_free_form_before_the_platform_and_says_to_use_a_template(setup: Setup) -> None:
    last = setup.world.clock.now() - timedelta(hours=24, seconds=1)
    await setup.receive("hi", last)
    cid = ConversationKey(setup.customer.id, Platform.WHATSAPP, CONTACT).id

    for name, arguments in (
        ("whatsapp_send_message", {"to": f"+{CONTACT}", "message": "late"}),
        ("whatsapp_send_media", {"to": CONTACT, "kind": "image", "url": "https://example.com/a.png"}),
        ("conversation_reply", {"conversation_id": cid, "text": "late"}),
    ):
        with pytest.raises(Conflict) as refused:
            await setup.tool(name, **arguments)
        text = error_text(refused.value)
        assert "24 hours" in text and "whatsapp_send_template" in text and "2026-05-07T11:59:59Z" in text, text
    assert setup.platforms.sent == []

    await setup.tool("whatsapp_send_template", to=f"+{CONTACT}", template="hello_world", language="en_US")
    assert [name for name, _ in setup.platforms.sent] == ["whatsapp_send_template"]
    [listed] = (await setup.tool("conversations_list"))["conversations"]
    assert listed["can_reply"] is False


async def test_window_counts_from_the_messages_own_time_and_a_contact_who_never_wrote_is_refused(
    setup: Setup,
) -> None:
    await setup.receive("hi", setup.world.clock.now() - timedelta(hours=23, minutes=59))
    await setup.tool("whatsapp_send_message", to=CONTACT, message="in time")
    with pytest.raises(Conflict) as refused:
        await setup.tool("whatsapp_send_message", to="+15550009999", message="cold")
    assert "have not written" in error_text(refused.value)
    assert [p.message for _, p in setup.platforms.sent] == ["in time"]


async def test_no_window_where_hermes_does_not_receive_the_numbers_webhooks(setup: Setup) -> None:
    other_number = InboundMessage(Platform.WHATSAPP, "222", "wamid.x", CONTACT, setup.world.clock.now(), "text", "hi")
    await setup.recorder.inbound(setup.customer.id, [other_number])  # webhooks of another number only
    await setup.tool("whatsapp_send_message", to="+15550009999", message="cold")
    assert len(setup.platforms.sent) == 1


async def test_telegram_sends_and_replies_share_the_chat_conversation(setup: Setup) -> None:
    await setup.tool("telegram_send_message", chat_id=42, text="first")
    [listed] = (await setup.tool("conversations_list", platform="telegram"))["conversations"]
    await setup.tool("conversation_reply", conversation_id=listed["conversation_id"], text="second", reply_to="7")
    read = await setup.tool("conversation_read", conversation_id=listed["conversation_id"])
    assert [(m["text"], m["reply_to"]) for m in read["messages"]] == [("first", None), ("second", "7")]
    assert setup.platforms.sent[-1][1].reply_to == 7


async def test_a_telegram_groups_messages_and_the_reply_share_the_groups_conversation(setup: Setup) -> None:
    group, now = "-1001234567890", setup.world.clock.now()
    for n, (member, name) in enumerate((("5151", "Alice"), ("6262", "Bob")), start=1):
        message = InboundMessage(
            Platform.TELEGRAM, "123456", str(n), member, now, "text", f"hi from {name}", name, chat_id=group
        )
        await setup.recorder.inbound(setup.customer.id, [message])

    [listed] = (await setup.tool("conversations_list", platform="telegram"))["conversations"]
    assert listed["title"] == group
    await setup.tool("conversation_reply", conversation_id=listed["conversation_id"], text="hello both")
    assert str(setup.platforms.sent[-1][1].chat_id) == group  # the reply goes to the group, not to a member
    read = await setup.tool("conversation_read", conversation_id=listed["conversation_id"])
    assert [(m["sender"], m["text"]) for m in read["messages"]] == [
        ("5151", "hi from Alice"),
        ("6262", "hi from Bob"),
        ("me", "hello both"),
    ]


async def test_unknown_or_foreign_conversation_is_not_found(setup: Setup, world: World) -> None:
    await setup.receive("hi", setup.world.clock.now())
    cid = ConversationKey(setup.customer.id, Platform.WHATSAPP, CONTACT).id
    other = (await world.create("b@example.com", "starter")).customer
    with pytest.raises(NotFound) as missing:
        await setup.call(Caller(other), "conversation_read", {"conversation_id": cid})
    assert "conversations_list" in error_text(missing.value)


async def test_list_pages_with_an_opaque_cursor(setup: Setup) -> None:
    base = setup.world.clock.now() - timedelta(hours=2)
    for i in range(5):
        await setup.receive(f"m{i}", base + timedelta(minutes=i), sender=f"1555000{i}")
    first = await setup.tool("conversations_list", limit=3)
    second = await setup.tool("conversations_list", limit=3, cursor=first["next_cursor"])
    assert [c["last_message_preview"] for c in first["conversations"] + second["conversations"]] == [
        "m4",
        "m3",
        "m2",
        "m1",
        "m0",
    ]
    assert second["next_cursor"] is None


async def test_a_conversation_idle_past_the_retention_is_no_longer_listed(setup: Setup) -> None:
    """Stores drop such a conversation at their next write; until then the list leaves it out and ends there."""
    clock = setup.world.clock
    await setup.receive("old", clock.now() - timedelta(days=89), sender="15550001")
    await setup.receive("new", clock.now() - timedelta(days=1), sender="15550002")
    assert len((await setup.tool("conversations_list", limit=1))["conversations"]) == 1

    clock.current += timedelta(days=2)  # type: ignore[attr-defined]

    listed = await setup.tool("conversations_list", limit=1)
    assert [c["last_message_preview"] for c in listed["conversations"]] == ["new"]
    assert listed["next_cursor"] is not None
    following = await setup.tool("conversations_list", limit=1, cursor=listed["next_cursor"])
    assert following == {"conversations": [], "next_cursor": None}


async def test_a_bad_cursor_names_the_field(setup: Setup) -> None:
    from hermes.domain.errors import Invalid

    with pytest.raises(Invalid) as bad:
        await setup.tool("conversations_list", cursor="!!")
    assert "cursor" in bad.value.fields


def test_every_recorded_send_tool_exists() -> None:
    from hermes.adapters.platforms import build_plugins
    from hermes.adapters.platforms.config import PlatformConfig
    from hermes.application.conversation_recorder import SENDS

    config = PlatformConfig(api_bases=dict.fromkeys(Platform, "http://127.0.0.1:9"))
    plugins = build_plugins(None, config)  # type: ignore[arg-type]
    assert set(SENDS) <= {t.spec.name for p in plugins for t in p.tools}


async def test_emails_thread_by_their_root_message_id(setup: Setup) -> None:
    now = setup.world.clock.now()
    root = "<root@example.com>"
    await setup.recorder.email_received(
        setup.customer.id,
        message_id=root,
        in_reply_to=None,
        references=[],
        sender="ana@example.com",
        sender_name="Ana",
        subject="Invoice 42",
        text="Please find it attached. " * 1000,
        sent_at=now - timedelta(hours=2),
    )
    await setup.recorder.email_received(
        setup.customer.id,
        message_id="<second@example.com>",
        in_reply_to="<mine@hermes>",
        references=[root, "<mine@hermes>"],
        sender="ana@example.com",
        sender_name="Ana",
        subject="Re: Invoice 42",
        text="Any news?",
        sent_at=now - timedelta(hours=1),
    )
    [conversation] = (await setup.tool("conversations_list", platform="email"))["conversations"]
    assert (conversation["title"], conversation["unread_count"], conversation["can_reply"]) == (
        "Re: Invoice 42",
        2,
        True,
    )
    assert conversation["participants"] == [{"id": "ana@example.com", "name": "Ana"}]
    assert conversation["reply_window_expires_at"] is None
    read = await setup.tool("conversation_read", conversation_id=conversation["conversation_id"])
    first, second = read["messages"]
    assert (first["message_id"], second["message_id"], second["reply_to"]) == (
        root,
        "<second@example.com>",
        "<mine@hermes>",
    )
    assert len(first["text"]) == 20_000 + len(" […]")  # the mailbox keeps the whole of a long email


class Overlapping:
    """A store that logs when each of its calls starts and ends, and yields once in between, as a networked store
    does: calls issued together all start before the first ends; calls made one after another do not."""

    def __init__(self, inner: Any, name: str, log: list[tuple[str, str]]) -> None:
        self._inner, self._name, self._log = inner, name, log

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self._inner, attribute)
        if not inspect.iscoroutinefunction(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._log.append(("start", f"{self._name}.{attribute}"))
            await asyncio.sleep(0)
            try:
                return await target(*args, **kwargs)
            finally:
                self._log.append(("end", f"{self._name}.{attribute}"))

        return call


def logged_call_tool(
    setup: Setup,
    log: list[tuple[str, str]],
    conversations: ConversationSends,
    health: AccountHealthRecorder | None = None,
    guard: SendGuard | None = None,
) -> CallTool:
    """CallTool over the setup's platforms and stores, its audit log's calls logged (`Overlapping`)."""
    world = setup.world
    return CallTool(
        Registry(plugins=setup.platforms.plugins()),
        world.vault,
        EnvironmentCredentials({}),
        world.usage,
        Overlapping(world.audit, "audit", log),
        world.clock,
        guard or world.guard,
        conversations=conversations,
        health=health,
    )


async def test_what_a_send_writes_after_the_platform_answered_is_issued_at_once(setup: Setup) -> None:
    # The ledger, the idempotency record, the conversation, the account's health and the audit entry: a batching
    # store (Redis) sends writes issued together in one round trip, so the call's answer waits for one, not five.
    world = setup.world
    log: list[tuple[str, str]] = []
    store = InMemoryConversationStore()
    recorder = ConversationRecorder(Overlapping(store, "conversations", log), world.clock)
    guard = world.guard
    guard.ledger = Overlapping(world.ledger, "ledger", log)
    guard.keys = Overlapping(world.idempotency, "idempotency", log)
    health = AccountHealthRecorder(
        Overlapping(InMemoryAccountStatuses(), "health", log), InMemoryInbox(), LoggingInboundHandler(), world.clock
    )
    call = logged_call_tool(setup, log, ConversationSends(recorder, store, world.clock), health, guard)

    arguments = {"to": f"+{CONTACT}", "template": "hello_world", "language": "en_US", "idempotency_key": "k1"}
    await call(Caller(setup.customer), "whatsapp_send_template", arguments)

    after = ["ledger.remember", "idempotency.settle", "conversations.record", "health.get", "audit.complete"]
    steps = [(event, name) for event, name in log if name in after]
    assert steps[: len(after)] == [("start", name) for name in after]
    assert sorted(name for event, name in steps if event == "end") == sorted(after)
    entries, _ = await world.audit.list(setup.customer.id, world.clock.now().date())
    assert [(e.tool, e.outcome) for e in entries] == [("whatsapp_send_template", "success")]
    [conversation], _ = await store.recent(
        setup.customer.id, platform=None, account=None, unread_only=False, after=None, limit=10
    )
    assert conversation.peer == CONTACT


async def test_the_reply_window_is_judged_from_reads_issued_together(world: World) -> None:
    # Whether Hermes receives the number's webhooks and when the contact last wrote: a batching store (Redis)
    # answers both in one round trip before the send.
    store = InMemoryConversationStore()
    recorder = ConversationRecorder(store, world.clock)
    at = world.clock.now() - timedelta(hours=24, seconds=1)
    await recorder.inbound("c1", [InboundMessage(Platform.WHATSAPP, NUMBER, "wamid.in", CONTACT, at, "text", "hi")])
    log: list[tuple[str, str]] = []
    sends = ConversationSends(recorder, Overlapping(store, "conversations", log), world.clock)
    late = whatsapp.SendMessageArgs(to=f"+{CONTACT}", message="late")

    with pytest.raises(Conflict):
        await sends.before("c1", "whatsapp_send_message", late, whatsapp_credentials(NUMBER))

    assert log == [
        ("start", "conversations.receiving"),
        ("start", "conversations.get"),
        ("end", "conversations.receiving"),
        ("end", "conversations.get"),
    ]


async def test_from_an_accounts_second_send_the_window_is_read_with_the_credentials(setup: Setup) -> None:
    # The window's reads need the business number, which only the opened credentials name. Hermes remembers it
    # from the account's previous send, so a batching store answers the window with the credentials, the quota
    # and the audit entry: one round trip fewer.
    world = setup.world
    log: list[tuple[str, str]] = []
    store = Overlapping(InMemoryConversationStore(), "conversations", log)
    recorder = ConversationRecorder(store, world.clock)
    await recorder.inbound(
        setup.customer.id,
        [InboundMessage(Platform.WHATSAPP, NUMBER, "wamid.in", CONTACT, world.clock.now(), "text", "hi")],
    )
    call = logged_call_tool(setup, log, ConversationSends(recorder, store, world.clock))
    arguments = {"to": f"+{CONTACT}", "message": "hello"}

    def first_round_trip() -> list[str]:
        # What started before the write-ahead audit entry was written.
        names = [name for _, name in log]
        return [name for event, name in log[: names.index("audit.append", names.index("audit.append") + 1)]]

    log.clear()
    await call(Caller(setup.customer), "whatsapp_send_message", arguments)
    window = ["conversations.receiving", "conversations.get"]
    assert not set(window) & set(first_round_trip())  # the first send learns the number
    log.clear()
    await call(Caller(setup.customer), "whatsapp_send_message", arguments)
    assert set(window) <= set(first_round_trip())
    assert [name for event, name in log if name in window] == [  # and is not read a second time
        "conversations.receiving",
        "conversations.get",
        "conversations.receiving",
        "conversations.get",
    ]
    assert len(setup.platforms.sent) == 2


async def test_a_window_read_for_a_number_the_account_no_longer_has_is_read_again(setup: Setup) -> None:
    # The account sends from the number Hermes receives, within the contact's window: its number is remembered.
    await setup.receive("hi", setup.world.clock.now() - timedelta(hours=23))
    await setup.tool("whatsapp_send_message", to=f"+{CONTACT}", message="in time")
    # It is reconnected to a number whose webhooks Hermes does not receive, and the window has closed since.
    connect = ConnectPlatform(
        setup.world.vault,
        setup.world.routes,
        setup.world.verifier,
        EnvironmentCredentials({}),
        setup.world.inbound,
        setup.world.mailboxes,
    )
    await connect(setup.customer, Platform.WHATSAPP, whatsapp_credentials("222", "EAAG-own"), verify=False)
    setup.world.clock.current += timedelta(hours=2)
    # Read for the remembered number, the window would refuse; for the number the account has now, WhatsApp decides.
    await setup.tool("whatsapp_send_message", to=f"+{CONTACT}", message="from the new number")
    assert [p.message for _, p in setup.platforms.sent] == ["in time", "from the new number"]
    # And back on the first number, the closed window refuses again.
    await connect(setup.customer, Platform.WHATSAPP, whatsapp_credentials(NUMBER, "EAAG-own"), verify=False)
    with pytest.raises(Conflict):
        await setup.tool("whatsapp_send_message", to=f"+{CONTACT}", message="late")
    assert len(setup.platforms.sent) == 2
